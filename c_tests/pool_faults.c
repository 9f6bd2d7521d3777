/* The handshake pool when a worker cannot start, under c_tests/fault_shim.c (LD_PRELOAD):
 * the poller (epoll_create1) or the thread (pthread_create) of the first or a later worker
 * fails. A worker without a poller once exited while the pool kept handing it jobs, which
 * then never came back nor timed out (and a server that pauses accepting while the pool is
 * full stopped accepting TLS clients for good); a failed thread left the started ones
 * running. Each failure now fails conn_tls_pool_new with the reason, and leaves no thread
 * behind; with the fault gone, a pool starts and works. */
#include "testutil.h"

#include <dirent.h>

void faults_fail_start(int epoll_after, int threads_after) __attribute__((weak));
long faults_injected(void) __attribute__((weak));

static int threads_now(void) {
    DIR *d = opendir("/proc/self/task");
    CHECK(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

int main(void) {
    if (!faults_fail_start) {
        fprintf(stderr, "pool_faults: run with LD_PRELOAD=fault_shim.so\n");
        return 2;
    }
    const struct {
        int epoll_after, threads_after;
        const char *says;
    } cases[] = {
        {0, -1, "epoll_create1"}, /* the first worker's poller */
        {2, -1, "epoll_create1"}, /* the third's */
        {-1, 0, "thread"},        /* the first thread */
        {-1, 2, "thread"},        /* the third, two already running */
    };
    int before = threads_now();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long injected = faults_injected();
        faults_fail_start(cases[i].epoll_after, cases[i].threads_after);
        conn_tls_pool *pool = conn_tls_pool_new(4, 16, 1000);
        faults_fail_start(-1, -1);
        CHECK(faults_injected() > injected); /* the fault bit */
        CHECK(pool == NULL);
        CHECK_EQ(conn_tls_thread_last_status(), CONN_TLS_ERR);
        CHECK_CONTAINS(conn_tls_thread_last_error(), cases[i].says);
        CHECK_EQ(threads_now(), before);
        printf("pool_faults: %s fails after %d: refused (%s), %d threads as before\n", cases[i].says,
               cases[i].epoll_after >= 0 ? cases[i].epoll_after : cases[i].threads_after, conn_tls_thread_last_error(),
               threads_now());
    }
    /* No fault: the pool starts, drives a handshake to its end, and stops. */
    conn_tls_ctx *srv = server_ctx();
    conn_tls_pool *pool = conn_tls_pool_new(4, 16, 200);
    CHECK(pool);
    CHECK_EQ(threads_now(), before + 4);
    int fds[2];
    socket_pair(fds);
    CHECK_EQ(conn_tls_pool_submit(pool, conn_tls_new_server(srv, fds[0]), NULL), CONN_TLS_OK);
    struct pollfd p = {.fd = conn_tls_pool_fd(pool), .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 10000), 1);
    conn_tls *c;
    void *user;
    int status;
    CHECK_EQ(conn_tls_pool_collect(pool, &c, &user, &status), 1);
    CHECK_EQ(status, CONN_TLS_ERR); /* nobody said hello: timed out */
    CHECK_CONTAINS(conn_tls_last_error(c), "timed out");
    conn_tls_free(c);
    conn_tls_pool_free(pool);
    CHECK_EQ(threads_now(), before);
    close(fds[0]);
    close(fds[1]);
    conn_tls_ctx_free(srv);
    printf("pool_faults: ok\n");
    return 0;
}
