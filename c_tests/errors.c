/* What a binding turns into exceptions: every failing call, constructors included, leaves
 * its status and message for the calling thread (conn_tls_thread_last_status / _error);
 * WANT_* and successes leave them alone; each thread has its own. Status names, and the
 * status constants as one signed type. */
#include <openssl/err.h>
#include <pthread.h>

#include "testutil.h"

/* Every status constant is an int in C's eyes, with its fixed value. */
#define IS_INT(x) _Generic((x), int: 1, default: 0)
_Static_assert(IS_INT(CONN_TLS_OK) && IS_INT(CONN_TLS_ERR) && IS_INT(CONN_TLS_WANT_READ) &&
                   IS_INT(CONN_TLS_WANT_WRITE) && IS_INT(CONN_TLS_EINVAL) && IS_INT(CONN_TLS_BUSY) &&
                   IS_INT(CONN_TLS_CERT_SERVER) && IS_INT(CONN_TLS_CERT_CA),
               "status constants are int");
_Static_assert(CONN_TLS_OK == 0 && CONN_TLS_ERR == -1 && CONN_TLS_WANT_READ == -2 && CONN_TLS_WANT_WRITE == -3 &&
                   CONN_TLS_EINVAL == -4 && CONN_TLS_BUSY == -5,
               "status values are fixed");

static void expect_last(int status, const char *needle) {
    CHECK_EQ(conn_tls_thread_last_status(), status);
    CHECK(conn_tls_thread_last_error() != NULL);
    CHECK_CONTAINS(conn_tls_thread_last_error(), needle);
}

static void status_names(void) {
    CHECK(strcmp(conn_tls_status_name(CONN_TLS_OK), "CONN_TLS_OK") == 0);
    CHECK(strcmp(conn_tls_status_name(CONN_TLS_ERR), "CONN_TLS_ERR") == 0);
    CHECK(strcmp(conn_tls_status_name(CONN_TLS_WANT_READ), "CONN_TLS_WANT_READ") == 0);
    CHECK(strcmp(conn_tls_status_name(CONN_TLS_WANT_WRITE), "CONN_TLS_WANT_WRITE") == 0);
    CHECK(strcmp(conn_tls_status_name(CONN_TLS_EINVAL), "CONN_TLS_EINVAL") == 0);
    CHECK(strcmp(conn_tls_status_name(CONN_TLS_BUSY), "CONN_TLS_BUSY") == 0);
    CHECK(strcmp(conn_tls_status_name(-6), "unknown status") == 0);
    CHECK(strcmp(conn_tls_status_name(12345), "unknown status") == 0);
}

static void *fail_on_another_thread(void *arg) {
    (void)arg;
    /* A new thread starts with nothing recorded, and what it records stays its own. */
    CHECK_EQ(conn_tls_thread_last_status(), CONN_TLS_OK);
    CHECK(conn_tls_thread_last_error()[0] == 0);
    CHECK(conn_tls_pool_new(0, 1, 1) == NULL);
    expect_last(CONN_TLS_EINVAL, "threads, max_inflight and timeout_ms");
    return NULL;
}

static void constructors(void) {
    char err[256];
    conn_tls_ctx *srv = server_ctx(), *cli = client_ctx();

    CHECK(conn_tls_new_server(NULL, 0) == NULL);
    expect_last(CONN_TLS_EINVAL, "context handle is NULL");
    CHECK(conn_tls_new_server(srv, -1) == NULL);
    expect_last(CONN_TLS_EINVAL, "fd -1 is negative");
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(conn_tls_new_client(cli, udp, "localhost") == NULL);
    expect_last(CONN_TLS_EINVAL, "not a stream socket");
    close(udp);
    int sv[2];
    socket_pair(sv);
    CHECK(conn_tls_new_client(cli, sv[1], "bad\xff") == NULL);
    expect_last(CONN_TLS_EINVAL, "server_name is not UTF-8");
    CHECK(conn_tls_new_server(cli, sv[0]) == NULL);
    expect_last(CONN_TLS_EINVAL, "client connections only");
    close(sv[0]);
    close(sv[1]);

    /* A context that does not build: the thread's message is the err buffer's. */
    conn_tls_config *cfg = config_of("ca-cert-file", "/nonexistent/ca.crt", NULL);
    CHECK(conn_tls_ctx_new(cfg, err, sizeof err) == NULL);
    CHECK_EQ(conn_tls_thread_last_status(), CONN_TLS_ERR);
    CHECK(strcmp(conn_tls_thread_last_error(), err) == 0);
    CHECK_CONTAINS(err, "missing");
    CHECK(conn_tls_ctx_new(NULL, NULL, 0) == NULL);
    expect_last(CONN_TLS_EINVAL, "cfg is NULL");
    CHECK_EQ(conn_tls_config_set(cfg, "bogus", "1", NULL, 0), CONN_TLS_EINVAL);
    expect_last(CONN_TLS_EINVAL, "unknown option 'bogus'");
    CHECK_EQ(conn_tls_ctx_reload(srv, cfg, err, sizeof err), CONN_TLS_ERR);
    expect_last(CONN_TLS_ERR, "/nonexistent/ca.crt");
    conn_tls_config_free(cfg);

    /* A call that succeeds leaves the record alone: read it right after the failure. */
    CHECK_EQ(conn_tls_ctx_generation(srv), 1);
    conn_tls_config *ok = conn_tls_config_new();
    CHECK_EQ(conn_tls_config_set(ok, "protocols", "TLSv1.3", NULL, 0), CONN_TLS_OK);
    expect_last(CONN_TLS_ERR, "/nonexistent/ca.crt");
    conn_tls_config_free(ok);

    pthread_t t;
    CHECK(pthread_create(&t, NULL, fail_on_another_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    expect_last(CONN_TLS_ERR, "/nonexistent/ca.crt");

    int64_t not_after;
    size_t count;
    CHECK_EQ(conn_tls_ctx_cert_info(srv, 7, &not_after, &count, NULL, 0), CONN_TLS_EINVAL);
    expect_last(CONN_TLS_EINVAL, "unknown certificate kind 7");
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
}

static void connections(void) {
    conn_tls_ctx *srv = server_ctx(), *cli = client_ctx();
    pair p = connect_pair(srv, cli, "localhost", 0);
    /* WANT_* is not a failure: an earlier failure stays what is recorded. */
    CHECK_EQ(conn_tls_handshake(NULL), CONN_TLS_EINVAL);
    expect_last(CONN_TLS_EINVAL, "connection handle is NULL");
    CHECK_EQ(conn_tls_handshake(p.s), CONN_TLS_WANT_READ);
    expect_last(CONN_TLS_EINVAL, "connection handle is NULL");
    /* A connection's failure is recorded for the thread with the connection's message. */
    CHECK(write(p.sv[1], "garbage that is not TLS\r\n", 25) == 25);
    CHECK_EQ(conn_tls_handshake(p.s), CONN_TLS_ERR);
    CHECK_EQ(conn_tls_thread_last_status(), CONN_TLS_ERR);
    CHECK(strcmp(conn_tls_thread_last_error(), conn_tls_last_error(p.s)) == 0);
    char buf[8];
    CHECK_EQ(conn_tls_read(p.s, buf, 0), CONN_TLS_EINVAL);
    expect_last(CONN_TLS_EINVAL, "len is 0");
    close_pair(&p);

    /* The pool's refusal is recorded too. */
    conn_tls_pool *pool = conn_tls_pool_new(1, 1, 5000);
    CHECK(pool);
    pair a = connect_pair(srv, cli, "localhost", 0), b = connect_pair(srv, cli, "localhost", 0);
    CHECK_EQ(conn_tls_pool_submit(pool, a.s, NULL), CONN_TLS_OK);
    CHECK_EQ(conn_tls_pool_submit(pool, b.s, NULL), CONN_TLS_BUSY);
    expect_last(CONN_TLS_BUSY, "max_inflight");
    conn_tls_pool_free(pool);
    a.s = NULL; /* freed with the pool */
    close_pair(&a);
    close_pair(&b);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
}

/* An error the caller left in its thread's OpenSSL queue (its own OpenSSL use, or a
 * library's) changes no result of the data path, which does not empty the queue on the
 * way in or out (each costs as much as a small write): each call empties it before the
 * OpenSSL call that would read it. The calls that make no such OpenSSL call (flush, the
 * pending counts) leave the caller's error where it was; the next read or write empties
 * it and is not disturbed by it. */
static void stale_errors_of_the_caller(void) {
    /* A libconntls with OpenSSL linked into it (the OpenSSL 3.5 / 4.0 builds of the test
     * matrix) has an error queue of its own, not this program's: nothing to check. */
    ERR_raise(ERR_LIB_USER, 1);
    conn_tls_config_free(NULL);
    if (ERR_peek_error() != 0) {
        ERR_clear_error();
        printf("errors: libconntls carries its own OpenSSL; the caller's stale errors are not its\n");
        return;
    }
    conn_tls_ctx *srv = server_ctx(), *cli = client_ctx();
    pair p = connect_pair(srv, cli, "localhost", 0);
    CHECK_EQ(handshake_both(p.s, p.c), CONN_TLS_OK);
    char buf[64];
    ERR_raise(ERR_LIB_USER, 1);
    CHECK_EQ(conn_tls_read(p.s, buf, sizeof buf), CONN_TLS_WANT_READ); /* nothing sent yet */
    CHECK_QUEUE_EMPTY();
    ERR_raise(ERR_LIB_USER, 1);
    CHECK_EQ(conn_tls_write(p.c, "ping", 4), 4);
    CHECK_QUEUE_EMPTY();
    ERR_raise(ERR_LIB_USER, 1);
    CHECK_EQ(conn_tls_flush(p.c), CONN_TLS_OK);
    CHECK(ERR_peek_error() != 0); /* the caller's, left where it was */
    CHECK_EQ(conn_tls_read(p.s, buf, sizeof buf), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK_QUEUE_EMPTY();
    ERR_raise(ERR_LIB_USER, 1);
    struct iovec iov[2] = {{.iov_base = "po", .iov_len = 2}, {.iov_base = "ng", .iov_len = 2}};
    CHECK_EQ(conn_tls_writev(p.s, iov, 2), 4);
    CHECK_QUEUE_EMPTY();
    ERR_raise(ERR_LIB_USER, 1);
    CHECK_EQ(conn_tls_pending_write(p.s), 0);
    CHECK_EQ(conn_tls_pending_read(p.c), 0);
    CHECK(ERR_peek_error() != 0);
    CHECK_EQ(read_exact(p.c, p.sv[1], buf, 4, 10), 0);
    CHECK_QUEUE_EMPTY();
    CHECK(memcmp(buf, "pong", 4) == 0);
    CHECK_EQ(conn_tls_last_error(p.s)[0], 0);
    CHECK_EQ(conn_tls_last_error(p.c)[0], 0);
    close_pair(&p);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
}

int main(void) {
    CHECK_EQ(conn_tls_thread_last_status(), CONN_TLS_OK);
    CHECK(conn_tls_thread_last_error() != NULL && conn_tls_thread_last_error()[0] == 0);
    status_names();
    constructors();
    connections();
    CHECK_QUEUE_EMPTY();
    stale_errors_of_the_caller();
    printf("errors: ok\n");
    return 0;
}
