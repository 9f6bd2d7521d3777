"""memcached_client.py MODE PORT CA [ARGS...]

memcached's text protocol over TLS for tests/memcached.rs, on Python's ssl (the system
OpenSSL): a client as an application would write it. Every mode prints one result line
per fact the test reads ("name value") and exits 0; a broken expectation exits 1 with
the reason. Every loop is bounded in count and time.

  pending PORT CA
      One write holding `set` of a 100,000-byte value and a `get` of it: the get's bytes
      share the value's last TLS record. Prints "answered" when STORED and the value come
      back within 3 s; else "stalled", then sends `version` and prints "answered after the
      next request" when the get's reply arrives with it.
  multiget PORT CA KEYS SIZE
      Stores KEYS values of SIZE bytes, then one `get` of all of them read by a slow
      reader (a 32 KiB receive buffer, 4 KiB at a time, 1 ms apart): the server meets a
      full socket again and again. Prints "bytes N" when every byte is right.
  refresh PORT CA CERTDIR SECONDS
      Four clients connect, set, get and close in a loop (every second connection resumes
      the previous session) while `refresh_certs` runs every second with CERTDIR's
      server.crt/server.key swapped between two certificates of the same CA: prints
      "connections N", "resumed N", "refreshes N", "failures N" (first failure after).
  storm PORT CA STORM SECONDS
      STORM threads make handshakes the server works for and the client abandons (a
      ClientHello, then close; or garbage; or a stall of 1 s), while two established
      clients each keep one get/set in flight and a newcomer connects, asks `version` and
      closes every 200 ms: prints "newcomers N", "newcomer_failures N", "newcomer_p99_ms",
      "established_ops N", "established_p50_ms", "established_p99_ms", "abandoned N".
      With STORM 0, the same without the storm (the baseline).
  bad-input PORT CA
      A connection that sends an HTTP request instead of a ClientHello, and one that
      stops halfway through its ClientHello; meanwhile an ordinary client sets and gets.
      Prints "garbage closed" when the first is closed by the server, "others served".
"""

import os
import shutil
import socket
import ssl
import sys
import threading
import time

DEADLINE_S = 60


def fail(why: str) -> None:
    print(f"FAILED: {why}", flush=True)
    sys.exit(1)


def context(ca: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.check_hostname = False  # the chain is verified; the test certificates name no 127.0.0.1
    return ctx


def connect(port: int, ctx: ssl.SSLContext, session=None, timeout=30.0, rcvbuf=0) -> ssl.SSLSocket:
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:  # set before connecting, so that the window stays small
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(timeout)
    raw.connect(("127.0.0.1", port))
    return ctx.wrap_socket(raw, session=session)


def read_until(sock, end: bytes, limit_s: float) -> bytes:
    """Reads until `end` ends the data, or `limit_s` passes (what came so far)."""
    got = b""
    stop = time.monotonic() + limit_s
    while not got.endswith(end):
        left = stop - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            break
        if not chunk:
            break
        got += chunk
    return got


def command(sock, line: bytes, end: bytes) -> bytes:
    sock.sendall(line)
    reply = read_until(sock, end, 30)
    if not reply.endswith(end):
        fail(f"{line[:40]!r}: reply {reply[:80]!r} does not end with {end!r}")
    return reply


def value_of(key: int, size: int) -> bytes:
    pattern = f"<{key}:".encode()
    return (pattern * (size // len(pattern) + 1))[:size]


def pending(port: int, ctx) -> None:
    sock = connect(port, ctx)
    value = value_of(7, 100_000)
    sock.sendall(b"set k 0 0 %d\r\n%s\r\nget k\r\n" % (len(value), value))
    expect = b"STORED\r\nVALUE k 0 %d\r\n%s\r\nEND\r\n" % (len(value), value)
    got = read_until(sock, b"END\r\n", 3)
    if got == expect:
        print("answered")
        return
    if got != b"STORED\r\n":
        fail(f"unexpected reply {got[:80]!r}")
    print("stalled")
    sock.sendall(b"version\r\n")
    got += read_until(sock, b"\r\n", 30)
    while not got.startswith(expect) or not got.endswith(b"\r\n") or b"VERSION" not in got[len(expect):]:
        more = read_until(sock, b"\r\n", 30)
        if not more:
            fail(f"no reply after the next request: {got[-80:]!r}")
        got += more
    print("answered after the next request")


def multiget(port: int, ctx, keys: int, size: int) -> None:
    sock = connect(port, ctx, rcvbuf=32768)
    for k in range(keys):
        command(sock, b"set mg%d 0 0 %d\r\n%s\r\n" % (k, size, value_of(k, size)), b"STORED\r\n")
    expect = b"".join(b"VALUE mg%d 0 %d\r\n%s\r\n" % (k, size, value_of(k, size)) for k in range(keys)) + b"END\r\n"
    sock.sendall(b"get " + b" ".join(b"mg%d" % k for k in range(keys)) + b"\r\n")
    got = bytearray()
    stop = time.monotonic() + DEADLINE_S
    while len(got) < len(expect) and time.monotonic() < stop:
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
        time.sleep(0.001)
    if bytes(got) != expect:
        at = next((i for i in range(min(len(got), len(expect))) if got[i] != expect[i]), min(len(got), len(expect)))
        fail(f"{len(got)} of {len(expect)} bytes, first difference at {at}")
    print(f"bytes {len(got)}")


def refresh(port: int, ctx, certdir: str, seconds: float) -> None:
    counts = {"connections": 0, "resumed": 0, "failures": 0}
    first_failure = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(n: int) -> None:
        session = None
        i = 0
        while time.monotonic() < stop:
            i += 1
            try:
                sock = connect(port, ctx, session=session if i % 2 == 0 else None)
                key = b"r%d_%d" % (n, i)
                command(sock, b"set %s 0 0 5\r\nhello\r\n" % key, b"STORED\r\n")
                command(sock, b"get %s\r\n" % key, b"END\r\n")
                with lock:
                    counts["connections"] += 1
                    counts["resumed"] += sock.session_reused
                session = sock.session
                sock.close()
            except (OSError, ssl.SSLError, SystemExit) as e:
                with lock:
                    counts["failures"] += 1
                    first_failure.append(repr(e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    admin = connect(port, ctx)
    refreshes = 0
    pairs = ["a", "b"]
    while time.monotonic() < stop:
        side = pairs[refreshes % 2]
        for part in ("crt", "key"):
            shutil.copy(os.path.join(certdir, f"server-{side}.{part}"), os.path.join(certdir, f".next.{part}"))
            os.replace(os.path.join(certdir, f".next.{part}"), os.path.join(certdir, f"server.{part}"))
        reply = command(admin, b"refresh_certs\r\n", b"\r\n")
        if reply != b"OK\r\n":
            fail(f"refresh_certs: {reply!r}")
        refreshes += 1
        time.sleep(1)
    for t in threads:
        t.join(DEADLINE_S)
    for name in ("connections", "resumed", "failures"):
        print(f"{name} {counts[name]}")
    print(f"refreshes {refreshes}")
    if first_failure:
        print(f"first_failure {first_failure[0]}")


def percentile(values, p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def storm(port: int, ctx, storm_threads: int, seconds: float) -> None:
    stop = time.monotonic() + seconds
    abandoned = [0]
    established = []
    newcomers = []
    newcomer_failures = []
    lock = threading.Lock()

    def abandoner(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            i += 1
            try:
                raw = socket.create_connection(("127.0.0.1", port), timeout=5)
                kind = i % 3
                if kind == 1:
                    raw.sendall(b"\x16\x03\x01\x00\x05garbage-after-a-record-header")
                else:
                    tls = ctx.wrap_socket(raw, do_handshake_on_connect=False)
                    tls.setblocking(False)
                    try:
                        tls.do_handshake()  # sends the ClientHello; the answer is not awaited
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        pass
                    if kind == 2:
                        time.sleep(1)
                raw.close()
                with lock:
                    abandoned[0] += 1
            except OSError:
                time.sleep(0.01)

    def steady(n: int) -> None:
        sock = connect(port, ctx)
        i = 0
        while time.monotonic() < stop:
            i += 1
            started = time.monotonic()
            command(sock, b"set s%d 0 0 64\r\n%s\r\n" % (n, value_of(i, 64)), b"STORED\r\n")
            command(sock, b"get s%d\r\n" % n, b"END\r\n")
            with lock:
                established.append(time.monotonic() - started)

    def newcomer() -> None:
        while time.monotonic() < stop:
            started = time.monotonic()
            try:
                sock = connect(port, ctx)
                command(sock, b"version\r\n", b"\r\n")
                sock.close()
                with lock:
                    newcomers.append(time.monotonic() - started)
            except (OSError, ssl.SSLError) as e:
                with lock:
                    newcomer_failures.append(repr(e))
            time.sleep(0.2)

    threads = [threading.Thread(target=abandoner, args=(n,)) for n in range(storm_threads)]
    threads += [threading.Thread(target=steady, args=(n,)) for n in range(2)]
    threads.append(threading.Thread(target=newcomer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + DEADLINE_S)
    print(f"newcomers {len(newcomers)}")
    print(f"newcomer_failures {len(newcomer_failures)}")
    if newcomer_failures:
        print(f"first_newcomer_failure {newcomer_failures[0]}")
    print(f"newcomer_p99_ms {percentile(newcomers, 0.99):.1f}")
    print(f"established_ops {len(established)}")
    print(f"established_p50_ms {percentile(established, 0.5):.2f}")
    print(f"established_p99_ms {percentile(established, 0.99):.2f}")
    print(f"abandoned {abandoned[0]}")


def bad_input(port: int, ctx) -> None:
    garbage = socket.create_connection(("127.0.0.1", port), timeout=30)
    garbage.sendall(b"GET / HTTP/1.1\r\nHost: memcached\r\n\r\n")
    halfway = socket.create_connection(("127.0.0.1", port), timeout=30)
    hello = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(hello[0], hello[1])
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    record = hello[1].read()
    halfway.sendall(record[: len(record) // 2])
    sock = connect(port, ctx)
    command(sock, b"set bad-input 0 0 2\r\nok\r\n", b"STORED\r\n")
    if command(sock, b"get bad-input\r\n", b"END\r\n") != b"VALUE bad-input 0 2\r\nok\r\nEND\r\n":
        fail("get bad-input")
    garbage.settimeout(30)
    try:
        left = garbage.recv(4096)
        while left:
            left = garbage.recv(4096)
    except ConnectionResetError:
        pass
    except (socket.timeout, TimeoutError):
        fail("the server kept the garbage connection 30 s")
    print("garbage closed")
    command(sock, b"version\r\n", b"\r\n")
    print("others served")
    halfway.close()


def main() -> None:
    mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rest = sys.argv[4:]
    ctx = context(ca)
    if mode == "pending":
        pending(port, ctx)
    elif mode == "multiget":
        multiget(port, ctx, int(rest[0]), int(rest[1]))
    elif mode == "refresh":
        refresh(port, ctx, rest[0], float(rest[1]))
    elif mode == "storm":
        storm(port, ctx, int(rest[0]), float(rest[1]))
    elif mode == "bad-input":
        bad_input(port, ctx)
    else:
        fail(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
