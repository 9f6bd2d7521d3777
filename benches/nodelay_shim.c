/* LD_PRELOAD shim for benchmark clients: TCP_NODELAY on every socket they connect, as a
 * latency-minded client sets it (redis-benchmark does not: its requests larger than one
 * TLS record then wait ~40 ms for the server's delayed ACK, and the figure measures that
 * timer). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (!real) real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    int one = 1;
    if (addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6))
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return real(fd, addr, len);
}
