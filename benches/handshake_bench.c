/* Handshake throughput: conntls servers against a plain C OpenSSL server loop doing the
 * same handshakes in the same run (TLS 1.3). Each handshake thread runs client and server
 * of its connections itself (socket pairs), so both sides' CPU is in the figure and the
 * client (plain OpenSSL) is the same for every row; the ratio compares the server sides.
 *
 *   handshake_bench [seconds per run]   (needs CONNTLS_CERTS; each cell: median of 3 runs)
 *   handshake_bench count KIND CERT RESUMED N   (for benches/handshake_instructions.sh)
 *
 * Rows: ECDSA P-256 and RSA-2048, full and resumed; 1 and 2 threads; the handshake pool
 * (2 threads, clients on the main thread); conntls while the context reloads every 10 ms.
 * Last, the cost of pinning a generation per connection, against a resumed handshake. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../c_tests/testutil.h"

enum { PLAIN, CONNTLS };

typedef struct {
    int kind, resumed;
    SSL_CTX *server_ossl, *client;
    conn_tls_ctx *server_conntls;
    double seconds;
    long count;
} job;

static SSL_CTX *ossl_server(const char *crt, const char *key) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    CHECK(SSL_CTX_use_certificate_file(ctx, cert(crt), SSL_FILETYPE_PEM) == 1);
    CHECK(SSL_CTX_use_PrivateKey_file(ctx, cert(key), SSL_FILETYPE_PEM) == 1);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

static SSL_CTX *ossl_client(void) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    CHECK(SSL_CTX_load_verify_locations(ctx, cert("ca.crt"), NULL) == 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    return ctx;
}

static conn_tls_ctx *conntls_server(const char *crt, const char *key) {
    return ctx_from(config_of("cert-file", cert(crt), "key-file", cert(key), "auth-clients", "no", "protocols", "TLSv1.3", NULL));
}

/* The client's side: one step; 1 when it has the server's byte (handshake done, tickets in). */
static int client_step(SSL *c) {
    char b;
    if (SSL_read(c, &b, 1) == 1) return 1;
    int e = SSL_get_error(c, -1);
    (void)e;
    return 0;
}

/* One handshake, client and server in this thread; returns the client's session. */
__attribute__((noinline)) SSL_SESSION *one(job *j, SSL_SESSION *offer) {
    int sv[2];
    socket_pair(sv);
    SSL *c = SSL_new(j->client);
    SSL_set_fd(c, sv[1]);
    SSL_set_connect_state(c);
    if (offer) SSL_set_session(c, offer);
    SSL *s = NULL;
    conn_tls *t = NULL;
    if (j->kind == PLAIN) {
        s = SSL_new(j->server_ossl);
        SSL_set_fd(s, sv[0]);
        SSL_set_accept_state(s);
    } else {
        t = conn_tls_new_server(j->server_conntls, sv[0]);
    }
    int sent = 0, got = 0;
    for (int i = 0; i < 100 && !got; i++) {
        if (!sent) {
            if (j->kind == PLAIN) sent = SSL_write(s, "x", 1) == 1;
            else sent = conn_tls_write(t, "x", 1) == 1;
        }
        got = client_step(c);
    }
    CHECK(got && sent);
    ERR_clear_error();
    if (offer) CHECK(SSL_session_reused(c));
    SSL_SESSION *session = offer ? NULL : SSL_get1_session(c);
    /* Freed without close_notify, OpenSSL would mark the session not resumable. */
    SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(c);
    SSL_free(s);
    conn_tls_free(t);
    close(sv[0]);
    close(sv[1]);
    return session;
}

static void *loop(void *p) {
    job *j = p;
    SSL_SESSION *session = j->resumed ? one(j, NULL) : NULL;
    double t0 = now_s();
    long n = 0;
    while (now_s() - t0 < j->seconds) {
        for (int k = 0; k < 20; k++, n++) {
            SSL_SESSION *fresh = one(j, session);
            if (fresh) SSL_SESSION_free(fresh);
        }
    }
    j->seconds = now_s() - t0;
    j->count = n;
    if (session) SSL_SESSION_free(session);
    return NULL;
}

/* Handshakes per second with `threads` threads each running its own loop. */
static double rate_once(job proto, int threads) {
    job jobs[2];
    pthread_t t[2];
    for (int i = 0; i < threads; i++) {
        jobs[i] = proto;
        pthread_create(&t[i], NULL, loop, &jobs[i]);
    }
    double total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        total += jobs[i].count / jobs[i].seconds;
    }
    return total;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of three runs. Callers interleave plain and conntls cases, so drift on this
 * shared machine hits both alike. */
static double rate(job proto, int threads) {
    double r[3];
    for (int i = 0; i < 3; i++) r[i] = rate_once(proto, threads);
    qsort(r, 3, sizeof r[0], cmp);
    return r[1];
}

static atomic_int reloading;
static void *reloader(void *p) {
    conn_tls_ctx *ctx = p;
    conn_tls_config *cfg = config_of("cert-file", cert("server.crt"), "key-file", cert("server.key"), "auth-clients", "no",
                                     "protocols", "TLSv1.3", NULL);
    char err[256];
    while (atomic_load(&reloading)) {
        CHECK(conn_tls_ctx_reload(ctx, cfg, err, sizeof err) == CONN_TLS_OK);
        usleep(10000);
    }
    conn_tls_config_free(cfg);
    return NULL;
}

/* The same topology as the pool for the plain loop: two worker threads stepping plain
 * OpenSSL server handshakes handed to them through a queue, waiting on the fds. */
typedef struct plain_item {
    SSL *s;
    int fd, id;
    struct plain_item *next;
} plain_item;

static pthread_mutex_t pq_lock = PTHREAD_MUTEX_INITIALIZER;
static plain_item *pq_in, *pq_done;
static atomic_int pq_stop;

static void *plain_worker(void *arg) {
    (void)arg;
    plain_item *mine = NULL;
    while (!atomic_load(&pq_stop)) {
        pthread_mutex_lock(&pq_lock);
        while (pq_in) {
            plain_item *it = pq_in;
            pq_in = it->next;
            it->next = mine;
            mine = it;
        }
        pthread_mutex_unlock(&pq_lock);
        struct pollfd p[64];
        int n = 0;
        for (plain_item *it = mine; it && n < 64; it = it->next) p[n++] = (struct pollfd){.fd = it->fd, .events = POLLIN};
        if (n) poll(p, (nfds_t)n, 1);
        else usleep(100);
        for (plain_item **it = &mine; *it;) {
            int r = SSL_do_handshake((*it)->s);
            if (r == 1) {
                plain_item *done = *it;
                *it = done->next;
                pthread_mutex_lock(&pq_lock);
                done->next = pq_done;
                pq_done = done;
                pthread_mutex_unlock(&pq_lock);
            } else {
                ERR_clear_error();
                it = &(*it)->next;
            }
        }
    }
    for (plain_item *it = mine, *next; it; it = next) {
        next = it->next;
        SSL_free(it->s);
        free(it);
    }
    return NULL;
}

/* Server handshakes on 2 worker threads (conntls's pool, or plain OpenSSL workers of the
 * same shape); clients stepped on this thread. */
static double pool_rate(job *j, double seconds) {
    enum { INFLIGHT = 32 };
    conn_tls_pool *pool = j->kind == CONNTLS ? conn_tls_pool_new(2, INFLIGHT, 10000) : NULL;
    pthread_t workers[2];
    if (!pool) {
        atomic_store(&pq_stop, 0);
        for (int i = 0; i < 2; i++) pthread_create(&workers[i], NULL, plain_worker, NULL);
    }
    SSL *clients[INFLIGHT] = {0};
    int fds[INFLIGHT][2], busy[INFLIGHT] = {0};
    long done = 0;
    double t0 = now_s();
    while (now_s() - t0 < seconds) {
        for (int i = 0; i < INFLIGHT; i++) {
            if (busy[i]) {
                if (SSL_do_handshake(clients[i]) != 1) ERR_clear_error();
                continue;
            }
            socket_pair(fds[i]);
            clients[i] = SSL_new(j->client);
            SSL_set_fd(clients[i], fds[i][1]);
            SSL_set_connect_state(clients[i]);
            if (pool) {
                CHECK(conn_tls_pool_submit(pool, conn_tls_new_server(j->server_conntls, fds[i][0]), (void *)(intptr_t)i) == CONN_TLS_OK);
            } else {
                plain_item *it = calloc(1, sizeof *it);
                it->s = SSL_new(j->server_ossl);
                SSL_set_fd(it->s, fds[i][0]);
                SSL_set_accept_state(it->s);
                it->fd = fds[i][0];
                it->id = i;
                pthread_mutex_lock(&pq_lock);
                it->next = pq_in;
                pq_in = it;
                pthread_mutex_unlock(&pq_lock);
            }
            busy[i] = 1;
            SSL_do_handshake(clients[i]);
            ERR_clear_error();
        }
        conn_tls *c = NULL;
        SSL *plain = NULL;
        void *user;
        int status;
        for (;;) {
            if (pool) {
                if (conn_tls_pool_collect(pool, &c, &user, &status) != 1) break;
                CHECK(status == CONN_TLS_OK);
            } else {
                pthread_mutex_lock(&pq_lock);
                plain_item *done = pq_done;
                if (done) pq_done = done->next;
                pthread_mutex_unlock(&pq_lock);
                if (!done) break;
                plain = done->s;
                user = (void *)(intptr_t)done->id;
                free(done);
            }
            int i = (int)(intptr_t)user;
            while (SSL_do_handshake(clients[i]) != 1) ERR_clear_error();
            conn_tls_free(c);
            SSL_free(plain);
            c = NULL;
            plain = NULL;
            SSL_free(clients[i]);
            close(fds[i][0]);
            close(fds[i][1]);
            busy[i] = 0;
            done++;
        }
    }
    double r = done / (now_s() - t0);
    conn_tls_pool_free(pool);
    if (!pool) {
        atomic_store(&pq_stop, 1);
        for (int i = 0; i < 2; i++) pthread_join(workers[i], NULL);
        plain_item *left[2] = {pq_in, pq_done};
        for (int q = 0; q < 2; q++)
            for (plain_item *it = left[q], *next; it; it = next) {
                next = it->next;
                SSL_free(it->s);
                free(it);
            }
        pq_in = pq_done = NULL;
    }
    for (int i = 0; i < INFLIGHT; i++)
        if (busy[i]) {
            SSL_free(clients[i]);
            close(fds[i][0]);
            close(fds[i][1]);
        }
    return r;
}

/* Seconds per connection for creating and freeing server objects: conn_tls (which pins the
 * live generation) against SSL_new/SSL_free on the same SSL_CTX shape. */
static double per_connection(int kind, SSL_CTX *sctx, conn_tls_ctx *cctx) {
    int sv[2];
    socket_pair(sv);
    enum { N = 100000 };
    double t0 = now_s();
    for (int i = 0; i < N; i++) {
        if (kind == PLAIN) {
            SSL *s = SSL_new(sctx);
            SSL_set_fd(s, sv[0]);
            SSL_free(s);
        } else {
            conn_tls_free(conn_tls_new_server(cctx, sv[0]));
        }
    }
    double per = (now_s() - t0) / N;
    close(sv[0]);
    close(sv[1]);
    return per;
}

/* handshake_bench count KIND(0 plain, 1 conntls) CERT(0 ECDSA, 1 RSA) RESUMED N:
 * N handshakes on this thread, for callgrind (benches/handshake_instructions.sh). */
static int count_mode(int kind, int rsa, int resumed, int n) {
    SSL_CTX *client = ossl_client();
    const char *crt = rsa ? "server-rsa.crt" : "server.crt", *key = rsa ? "server-rsa.key" : "server.key";
    job j = {.kind = kind, .resumed = resumed, .client = client};
    if (kind == PLAIN) j.server_ossl = ossl_server(crt, key);
    else j.server_conntls = conntls_server(crt, key);
    SSL_SESSION *session = resumed ? one(&j, NULL) : NULL;
    for (int i = 0; i < n; i++) {
        SSL_SESSION *fresh = one(&j, session);
        if (fresh) SSL_SESSION_free(fresh);
    }
    if (session) SSL_SESSION_free(session);
    SSL_CTX_free(j.server_ossl);
    conn_tls_ctx_free(j.server_conntls);
    SSL_CTX_free(client);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "count") == 0) return count_mode(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    double secs = argc > 1 ? atof(argv[1]) : 1;
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *client = ossl_client();
    const char *keys[][3] = {{"ECDSA P-256", "server.crt", "server.key"}, {"RSA-2048", "server-rsa.crt", "server-rsa.key"}};
    printf("| certificate | handshake | threads | plain OpenSSL /s | conntls /s | conntls/plain |\n|---|---|---|---|---|---|\n");
    double resumed_s = 0;
    for (int k = 0; k < 2; k++) {
        SSL_CTX *so = ossl_server(keys[k][1], keys[k][2]);
        conn_tls_ctx *sc = conntls_server(keys[k][1], keys[k][2]);
        for (int resumed = 0; resumed < 2; resumed++) {
            double one_thread_conntls = 0;
            for (int threads = 1; threads <= 2; threads++) {
                job p = {.kind = PLAIN, .resumed = resumed, .server_ossl = so, .client = client, .seconds = secs};
                job c = p;
                c.kind = CONNTLS;
                c.server_conntls = sc;
                double rp = rate(p, threads), rc = rate(c, threads);
                if (threads == 1) one_thread_conntls = rc;
                if (k == 0 && resumed && threads == 1) resumed_s = 1 / rc;
                printf("| %s | %s | %d | %.0f | %.0f | %.3fx |\n", keys[k][0], resumed ? "resumed" : "full", threads, rp, rc, rc / rp);
                if (threads == 2) printf("| %s | %s | 2 vs 1 | | %.2fx | |\n", keys[k][0], resumed ? "resumed" : "full", rc / one_thread_conntls);
            }
            if (!resumed) {
                job c = {.kind = CONNTLS, .server_conntls = sc, .client = client, .seconds = secs};
                job p = {.kind = PLAIN, .server_ossl = so, .client = client, .seconds = secs};
                double rp = pool_rate(&p, secs), rpool = pool_rate(&c, secs);
                printf("| %s | full, server on 2 worker threads (conntls: the pool), clients on 1 | 2+1 | %.0f | %.0f | %.3fx |\n", keys[k][0], rp, rpool, rpool / rp);
                double quiet = rate(c, 1);
                atomic_store(&reloading, 1);
                pthread_t r;
                pthread_create(&r, NULL, reloader, sc);
                double busy = rate(c, 1);
                atomic_store(&reloading, 0);
                pthread_join(r, NULL);
                printf("| %s | full, reload every 10 ms | 1 | %.0f (no reloads) | %.0f | %.3fx |\n", keys[k][0], quiet, busy, busy / quiet);
            }
        }
        SSL_CTX_free(so);
        conn_tls_ctx_free(sc);
    }
    SSL_CTX *so = ossl_server("server.crt", "server.key");
    conn_tls_ctx *sc = conntls_server("server.crt", "server.key");
    double plain = per_connection(PLAIN, so, sc), ours = per_connection(CONNTLS, so, sc);
    printf("\nper connection, create + free: SSL_new/SSL_free %.2f us, conn_tls_new_server/conn_tls_free %.2f us; "
           "the difference (generation pin, socket BIO, checks) is %.2f%% of a resumed ECDSA handshake (%.0f us)\n",
           plain * 1e6, ours * 1e6, (ours - plain) / resumed_s * 100, resumed_s * 1e6);
    SSL_CTX_free(so);
    conn_tls_ctx_free(sc);
    SSL_CTX_free(client);
    return 0;
}
