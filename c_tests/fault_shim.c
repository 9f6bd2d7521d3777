/* Socket fault injector, loaded with LD_PRELOAD in front of libconntls: send, recv and
 * setsockopt fail by a deterministic schedule drawn from a seed, while armed.
 *
 *   faults_arm(seed, FAULTS_TRANSIENT): about one call in two is disturbed: EINTR, EAGAIN
 *     (with the socket really ready), or a short count (a random part of the request);
 *   faults_arm(seed, FAULTS_FATAL): the same, plus from a seeded call on every send fails
 *     with EPIPE or ECONNRESET and every recv with ECONNRESET (a dead socket), and, for
 *     one seed in four, setting a TCP option fails (ENOPROTOOPT).
 *
 * and, for the handshake pool's start (c_tests/pool_faults.c):
 *
 *   faults_fail_start(epoll_after, threads_after): epoll_create1 or pthread_create fails
 *     (EMFILE, EAGAIN) once that many calls of it have succeeded; -1 leaves it alone.
 *
 * The drivers (c_tests/faults.c, c_tests/pool_faults.c) call these functions, which they
 * find only when this library is preloaded. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

enum { FAULTS_OFF, FAULTS_TRANSIENT, FAULTS_FATAL };

static int mode;
static uint64_t state;
static long calls, fatal_at, injected;
static int fatal_send_errno, fail_setsockopt;

static uint64_t next(void) {
    /* xorshift64*: the same seed gives the same schedule. */
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 2685821657736338717ull;
}

void faults_arm(unsigned seed, int how) {
    state = 0x9e3779b97f4a7c15ull ^ ((uint64_t)seed * 0x100000001b3ull);
    next();
    mode = how;
    calls = injected = 0;
    fatal_at = 20 + (long)(next() % 400);
    fatal_send_errno = next() % 2 ? EPIPE : ECONNRESET;
    fail_setsockopt = how == FAULTS_FATAL && next() % 4 == 0;
}

long faults_injected(void) {
    return injected;
}

/* What happens to this call: 0 pass, else a fault; *part is the length for a short count. */
static int decide(size_t len, size_t *part) {
    if (mode == FAULTS_OFF) return 0;
    calls++;
    if (mode == FAULTS_FATAL && calls >= fatal_at) return 4;
    switch (next() % 6) {
    case 0: return 1; /* EINTR */
    case 1: return 2; /* EAGAIN */
    case 2:
        if (len > 1) {
            *part = 1 + (size_t)(next() % (len - 1));
            return 3; /* short */
        }
        return 0;
    default: return 0;
    }
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
    static ssize_t (*real)(int, const void *, size_t, int);
    if (!real) real = (ssize_t(*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
    size_t part = len;
    switch (decide(len, &part)) {
    case 1: injected++; errno = EINTR; return -1;
    case 2: injected++; errno = EAGAIN; return -1;
    case 3: injected++; return real(fd, buf, part, flags);
    case 4: injected++; errno = fatal_send_errno; return -1;
    default: return real(fd, buf, len, flags);
    }
}

ssize_t recv(int fd, void *buf, size_t len, int flags) {
    static ssize_t (*real)(int, void *, size_t, int);
    if (!real) real = (ssize_t(*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
    size_t part = len;
    switch (decide(len, &part)) {
    case 1: injected++; errno = EINTR; return -1;
    case 2: injected++; errno = EAGAIN; return -1;
    case 3: injected++; return real(fd, buf, part, flags);
    case 4: injected++; errno = ECONNRESET; return -1;
    default: return real(fd, buf, len, flags);
    }
}

int setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    static int (*real)(int, int, int, const void *, socklen_t);
    if (!real) real = (int (*)(int, int, int, const void *, socklen_t))dlsym(RTLD_NEXT, "setsockopt");
    if (mode != FAULTS_OFF && fail_setsockopt && level == IPPROTO_TCP) {
        injected++;
        errno = ENOPROTOOPT;
        return -1;
    }
    return real(fd, level, name, value, len);
}

static int epoll_left = -1, threads_left = -1;

void faults_fail_start(int epoll_after, int threads_after) {
    epoll_left = epoll_after;
    threads_left = threads_after;
}

/* Whether this call fails: when its countdown has reached 0 (then it stays there). */
static int fails_now(int *left) {
    if (*left < 0) return 0;
    if (*left == 0) {
        injected++;
        return 1;
    }
    --*left;
    return 0;
}

int epoll_create1(int flags) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "epoll_create1");
    if (fails_now(&epoll_left)) {
        errno = EMFILE;
        return -1;
    }
    return real(flags);
}

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg) {
    static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    if (!real) real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(RTLD_NEXT, "pthread_create");
    if (fails_now(&threads_left)) return EAGAIN;
    return real(thread, attr, start, arg);
}
