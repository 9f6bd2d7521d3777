/* OpenSSL's write-retry rule under an adversarial caller (valkey #1135, #1737, #4307).
 *
 *   writev_stress adversarial   conntls writer on a 256 KiB stack, 4 KiB SO_SNDBUF, after
 *                               each block: a shorter first iov, 1 byte, an empty call, one
 *                               8 MiB iov, or a random mix of 1..64 iovs of 1 B..256 KiB;
 *                               buffers poisoned after every call. The reader verifies
 *                               every byte of a seeded stream and sends TLS 1.3
 *                               KeyUpdate(update_requested) while writes are pending.
 *   writev_stress naive         the same caller pattern on plain SSL_write (Valkey's
 *                               PARTIAL_WRITE | ACCEPT_MOVING_WRITE_BUFFER): it must fail
 *                               with "bad length", so the adversarial test can catch it.
 *   writev_stress fifty         50 connections, 32 KiB values sent as header + value +
 *                               trailer iovecs with partial writes, all verified.
 *
 * The reader is plain OpenSSL on a blocking socket: an independent peer, not conntls. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "testutil.h"

#define SEED 0x5eedc0ffee123457ULL
#define BIG (8u << 20)

/* The seeded stream, 8 bytes at a time (little-endian, as stream_byte reads it). */
static uint64_t stream_word(uint64_t w) {
    uint64_t x = w * 0x9E3779B97F4A7C15ULL ^ SEED;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 29;
    return x;
}

static uint8_t stream_byte(uint64_t i) { return (uint8_t)(stream_word(i >> 3) >> ((i & 7) * 8)); }

static void fill_stream(uint8_t *dst, uint64_t offset, size_t len) {
    size_t i = 0;
    for (; i < len && ((offset + i) & 7); i++) dst[i] = stream_byte(offset + i);
    for (; i + 8 <= len; i += 8) {
        uint64_t x = stream_word((offset + i) >> 3);
        memcpy(dst + i, &x, 8);
    }
    for (; i < len; i++) dst[i] = stream_byte(offset + i);
}

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void) { /* xorshift64: the writer's choices are seeded too */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A size from 1 B to max, spread evenly over orders of magnitude. */
static size_t rnd_size(size_t max) {
    int bits = 1 + (int)(rnd() % 18); /* up to 256 KiB */
    size_t s = 1 + (size_t)(rnd() % ((size_t)1 << bits));
    return s > max ? max : s;
}

/* ---- the reader: plain OpenSSL, verifying the stream ---- */

typedef struct {
    int fd;
    uint64_t expect_total; /* 0: read until close_notify */
    int key_updates;       /* sent by the reader */
    int slow;
    uint64_t got;
    int failed;
    char why[256];
} reader_args;

static SSL_CTX *reader_ctx(void) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    CHECK(SSL_CTX_load_verify_locations(ctx, cert("ca.crt"), NULL) == 1);
    CHECK(SSL_CTX_use_certificate_file(ctx, cert("client.crt"), SSL_FILETYPE_PEM) == 1);
    CHECK(SSL_CTX_use_PrivateKey_file(ctx, cert("client.key"), SSL_FILETYPE_PEM) == 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

static void *reader(void *p) {
    reader_args *a = p;
    SSL_CTX *ctx = reader_ctx();
    SSL *ssl = SSL_new(ctx);
    int flags = fcntl(a->fd, F_GETFL);
    fcntl(a->fd, F_SETFL, flags & ~O_NONBLOCK);
    SSL_set_fd(ssl, a->fd);
    X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), "localhost", 0);
    if (SSL_connect(ssl) != 1) {
        snprintf(a->why, sizeof a->why, "reader handshake failed");
        a->failed = 1;
        goto out;
    }
    static __thread uint8_t buf[16384];
    uint64_t next_update = 1 << 20;
    double deadline = now_s() + 120;
    for (;;) {
        int want = 1 + (int)(rnd_size(sizeof buf) % sizeof buf);
        int n = SSL_read(ssl, buf, want);
        if (n <= 0) {
            int e = SSL_get_error(ssl, n);
            if (e != SSL_ERROR_ZERO_RETURN) {
                char err[160];
                ERR_error_string_n(ERR_get_error(), err, sizeof err);
                snprintf(a->why, sizeof a->why, "reader SSL_read error %d at %llu: %s", e,
                         (unsigned long long)a->got, err);
                a->failed = 1;
            }
            break;
        }
        static __thread uint8_t expected[16384];
        fill_stream(expected, a->got, (size_t)n);
        if (memcmp(buf, expected, (size_t)n) != 0) {
            int i = 0;
            while (buf[i] == expected[i]) i++;
            snprintf(a->why, sizeof a->why, "byte %llu differs", (unsigned long long)(a->got + i));
            a->failed = 1;
            goto out;
        }
        a->got += n;
        if (a->slow && a->got < (24u << 20)) usleep(20);
        if (a->key_updates >= 0 && a->got >= next_update) {
            /* Ask the writer to update its keys while its socket is full. */
            CHECK(SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) == 1);
            CHECK(SSL_do_handshake(ssl) == 1);
            a->key_updates++;
            next_update += 3 << 20;
        }
        if (a->expect_total && a->got >= a->expect_total) break;
        if (now_s() > deadline) {
            snprintf(a->why, sizeof a->why, "reader timed out at %llu", (unsigned long long)a->got);
            a->failed = 1;
            break;
        }
    }
out:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return NULL;
}

/* A 4 KiB send buffer forces partial writes; TCP_NODELAY as servers set it (with Nagle,
 * such small buffers stall on delayed ACKs instead). */
static void small_buffers(int writer_fd) {
    int small = 4096, one = 1;
    CHECK(setsockopt(writer_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    CHECK(setsockopt(writer_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
}

/* ---- adversarial: conntls writer ---- */

enum { MIX, SHORTER_FIRST, ONE_BYTE, EMPTY, BIG_ONE, KINDS };

typedef struct {
    int fd;
    conn_tls *c;
    uint64_t target;
    uint64_t committed;
    long calls, wants, errors, by_kind[KINDS], key_update_reads, max_pending;
    char why[256];
} writer_args;

static void *adversarial_writer(void *p) {
    writer_args *w = p;
    uint8_t *scratch = malloc(BIG + 64 * 262144);
    struct iovec iov[64];
    int iovcnt = 0, last_want = 0;
    double deadline = now_s() + 90;
    while (conn_tls_handshake(w->c) != CONN_TLS_OK) {
        struct pollfd pfd = {.fd = w->fd, .events = POLLIN | POLLOUT};
        poll(&pfd, 1, 100);
        if (now_s() > deadline) {
            snprintf(w->why, sizeof w->why, "handshake: %s", conn_tls_last_error(w->c));
            w->errors++;
            return NULL;
        }
    }
    while (w->committed < w->target && now_s() < deadline) {
        int kind = last_want ? (int)(rnd() % KINDS) : (rnd() % 40 == 0 ? BIG_ONE : MIX);
        size_t total = 0;
        switch (kind) {
        case MIX:
            iovcnt = 1 + (int)(rnd() % 64);
            for (int i = 0; i < iovcnt; i++) {
                size_t len = rnd_size(262144);
                if (total + len > BIG) len = 1;
                iov[i].iov_base = scratch + total;
                iov[i].iov_len = len;
                total += len;
            }
            break;
        case SHORTER_FIRST: /* valkey #1135: the retry's first iov is shorter than before */
            if (iovcnt == 0) iovcnt = 1, iov[0].iov_len = 2;
            iov[0].iov_len = iov[0].iov_len > 1 ? iov[0].iov_len / 2 : 1;
            for (int i = 0; i < iovcnt; i++) {
                iov[i].iov_base = scratch + total;
                total += iov[i].iov_len;
            }
            break;
        case ONE_BYTE: /* Valkey's replica "\n" */
            iovcnt = 1;
            iov[0].iov_base = scratch;
            iov[0].iov_len = total = 1;
            break;
        case EMPTY:
            iovcnt = 0;
            break;
        case BIG_ONE: /* valkey #4307: one multi-MB iov, on a 256 KiB stack */
            iovcnt = 1;
            iov[0].iov_base = scratch;
            iov[0].iov_len = total = BIG;
            break;
        }
        fill_stream(scratch, w->committed, total);
        ssize_t n = conn_tls_writev(w->c, iov, iovcnt);
        memset(scratch, 0xAA, total); /* the library must not look at these again */
        w->calls++;
        w->by_kind[kind]++;
        if ((long)conn_tls_pending_write(w->c) > w->max_pending) w->max_pending = (long)conn_tls_pending_write(w->c);
        if (n > 0) {
            w->committed += (uint64_t)n;
            last_want = 0;
        } else if (n == 0) {
            CHECK(total == 0);
        } else if (n == CONN_TLS_WANT_WRITE || n == CONN_TLS_WANT_READ) {
            w->wants++;
            last_want = 1;
            if (rnd() % 2) { /* sometimes wait for the socket, sometimes hammer */
                struct pollfd pfd = {.fd = w->fd, .events = POLLOUT};
                poll(&pfd, 1, 5);
                if (rnd() % 2) conn_tls_flush(w->c);
            }
        } else {
            snprintf(w->why, sizeof w->why, "writev returned %zd: %s", n, conn_tls_last_error(w->c));
            w->errors++;
            break;
        }
        if (rnd() % 8 == 0) { /* take in the reader's KeyUpdates */
            char b[16];
            ssize_t r = conn_tls_read(w->c, b, sizeof b);
            if (r == CONN_TLS_WANT_READ) w->key_update_reads++;
            else {
                snprintf(w->why, sizeof w->why, "read returned %zd: %s", r, conn_tls_last_error(w->c));
                w->errors++;
                break;
            }
        }
    }
    /* Deliver everything committed, then close_notify. */
    while (!w->errors && now_s() < deadline) {
        int r = conn_tls_shutdown(w->c);
        if (r == CONN_TLS_OK) break;
        if (r != CONN_TLS_WANT_WRITE) {
            snprintf(w->why, sizeof w->why, "shutdown: %s", conn_tls_last_error(w->c));
            w->errors++;
        }
        struct pollfd pfd = {.fd = w->fd, .events = POLLOUT};
        poll(&pfd, 1, 50);
    }
    free(scratch);
    return NULL;
}

static int adversarial(void) {
    conn_tls_ctx *ctx = server_ctx();
    int cfd, sfd;
    tcp_pair(&cfd, &sfd);
    small_buffers(sfd);
    writer_args w = {.fd = sfd, .c = conn_tls_new_server(ctx, sfd), .target = 64u << 20};
    reader_args r = {.fd = cfd, .slow = 1};
    CHECK(w.c);
    pthread_t wt, rt;
    pthread_attr_t small_stack;
    pthread_attr_init(&small_stack);
    CHECK(pthread_attr_setstacksize(&small_stack, 256 * 1024) == 0);
    CHECK(pthread_create(&wt, &small_stack, adversarial_writer, &w) == 0);
    CHECK(pthread_create(&rt, NULL, reader, &r) == 0);
    pthread_join(wt, NULL);
    pthread_join(rt, NULL);
    printf("adversarial: %ld calls, %ld blocked (WANT_*), committed %llu, reader verified %llu, "
           "ERR %ld, key updates %d, reads %ld, max pending %ld; calls by kind: mix %ld shorter %ld "
           "one-byte %ld empty %ld 8MiB %ld\n",
           w.calls, w.wants, (unsigned long long)w.committed, (unsigned long long)r.got, w.errors,
           r.key_updates, w.key_update_reads, w.max_pending, w.by_kind[MIX], w.by_kind[SHORTER_FIRST],
           w.by_kind[ONE_BYTE], w.by_kind[EMPTY], w.by_kind[BIG_ONE]);
    if (w.errors) fprintf(stderr, "writer: %s\n", w.why);
    if (r.failed) fprintf(stderr, "reader: %s\n", r.why);
    CHECK_EQ(w.errors, 0);
    CHECK(!r.failed);
    CHECK(w.committed >= w.target);
    CHECK_EQ(r.got, w.committed);
    /* The test did what it says: blocks happened and every adversarial kind followed one. */
    CHECK(w.wants > 100);
    for (int k = 0; k < KINDS; k++) CHECK(w.by_kind[k] > 0);
    CHECK(r.key_updates >= 10);
    /* Bounded memory: committed-but-unsent ciphertext never grew with the iov. */
    CHECK(w.max_pending <= 2 * (16384 + 256));
    conn_tls_free(w.c);
    close(sfd);
    close(cfd);
    conn_tls_ctx_free(ctx);
    return 0;
}

/* ---- naive: the same caller on plain SSL_write must hit "bad length" ---- */

static int naive(void) {
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    CHECK(SSL_CTX_use_certificate_file(sctx, cert("server.crt"), SSL_FILETYPE_PEM) == 1);
    CHECK(SSL_CTX_use_PrivateKey_file(sctx, cert("server.key"), SSL_FILETYPE_PEM) == 1);
    SSL_CTX_set_mode(sctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    int cfd, sfd;
    tcp_pair(&cfd, &sfd);
    small_buffers(sfd);
    reader_args r = {.fd = cfd, .slow = 1, .key_updates = -1};
    pthread_t rt;
    CHECK(pthread_create(&rt, NULL, reader, &r) == 0);
    SSL *ssl = SSL_new(sctx);
    SSL_set_fd(ssl, sfd);
    double deadline = now_s() + 20;
    int ret;
    while ((ret = SSL_accept(ssl)) != 1) {
        CHECK(SSL_get_error(ssl, ret) == SSL_ERROR_WANT_READ || SSL_get_error(ssl, ret) == SSL_ERROR_WANT_WRITE);
        struct pollfd pfd = {.fd = sfd, .events = POLLIN | POLLOUT};
        poll(&pfd, 1, 10);
        CHECK(now_s() < deadline);
    }
    /* Valkey's pre-#1737 caller: write what is queued; after a block, the queue's first
     * reply is shorter (or one byte), and that is what the retry passes. */
    uint8_t *buf = malloc(65536);
    uint64_t offset = 0;
    size_t len = 65536, last_len = 0;
    int blocked = 0, bad_length = 0;
    while (now_s() < deadline && !bad_length) {
        if (blocked) len = (rnd() % 2) ? last_len / 2 : 1;
        fill_stream(buf, offset, len);
        int n = SSL_write(ssl, buf, (int)len);
        if (n > 0) {
            offset += (uint64_t)n;
            blocked = 0;
            len = 65536;
            continue;
        }
        int e = SSL_get_error(ssl, n);
        if (e == SSL_ERROR_WANT_WRITE) {
            blocked = 1;
            last_len = len;
            struct pollfd pfd = {.fd = sfd, .events = POLLOUT};
            poll(&pfd, 1, 5);
            continue;
        }
        unsigned long code = ERR_peek_error();
        bad_length = ERR_GET_REASON(code) == SSL_R_BAD_LENGTH;
        char text[160];
        ERR_error_string_n(code, text, sizeof text);
        printf("naive SSL_write failed after %llu bytes: %s\n", (unsigned long long)offset, text);
        break;
    }
    CHECK(bad_length);
    shutdown(sfd, SHUT_RDWR);
    pthread_join(rt, NULL);
    SSL_free(ssl);
    SSL_CTX_free(sctx);
    free(buf);
    close(sfd);
    close(cfd);
    return 0;
}

/* ---- fifty connections, Valkey-shaped replies of 32 KiB values ---- */

#define CONNS 50
#define REPLIES 60
#define VALUE (32 * 1024)

static int fifty(void) {
    conn_tls_ctx *sctx = server_ctx(), *cctx = client_ctx();
    int cfd[CONNS], sfd[CONNS];
    conn_tls *s[CONNS], *c[CONNS];
    for (int i = 0; i < CONNS; i++) {
        tcp_pair(&cfd[i], &sfd[i]);
        small_buffers(sfd[i]);
        s[i] = conn_tls_new_server(sctx, sfd[i]);
        c[i] = conn_tls_new_client(cctx, cfd[i], "localhost");
        CHECK(s[i] && c[i]);
        CHECK_EQ(handshake_both(s[i], c[i]), CONN_TLS_OK);
    }
    /* Each reply: "$32768\r\n" + value + "\r\n", value bytes from the connection's stream. */
    static uint8_t value[VALUE];
    uint64_t sent_replies[CONNS] = {0}, reply_off[CONNS] = {0}; /* progress in current reply */
    uint64_t read_bytes[CONNS] = {0};
    const size_t reply_len = 8 + VALUE + 2;
    const uint64_t total = (uint64_t)REPLIES * reply_len;
    double deadline = now_s() + 60;
    long partial = 0;
    int done = 0;
    static uint8_t rbuf[65536];
    while (done < CONNS && now_s() < deadline) {
        done = 0;
        for (int i = 0; i < CONNS; i++) {
            /* Server side: queue of replies, written with writev and partial writes. */
            if (sent_replies[i] < REPLIES) {
                fill_stream(value, sent_replies[i] * VALUE, VALUE);
                struct iovec iov[3] = {{"$32768\r\n", 8}, {value, VALUE}, {"\r\n", 2}};
                /* Skip what an earlier partial write committed. */
                uint64_t skip = reply_off[i];
                int first = 0;
                while (skip >= iov[first].iov_len) skip -= iov[first++].iov_len;
                iov[first].iov_base = (char *)iov[first].iov_base + skip;
                iov[first].iov_len -= skip;
                ssize_t n = conn_tls_writev(s[i], iov + first, 3 - first);
                if (n > 0) {
                    reply_off[i] += (uint64_t)n;
                    if (reply_off[i] == reply_len) sent_replies[i]++, reply_off[i] = 0;
                    else partial++;
                } else if (n != CONN_TLS_WANT_WRITE) {
                    fprintf(stderr, "conn %d writev %zd: %s\n", i, n, conn_tls_last_error(s[i]));
                    return 1;
                }
            } else if (conn_tls_pending_write(s[i]) > 0) {
                CHECK(conn_tls_flush(s[i]) != CONN_TLS_ERR);
            }
            /* Client side: read and check every reply. */
            ssize_t n = conn_tls_read(c[i], rbuf, sizeof rbuf);
            if (n > 0) {
                for (ssize_t k = 0; k < n; k++) {
                    uint64_t pos = read_bytes[i] + (uint64_t)k, r = pos / reply_len, o = pos % reply_len;
                    uint8_t want = o < 8 ? (uint8_t)"$32768\r\n"[o]
                                 : o < 8 + VALUE ? stream_byte(r * VALUE + (o - 8))
                                 : (uint8_t)"\r\n"[o - 8 - VALUE];
                    if (rbuf[k] != want) {
                        fprintf(stderr, "conn %d: byte %llu differs\n", i, (unsigned long long)pos);
                        return 1;
                    }
                }
                read_bytes[i] += (uint64_t)n;
            } else if (n != CONN_TLS_WANT_READ) {
                fprintf(stderr, "conn %d read %zd: %s\n", i, n, conn_tls_last_error(c[i]));
                return 1;
            }
            done += read_bytes[i] == total;
        }
    }
    printf("fifty: %d connections, %d replies of %d bytes each, %ld partial writes\n", CONNS, REPLIES, VALUE, partial);
    CHECK_EQ(done, CONNS);
    CHECK(partial > 0);
    for (int i = 0; i < CONNS; i++) {
        conn_tls_free(s[i]);
        conn_tls_free(c[i]);
        close(sfd[i]);
        close(cfd[i]);
    }
    conn_tls_ctx_free(sctx);
    conn_tls_ctx_free(cctx);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN); /* for the naive OpenSSL writer only: conntls never raises it */
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "adversarial") == 0) return adversarial();
    if (strcmp(mode, "naive") == 0) return naive();
    if (strcmp(mode, "fifty") == 0) return fifty();
    fprintf(stderr, "usage: writev_stress adversarial|naive|fifty\n");
    return 2;
}
