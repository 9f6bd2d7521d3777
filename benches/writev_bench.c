/* Write-path benchmark: four writers, one run, same loopback socket setup, same cipher
 * (TLS 1.3 AES-128-GCM), reported as ratios.
 *
 *   ceiling  raw SSL_write loop of 16 KiB records from one buffer (no gathering at all)
 *   valkey   Valkey's connTLSWritev, statement for statement: copy the batch into one
 *            buffer when it is at most 64 KiB, else one SSL_write per iov
 *   per-iov  one SSL_write per iov
 *   conntls  conn_tls_writev
 *
 * Each writer sends BATCHES of the mix's iovs to a plain OpenSSL reader thread; partial
 * writes and WANT_WRITE are handled as a correct caller does, and valkey and conntls get
 * the very same caller (write_batch), so only the writev behind it differs. Syscalls per MiB and wire
 * bytes per payload byte come from the writer thread's /proc/thread-self/io counters.
 * Also: heap per idle server connection, conntls vs bare OpenSSL with
 * SSL_MODE_RELEASE_BUFFERS.
 *
 * usage: writev_bench [seconds per writer per round]   (needs CONNTLS_CERTS; 5 rounds)
 *        CONNTLS_BENCH_SNDBUF=4096 sets the writer's send buffer (the #1135 trigger)
 *        writev_bench count WRITER MIX MIB   one run of WRITER (0 ceiling, 1 valkey,
 *            2 per-iov, 3 conntls) on MIXES[MIX], for callgrind --toggle-collect=run_writer
 *            (benches/writev_instructions.sh) */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../c_tests/testutil.h"

#define SUITE "TLS_AES_128_GCM_SHA256"
#define VALKEY_MAX (64 * 1024) /* NET_MAX_WRITES_PER_EVENT */

/* The writer's SO_SNDBUF; 0 leaves the kernel's default (CONNTLS_BENCH_SNDBUF). */
static int sndbuf;

typedef struct {
    const char *name;
    size_t size;
    int count;
} mix;

static const mix MIXES[] = {
    {"64 B x 256", 64, 256},   {"100 B x 1000", 100, 1000}, {"512 B x 64", 512, 64},
    {"4 KiB x 16", 4096, 16},  {"16 KiB x 8", 16384, 8},    {"64 KiB x 4", 65536, 4},
    {"1 MiB x 1", 1 << 20, 1},
};

enum { CEILING, VALKEY, PER_IOV, CONNTLS, WRITERS };

static SSL_CTX *server_ossl_ctx(void) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    CHECK(SSL_CTX_use_certificate_file(ctx, cert("server.crt"), SSL_FILETYPE_PEM) == 1);
    CHECK(SSL_CTX_use_PrivateKey_file(ctx, cert("server.key"), SSL_FILETYPE_PEM) == 1);
    CHECK(SSL_CTX_set_ciphersuites(ctx, SUITE) == 1);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    /* Valkey's modes. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

static SSL_CTX *client_ossl_ctx(void) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    CHECK(SSL_CTX_load_verify_locations(ctx, cert("ca.crt"), NULL) == 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

static conn_tls_ctx *server_conntls_ctx(void) {
    return ctx_from(config_of("cert-file", cert("server.crt"), "key-file", cert("server.key"), "auth-clients", "no",
                              "protocols", "TLSv1.3", "ciphersuites", SUITE, NULL));
}

/* ---- the reader: plain OpenSSL, counting bytes ---- */

typedef struct {
    int fd;
    uint64_t expect;
    SSL_CTX *ctx;
} reader_args;

static void *reader(void *p) {
    reader_args *a = p;
    SSL *ssl = SSL_new(a->ctx);
    SSL_set_fd(ssl, a->fd);
    CHECK(SSL_connect(ssl) == 1);
    static __thread char buf[1 << 16];
    uint64_t got = 0;
    while (got < a->expect) {
        int n = SSL_read(ssl, buf, sizeof buf);
        CHECK(n > 0);
        got += (uint64_t)n;
    }
    SSL_free(ssl);
    return NULL;
}

/* ---- per-thread syscall and byte counters ---- */

/* conntls sends with send(2), which /proc's syscw/wchar do not count (they count write(2),
 * which OpenSSL's socket BIO uses). This definition interposes on libconntls's send for
 * this benchmark binary only, counting calls and bytes of the calling thread. */
#include <sys/syscall.h>
static __thread unsigned long long send_calls, send_bytes;
ssize_t send(int fd, const void *buf, size_t len, int flags) {
    long n = syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
    send_calls++;
    if (n > 0) send_bytes += (unsigned long long)n;
    return n;
}

typedef struct {
    unsigned long long wchar, syscw;
} io_counts;

static io_counts thread_io(void) {
    io_counts c = {0, 0};
    FILE *f = fopen("/proc/thread-self/io", "r");
    char key[32];
    unsigned long long v;
    while (f && fscanf(f, "%31[^:]: %llu\n", key, &v) == 2) {
        if (!strcmp(key, "wchar")) c.wchar = v;
        if (!strcmp(key, "syscw")) c.syscw = v;
    }
    if (f) fclose(f);
    c.wchar += send_bytes;
    c.syscw += send_calls;
    return c;
}

/* ---- the writers ---- */

static void wait_fd(int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events};
    poll(&p, 1, 100);
}

/* SSL_write obeying the retry rule: on WANT_*, the same pointer and length again. */
static int ossl_write(SSL *ssl, int fd, const void *buf, int len) {
    for (;;) {
        ERR_clear_error(); /* as Valkey's connTLSWrite does before each SSL_write */
        int n = SSL_write(ssl, buf, len);
        if (n > 0) return n;
        int e = SSL_get_error(ssl, n);
        CHECK(e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ);
        wait_fd(fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN);
    }
}

static void ossl_write_all(SSL *ssl, int fd, const char *buf, size_t len) {
    while (len > 0) {
        int n = ossl_write(ssl, fd, buf, (int)len);
        buf += n;
        len -= (size_t)n;
    }
}

static void write_each(SSL *ssl, int fd, const struct iovec *iov, int count) {
    for (int i = 0; i < count; i++) ossl_write_all(ssl, fd, iov[i].iov_base, iov[i].iov_len);
}

/* Valkey's connTLSWrite and connTLSWritev (src/tls.c, upstream unstable of 2026, with the
 * #1737 fix), statement for statement: returns bytes written, or -1 with *want set. */
typedef struct {
    SSL *ssl;
    size_t last_failed_write_data_len;
    char *buf; /* Valkey's stack VLA; here a heap buffer grown to the largest gather */
    size_t buf_size;
} valkey_conn;

static ssize_t valkey_write(valkey_conn *vc, const void *data, size_t data_len, short *want) {
    ERR_clear_error();
    if (data_len < vc->last_failed_write_data_len) { /* Valkey returns -1 and keeps the connection */
        *want = POLLOUT;
        return -1;
    }
    int ret = SSL_write(vc->ssl, data, (int)data_len);
    vc->last_failed_write_data_len = ret <= 0 ? data_len : 0;
    if (ret > 0) return ret;
    int e = SSL_get_error(vc->ssl, ret);
    CHECK(e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ);
    *want = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
    return -1;
}

static ssize_t valkey_writev(void *state, const struct iovec *iov, int iovcnt, short *want) {
    valkey_conn *vc = state;
    if (iovcnt == 1) return valkey_write(vc, iov[0].iov_base, iov[0].iov_len, want);
    size_t iov_bytes_len = 0;
    for (int i = 0; i < iovcnt; i++) {
        iov_bytes_len += iov[i].iov_len;
        if (iov_bytes_len > VALKEY_MAX) break;
    }
    if (iov_bytes_len > VALKEY_MAX && iovcnt > 0 && iov[0].iov_len >= vc->last_failed_write_data_len) {
        ssize_t tot_sent = 0;
        for (int i = 0; i < iovcnt; i++) {
            ssize_t sent = valkey_write(vc, iov[i].iov_base, iov[i].iov_len, want);
            if (sent <= 0) return tot_sent > 0 ? tot_sent : sent;
            tot_sent += sent;
            if ((size_t)sent != iov[i].iov_len) break;
        }
        return tot_sent;
    }
    if (iov_bytes_len > vc->buf_size) {
        vc->buf = realloc(vc->buf, iov_bytes_len);
        CHECK(vc->buf);
        vc->buf_size = iov_bytes_len;
    }
    size_t offset = 0;
    for (int i = 0; i < iovcnt && offset < iov_bytes_len; i++) {
        memcpy(vc->buf + offset, iov[i].iov_base, iov[i].iov_len);
        offset += iov[i].iov_len;
    }
    return valkey_write(vc, vc->buf, iov_bytes_len, want);
}

static ssize_t conntls_writev(void *state, const struct iovec *iov, int iovcnt, short *want) {
    ssize_t n = conn_tls_writev(state, iov, iovcnt);
    if (n >= 0) return n;
    CHECK(n == CONN_TLS_WANT_WRITE || n == CONN_TLS_WANT_READ);
    *want = n == CONN_TLS_WANT_WRITE ? POLLOUT : POLLIN;
    return -1;
}

typedef ssize_t writev_fn(void *state, const struct iovec *iov, int iovcnt, short *want);

/* The caller both writev-shaped writers get, as an event loop with a reply list does: pass
 * what is left, wait on WANT_*, drop what was written. */
static void write_batch(writev_fn *writev, void *state, int fd, const struct iovec *batch, int count) {
    struct iovec iov[1000];
    memcpy(iov, batch, sizeof(struct iovec) * (size_t)count);
    int first = 0;
    while (first < count) {
        short want = 0;
        ssize_t n = writev(state, iov + first, count - first, &want);
        if (n < 0) {
            wait_fd(fd, want);
            continue;
        }
        while (n > 0 && (size_t)n >= iov[first].iov_len) n -= (ssize_t)iov[first++].iov_len;
        if (n > 0) {
            iov[first].iov_base = (char *)iov[first].iov_base + n;
            iov[first].iov_len -= (size_t)n;
        }
    }
}

typedef struct {
    int writer;
    const mix *m;
    struct iovec *iov;
    int batches;
    double seconds;
    io_counts io;
} run_result;

/* Sends `batches` batches of the mix with the chosen writer; returns elapsed seconds. */
__attribute__((noinline)) void run_writer(run_result *r, int fd, SSL *ssl, conn_tls *c) {
    const mix *m = r->m;
    size_t batch_bytes = m->size * (size_t)m->count;
    static char ceiling_buf[16384];
    valkey_conn vc = {.ssl = ssl};
    io_counts before = thread_io();
    double t0 = now_s();
    for (int b = 0; b < r->batches; b++) {
        switch (r->writer) {
        case CEILING:
            for (size_t left = batch_bytes; left > 0;) {
                size_t n = left < sizeof ceiling_buf ? left : sizeof ceiling_buf;
                ossl_write_all(ssl, fd, ceiling_buf, n);
                left -= n;
            }
            break;
        case VALKEY:
            write_batch(valkey_writev, &vc, fd, r->iov, m->count);
            break;
        case PER_IOV:
            write_each(ssl, fd, r->iov, m->count);
            break;
        case CONNTLS:
            write_batch(conntls_writev, c, fd, r->iov, m->count);
            break;
        }
    }
    if (r->writer == CONNTLS)
        while (conn_tls_flush(c) == CONN_TLS_WANT_WRITE) wait_fd(fd, POLLOUT);
    free(vc.buf);
    r->io = thread_io();
    r->io.wchar -= before.wchar;
    r->io.syscw -= before.syscw;
    r->seconds = now_s() - t0;
}

/* One measurement: a fresh loopback pair, a handshake, the writer, a reader thread. */
static void measure(run_result *r, SSL_CTX *sctx, conn_tls_ctx *cctx_server, SSL_CTX *reader_ctx) {
    int cfd, sfd;
    tcp_pair(&cfd, &sfd);
    int one = 1;
    setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (sndbuf) setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    int flags = fcntl(cfd, F_GETFL);
    fcntl(cfd, F_SETFL, flags & ~O_NONBLOCK);
    uint64_t total = (uint64_t)r->m->size * (uint64_t)r->m->count * (uint64_t)r->batches;
    reader_args ra = {.fd = cfd, .expect = total, .ctx = reader_ctx};
    pthread_t rt;
    CHECK(pthread_create(&rt, NULL, reader, &ra) == 0);
    SSL *ssl = NULL;
    conn_tls *c = NULL;
    if (r->writer == CONNTLS) {
        c = conn_tls_new_server(cctx_server, sfd);
        int h;
        while ((h = conn_tls_handshake(c)) != CONN_TLS_OK) {
            CHECK(h == CONN_TLS_WANT_READ || h == CONN_TLS_WANT_WRITE);
            wait_fd(sfd, h == CONN_TLS_WANT_READ ? POLLIN : POLLOUT);
        }
    } else {
        ssl = SSL_new(sctx);
        SSL_set_fd(ssl, sfd);
        int h;
        while ((h = SSL_accept(ssl)) != 1) wait_fd(sfd, SSL_get_error(ssl, h) == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
    }
    run_writer(r, sfd, ssl, c);
    pthread_join(rt, NULL);
    SSL_free(ssl);
    conn_tls_free(c);
    close(sfd);
    close(cfd);
}

#define ROUNDS 5

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    double sorted[ROUNDS];
    memcpy(sorted, v, sizeof(double) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(double), cmp_double);
    return sorted[n / 2];
}

/* ---- idle memory ---- */

static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

#define IDLE 500

/* Heap held per idle, handshaken server connection after one small exchange. */
static double idle_bytes(int use_conntls, SSL_CTX *sctx, conn_tls_ctx *cctx_server, SSL_CTX *client) {
    static SSL *servers[IDLE];
    static conn_tls *conns[IDLE];
    static int fds[IDLE][2];
    size_t before = heap_in_use();
    for (int i = 0; i < IDLE; i++) {
        socket_pair(fds[i]);
        SSL *cl = SSL_new(client);
        SSL_set_fd(cl, fds[i][1]);
        if (use_conntls) {
            conns[i] = conn_tls_new_server(cctx_server, fds[i][0]);
        } else {
            servers[i] = SSL_new(sctx);
            SSL_set_fd(servers[i], fds[i][0]);
        }
        int cdone = 0, sdone = 0;
        while (!cdone || !sdone) {
            if (!cdone) cdone = SSL_connect(cl) == 1;
            if (!sdone) sdone = use_conntls ? conn_tls_handshake(conns[i]) == CONN_TLS_OK : SSL_accept(servers[i]) == 1;
        }
        char b[8];
        if (use_conntls)
            CHECK(conn_tls_write(conns[i], "x", 1) == 1);
        else
            CHECK(SSL_write(servers[i], "x", 1) == 1);
        while (SSL_read(cl, b, 1) != 1) {}
        SSL_free(cl);
        close(fds[i][1]);
    }
    ERR_clear_error();
    size_t after = heap_in_use();
    for (int i = 0; i < IDLE; i++) {
        if (use_conntls) conn_tls_free(conns[i]);
        else SSL_free(servers[i]);
        close(fds[i][0]);
    }
    return (double)(after - before) / IDLE;
}

/* One batch of the mix: its iovs point into the returned buffer (the caller frees it). */
static char *batch_of(const mix *m, struct iovec *iov) {
    char *data = malloc(m->size * (size_t)m->count);
    CHECK(data);
    memset(data, 'v', m->size * (size_t)m->count);
    for (int i = 0; i < m->count; i++) iov[i] = (struct iovec){data + (size_t)i * m->size, m->size};
    return data;
}

/* One writer on one mix, for instruction counting under callgrind. */
static int count_mode(int writer, int mix_index, double mib) {
    SSL_CTX *sctx = server_ossl_ctx(), *rctx = client_ossl_ctx();
    conn_tls_ctx *cctx = server_conntls_ctx();
    const mix *m = &MIXES[mix_index];
    size_t batch_bytes = m->size * (size_t)m->count;
    struct iovec iov[1000];
    char *data = batch_of(m, iov);
    int batches = (int)(mib * (1 << 20) / batch_bytes);
    run_result r = {.writer = writer, .m = m, .iov = iov, .batches = batches < 1 ? 1 : batches};
    measure(&r, sctx, cctx, rctx);
    printf("%s writer %d: %d batches, %.1f MiB, %llu write syscalls\n", m->name, writer, r.batches,
           (double)batch_bytes * r.batches / (1 << 20), r.io.syscw);
    free(data);
    conn_tls_ctx_free(cctx);
    SSL_CTX_free(sctx);
    SSL_CTX_free(rctx);
    return 0;
}

int main(int argc, char **argv) {
    sndbuf = getenv("CONNTLS_BENCH_SNDBUF") ? atoi(getenv("CONNTLS_BENCH_SNDBUF")) : 0;
    if (argc == 5 && strcmp(argv[1], "count") == 0) return count_mode(atoi(argv[2]), atoi(argv[3]), atof(argv[4]));
    double target_s = argc > 1 ? atof(argv[1]) : 0.3;
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *sctx = server_ossl_ctx(), *rctx = client_ossl_ctx();
    conn_tls_ctx *cctx = server_conntls_ctx();
    /* In parentheses, the same ratio for the ceiling: no writer that gathers does less
     * work than it, so that is as far as conntls can get ahead of valkey or per-iov. */
    printf("| mix | ceiling MiB/s | valkey | per-iov | conntls | conntls/ceiling | conntls/valkey (bound) | conntls/per-iov (bound) | syscalls per MiB (valkey / conntls) | wire bytes per payload byte (per-iov / conntls) |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t mi = 0; mi < sizeof MIXES / sizeof MIXES[0]; mi++) {
        const mix *m = &MIXES[mi];
        size_t batch_bytes = m->size * (size_t)m->count;
        struct iovec iov[1000];
        char *data = batch_of(m, iov);
        run_result res[WRITERS];
        int batches[WRITERS];
        for (int w = 0; w < WRITERS; w++) {
            /* Calibrate: a short run, then enough batches for target_s per round. */
            run_result probe = {.writer = w, .m = m, .iov = iov, .batches = 4};
            measure(&probe, sctx, cctx, rctx);
            batches[w] = (int)(target_s / (probe.seconds / 4));
            if (batches[w] < 4) batches[w] = 4;
            if ((double)batches[w] * batch_bytes > 2e9) batches[w] = (int)(2e9 / batch_bytes);
        }
        /* Rounds interleave the writers, so drift on this shared machine hits all alike;
         * each writer's median round is reported. */
        double rate[WRITERS][ROUNDS], mib_sent[WRITERS], mibs[WRITERS];
        for (int round = 0; round < ROUNDS; round++) {
            for (int w = 0; w < WRITERS; w++) {
                res[w] = (run_result){.writer = w, .m = m, .iov = iov, .batches = batches[w]};
                measure(&res[w], sctx, cctx, rctx);
                mib_sent[w] = (double)batch_bytes * batches[w] / (1 << 20);
                rate[w][round] = mib_sent[w] / res[w].seconds;
            }
        }
        for (int w = 0; w < WRITERS; w++) mibs[w] = median(rate[w], ROUNDS);
        printf("| %s | %.0f | %.0f | %.1f | %.0f | %.2fx | %.2fx (%.2fx) | %.1fx (%.1fx) | %.1f / %.1f | %.3f / %.3f |\n",
               m->name, mibs[CEILING], mibs[VALKEY], mibs[PER_IOV], mibs[CONNTLS], mibs[CONNTLS] / mibs[CEILING],
               mibs[CONNTLS] / mibs[VALKEY], mibs[CEILING] / mibs[VALKEY], mibs[CONNTLS] / mibs[PER_IOV],
               mibs[CEILING] / mibs[PER_IOV], res[VALKEY].io.syscw / mib_sent[VALKEY],
               res[CONNTLS].io.syscw / mib_sent[CONNTLS], res[PER_IOV].io.wchar / (mib_sent[PER_IOV] * (1 << 20)),
               res[CONNTLS].io.wchar / (mib_sent[CONNTLS] * (1 << 20)));
        fflush(stdout);
        free(data);
    }
    double bare = idle_bytes(0, sctx, cctx, rctx), ours = idle_bytes(1, sctx, cctx, rctx);
    printf("\nidle server connection, heap in use: bare OpenSSL with RELEASE_BUFFERS %.0f B, conntls %.0f B (%.2fx)\n",
           bare, ours, ours / bare);
    conn_tls_ctx_free(cctx);
    SSL_CTX_free(sctx);
    SSL_CTX_free(rctx);
    return 0;
}
