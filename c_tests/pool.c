/* pool [connections] [timeout_ms]
 * The handshake pool: 1000 connections through it with the bound enforced, a peer that
 * never sends its hello timing out, BUSY that takes nothing, statuses and user pointers
 * coming back right, calls on a connection inside the pool refused and its free deferred
 * to the collection, the pool's fd readable exactly while something waits, one
 * connection per fd, and the argument checks. */
#include "testutil.h"

#include <sched.h>

enum { MAX_CONNS = 1000, MAX_INFLIGHT = 32 };
static int TOTAL = MAX_CONNS;
static unsigned timeout_ms = 5000;

static int wait_readable(int fd, int ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

static void thousand(void) {
    conn_tls_ctx *srv = server_ctx(), *cli = client_ctx();
    conn_tls_pool *pool = conn_tls_pool_new(2, MAX_INFLIGHT, timeout_ms);
    CHECK(pool);
    int pool_fd = conn_tls_pool_fd(pool);
    CHECK(pool_fd >= 0);
    static conn_tls *clients[MAX_CONNS], *servers[MAX_CONNS];
    static int fds[MAX_CONNS][2], collected[MAX_CONNS];
    int submitted = 0, done = 0, inside = 0, busy = 0;
    double deadline = now_s() + 120;
    while (done < TOTAL && now_s() < deadline) {
        /* Submit until the pool says it is full. */
        while (submitted < TOTAL) {
            if (!servers[submitted]) {
                socket_pair(fds[submitted]);
                servers[submitted] = conn_tls_new_server(srv, fds[submitted][0]);
                clients[submitted] = conn_tls_new_client(cli, fds[submitted][1], "localhost");
                CHECK(servers[submitted] && clients[submitted]);
            }
            int r = conn_tls_pool_submit(pool, servers[submitted], (void *)(intptr_t)(submitted + 1));
            if (r == CONN_TLS_BUSY) {
                busy++;
                CHECK_EQ(inside, MAX_INFLIGHT); /* refused exactly at the bound */
                break;
            }
            CHECK_EQ(r, CONN_TLS_OK);
            inside++;
            submitted++;
        }
        /* Our side of the handshakes: the clients, stepped here. */
        for (int i = 0; i < submitted; i++) /* finished out of order: every open one */
            if (!collected[i]) conn_tls_handshake(clients[i]);
        /* Collect what the pool finished. */
        if (wait_readable(pool_fd, 10)) {
            conn_tls *c;
            void *user;
            int status;
            while (conn_tls_pool_collect(pool, &c, &user, &status) == 1) {
                int i = (int)(intptr_t)user - 1;
                CHECK(i >= 0 && i < submitted && !collected[i]);
                CHECK(c == servers[i]);
                if (status != CONN_TLS_OK) fprintf(stderr, "conn %d: %s\n", i, conn_tls_last_error(c));
                CHECK_EQ(status, CONN_TLS_OK);
                collected[i] = 1;
                inside--;
                done++;
                /* The connection works after coming back. */
                CHECK_EQ(write_all(c, fds[i][0], "ok", 2, 5), 0);
                char buf[2];
                CHECK_EQ(read_exact(clients[i], fds[i][1], buf, 2, 5), 0);
                CHECK(memcmp(buf, "ok", 2) == 0);
                conn_tls_free(c);
                conn_tls_free(clients[i]);
                clients[i] = NULL;
                close(fds[i][0]);
                close(fds[i][1]);
            }
        }
    }
    printf("pool: %d connections through 2 threads, at most %d inside, %d submissions refused as busy\n", done,
           MAX_INFLIGHT, busy);
    CHECK_EQ(done, TOTAL);
    CHECK(busy > 0);
    int collected_none = conn_tls_pool_collect(pool, &(conn_tls *){NULL}, &(void *){NULL}, &(int){0});
    CHECK_EQ(collected_none, 0);
    conn_tls_pool_free(pool);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
}

static void slowloris_and_busy(void) {
    conn_tls_ctx *srv = server_ctx();
    conn_tls_pool *pool = conn_tls_pool_new(1, 2, 300);
    CHECK(pool);
    int a[2], b[2], c3[2];
    socket_pair(a);
    socket_pair(b);
    socket_pair(c3);
    conn_tls *silent = conn_tls_new_server(srv, a[0]), *second = conn_tls_new_server(srv, b[0]),
             *third = conn_tls_new_server(srv, c3[0]);
    double start = now_s();
    CHECK_EQ(conn_tls_pool_submit(pool, silent, &a), CONN_TLS_OK);
    /* Submitted again while inside (an event loop that still watched its fd): refused,
     * and nothing changes: the pool still has it, under its first tag. */
    CHECK_EQ(conn_tls_pool_submit(pool, silent, &b), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_thread_last_error(), "already inside the pool");
    CHECK_EQ(conn_tls_pool_submit(pool, second, &b), CONN_TLS_OK);
    /* Full: BUSY, and the connection is still ours and untouched. */
    CHECK_EQ(conn_tls_pool_submit(pool, third, &c3), CONN_TLS_BUSY);
    CHECK(conn_tls_last_error(third)[0] == 0);
    conn_tls_free(third);
    /* Nobody ever sends a ClientHello: both time out. */
    int got = 0;
    while (got < 2 && now_s() - start < 5) {
        if (!wait_readable(conn_tls_pool_fd(pool), 100)) continue;
        conn_tls *c;
        void *user;
        int status;
        while (conn_tls_pool_collect(pool, &c, &user, &status) == 1) {
            CHECK(user == &a || user == &b);
            CHECK(c == (user == &a ? silent : second));
            CHECK_EQ(status, CONN_TLS_ERR);
            CHECK_CONTAINS(conn_tls_last_error(c), "timed out");
            conn_tls_free(c);
            got++;
        }
    }
    double took = now_s() - start;
    printf("pool: stalled handshakes failed after %.2f s (timeout 0.3 s)\n", took);
    CHECK_EQ(got, 2);
    CHECK(took >= 0.3 && took < 2.0);
    /* Room again. */
    conn_tls *fourth = conn_tls_new_server(srv, c3[0]);
    CHECK_EQ(conn_tls_pool_submit(pool, fourth, NULL), CONN_TLS_OK);
    conn_tls_pool_free(pool); /* frees `fourth`, still inside; fds stay ours */
    CHECK(fcntl(c3[0], F_GETFD) >= 0);
    int *pairs[] = {a, b, c3};
    for (int i = 0; i < 3; i++) {
        close(pairs[i][0]);
        close(pairs[i][1]);
    }
    conn_tls_ctx_free(srv);
}

/* A server that frees a connection whose handshake is in the pool (Valkey's connShutdown
 * while a fork child exists freed one under the pool's thread, which crashed): every call
 * on a connection inside is refused untouched, and its free is deferred: the pool stops
 * the handshake and the collection frees it, returning its tag with a NULL connection. The
 * pool's timeout is a minute, so a collection within the test's bound is the release's. */
static void hands_off_while_inside(void) {
    conn_tls_ctx *srv = server_ctx();
    conn_tls_pool *pool = conn_tls_pool_new(1, 4, 60000);
    CHECK(pool);
    int fds[2];
    socket_pair(fds);
    conn_tls *c = conn_tls_new_server(srv, fds[0]);
    CHECK(c);
    CHECK_EQ(conn_tls_pool_submit(pool, c, &fds), CONN_TLS_OK);
    char buf[16];
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    CHECK_EQ(conn_tls_handshake(c), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_thread_last_error(), "inside a handshake pool");
    CHECK_EQ(conn_tls_read(c, buf, sizeof buf), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_write(c, "x", 1), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_writev(c, &iov, 1), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_flush(c), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_shutdown(c), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_set_user_timeout(c, 1000), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_peer_cert_pem(c, buf, sizeof buf), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_pending_write(c), 0);
    CHECK_EQ(conn_tls_pending_read(c), 0);
    CHECK(conn_tls_last_error(c)[0] == 0);
    CHECK(conn_tls_protocol(c)[0] == 0);
    /* Freed while inside: deferred. */
    conn_tls_free(c);
    CHECK(wait_readable(conn_tls_pool_fd(pool), 10000));
    conn_tls *back = c;
    void *user = NULL;
    int status = 0;
    CHECK_EQ(conn_tls_pool_collect(pool, &back, &user, &status), 1);
    CHECK(back == NULL);
    CHECK(user == &fds);
    CHECK_EQ(status, CONN_TLS_EINVAL);
    /* The fd was never closed by the library and is free to close now. */
    CHECK(fcntl(fds[0], F_GETFD) >= 0);
    close(fds[0]);
    close(fds[1]);
    /* Outside a pool again, the same calls work (the address may be reused). */
    socket_pair(fds);
    c = conn_tls_new_server(srv, fds[0]);
    CHECK_EQ(conn_tls_handshake(c), CONN_TLS_WANT_READ);
    /* Inside a pool that is freed: the pool frees it, and its address leaves the registry. */
    CHECK_EQ(conn_tls_pool_submit(pool, c, NULL), CONN_TLS_OK);
    conn_tls_pool_free(pool);
    conn_tls *next = conn_tls_new_server(srv, fds[0]);
    CHECK_EQ(conn_tls_handshake(next), CONN_TLS_WANT_READ);
    conn_tls_free(next);
    close(fds[0]);
    close(fds[1]);
    conn_tls_ctx_free(srv);
}

/* The pool's fd is readable if and only if a finished connection waits. Workers once
 * queued a connection, unlocked, and only then counted it on the eventfd: a collect in
 * between took the connection and found no count to take, the count came after, and the
 * fd stayed readable with nothing to collect (an event loop watching it spun at 100% CPU
 * for good). Rounds of handshakes that fail at once (the peer has closed) against a
 * collector in a tight loop, the fd checked after every round. */
static void readable_iff_waiting(void) {
    enum { ROUND = 400 };
    /* Under valgrind (fewer connections asked for) threads run one at a time, so the tight
     * loop would starve the workers: a few small rounds check the rest there. */
    int valgrind = TOTAL < MAX_CONNS, per_round = valgrind ? 20 : ROUND, max_rounds = valgrind ? 2 : 500;
    conn_tls_ctx *srv = server_ctx();
    conn_tls_pool *pool = conn_tls_pool_new(2, 4096, 10000);
    CHECK(pool);
    int pool_fd = conn_tls_pool_fd(pool), rounds = 0, stray = 0;
    double deadline = now_s() + 60;
    static int fds[ROUND];
    for (; rounds < max_rounds && now_s() < deadline && !stray; rounds++) {
        for (int i = 0; i < per_round; i++) {
            int pair[2];
            socket_pair(pair);
            close(pair[1]);
            fds[i] = pair[0];
            conn_tls *c = conn_tls_new_server(srv, fds[i]);
            CHECK(c);
            CHECK_EQ(conn_tls_pool_submit(pool, c, NULL), CONN_TLS_OK);
        }
        double hung = now_s() + 300; /* only a hang guard: no pace is assumed */
        for (int got = 0; got < per_round;) {
            conn_tls *c;
            void *user;
            int status;
            CHECK(now_s() < hung);
            if (conn_tls_pool_collect(pool, &c, &user, &status) != 1) {
                if (valgrind) sched_yield();
                continue;
            }
            CHECK_EQ(status, CONN_TLS_ERR);
            conn_tls_free(c);
            got++;
        }
        stray = wait_readable(pool_fd, 0);
        for (int i = 0; i < per_round; i++) close(fds[i]);
    }
    printf("pool: %d rounds of %d handshakes collected in a tight loop; fd readable with nothing to collect: %s\n",
           rounds, per_round, stray ? "yes" : "no");
    CHECK(!stray);
    /* And readable while one waits. */
    int pair[2];
    socket_pair(pair);
    close(pair[1]);
    CHECK_EQ(conn_tls_pool_submit(pool, conn_tls_new_server(srv, pair[0]), NULL), CONN_TLS_OK);
    CHECK(wait_readable(pool_fd, 10000));
    conn_tls *c;
    void *user;
    int status;
    CHECK_EQ(conn_tls_pool_collect(pool, &c, &user, &status), 1);
    conn_tls_free(c);
    CHECK(!wait_readable(pool_fd, 0));
    close(pair[0]);
    conn_tls_pool_free(pool);
    conn_tls_ctx_free(srv);
}

/* Pool jobs are keyed by connection, and two connections on one fd cannot be inside at
 * once (an fd closed and reused while its first handshake runs): the second is refused
 * untouched, and the first still comes back with its own tag. A connection freed after
 * its handshake finished but before the collection comes back as the header says: `*c`
 * NULL, CONN_TLS_EINVAL. */
static void one_connection_per_fd(void) {
    conn_tls_ctx *srv = server_ctx(), *cli = client_ctx();
    conn_tls_pool *pool = conn_tls_pool_new(1, 8, 60000);
    CHECK(pool);
    int fds[2];
    socket_pair(fds);
    conn_tls *first = conn_tls_new_server(srv, fds[0]), *second = conn_tls_new_server(srv, fds[0]);
    CHECK_EQ(conn_tls_pool_submit(pool, first, &fds[0]), CONN_TLS_OK);
    CHECK_EQ(conn_tls_pool_submit(pool, second, &fds[1]), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_thread_last_error(), "same fd");
    CHECK(conn_tls_last_error(second)[0] == 0);
    conn_tls_free(second);
    /* The first finishes against a real client, and is freed before it is collected. */
    conn_tls *client = conn_tls_new_client(cli, fds[1], "localhost");
    double deadline = now_s() + 300; /* a hang guard */
    while (!wait_readable(conn_tls_pool_fd(pool), 1) && now_s() < deadline) conn_tls_handshake(client);
    CHECK(wait_readable(conn_tls_pool_fd(pool), 0));
    conn_tls_free(first);
    conn_tls *back = first;
    void *user = NULL;
    int status = 0;
    CHECK_EQ(conn_tls_pool_collect(pool, &back, &user, &status), 1);
    CHECK(back == NULL);
    CHECK(user == &fds[0]);
    CHECK_EQ(status, CONN_TLS_EINVAL);
    CHECK(!wait_readable(conn_tls_pool_fd(pool), 0));
    /* The fd is free for a new connection in the pool. */
    conn_tls *again = conn_tls_new_server(srv, fds[0]);
    CHECK_EQ(conn_tls_pool_submit(pool, again, NULL), CONN_TLS_OK);
    conn_tls_pool_free(pool);
    conn_tls_free(client);
    close(fds[0]);
    close(fds[1]);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
}

static void bad_arguments(void) {
    CHECK(conn_tls_pool_new(0, 1, 1) == NULL);
    CHECK(conn_tls_pool_new(1, 0, 1) == NULL);
    CHECK(conn_tls_pool_new(1, 1, 0) == NULL);
    CHECK_EQ(conn_tls_pool_fd(NULL), -1);
    CHECK_EQ(conn_tls_pool_submit(NULL, NULL, NULL), CONN_TLS_EINVAL);
    conn_tls_pool *pool = conn_tls_pool_new(1, 1, 100);
    CHECK_EQ(conn_tls_pool_submit(pool, NULL, NULL), CONN_TLS_EINVAL);
    conn_tls *c;
    void *u;
    int s;
    CHECK_EQ(conn_tls_pool_collect(NULL, &c, &u, &s), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_pool_collect(pool, NULL, &u, &s), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_pool_collect(pool, &c, NULL, &s), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_pool_collect(pool, &c, &u, NULL), CONN_TLS_EINVAL);
    conn_tls_pool_free(pool);
    conn_tls_pool_free(NULL);
    CHECK_QUEUE_EMPTY();
}

int main(int argc, char **argv) {
    if (argc > 1) TOTAL = atoi(argv[1]) < MAX_CONNS ? atoi(argv[1]) : MAX_CONNS;
    if (argc > 2) timeout_ms = (unsigned)atoi(argv[2]);
    bad_arguments();
    slowloris_and_busy();
    hands_off_while_inside();
    one_connection_per_fd();
    readable_iff_waiting();
    thousand();
    printf("pool: ok\n");
    return 0;
}
