/* storm_counter: LD_PRELOAD into a server to count, for benches/tls_storm.c, what a
 * connection storm costs it:
 *   accepted  connections accept()/accept4() returned;
 *   wasted    accepted connections whose first write was a handshake flight (more than
 *             the 7 bytes of a lone plaintext alert: the key share and signature already
 *             computed) to a client that had closed its side (POLLRDHUP) -- work done for
 *             nobody.
 * The counters live in the file named by STORM_COUNTERS (two uint64_t, made if missing),
 * shared with the storm client, which reads them before and after. One poll per accepted
 * connection, on its first write only; every other call passes straight through.
 *
 *   cc -shared -fPIC -O2 benches/storm_counter.c -o storm_counter.so -ldl
 *   STORM_COUNTERS=/tmp/c LD_PRELOAD=./storm_counter.so server ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 65536

static _Atomic uint64_t *counters; /* [0] accepted, [1] wasted */
static _Atomic unsigned char fresh[MAX_FD]; /* accepted, nothing written yet */

__attribute__((constructor)) static void map_counters(void) {
    const char *path = getenv("STORM_COUNTERS");
    if (!path) return;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, 2 * sizeof(uint64_t)) != 0) return;
    void *p = mmap(NULL, 2 * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p != MAP_FAILED) counters = p;
}

static int accepted(int fd) {
    if (fd >= 0 && counters) {
        atomic_fetch_add(&counters[0], 1);
        if (fd < MAX_FD) atomic_store(&fresh[fd], 1);
    }
    return fd;
}

/* Called before the real write of n bytes: on an accepted connection's first one, did a
 * flight go to a client that had gone? */
static void first_write(int fd, size_t n) {
    if (fd < 0 || fd >= MAX_FD || !atomic_exchange(&fresh[fd], 0) || n <= 7) return;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) atomic_fetch_add(&counters[1], 1);
}

/* The libc function this one hides, looked up once. */
#define REAL(name)                                                    \
    ({                                                                \
        static __typeof__(&name) real_;                               \
        if (!real_) real_ = (__typeof__(&name))dlsym(RTLD_NEXT, #name); \
        real_;                                                        \
    })

int accept(int s, struct sockaddr *a, socklen_t *l) {
    return accepted(REAL(accept)(s, a, l));
}

int accept4(int s, struct sockaddr *a, socklen_t *l, int flags) {
    return accepted(REAL(accept4)(s, a, l, flags));
}

ssize_t write(int fd, const void *b, size_t n) {
    first_write(fd, n);
    return REAL(write)(fd, b, n);
}

ssize_t send(int fd, const void *b, size_t n, int flags) {
    first_write(fd, n);
    return REAL(send)(fd, b, n, flags);
}

static size_t total(const struct iovec *v, size_t n) {
    size_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += v[i].iov_len;
    return sum;
}

ssize_t writev(int fd, const struct iovec *v, int n) {
    first_write(fd, n > 0 ? total(v, (size_t)n) : 0);
    return REAL(writev)(fd, v, n);
}

ssize_t sendmsg(int fd, const struct msghdr *m, int flags) {
    first_write(fd, total(m->msg_iov, m->msg_iovlen));
    return REAL(sendmsg)(fd, m, flags);
}
