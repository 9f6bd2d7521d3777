/* Shared by the libFuzzer harnesses in fuzz/: contract checks that abort (a finding for
 * libFuzzer), certificates, socket pairs. The harnesses call only the C API. */
#ifndef CONNTLS_FUZZ_H
#define CONNTLS_FUZZ_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conntls.h"

unsigned long ERR_peek_error(void);

/* A broken promise is a crash, with what was broken. */
#define EXPECT(cond)                                                                         \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

/* Every call leaves the thread's OpenSSL error queue empty. */
#define EXPECT_QUEUE_EMPTY() EXPECT(ERR_peek_error() == 0)

static inline int is_status(long long r) {
    return r == CONN_TLS_OK || r == CONN_TLS_ERR || r == CONN_TLS_WANT_READ || r == CONN_TLS_WANT_WRITE ||
           r == CONN_TLS_EINVAL;
}

/* An err buffer of errlen bytes followed by a canary: the message is NUL-terminated
 * inside errlen and nothing is written past it. */
typedef struct {
    char bytes[320];
    size_t len;
} errbuf;

static inline void errbuf_init(errbuf *e, size_t len) {
    e->len = len;
    memset(e->bytes, 0x5a, sizeof e->bytes);
}

static inline void errbuf_check(const errbuf *e) {
    for (size_t i = e->len; i < sizeof e->bytes; i++) EXPECT(e->bytes[i] == 0x5a);
    if (e->len > 0 && memchr(e->bytes, 0, e->len) == NULL) {
        /* Untouched (the call succeeded) is fine; a message must end inside the buffer. */
        for (size_t i = 0; i < e->len; i++) EXPECT(e->bytes[i] == 0x5a);
    }
}

static inline const char *cert_path(const char *name) {
    static char bufs[8][512];
    static int next;
    const char *dir = getenv("CONNTLS_CERTS");
    if (!dir) {
        fprintf(stderr, "set CONNTLS_CERTS to a directory made by scripts/make-certs.sh\n");
        exit(2);
    }
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static inline conn_tls_ctx *ctx_of(const char *const *options) {
    conn_tls_config *cfg = conn_tls_config_new();
    for (const char *const *o = options; *o; o += 2) EXPECT(conn_tls_config_set(cfg, o[0], o[1], NULL, 0) == CONN_TLS_OK);
    char err[256] = "";
    conn_tls_ctx *ctx = conn_tls_ctx_new(cfg, err, sizeof err);
    if (!ctx) fprintf(stderr, "conn_tls_ctx_new: %s\n", err);
    EXPECT(ctx);
    conn_tls_config_free(cfg);
    return ctx;
}

static inline void nonblocking_pair(int sv[2]) {
    EXPECT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
}

/* Steps both handshakes in this thread until done; 0 when both finished. */
static inline int handshake_pair(conn_tls *a, conn_tls *b) {
    int ra = CONN_TLS_WANT_READ, rb = CONN_TLS_WANT_READ;
    for (int i = 0; i < 200 && (ra != CONN_TLS_OK || rb != CONN_TLS_OK); i++) {
        if (ra != CONN_TLS_OK) ra = conn_tls_handshake(a);
        if (rb != CONN_TLS_OK) rb = conn_tls_handshake(b);
        if (ra == CONN_TLS_ERR || rb == CONN_TLS_ERR) return -1;
    }
    return ra == CONN_TLS_OK && rb == CONN_TLS_OK ? 0 : -1;
}

#endif
