/* Socket faults, injected by c_tests/fault_shim.c (LD_PRELOAD) on a seeded schedule:
 *
 *   faults transient|fatal SEED [MIB]
 *
 * A conntls server and client over loopback TCP push MIB (default 4) each way at once, in
 * mixed writev batches drawn from the seed, and check every byte.
 *  - transient (EINTR, EAGAIN, short counts): everything arrives, intact, no error;
 *  - fatal (also ECONNRESET / EPIPE from a seeded call on, or a TCP option that cannot be
 *    set): a client that cannot be made is NULL with the reason for the thread; otherwise
 *    each connection ends in CONN_TLS_ERR with a message saying what the socket did, and
 *    stays there (every later call: the same ERR and message); nothing arrives corrupted;
 *    nothing hangs (a deadline) and, under valgrind, nothing leaks. */
#include "testutil.h"

enum { FAULTS_TRANSIENT = 1, FAULTS_FATAL = 2 };
/* From the preloaded shim. */
void faults_arm(unsigned seed, int how) __attribute__((weak));
long faults_injected(void) __attribute__((weak));

static unsigned char pattern(size_t i, int dir) {
    return (unsigned char)(i * 167 + (size_t)dir * 89 + (i >> 13));
}

static uint64_t rng;
static uint64_t next(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return rng >> 33;
}

typedef struct {
    conn_tls *c;
    int fd, dir; /* dir: which stream this side sends */
    size_t sent, received, total;
    int want_out, want_in; /* poll interest */
    int dead;
    char error[512];
} side;

static unsigned char *source[2];

/* One writev of a batch of pieces drawn from the seed, continuing the stream. */
static void send_some(side *s) {
    if (s->dead || (s->sent >= s->total && conn_tls_pending_write(s->c) == 0)) return;
    ssize_t n;
    if (s->sent < s->total) {
        struct iovec iov[32];
        int count = 1 + (int)(next() % 32);
        size_t at = s->sent;
        int used = 0;
        for (int i = 0; i < count && at < s->total; i++) {
            static const size_t sizes[] = {1, 7, 100, 512, 4096, 16384, 65536};
            size_t len = sizes[next() % 7] + next() % 64;
            if (len > s->total - at) len = s->total - at;
            iov[used++] = (struct iovec){source[s->dir] + at, len};
            at += len;
        }
        n = conn_tls_writev(s->c, iov, used);
        if (n > 0) s->sent += (size_t)n;
    } else {
        n = conn_tls_flush(s->c);
    }
    s->want_out = conn_tls_pending_write(s->c) > 0 || n == CONN_TLS_WANT_WRITE;
    if (n == CONN_TLS_WANT_READ) s->want_in = 1;
    if (n == CONN_TLS_ERR) {
        s->dead = 1;
        snprintf(s->error, sizeof s->error, "%s", conn_tls_last_error(s->c));
    }
    CHECK(n != CONN_TLS_EINVAL);
}

/* Reads what there is, checking every byte against the peer's stream. */
static void receive_some(side *s, size_t expected_total) {
    if (s->dead) return;
    char buf[8192];
    for (;;) {
        ssize_t n = conn_tls_read(s->c, buf, sizeof buf);
        if (n > 0) {
            for (ssize_t i = 0; i < n; i++) CHECK((unsigned char)buf[i] == pattern(s->received + (size_t)i, !s->dir));
            s->received += (size_t)n;
            CHECK(s->received <= expected_total);
            continue;
        }
        if (n == CONN_TLS_ERR) {
            s->dead = 1;
            snprintf(s->error, sizeof s->error, "%s", conn_tls_last_error(s->c));
        } else if (n == 0) {
            s->dead = 1; /* the peer closed: only after a fatal fault */
            snprintf(s->error, sizeof s->error, "peer closed");
        }
        CHECK(n != CONN_TLS_EINVAL);
        if (n == CONN_TLS_WANT_WRITE) s->want_out = 1;
        break;
    }
}

/* After ERR every call fails the same way. */
static void check_sticky(side *s) {
    if (strcmp(s->error, "peer closed") == 0) return;
    char buf[16];
    CHECK(s->error[0] != 0);
    CHECK_EQ(conn_tls_read(s->c, buf, sizeof buf), CONN_TLS_ERR);
    CHECK_EQ(conn_tls_write(s->c, "x", 1), CONN_TLS_ERR);
    CHECK_EQ(conn_tls_flush(s->c), CONN_TLS_ERR);
    CHECK_EQ(conn_tls_handshake(s->c), CONN_TLS_ERR);
    CHECK(strcmp(conn_tls_last_error(s->c), s->error) == 0);
}

int main(int argc, char **argv) {
    if (argc < 3 || !faults_arm) {
        fprintf(stderr, "usage: LD_PRELOAD=fault_shim.so faults transient|fatal SEED [MIB]\n");
        return 2;
    }
    int how = strcmp(argv[1], "fatal") == 0 ? FAULTS_FATAL : FAULTS_TRANSIENT;
    unsigned seed = (unsigned)atoi(argv[2]);
    size_t total = (size_t)((argc > 3 ? atof(argv[3]) : 4) * (1 << 20));
    rng = seed;
    for (int d = 0; d < 2; d++) {
        source[d] = malloc(total);
        CHECK(source[d]);
        for (size_t i = 0; i < total; i++) source[d][i] = pattern(i, d);
    }
    conn_tls_ctx *srv = server_ctx(), *cli = client_ctx();
    int cfd, sfd;
    tcp_pair(&cfd, &sfd);
    faults_arm(seed, how);
    side s = {.c = conn_tls_new_server(srv, sfd), .fd = sfd, .dir = 0, .total = total, .want_in = 1};
    side c = {.c = conn_tls_new_client(cli, cfd, "localhost"), .fd = cfd, .dir = 1, .total = total, .want_in = 1};
    CHECK(s.c);
    if (!c.c) {
        /* A TCP option the client defaults need could not be set. */
        CHECK(how == FAULTS_FATAL);
        CHECK_EQ(conn_tls_thread_last_status(), CONN_TLS_ERR);
        CHECK_CONTAINS(conn_tls_thread_last_error(), "cannot set");
        printf("faults %s seed %u: client refused at creation: %s\n", argv[1], seed, conn_tls_thread_last_error());
    } else {
        double deadline = now_s() + 60;
        int hs = CONN_TLS_WANT_READ, hc = CONN_TLS_WANT_READ;
        while ((hs != CONN_TLS_OK || hc != CONN_TLS_OK) && hs != CONN_TLS_ERR && hc != CONN_TLS_ERR) {
            CHECK(now_s() < deadline);
            if (hc != CONN_TLS_OK) hc = conn_tls_handshake(c.c);
            if (hs != CONN_TLS_OK) hs = conn_tls_handshake(s.c);
            struct pollfd p[2] = {{.fd = cfd, .events = hc == CONN_TLS_WANT_WRITE ? POLLOUT : POLLIN},
                                  {.fd = sfd, .events = hs == CONN_TLS_WANT_WRITE ? POLLOUT : POLLIN}};
            poll(p, 2, 10);
        }
        if (hs == CONN_TLS_ERR || hc == CONN_TLS_ERR) {
            CHECK(how == FAULTS_FATAL);
            if (hs == CONN_TLS_ERR) s.dead = 1, snprintf(s.error, sizeof s.error, "%s", conn_tls_last_error(s.c));
            if (hc == CONN_TLS_ERR) c.dead = 1, snprintf(c.error, sizeof c.error, "%s", conn_tls_last_error(c.c));
        }
        while (!(s.dead && c.dead)) {
            CHECK(now_s() < deadline); /* no hang */
            int done = s.sent == total && c.sent == total && s.received == total && c.received == total &&
                       conn_tls_pending_write(s.c) == 0 && conn_tls_pending_write(c.c) == 0;
            if (done) break;
            /* One side dead: the other cannot finish either; after a fatal fault its own
             * socket fails too, which is what it must report. */
            send_some(&s);
            send_some(&c);
            receive_some(&s, total);
            receive_some(&c, total);
            struct pollfd p[2] = {{.fd = sfd, .events = (short)(POLLIN | (s.want_out ? POLLOUT : 0))},
                                  {.fd = cfd, .events = (short)(POLLIN | (c.want_out ? POLLOUT : 0))}};
            poll(p, 2, 5);
        }
        if (how == FAULTS_TRANSIENT) {
            CHECK(!s.dead && !c.dead);
            CHECK(s.received == total && c.received == total);
        } else {
            CHECK(s.dead || c.dead || (s.received == total && c.received == total));
            for (side *x = &s; x; x = x == &s ? &c : NULL) {
                if (!x->dead) continue;
                check_sticky(x);
                if (strcmp(x->error, "peer closed") != 0)
                    CHECK(strstr(x->error, "reset") || strstr(x->error, "broken pipe") || strstr(x->error, "socket error") ||
                          strstr(x->error, "peer closed"));
            }
        }
        printf("faults %s seed %u: %zu / %zu bytes each way, %ld faults injected; server: %s; client: %s\n", argv[1], seed,
               s.received, c.received, faults_injected(), s.dead ? s.error : "ok", c.dead ? c.error : "ok");
    }
    CHECK_QUEUE_EMPTY();
    conn_tls_free(s.c);
    conn_tls_free(c.c);
    close(sfd);
    close(cfd);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
    free(source[0]);
    free(source[1]);
    return 0;
}
