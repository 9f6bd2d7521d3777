# conntls: build, test, install.
#   make            build libconntls.so.0 and libconntls.a (release) in target/release
#   make test       every test (the README's test command)
#   make check      the library's own tests, no servers (for contributors; a few minutes)
#   make soak       the long runs left out of make test (whole upstream suites)
#   make demo       the demo: a TLS server on conntls under load, with a short report
#   make header     regenerate include/conntls.h and include/conntls.cdef (pinned cbindgen)
#   make install    PREFIX=/usr/local LIBDIR=$(PREFIX)/lib DESTDIR= ; run `make` first
#
# TARGET_DIR and CARGO_FLAGS build elsewhere or differently (the OpenSSL matrix builds
# target/openssl-<line> with OPENSSL_DIR set); LDFLAGS reach the shared library's link.
SHELL := /bin/bash
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=
CARGO ?= cargo
CC ?= cc
TARGET_DIR ?= target
CARGO_FLAGS ?=
# The soname's number (cargo-c takes it from the crate's major version); conntls.map's node
# uses the same one.
ABI := 0
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
OUT := $(TARGET_DIR)/release

# Reproducible builds: no path of this checkout or of the cargo registry ends up in the
# library (panic locations, debug info), so two checkouts build the same bytes.
CARGO_HOME_DIR := $(or $(CARGO_HOME),$(HOME)/.cargo)
REMAP := --remap-path-prefix=$(CURDIR)=/usr/src/conntls --remap-path-prefix=$(CARGO_HOME_DIR)=/usr/src/cargo
ifeq (,$(findstring $(REMAP),$(RUSTFLAGS)))
export RUSTFLAGS := $(strip $(RUSTFLAGS) $(REMAP))
endif

# What the Rust static library needs besides OpenSSL (rustc --print native-static-libs).
RUST_NATIVE_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

.PHONY: all build test check soak matrix-line test-one fuzz-build fuzz demo servers header header-tool abi-reference install uninstall clean

all: build

# cargo builds libconntls.a; the shared library is linked from it here rather than by
# rustc as a cdylib, because rustc's cdylib link brings its own anonymous version script,
# which leaves no way to give the exports a version node (ld.bfd refuses two scripts:
# "anonymous version tag cannot be combined with other version tags"; lld keeps rustc's
# assignment). --whole-archive with conntls.map keeps exactly the conn_tls_* functions,
# versioned CONNTLS_0; --gc-sections drops what nothing reaches. OpenSSL is linked
# and the rest --as-needed: a build with OpenSSL inside the archive (OPENSSL_STATIC) needs
# no libssl.
build:
	$(CARGO) build --release --target-dir $(TARGET_DIR) $(CARGO_FLAGS)
	$(CC) -shared -o $(OUT)/libconntls.so.$(VERSION) -Wl,-soname,libconntls.so.$(ABI) \
	  -Wl,--version-script=conntls.map -Wl,--gc-sections -Wl,-z,relro,-z,now -Wl,-z,noexecstack \
	  -Wl,--whole-archive $(OUT)/libconntls.a -Wl,--no-whole-archive \
	  -Wl,--as-needed -lssl -lcrypto $(RUST_NATIVE_LIBS) $(LDFLAGS)
	ln -sf libconntls.so.$(VERSION) $(OUT)/libconntls.so.$(ABI)
	ln -sf libconntls.so.$(ABI) $(OUT)/libconntls.so

# The OpenSSL lines tested beside the system's (3.0): each is built from openssl-src by
# tools/openssl-prefix into target/openssl-<line>/openssl (kept between runs), the library
# is built against it into target/openssl-<line>/release (OpenSSL linked in, hidden by
# conntls.map), and these tests run against that library.
OPENSSL_LINES := 3.5 4.0
MATRIX_TESTS := session bad_input errors interop writev storm pool log_swap openssl_api groups

# Every test: cargo's (the Rust unit tests and tests/*.rs, which build and run the C
# tests, the Python binding's, the fuzzers...), then the contract tests on each OpenSSL
# line. The black-hole tests need root and network namespaces; elsewhere they are
# skipped, loudly. The last line totals every test binary's results.
test: build header-tool
	@if scripts/can-netns.sh; then skip=""; else \
	  echo "SKIPPED black_hole tests: cannot create network namespaces here (needs root and ip netns)"; \
	  skip="--skip black_hole"; fi; \
	set -o pipefail; status=0; \
	$(CARGO) test --release --no-fail-fast -- $$skip 2>&1 | tee target/test.log || status=1; \
	for line in $(OPENSSL_LINES); do \
	  echo "=== OpenSSL $$line: build and contract tests"; \
	  $(MAKE) --no-print-directory matrix-line LINE=$$line 2>&1 | tee -a target/test.log || status=1; \
	done; \
	awk '/^test result:/ { p += $$4; f += $$6 } END { printf "%d passed, %d failed\n", p, f }' target/test.log; \
	exit $$status

# The library's own tests, for contributors (a few minutes): the Rust unit tests and every
# test binary that builds no server, no client library and no Debian package.
CHECK_SKIPS := redis valkey valkey91 runtime_config blocking_write close_after_reply clients debian_package deployments memcached
check: build header-tool
	@tests=$$(ls tests/*.rs | sed 's|tests/\(.*\)\.rs|\1|' | grep -vxF $(addprefix -e ,$(CHECK_SKIPS))); \
	$(CARGO) test --release --no-fail-fast --lib $$(printf -- '--test %s ' $$tests) -- --skip black_hole

# The long runs, left out of make test (#[ignore = "soak: ..."] tests): whole upstream
# suites on the conntls servers, the deployments' seeds for their own windows
# (SOAK_SECONDS per build, DEPLOY_SERVERS: tests/deployments.rs), and the ThreadSanitizer
# runs on Valkey 9.1 built with TSan (scripts/servers.sh's +tsan flavours). Results go in
# the READMEs of contrib/ and BENCHMARKS.md. --nocapture: the runs print their tables as
# they finish (one at a time, so they read in order), not only when a test fails.
soak: build header-tool
	$(CARGO) test --release --no-fail-fast -- --ignored --nocapture --test-threads=1

# One OpenSSL line of the matrix (LINE=3.5 or 4.0). OpenSSL's build output goes to
# target/openssl-<line>/openssl.log and the prefix is read from the stamp file: from
# stdout it once brought ~200 KB into OPENSSL_DIR, too long for exec, and the build and
# the line's settings were skipped, so the tests ran on the system's OpenSSL.
# set -e: no step is skipped quietly.
matrix-line:
	@test -n "$(LINE)" || { echo "LINE=3.5 or LINE=4.0"; exit 2; }
	set -e; openssl=$(CURDIR)/target/openssl-$(LINE)/openssl; mkdir -p $$openssl; \
	$(CARGO) run -q --release --manifest-path tools/openssl-prefix/Cargo.toml -- $(LINE) $$openssl \
	  > $$openssl.log 2>&1 || { tail -n 40 $$openssl.log; exit 1; }; \
	prefix=$$(cat $$openssl/built); echo "OpenSSL $(LINE): $$prefix"; \
	OPENSSL_DIR=$$prefix OPENSSL_STATIC=1 $(MAKE) --no-print-directory build TARGET_DIR=target/openssl-$(LINE); \
	export CONNTLS_LIB_DIR=$(CURDIR)/target/openssl-$(LINE)/release CONNTLS_OPENSSL_LINE=$(LINE) CONNTLS_OPENSSL_INCLUDE=$$prefix/include; \
	status=0; \
	$(CARGO) test --release --no-fail-fast $(addprefix --test ,$(MATRIX_TESTS)) || status=1; \
	$(CARGO) test --release --test packaging -- exports soname || status=1; \
	exit $$status

# The libFuzzer harnesses of fuzz/ (Debian's clang and libclang-rt-*-dev; stable Rust: the
# library is instrumented with LLVM's sancov pass, and debug assertions and overflow
# checks are on). They call only the C API, against target/fuzz's libconntls.a.
# `make fuzz FUZZ_SECONDS=600` runs each for that long, keeping its corpus in
# target/fuzz/corpus/<name> and anything it finds in target/fuzz/findings; make test runs
# each briefly (tests/fuzz.rs) and replays fuzz/regressions.
FUZZERS := config peer iov
FUZZ_SECONDS ?= 60
HOST_TRIPLE := $(shell rustc -vV | sed -n 's/^host: //p')
FUZZ_RUSTFLAGS := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=3 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions=yes -Coverflow-checks=yes

# --target: the flags then reach the library and its dependencies, not build scripts.
fuzz-build:
	RUSTFLAGS="$(RUSTFLAGS) $(FUZZ_RUSTFLAGS)" $(CARGO) build --release --target $(HOST_TRIPLE) --target-dir target/fuzz
	mkdir -p target/fuzz/bin
	for f in $(FUZZERS); do \
	  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude -Ifuzz \
	    fuzz/fuzz_$$f.c target/fuzz/$(HOST_TRIPLE)/release/libconntls.a -lssl -lcrypto -lpthread -ldl -lm \
	    -o target/fuzz/bin/fuzz_$$f || exit 1; done
	test -f target/fuzz/certs/ca.crt || scripts/make-certs.sh target/fuzz/certs >/dev/null

fuzz: fuzz-build
	mkdir -p target/fuzz/findings
	for f in $(FUZZERS); do mkdir -p target/fuzz/corpus/$$f; \
	  CONNTLS_CERTS=$(CURDIR)/target/fuzz/certs target/fuzz/bin/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) \
	    -timeout=20 -rss_limit_mb=4096 -artifact_prefix=target/fuzz/findings/$$f- \
	    target/fuzz/corpus/$$f fuzz/corpus/$$f || exit 1; done

# One test binary (tests/<T>.rs), with the same build flags as `make test`.
test-one: build
	$(CARGO) test --release --test $(T) -- $(ARGS)

demo: build
	scripts/demo.sh

# The servers Debian ships, from Debian's source packages, stock and on conntls (contrib/):
# target/servers/<server>/<flavour>/src/ (scripts/servers.sh lists them: redis-7.0.15,
# redis-8.0.2, valkey-8.1.1; stock, conntls, and Valkey's TLS module builds), built with
# AddressSanitizer as the tests use them. SERVERS_SANITIZER= builds without it (for
# benchmarks: with SERVERS_ROOT=target/servers-release beside the tests' builds).
SERVERS_SANITIZER ?= address
SERVERS_ROOT ?= $(CURDIR)/target/servers
servers: build
	SANITIZER=$(SERVERS_SANITIZER) ROOT=$(SERVERS_ROOT) scripts/servers.sh

# The header generator (cbindgen and its 30-odd crates) is a workspace of its own, built
# only for these two targets, never by `make`.
header:
	$(CARGO) run --release --manifest-path tools/gen-header/Cargo.toml

header-tool:
	$(CARGO) build --release --manifest-path tools/gen-header/Cargo.toml

# The ABI of this release, for tests/abi.rs to compare every later build with (libabigail's
# abidw; the build has full debug info). Regenerate only when the soname changes.
abi-reference: build
	abidw --no-corpus-path --no-comp-dir-path --no-show-locs --type-id-style hash \
	  $(OUT)/libconntls.so.$(ABI) > abi/libconntls.so.$(ABI).abi

# Installs what `make` built; it does not build, so it can run as another user.
install:
	@test -f $(OUT)/libconntls.so.$(VERSION) -a -f $(OUT)/libconntls.a || { echo "run make first"; exit 1; }
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(DATADIR)/conntls
	install -m 644 $(OUT)/libconntls.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libconntls.so.$(VERSION)
	ln -sf libconntls.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libconntls.so.$(ABI)
	ln -sf libconntls.so.$(ABI) $(DESTDIR)$(LIBDIR)/libconntls.so
	install -m 644 $(OUT)/libconntls.a $(DESTDIR)$(LIBDIR)/libconntls.a
	install -m 644 include/conntls.h $(DESTDIR)$(INCLUDEDIR)/conntls.h
	install -m 644 include/conntls.cdef $(DESTDIR)$(DATADIR)/conntls/conntls.cdef
	for pc in conntls conntls-static; do \
	  sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	      -e 's|@VERSION@|$(VERSION)|' $$pc.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/$$pc.pc; \
	  chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/$$pc.pc; done

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libconntls.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libconntls.so.$(ABI) \
	      $(DESTDIR)$(LIBDIR)/libconntls.so $(DESTDIR)$(LIBDIR)/libconntls.a \
	      $(DESTDIR)$(INCLUDEDIR)/conntls.h $(DESTDIR)$(PKGCONFIGDIR)/conntls.pc \
	      $(DESTDIR)$(PKGCONFIGDIR)/conntls-static.pc \
	      $(DESTDIR)$(DATADIR)/conntls/conntls.cdef
	-rmdir $(DESTDIR)$(DATADIR)/conntls

clean:
	$(CARGO) clean --target-dir $(TARGET_DIR)
