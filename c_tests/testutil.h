/* Helpers shared by the C tests: checks, certificates, socket pairs, handshakes. */
#ifndef CONNTLS_TESTUTIL_H
#define CONNTLS_TESTUTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conntls.h"

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

#define CHECK_EQ(a, b)                                                                      \
    do {                                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                                 \
        if (a_ != b_) {                                                                     \
            fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, \
                    #a, a_, #b, b_);                                                        \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

#define CHECK_CONTAINS(haystack, needle)                                                     \
    do {                                                                                     \
        const char *h_ = (haystack);                                                         \
        if (!h_ || !strstr(h_, (needle))) {                                                  \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,  \
                    h_ ? h_ : "(null)", (needle));                                           \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

/* The directory made by scripts/make-certs.sh, from $CONNTLS_CERTS. */
static inline const char *cert(const char *name) {
    static char bufs[16][512];
    static int next;
    const char *dir = getenv("CONNTLS_CERTS");
    char *buf = bufs[next++ % 16];
    snprintf(buf, sizeof bufs[0], "%s/%s", dir ? dir : "certs", name);
    return buf;
}

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    CHECK(flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
}

/* A config from name/value pairs ending with NULL; every set must succeed. */
static inline conn_tls_config *config_of(const char *first, ...) {
    conn_tls_config *cfg = conn_tls_config_new();
    char err[256];
    va_list ap;
    va_start(ap, first);
    for (const char *name = first; name; name = va_arg(ap, const char *)) {
        const char *value = va_arg(ap, const char *);
        if (conn_tls_config_set(cfg, name, value, err, sizeof err) != CONN_TLS_OK) {
            fprintf(stderr, "config_set %s=%s: %s\n", name, value, err);
            exit(1);
        }
    }
    va_end(ap);
    return cfg;
}

static inline conn_tls_ctx *ctx_from(conn_tls_config *cfg) {
    char err[512] = "";
    conn_tls_ctx *ctx = conn_tls_ctx_new(cfg, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "conn_tls_ctx_new: %s\n", err);
        exit(1);
    }
    conn_tls_config_free(cfg);
    return ctx;
}

/* Server context: server.crt, clients must present a certificate signed by ca.crt. */
static inline conn_tls_ctx *server_ctx(void) {
    return ctx_from(config_of("cert-file", cert("server.crt"), "key-file", cert("server.key"),
                              "ca-cert-file", cert("ca.crt"), NULL));
}

/* Client context: trusts ca.crt, presents client.crt. */
static inline conn_tls_ctx *client_ctx(void) {
    return ctx_from(config_of("client-cert-file", cert("client.crt"), "client-key-file",
                              cert("client.key"), "ca-cert-file", cert("ca.crt"), NULL));
}

static inline void socket_pair(int sv[2]) {
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    set_nonblocking(sv[0]);
    set_nonblocking(sv[1]);
}

/* A connected loopback TCP pair, both ends non-blocking. */
static inline void tcp_pair(int *client, int *server) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    CHECK(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0);
    CHECK(getsockname(l, (struct sockaddr *)&a, &alen) == 0);
    *client = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(*client, (struct sockaddr *)&a, sizeof a) == 0);
    *server = accept(l, NULL, NULL);
    CHECK(*server >= 0);
    close(l);
    set_nonblocking(*client);
    set_nonblocking(*server);
}

/* A server and a client connection over a socket pair (TCP on loopback when tcp is set),
 * not yet handshaken: sv[0] is the server's fd, sv[1] the client's. */
typedef struct {
    int sv[2];
    conn_tls *s, *c;
} pair;

static inline pair connect_pair(conn_tls_ctx *srv, conn_tls_ctx *cli, const char *name, int tcp) {
    pair p;
    if (tcp)
        tcp_pair(&p.sv[1], &p.sv[0]);
    else
        socket_pair(p.sv);
    p.s = conn_tls_new_server(srv, p.sv[0]);
    p.c = conn_tls_new_client(cli, p.sv[1], name);
    CHECK(p.s && p.c);
    return p;
}

/* Frees both connections, then closes the fds (the library never does). */
static inline void close_pair(pair *p) {
    conn_tls_free(p->s);
    conn_tls_free(p->c);
    close(p->sv[0]);
    close(p->sv[1]);
}

/* Runs both handshakes to the end in this thread; returns 0 or the first failing status. */
static inline int handshake_both(conn_tls *a, conn_tls *b) {
    int ra = CONN_TLS_WANT_READ, rb = CONN_TLS_WANT_READ;
    for (int i = 0; i < 1000 && (ra != CONN_TLS_OK || rb != CONN_TLS_OK); i++) {
        if (ra != CONN_TLS_OK) ra = conn_tls_handshake(a);
        if (rb != CONN_TLS_OK) rb = conn_tls_handshake(b);
        if (ra == CONN_TLS_ERR || ra == CONN_TLS_EINVAL) return ra;
        if (rb == CONN_TLS_ERR || rb == CONN_TLS_EINVAL) return rb;
    }
    return ra != CONN_TLS_OK ? ra : rb;
}

/* One handshake through `pool` that fails on its worker (which logs it there): a server
 * connection of `srv` whose peer sent something other than a ClientHello, submitted, then
 * collected with its failure, freed and closed. */
static inline void pool_failing_handshake(conn_tls_pool *pool, conn_tls_ctx *srv) {
    int sv[2];
    socket_pair(sv);
    conn_tls *c = conn_tls_new_server(srv, sv[0]);
    CHECK(c);
    CHECK(write(sv[1], "not a client hello\r\n", 20) == 20);
    CHECK_EQ(conn_tls_pool_submit(pool, c, NULL), CONN_TLS_OK);
    int status;
    void *user;
    conn_tls *done = NULL;
    double deadline = now_s() + 10; /* a hang guard */
    while (conn_tls_pool_collect(pool, &done, &user, &status) != 1) {
        CHECK(now_s() < deadline);
        usleep(100);
    }
    CHECK(done == c && status == CONN_TLS_ERR);
    conn_tls_free(done);
    close(sv[0]);
    close(sv[1]);
}

/* Reads exactly len bytes, waiting on the fd for at most timeout_s. */
static inline int read_exact(conn_tls *c, int fd, void *buf, size_t len, double timeout_s) {
    size_t got = 0;
    double deadline = now_s() + timeout_s;
    while (got < len) {
        ssize_t n = conn_tls_read(c, (char *)buf + got, len - got);
        if (n > 0) {
            got += (size_t)n;
        } else if (n == CONN_TLS_WANT_READ || n == CONN_TLS_WANT_WRITE) {
            if (now_s() > deadline) return -1;
            struct pollfd p = {.fd = fd, .events = n == CONN_TLS_WANT_READ ? POLLIN : POLLOUT};
            poll(&p, 1, 50);
        } else {
            return (int)n;
        }
    }
    return 0;
}

/* Writes all of buf, flushing until it is on the socket. */
static inline int write_all(conn_tls *c, int fd, const void *buf, size_t len, double timeout_s) {
    size_t done = 0;
    double deadline = now_s() + timeout_s;
    while (done < len || conn_tls_pending_write(c) > 0) {
        ssize_t n = done < len ? conn_tls_write(c, (const char *)buf + done, len - done)
                               : conn_tls_flush(c);
        if (n > 0 && done < len) {
            done += (size_t)n;
            continue;
        }
        if (n == CONN_TLS_OK && done == len) continue;
        if (n == CONN_TLS_ERR || n == CONN_TLS_EINVAL) return (int)n;
        if (now_s() > deadline) return -1;
        struct pollfd p = {.fd = fd, .events = n == CONN_TLS_WANT_READ ? POLLIN : POLLOUT};
        poll(&p, 1, 50);
    }
    return 0;
}

/* Declared here rather than by including OpenSSL's headers: the tests include only
 * conntls.h, and check the error-queue promise through libcrypto directly. */
unsigned long ERR_peek_error(void);
#define CHECK_QUEUE_EMPTY() CHECK_EQ(ERR_peek_error(), 0)

#endif
