/* LD_PRELOAD shim: every socket a server accepts gets a small send buffer (SO_SNDBUF, from
 * $CONNTLS_SNDBUF, default 4096 bytes), so that its TLS writes block early and often: the
 * condition of OpenSSL's write-retry rule ("bad length", valkey #1135). With an
 * AddressSanitizer server, ASan's runtime goes first in LD_PRELOAD. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/socket.h>

static void shrink(int fd) {
    if (fd < 0) return;
    const char *env = getenv("CONNTLS_SNDBUF");
    int size = env ? atoi(env) : 4096;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    int s = real(fd, addr, len);
    shrink(s);
    return s;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    int s = real(fd, addr, len, flags);
    shrink(s);
    return s;
}
