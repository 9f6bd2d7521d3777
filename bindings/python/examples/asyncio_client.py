"""conntls with asyncio: ten RESP clients at once on one event loop, each driving its
connection with loop.add_reader / add_writer on the socket's fd (non-blocking conntls
calls raise WantRead / WantWrite; the socket stays this program's).

    python3 asyncio_client.py HOST PORT CA_FILE
"""

from __future__ import annotations

import asyncio
import socket
import sys

import conntls


async def ready(conn: conntls.Connection, want: conntls.WantIO) -> None:
    """Waits until the socket is readable (WantRead) or writable (WantWrite)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    fd = conn.fileno()
    add, remove = (loop.add_reader, loop.remove_reader) if isinstance(want, conntls.WantRead) else (loop.add_writer, loop.remove_writer)
    add(fd, lambda: done.done() or done.set_result(None))
    try:
        await done
    finally:
        remove(fd)


async def call(step, conn: conntls.Connection):
    """Runs a non-blocking conntls step until it completes."""
    while True:
        try:
            return step()
        except conntls.WantIO as want:
            await ready(conn, want)


async def ping(host: str, port: int, ctx: conntls.Context) -> bytes:
    sock = socket.socket()
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    with ctx.client(sock, "localhost") as conn:
        await call(conn.handshake, conn)
        request = b"*1\r\n$4\r\nPING\r\n"
        while request:
            request = request[await call(lambda: conn.write(request), conn):]
        while conn.pending_write:
            await call(conn.flush, conn)
        reply = await call(lambda: conn.read(1024), conn)
    sock.close()
    return reply


async def main(host: str, port: int, ca: str) -> None:
    ctx = conntls.Context({"ca-cert-file": ca})
    replies = await asyncio.gather(*(ping(host, port, ctx) for _ in range(10)))
    assert all(r == b"+PONG\r\n" for r in replies), replies
    print(f"{len(replies)} clients, all answered PONG over {conntls.openssl_version()}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
