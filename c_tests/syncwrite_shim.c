/* LD_PRELOAD shim for a server's blocking writes (connSyncWrite: the commands of a replica's
 * replication handshake, MIGRATE), which make the socket blocking with a send timeout
 * (SO_SNDTIMEO). On such a socket, once per process: the first send takes half of what it
 * is given, the second finds the socket full (EAGAIN, what an expired send timeout gives),
 * the third fails with ECONNRESET. That is the state where bytes the write committed wait,
 * and the flush that must carry them fails. Every other send passes. With an
 * AddressSanitizer server, ASan's runtime goes first in LD_PRELOAD. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

enum { MAX_FD = 65536 };
static unsigned char timed[MAX_FD]; /* a send timeout is set on the fd */
static int step;                     /* sends disturbed so far: 0, 1, 2, then 3 (spent) */

int setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    static int (*real)(int, int, int, const void *, socklen_t);
    if (!real) real = (int (*)(int, int, int, const void *, socklen_t))dlsym(RTLD_NEXT, "setsockopt");
    if (fd >= 0 && fd < MAX_FD && level == SOL_SOCKET && name == SO_SNDTIMEO && len >= sizeof(struct timeval)) {
        const struct timeval *tv = value;
        timed[fd] = tv->tv_sec != 0 || tv->tv_usec != 0;
    }
    return real(fd, level, name, value, len);
}

/* -1 to let the call through; otherwise the length to send (a short count) or -2 for an
 * error already in errno. */
static long disturb(int fd, size_t len) {
    if (fd < 0 || fd >= MAX_FD || !timed[fd] || step >= 3 || len < 2) return -1;
    switch (step++) {
    case 0: return (long)(len / 2);
    case 1: errno = EAGAIN; return -2;
    default: errno = ECONNRESET; return -2;
    }
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
    static ssize_t (*real)(int, const void *, size_t, int);
    if (!real) real = (ssize_t (*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
    long d = disturb(fd, len);
    if (d == -2) return -1;
    return real(fd, buf, d >= 0 ? (size_t)d : len, flags);
}

ssize_t write(int fd, const void *buf, size_t len) {
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    long d = disturb(fd, len);
    if (d == -2) return -1;
    return real(fd, buf, d >= 0 ? (size_t)d : len);
}
