/* Fork under load: while threads log, run handshakes on the pool, make client connections
 * that keep and offer sessions, and reload a context, the main thread forks again and
 * again; each child uses and frees what it inherited: the pool (refused: its threads are
 * the parent's; freed without joining them), the log callback (swapped: calls that were
 * running on other threads at the fork never end in the child), a reload, new
 * connections with sessions, a config change. A child that does not finish is killed and
 * the step it was stuck at reported: a lock inherited held (the library's or OpenSSL's),
 * or a join of a thread the child does not have.
 * First, two forks that must not wait for a call in progress: one while another thread
 * waits in a blocking read inside conntls (hiredis's blocking contexts), one from inside
 * the log callback. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testutil.h"

enum { THREADS = 4 };
static int FORKS = 300;

static atomic_int stop;
static atomic_long parent_calls, child_calls;
static conn_tls_ctx *srv, *cli;
static conn_tls_config *cli_cfg;
static conn_tls_pool *pool;

static const char *const STEPS[] = {"started", "the pool refused", "the log callback swapped",
                                    "a config set and reload", "handshakes with sessions",
                                    "the pool freed", "done"};
enum { STEP_COUNT = sizeof STEPS / sizeof STEPS[0], DONE = STEP_COUNT - 1 };
static volatile int *child_step; /* shared with the children */

static void parent_log(void *ud, int level, const char *msg) {
    (void)ud, (void)level, (void)msg;
    atomic_fetch_add(&parent_calls, 1);
    usleep(100); /* calls in progress on other threads when the main thread forks */
}

static void child_log(void *ud, int level, const char *msg) {
    (void)ud, (void)level, (void)msg;
    atomic_fetch_add(&child_calls, 1);
}

/* Failing calls that log, as fast as they come. */
static void *logger(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) CHECK(conn_tls_new_server(srv, -1) == NULL);
    return NULL;
}

/* Handshakes that fail on the pool's workers (which log them there), collected here. */
static void *pool_feeder(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) pool_failing_handshake(pool, srv);
    return NULL;
}

/* A client connection and a server connection, handshaken, and a byte read so the client
 * takes the session ticket (kept in the context's session store; offered by the next). */
static int sessions(void) {
    pair p = connect_pair(srv, cli, "localhost", 0);
    int rc = handshake_both(p.s, p.c);
    if (rc == CONN_TLS_OK) rc = write_all(p.s, p.sv[0], "x", 1, 10);
    char byte;
    if (rc == CONN_TLS_OK) rc = read_exact(p.c, p.sv[1], &byte, 1, 10);
    close_pair(&p);
    return rc;
}

static void *session_maker(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) CHECK_EQ(sessions(), CONN_TLS_OK);
    return NULL;
}

static void *reloader(void *arg) {
    (void)arg;
    char err[256];
    while (!atomic_load(&stop)) CHECK_EQ(conn_tls_ctx_reload(cli, cli_cfg, err, sizeof err), CONN_TLS_OK);
    return NULL;
}

/* Forks a child that exits at once and reaps it. */
static void fork_and_reap(void) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(0);
    int wstatus = 0;
    CHECK(waitpid(pid, &wstatus, 0) == pid && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
}

static atomic_int reader_tid;

static void *blocked_reader(void *arg) {
    atomic_store(&reader_tid, (int)syscall(SYS_gettid));
    char byte;
    CHECK_EQ(conn_tls_read(arg, &byte, 1), 1);
    return NULL;
}

/* Whether thread `tid` of this process is in system call `nr` now. */
static int in_syscall(int tid, long nr) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
    FILE *f = fopen(path, "r");
    long got = -1;
    if (f) {
        if (fscanf(f, "%ld", &got) != 1) got = -1;
        fclose(f);
    }
    return got == nr;
}

/* A fork while another thread waits in conn_tls_read on a blocking socket: the wait is
 * not a section (the fork would wait for the peer's next byte). SIGALRM is the hang guard. */
static void fork_during_blocking_read(void) {
    pair p = connect_pair(srv, cli, "localhost", 0);
    CHECK_EQ(handshake_both(p.s, p.c), CONN_TLS_OK);
    CHECK(fcntl(p.sv[1], F_SETFL, fcntl(p.sv[1], F_GETFL) & ~O_NONBLOCK) == 0);
    pthread_t reader;
    CHECK(pthread_create(&reader, NULL, blocked_reader, p.c) == 0);
    double deadline = now_s() + 20;
    while (!(atomic_load(&reader_tid) && in_syscall(atomic_load(&reader_tid), SYS_recvfrom)) && now_s() < deadline)
        usleep(1000);
    CHECK(in_syscall(atomic_load(&reader_tid), SYS_recvfrom));
    alarm(60);
    fork_and_reap();
    alarm(0);
    CHECK_EQ(write_all(p.s, p.sv[0], "x", 1, 10), CONN_TLS_OK);
    CHECK(pthread_join(reader, NULL) == 0);
    close_pair(&p);
}

static atomic_int callback_forks;

static void forking_log(void *ud, int level, const char *msg) {
    (void)ud, (void)level, (void)msg;
    fork_and_reap();
    atomic_fetch_add(&callback_forks, 1);
}

/* A fork from inside the log callback (the caller's code may fork, or wait for a thread
 * that forks): the callback runs after the call's section. */
static void fork_from_log_callback(void) {
    conn_tls_set_log(forking_log, NULL);
    alarm(60);
    CHECK(conn_tls_new_server(srv, -1) == NULL);
    alarm(0);
    CHECK_EQ(atomic_load(&callback_forks), 1);
    conn_tls_set_log(NULL, NULL);
}

static void in_child(void) {
    *child_step = 0;
    int sv[2];
    socket_pair(sv);
    conn_tls *c = conn_tls_new_server(srv, sv[0]);
    CHECK(c);
    CHECK_EQ(conn_tls_pool_fd(pool), -1);
    CHECK_EQ(conn_tls_pool_submit(pool, c, NULL), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_thread_last_error(), "forked child");
    conn_tls *done = NULL;
    void *user = NULL;
    int status = 0;
    CHECK_EQ(conn_tls_pool_collect(pool, &done, &user, &status), CONN_TLS_EINVAL);
    conn_tls_free(c); /* still the caller's: the submit took nothing */
    close(sv[0]);
    close(sv[1]);
    *child_step = 1;

    conn_tls_set_log(child_log, NULL);
    CHECK(conn_tls_new_server(srv, -1) == NULL);
    CHECK(atomic_load(&child_calls) > 0);
    *child_step = 2;

    char err[256];
    CHECK_EQ(conn_tls_config_set(cli_cfg, "session-caching", "yes", err, sizeof err), CONN_TLS_OK);
    CHECK_EQ(conn_tls_ctx_reload(cli, cli_cfg, err, sizeof err), CONN_TLS_OK);
    *child_step = 3;

    for (int i = 0; i < 3; i++) CHECK_EQ(sessions(), CONN_TLS_OK);
    *child_step = 4;

    conn_tls_pool_free(pool);
    *child_step = 5;

    conn_tls_set_log(NULL, NULL);
    *child_step = DONE;
}

int main(int argc, char **argv) {
    if (argc > 1) FORKS = atoi(argv[1]);
    child_step = mmap(NULL, sizeof *child_step, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(child_step != MAP_FAILED);
    srv = ctx_from(config_of("cert-file", cert("server.crt"), "key-file", cert("server.key"), "ca-cert-file",
                             cert("ca.crt"), "auth-clients", "optional", NULL));
    cli_cfg = config_of("ca-cert-file", cert("ca.crt"), NULL);
    char err[256];
    cli = conn_tls_ctx_new(cli_cfg, err, sizeof err);
    CHECK(cli);
    pool = conn_tls_pool_new(2, 64, 5000);
    CHECK(pool);
    fork_during_blocking_read();
    fork_from_log_callback();
    conn_tls_set_log(parent_log, NULL);

    pthread_t threads[THREADS];
    void *(*bodies[THREADS])(void *) = {logger, pool_feeder, session_maker, reloader};
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&threads[i], NULL, bodies[i], NULL) == 0);

    int stuck[STEP_COUNT] = {0};
    int failed = 0, hung = 0;
    for (int i = 0; i < FORKS; i++) {
        usleep(2000);
        *child_step = -1;
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            in_child();
            _exit(0);
        }
        /* A hang guard, not a timing: a child's work takes milliseconds. */
        int wstatus = 0;
        double deadline = now_s() + 20;
        pid_t got;
        while ((got = waitpid(pid, &wstatus, WNOHANG)) == 0 && now_s() < deadline) usleep(1000);
        if (got == 0) {
            int step = *child_step;
            fprintf(stderr, "fork %d: the child hung after \"%s\"\n", i, step >= 0 ? STEPS[step] : "(fork)");
            if (step >= 0) stuck[step]++;
            hung++;
            kill(pid, SIGKILL);
            CHECK(waitpid(pid, &wstatus, 0) == pid);
        } else if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
            fprintf(stderr, "fork %d: the child failed (status %d) after step %d\n", i, wstatus, *child_step);
            failed++;
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++) CHECK(pthread_join(threads[i], NULL) == 0);
    conn_tls_set_log(NULL, NULL);
    conn_tls_pool_free(pool);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
    conn_tls_config_free(cli_cfg);
    printf("fork under load: %d children, %d hung, %d failed; %ld messages logged in the parent\n", FORKS, hung,
           failed, atomic_load(&parent_calls));
    for (int s = 0; s < STEP_COUNT; s++)
        if (stuck[s]) printf("  hung after \"%s\": %d\n", STEPS[s], stuck[s]);
    CHECK_EQ(hung, 0);
    CHECK_EQ(failed, 0);
    CHECK(atomic_load(&parent_calls) > 0);
    return 0;
}
