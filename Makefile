# conntls: build, test, install.
#   make            build libconntls.so / libconntls.a (release)
#   make test       every test (the README's test command)
#   make demo       the demo: a TLS server on conntls under load, with a short report
#   make header     regenerate include/conntls.h (pinned cbindgen)
#   make install    PREFIX=/usr/local LIBDIR=$(PREFIX)/lib DESTDIR= ; run `make` first
SHELL := /bin/bash
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=
CARGO ?= cargo
# The soname's number; build.rs uses the same one.
ABI := 0
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
OUT := target/release

.PHONY: all build test demo header install uninstall clean

all: build

build:
	$(CARGO) build --release --workspace

# The black-hole test needs root and network namespaces; elsewhere it is skipped, loudly.
# The last line totals every test binary's results; the exit status is cargo's.
test: build
	@if scripts/can-netns.sh; then skip=""; else \
	  echo "SKIPPED black_hole_detected_by_user_timeout_and_keepalive: cannot create network namespaces here (needs root and ip netns)"; \
	  skip="--skip black_hole"; fi; \
	set -o pipefail; $(CARGO) test --release --no-fail-fast -- $$skip 2>&1 | tee target/test.log; status=$$?; \
	awk '/^test result:/ { p += $$4; f += $$6 } END { printf "%d passed, %d failed\n", p, f }' target/test.log; \
	exit $$status

demo: build
	scripts/demo.sh

header:
	$(CARGO) run --release -p gen-header

# Installs what `make` built; it does not build, so it can run as another user.
install:
	@test -f $(OUT)/libconntls.so -a -f $(OUT)/libconntls.a || { echo "run make first"; exit 1; }
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 755 $(OUT)/libconntls.so $(DESTDIR)$(LIBDIR)/libconntls.so.$(VERSION)
	ln -sf libconntls.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libconntls.so.$(ABI)
	ln -sf libconntls.so.$(ABI) $(DESTDIR)$(LIBDIR)/libconntls.so
	install -m 644 $(OUT)/libconntls.a $(DESTDIR)$(LIBDIR)/libconntls.a
	install -m 644 include/conntls.h $(DESTDIR)$(INCLUDEDIR)/conntls.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' conntls.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/conntls.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/conntls.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libconntls.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libconntls.so.$(ABI) \
	      $(DESTDIR)$(LIBDIR)/libconntls.so $(DESTDIR)$(LIBDIR)/libconntls.a \
	      $(DESTDIR)$(INCLUDEDIR)/conntls.h $(DESTDIR)$(PKGCONFIGDIR)/conntls.pc

clean:
	$(CARGO) clean
