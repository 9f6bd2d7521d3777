/* Context swaps that no thread can see half done.
 *
 *   swap_storm N
 * N connections (socket pairs). Two worker threads step server handshakes one step at a
 * time, taking connections from a shared queue, so consecutive steps of one handshake run
 * on different threads with only the queue's mutex between them. Meanwhile a reloader
 * swaps the context between two certificates every millisecond, and once in a while tries
 * a broken reload (key from the other certificate), which must change nothing. Clients
 * verify the chain and the host name, and read a message the server sends after the
 * handshake. Checks: zero failed handshakes, both certificates seen, generations grew,
 * steps did move between threads. */
#include <pthread.h>
#include <stdatomic.h>

#include "testutil.h"

typedef struct job {
    conn_tls *s;
    int fd;
    int last_thread; /* which worker ran the previous step */
    struct job *next;
} job;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static job *queue_head, *queue_tail;
static int stop;
static long server_failures, served, cross_thread_steps;
static char server_error[256];

static void push(job *j) {
    pthread_mutex_lock(&lock);
    j->next = NULL;
    if (queue_tail) queue_tail->next = j;
    else queue_head = j;
    queue_tail = j;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

static job *pop(void) {
    pthread_mutex_lock(&lock);
    while (!queue_head && !stop) pthread_cond_wait(&cond, &lock);
    job *j = queue_head;
    if (j) {
        queue_head = j->next;
        if (!queue_head) queue_tail = NULL;
    }
    pthread_mutex_unlock(&lock);
    return j;
}

static void *worker(void *arg) {
    int me = (int)(long)arg;
    for (job *j; (j = pop());) {
        if (j->last_thread >= 0 && j->last_thread != me) {
            pthread_mutex_lock(&lock);
            cross_thread_steps++;
            pthread_mutex_unlock(&lock);
        }
        j->last_thread = me;
        int r = conn_tls_handshake(j->s);
        if (r == CONN_TLS_WANT_READ || r == CONN_TLS_WANT_WRITE) {
            struct pollfd p = {.fd = j->fd, .events = r == CONN_TLS_WANT_READ ? POLLIN : POLLOUT};
            poll(&p, 1, 5);
            push(j);
            continue;
        }
        int ok = r == CONN_TLS_OK;
        if (ok) {
            char msg[32];
            int n = snprintf(msg, sizeof msg, "hello gen=%llu\n", (unsigned long long)conn_tls_generation(j->s));
            ok = conn_tls_write(j->s, msg, (size_t)n) == n && conn_tls_pending_write(j->s) == 0;
        }
        pthread_mutex_lock(&lock);
        if (ok) served++;
        else {
            server_failures++;
            snprintf(server_error, sizeof server_error, "%s", conn_tls_last_error(j->s));
        }
        pthread_mutex_unlock(&lock);
        conn_tls_free(j->s);
        close(j->fd);
        free(j);
    }
    return NULL;
}

static conn_tls_ctx *ctx;
static conn_tls_config *cfg_a, *cfg_b, *cfg_broken;
static atomic_int reloading = 1;
static long reloads, broken_refused;

static void *reloader(void *arg) {
    (void)arg;
    char err[256];
    for (long i = 0; reloading; i++) {
        if (i % 10 == 9) {
            uint64_t before = conn_tls_ctx_generation(ctx);
            CHECK_EQ(conn_tls_ctx_reload(ctx, cfg_broken, err, sizeof err), CONN_TLS_ERR);
            CHECK_EQ(conn_tls_ctx_generation(ctx), before);
            broken_refused++;
        } else {
            CHECK_EQ(conn_tls_ctx_reload(ctx, i % 2 ? cfg_b : cfg_a, err, sizeof err), CONN_TLS_OK);
            reloads++;
        }
        usleep(1000);
    }
    return NULL;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "r");
    CHECK(f);
    static char bufs[2][8192];
    static int n;
    char *b = bufs[n++ % 2];
    size_t len = fread(b, 1, sizeof bufs[0] - 1, f);
    b[len] = 0;
    fclose(f);
    return b;
}

int main(int argc, char **argv) {
    int total = argc > 1 ? atoi(argv[1]) : 2000;
    const char *pem_a = read_file(cert("server.crt")), *pem_b = read_file(cert("server2.crt"));
    cfg_a = config_of("cert-file", cert("server.crt"), "key-file", cert("server.key"), "auth-clients", "no", NULL);
    cfg_b = config_of("cert-file", cert("server2.crt"), "key-file", cert("server2.key"), "auth-clients", "no", NULL);
    cfg_broken = config_of("cert-file", cert("server2.crt"), "key-file", cert("server.key"), "auth-clients", "no", NULL);
    char err[256];
    ctx = conn_tls_ctx_new(cfg_a, err, sizeof err);
    CHECK(ctx);
    /* Full handshakes only: a resumed session shows the certificate it began with. */
    conn_tls_ctx *cli = ctx_from(config_of("ca-cert-file", cert("ca.crt"), "session-caching", "no", NULL));

    pthread_t workers[2], rl;
    for (long i = 0; i < 2; i++) CHECK(pthread_create(&workers[i], NULL, worker, (void *)i) == 0);
    CHECK(pthread_create(&rl, NULL, reloader, NULL) == 0);

    long seen_a = 0, seen_b = 0, client_failures = 0, resumed = 0;
    uint64_t max_gen = 0;
    double deadline = now_s() + 120;
    enum { BATCH = 20 };
    for (int done = 0; done < total && now_s() < deadline; done += BATCH) {
        conn_tls *c[BATCH];
        int cfd[BATCH], state[BATCH]; /* 0 handshaking, 1 reading, 2 done */
        for (int i = 0; i < BATCH; i++) {
            int sv[2];
            socket_pair(sv);
            job *j = calloc(1, sizeof *j);
            j->s = conn_tls_new_server(ctx, sv[0]);
            CHECK(j->s);
            j->fd = sv[0];
            j->last_thread = -1;
            push(j);
            cfd[i] = sv[1];
            c[i] = conn_tls_new_client(cli, sv[1], "localhost");
            CHECK(c[i]);
            state[i] = 0;
        }
        for (int left = BATCH; left > 0 && now_s() < deadline;) {
            for (int i = 0; i < BATCH; i++) {
                if (state[i] == 2) continue;
                if (state[i] == 0) {
                    int r = conn_tls_handshake(c[i]);
                    if (r == CONN_TLS_OK) state[i] = 1;
                    else if (r == CONN_TLS_ERR) {
                        fprintf(stderr, "client handshake: %s\n", conn_tls_last_error(c[i]));
                        client_failures++;
                        state[i] = 2, left--;
                        continue;
                    }
                }
                if (state[i] == 1) {
                    char line[64] = {0};
                    ssize_t n = conn_tls_read(c[i], line, sizeof line - 1);
                    if (n == CONN_TLS_WANT_READ) continue;
                    unsigned long long g = 0;
                    if (n <= 0 || sscanf(line, "hello gen=%llu", &g) != 1) {
                        fprintf(stderr, "client read %zd: %s\n", n, conn_tls_last_error(c[i]));
                        client_failures++;
                    } else {
                        char pem[8192];
                        ssize_t len = conn_tls_peer_cert_pem(c[i], pem, sizeof pem);
                        CHECK(len > 0);
                        seen_a += strcmp(pem, pem_a) == 0;
                        seen_b += strcmp(pem, pem_b) == 0;
                        CHECK(strcmp(pem, pem_a) == 0 || strcmp(pem, pem_b) == 0);
                        resumed += conn_tls_session_reused(c[i]);
                        if (g > max_gen) max_gen = g;
                    }
                    state[i] = 2, left--;
                }
            }
            usleep(200);
        }
        for (int i = 0; i < BATCH; i++) {
            conn_tls_free(c[i]);
            close(cfd[i]);
        }
    }
    reloading = 0;
    pthread_join(rl, NULL);
    pthread_mutex_lock(&lock);
    stop = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < 2; i++) pthread_join(workers[i], NULL);

    printf("swap storm: %d connections, %ld served, %ld server and %ld client failures, %ld reloads "
           "(+%ld broken ones refused), generation %llu, certificate A seen %ld / B %ld times, %ld resumed, "
           "%ld handshake steps moved between threads\n",
           total, served, server_failures, client_failures, reloads, broken_refused,
           (unsigned long long)conn_tls_ctx_generation(ctx), seen_a, seen_b, resumed, cross_thread_steps);
    if (server_failures) fprintf(stderr, "server: %s\n", server_error);
    CHECK_EQ(server_failures, 0);
    CHECK_EQ(client_failures, 0);
    CHECK_EQ(served, total);
    CHECK(seen_a > 0 && seen_b > 0);
    CHECK(reloads > 10 && broken_refused > 0);
    CHECK_EQ(conn_tls_ctx_generation(ctx), 1 + reloads);
    CHECK(max_gen > 1);
    CHECK(cross_thread_steps > 0);
    conn_tls_ctx_free(ctx);
    conn_tls_ctx_free(cli);
    conn_tls_config_free(cfg_a);
    conn_tls_config_free(cfg_b);
    conn_tls_config_free(cfg_broken);
    return 0;
}
