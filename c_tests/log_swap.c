/* The log callback's lifetime: while threads (and the handshake pool's workers) log, the
 * callback is swapped hundreds of times; the moment conn_tls_set_log returns, the old
 * callback's user data is marked retired and freed. A call of a retired callback, or one
 * still running, is a failure (and under ASan a use after free). Also: a callback that
 * calls conn_tls_set_log itself, or calls into the library, neither deadlocks nor recurses. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "testutil.h"

enum { LOGGERS = 3, SWAPS = 300, ALIVE = 0x5eed, DEAD = 0xdead };

typedef struct {
    atomic_int magic;
    atomic_int running; /* calls of the callback in progress with this user data */
    atomic_int calls;
} sink;

static atomic_int stop, violations, pool_thread_calls;
static conn_tls_ctx *srv;

static void on_log(void *ud, int level, const char *msg) {
    sink *s = ud;
    (void)level;
    CHECK(msg != NULL);
    if (atomic_load(&s->magic) != ALIVE) atomic_fetch_add(&violations, 1);
    atomic_fetch_add(&s->running, 1);
    atomic_fetch_add(&s->calls, 1);
    char name[32] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    if (strncmp(name, "conntls-hs-", 11) == 0) atomic_fetch_add(&pool_thread_calls, 1);
    usleep(50); /* a window for a swap to overtake a call in progress */
    if (atomic_load(&s->magic) != ALIVE) atomic_fetch_add(&violations, 1);
    atomic_fetch_sub(&s->running, 1);
}

/* Failing calls that log a warning, as fast as they come. */
static void *logger(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) CHECK(conn_tls_new_server(srv, -1) == NULL);
    return NULL;
}

/* Handshakes that fail on the pool's worker thread, which logs them there. */
static void *pool_feeder(void *arg) {
    while (!atomic_load(&stop)) pool_failing_handshake(arg, srv);
    return NULL;
}

static sink *new_sink(void) {
    sink *s = calloc(1, sizeof *s);
    CHECK(s);
    atomic_store(&s->magic, ALIVE);
    return s;
}

/* Once set_log returned, nothing of the old sink may run or be called: retire and free it. */
static void retire(sink *s) {
    if (atomic_load(&s->running) != 0) atomic_fetch_add(&violations, 1);
    atomic_store(&s->magic, DEAD);
    usleep(20); /* a call that slipped past the swap would now see DEAD */
    free(s);
}

/* Atomic only so ThreadSanitizer, which cannot see the library's own locks, sees the
 * hand-off to the callback's thread. */
static _Atomic(sink *) reentrant_next;
static void swaps_itself(void *ud, int level, const char *msg) {
    (void)ud;
    (void)level;
    (void)msg;
    /* From inside the callback: the library logs nothing to us re-entrantly, and the swap
     * does not wait for this very call. */
    CHECK(conn_tls_new_server(srv, -1) == NULL);
    conn_tls_set_log(on_log, atomic_load(&reentrant_next));
}

int main(void) {
    alarm(60);
    srv = ctx_from(config_of("cert-file", cert("server.crt"), "key-file", cert("server.key"), "auth-clients", "no", NULL));
    conn_tls_pool *pool = conn_tls_pool_new(1, 4, 5000);
    CHECK(pool);
    sink *current = new_sink();
    conn_tls_set_log(on_log, current);
    pthread_t threads[LOGGERS + 1];
    for (int i = 0; i < LOGGERS; i++) CHECK(pthread_create(&threads[i], NULL, logger, NULL) == 0);
    CHECK(pthread_create(&threads[LOGGERS], NULL, pool_feeder, pool) == 0);
    long delivered = 0;
    for (int i = 0; i < SWAPS; i++) {
        usleep(1000);
        sink *next = new_sink();
        conn_tls_set_log(on_log, next);
        delivered += atomic_load(&current->calls);
        retire(current);
        current = next;
    }
    /* Off, then on again from inside a callback. */
    conn_tls_set_log(NULL, NULL);
    retire(current);
    current = NULL;
    atomic_store(&reentrant_next, new_sink());
    conn_tls_set_log(swaps_itself, NULL);
    usleep(20000);
    atomic_store(&stop, 1);
    for (int i = 0; i <= LOGGERS; i++) CHECK(pthread_join(threads[i], NULL) == 0);
    conn_tls_set_log(NULL, NULL);
    sink *last = atomic_load(&reentrant_next);
    CHECK(atomic_load(&last->calls) > 0);
    retire(last);
    conn_tls_pool_free(pool);
    conn_tls_ctx_free(srv);
    printf("log swap: %d swaps, %ld messages delivered, %d on the pool's thread, %d violations\n", SWAPS, delivered,
           atomic_load(&pool_thread_calls), atomic_load(&violations));
    CHECK(delivered > SWAPS);
    CHECK(atomic_load(&pool_thread_calls) > 0);
    CHECK_EQ(atomic_load(&violations), 0);
    return 0;
}
