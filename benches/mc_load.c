/* mc_load: memcached's text protocol over TLS (conntls's client transport, the same for
 * every server measured), from the client side, with the server's CPU and memory from /proc.
 *
 *   mc_load --port P --ca F --op get|set|mget --size B [--conns N] [--seconds S] [--server-pid PID]
 *   mc_load --port P --ca F --idle N --server-pid PID
 *
 * get: N connections each keep one `get kI` of a B-byte value in flight (ten values stored
 * first); mget: one `get k0 ... k9` (ten B-byte values); set: one `set kI 0 0 B` with its
 * B bytes. After S seconds it prints one line: requests/s, p50 / p99 latency (ms) and,
 * with --server-pid, the server's CPU microseconds per request.
 * --idle: N connections handshaken, each asked one `get` (a miss) and left idle; prints the
 * server's RSS before and after and the KiB each idle TLS connection costs it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../c_tests/testutil.h" /* now_s, config_of, ctx_from */
#include "server_proc.h"

#define KEYS 10

typedef struct {
    int fd;
    conn_tls *tls;
    int handshaken;
    const char *req; /* the request in flight and how much of it is written */
    size_t req_len, req_off;
    size_t want, got; /* reply bytes expected, read */
    double started;
} conn;

static conn_tls_ctx *ctx;
static int port, epfd;
static samples latency;

static void die(const char *what) {
    fprintf(stderr, "mc_load: %s: %s\n", what, errno ? strerror(errno) : conn_tls_thread_last_error());
    exit(1);
}

static void watch(conn *c, int events) {
    struct epoll_event ev = {.events = (uint32_t)events, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void open_conn(conn *c) {
    c->fd = loopback_connect(port);
    if (c->fd < 0) die("connect");
    errno = 0;
    c->tls = conn_tls_new_client(ctx, c->fd, NULL);
    if (!c->tls) die("conn_tls_new_client");
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void send_request(conn *c, const char *req, size_t len, size_t want) {
    c->req = req;
    c->req_len = len;
    c->req_off = 0;
    c->want = want;
    c->got = 0;
    c->started = now_s();
}

/* Moves a connection along on an event; returns 1 when its reply is complete. */
static int step(conn *c) {
    if (!c->handshaken) {
        int r = conn_tls_handshake(c->tls);
        if (r == CONN_TLS_WANT_READ || r == CONN_TLS_WANT_WRITE) {
            watch(c, r == CONN_TLS_WANT_READ ? EPOLLIN : EPOLLOUT);
            return 0;
        }
        if (r != CONN_TLS_OK) {
            fprintf(stderr, "mc_load: handshake: %s\n", conn_tls_last_error(c->tls));
            exit(1);
        }
        c->handshaken = 1;
    }
    while (c->req_off < c->req_len) {
        ssize_t n = conn_tls_write(c->tls, c->req + c->req_off, c->req_len - c->req_off);
        if (n == CONN_TLS_WANT_WRITE || n == CONN_TLS_WANT_READ) {
            watch(c, n == CONN_TLS_WANT_READ ? EPOLLIN : EPOLLOUT);
            return 0;
        }
        if (n < 0) die("write");
        c->req_off += (size_t)n;
    }
    if (conn_tls_pending_write(c->tls) && conn_tls_flush(c->tls) == CONN_TLS_WANT_WRITE) {
        watch(c, EPOLLOUT);
        return 0;
    }
    static char buf[1 << 17];
    while (c->got < c->want) {
        ssize_t n = conn_tls_read(c->tls, buf, sizeof buf);
        if (n == CONN_TLS_WANT_READ || n == CONN_TLS_WANT_WRITE) {
            watch(c, n == CONN_TLS_WANT_READ ? EPOLLIN : EPOLLOUT);
            return 0;
        }
        if (n <= 0) die("read (the server closed or failed)");
        c->got += (size_t)n;
    }
    if (c->got != c->want) {
        fprintf(stderr, "mc_load: a reply of %zu bytes where %zu were expected\n", c->got, c->want);
        exit(1);
    }
    return 1;
}

/* Runs one request on every connection to completion (setup, or --idle's version). */
static void run_once(conn *cs, int n, const char *(*req)(int, size_t *, size_t *)) {
    for (int i = 0; i < n; i++) {
        size_t len, want;
        const char *r = req(i, &len, &want);
        send_request(&cs[i], r, len, want);
    }
    int left = n;
    for (int i = 0; i < n; i++) left -= step(&cs[i]);
    struct epoll_event events[256];
    double deadline = now_s() + 60;
    while (left > 0) {
        if (now_s() > deadline) die("setup took over 60 s");
        int k = epoll_wait(epfd, events, 256, 100);
        for (int i = 0; i < k; i++) {
            conn *c = events[i].data.ptr;
            int counted = c - cs < n; /* the others only handshake meanwhile */
            if (c->got < c->want || c->req_off < c->req_len || !c->handshaken) {
                int done = step(c);
                if (counted) left -= done;
            }
        }
    }
}

static size_t size;
static char *value;          /* the B-byte value */
static char *requests[KEYS]; /* per key: the op's request */
static size_t request_len[KEYS], reply_len[KEYS];
static char *mget_request;
static size_t mget_len, mget_reply;

static const char *set_request(int i, size_t *len, size_t *want) {
    static char *reqs[KEYS];
    static size_t lens[KEYS];
    int k = i % KEYS;
    if (!reqs[k]) {
        reqs[k] = malloc(size + 64);
        int h = snprintf(reqs[k], 64, "set k%d 0 0 %zu\r\n", k, size);
        memcpy(reqs[k] + h, value, size);
        memcpy(reqs[k] + h + size, "\r\n", 2);
        lens[k] = (size_t)h + size + 2;
    }
    *len = lens[k];
    *want = 8; /* STORED\r\n */
    return reqs[k];
}

/* A get of a key that is never stored: "END\r\n", five bytes. */
static const char *miss_request(int i, size_t *len, size_t *want) {
    (void)i;
    *len = 10;
    *want = 5;
    return "get none\r\n";
}

int main(int argc, char **argv) {
    const char *ca = NULL, *op = "get";
    int conns = 20, idle = 0, pid = 0;
    double seconds = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "--port")) port = atoi(v);
        else if (!strcmp(o, "--ca")) ca = v;
        else if (!strcmp(o, "--op")) op = v;
        else if (!strcmp(o, "--size")) size = (size_t)atol(v);
        else if (!strcmp(o, "--conns")) conns = atoi(v);
        else if (!strcmp(o, "--seconds")) seconds = atof(v);
        else if (!strcmp(o, "--idle")) idle = atoi(v);
        else if (!strcmp(o, "--server-pid")) pid = atoi(v);
        else {
            fprintf(stderr, "mc_load: unknown option %s\n", o);
            return 2;
        }
    }
    int get = !strcmp(op, "get"), mget = !strcmp(op, "mget"), set = !strcmp(op, "set");
    if (!port || !ca || (idle && !pid) || (!idle && (!size || !(get || mget || set)))) {
        fprintf(stderr, "usage: mc_load --port P --ca F --op get|set|mget --size B [--conns N] [--seconds S] [--server-pid PID]\n"
                        "       mc_load --port P --ca F --idle N --server-pid PID\n");
        return 2;
    }
    int n = idle ? idle : conns;
    struct rlimit rl = {(rlim_t)n + 256, (rlim_t)n + 256};
    setrlimit(RLIMIT_NOFILE, &rl);
    ctx = ctx_from(config_of("ca-cert-file", ca, "session-caching", "no", NULL));
    epfd = epoll_create1(0);
    conn *cs = calloc((size_t)n, sizeof *cs);
    if (!cs) die("calloc");
    for (int i = 0; i < n; i++) open_conn(&cs[i]);

    if (idle) {
        long before = proc_rss_kib(pid);
        run_once(cs, n, miss_request);
        usleep(500000); /* the server's last handshakes settle */
        long after = proc_rss_kib(pid);
        printf("idle %d TLS connections: server RSS %.1f -> %.1f MB, %.1f KiB per connection\n", n, before / 1024.0,
               after / 1024.0, (double)(after - before) / n);
        return 0;
    }

    value = malloc(size);
    for (size_t i = 0; i < size; i++) value[i] = (char)('a' + i % 26);
    /* Ten values stored first (over the first connections, or all when fewer). */
    run_once(cs, n < KEYS ? n : KEYS, set_request);
    if (n < KEYS)
        for (int k = n; k < KEYS; k++) {
            size_t len, want;
            const char *r = set_request(k, &len, &want);
            send_request(&cs[0], r, len, want);
            while (!step(&cs[0])) {
                struct epoll_event e;
                epoll_wait(epfd, &e, 1, 100);
            }
        }
    for (int k = 0; k < KEYS; k++) {
        requests[k] = malloc(32);
        request_len[k] = (size_t)snprintf(requests[k], 32, "get k%d\r\n", k);
        char header[64];
        reply_len[k] = (size_t)snprintf(header, sizeof header, "VALUE k%d 0 %zu\r\n", k, size) + size + 2 + 5;
    }
    mget_request = malloc(64);
    mget_len = (size_t)snprintf(mget_request, 64, "get k0 k1 k2 k3 k4 k5 k6 k7 k8 k9\r\n");
    for (int k = 0; k < KEYS; k++) mget_reply += reply_len[k] - 5;
    mget_reply += 5;

    long requests_done = 0;
    double cpu0 = pid ? proc_cpu_s(pid) : 0, start = now_s(), end = start + seconds;
    for (int i = 0; i < n; i++) {
        size_t len, want;
        if (set) {
            const char *r = set_request(i, &len, &want);
            send_request(&cs[i], r, len, want);
        } else if (mget) {
            send_request(&cs[i], mget_request, mget_len, mget_reply);
        } else {
            send_request(&cs[i], requests[i % KEYS], request_len[i % KEYS], reply_len[i % KEYS]);
        }
        watch(&cs[i], EPOLLOUT);
    }
    struct epoll_event events[256];
    while (now_s() < end) {
        int k = epoll_wait(epfd, events, 256, 10);
        for (int e = 0; e < k; e++) {
            conn *c = events[e].data.ptr;
            if (!step(c)) continue;
            requests_done++;
            if (!samples_add(&latency, (now_s() - c->started) * 1000)) die("realloc");
            size_t len, want;
            int i = (int)(c - cs);
            if (set) {
                const char *r = set_request(i, &len, &want);
                send_request(c, r, len, want);
            } else if (mget) {
                send_request(c, mget_request, mget_len, mget_reply);
            } else {
                send_request(c, requests[i % KEYS], request_len[i % KEYS], reply_len[i % KEYS]);
            }
            watch(c, EPOLLOUT);
        }
    }
    double elapsed = now_s() - start, cpu = pid ? proc_cpu_s(pid) - cpu0 : 0;
    samples_sort(&latency);
    printf("%s %zu B, %d connections, %.0f s: %.0f requests/s, p50 %.2f ms, p99 %.2f ms", op, size, n, elapsed,
           requests_done / elapsed, samples_at(&latency, 1, 2), samples_at(&latency, 99, 100));
    if (pid) printf(", server CPU %.1f us/request", requests_done ? cpu * 1e6 / (double)requests_done : 0);
    printf("\n");
    return 0;
}
