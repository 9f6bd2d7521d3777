/* client_transport MODE PORT CA CERT KEY [ARGS]
 * A program of hiredis 1.2.0 (built with -DCLIENT_HIREDIS) or libvalkey 0.5.0
 * (-DCLIENT_VALKEY), on the conntls transport of contrib/hiredis or contrib/libvalkey, or
 * on the library's own OpenSSL TLS, against a TLS server on 127.0.0.1:PORT that wants the
 * client certificate CERT/KEY (mutual TLS) and is signed by CA. One mode per run:
 *   roundtrip conntls|openssl SIZE  SET and GET of a SIZE-byte value on a blocking context,
 *                                   then, on conntls, the same on async contexts (hiredis:
 *                                   its poll and libevent adapters; libvalkey, whose sdist
 *                                   has none: an adapter on poll(2) here); every byte
 *                                   compared
 *   wrongca OTHER_CA                the transport against a CA that did not sign the server:
 *                                   refused, the message printed
 *   reload OTHER_CA                 one connection; the conn_tls_ctx reloaded with OTHER_CA:
 *                                   a second connection is refused while the first still
 *                                   answers; reloaded back: a third connects
 *   pipeline MIB                    MIB MiB of SETs (64 KiB values) pipelined through a 4 KiB
 *                                   send buffer, then GETs of them: every reply right
 *   badinput                        NULL context, NULL conn_tls_ctx, a context already on
 *                                   TLS: an error and a message each
 *   cluster SIZE                    (libvalkey) a cluster context whose node connections
 *                                   go through valkeyClusterOptionsUseConntls: SET and GET
 *                                   of a SIZE-byte value routed by the cluster, every byte
 *                                   compared
 *   cluster-stopped                 (libvalkey) a cluster context on a node that the test
 *                                   stops after "connected" and a line on stdin: each
 *                                   later command's error, printed
 *   blackhole conntls|openssl HOST MS   connects to HOST (conntls: tcp-user-timeout MS), PINGs,
 *                                   prints "connected", waits for a line on stdin (the test
 *                                   makes the black hole meanwhile), PINGs again and prints
 *                                   how long that took and how it ended
 * Prints what it did; exit 0 when all held, 1 otherwise. */
#include <conntls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "client_library.h"
#ifdef CLIENT_HIREDIS /* async contexts on two of hiredis's own adapters */
#include "adapters/libevent.h"
#include "adapters/poll.h"
#else
#include <poll.h>
#endif

static const char *port_s, *ca, *cert, *key;
static int failed;

#define EXPECT(cond, ...)                                      \
    do {                                                       \
        if (!(cond)) {                                         \
            printf("FAILED (%s:%d): ", __FILE__, __LINE__);    \
            printf(__VA_ARGS__);                               \
            printf("\n");                                      \
            failed = 1;                                        \
        }                                                      \
    } while (0)

/* A client context of CA `ca_file` and the client certificate, with tcp-user-timeout
 * `user_timeout_ms` when not NULL. */
static conn_tls_ctx *client_ctx_with(const char *ca_file, const char *user_timeout_ms) {
    char err[256];
    conn_tls_config *cfg = client_config(ca_file, cert, key, user_timeout_ms, err, sizeof err);
    if (!cfg) {
        printf("config: %s\n", err);
        exit(2);
    }
    conn_tls_ctx *ctx = conn_tls_ctx_new(cfg, err, sizeof err);
    conn_tls_config_free(cfg);
    if (!ctx) {
        printf("context: %s\n", err);
        exit(2);
    }
    return ctx;
}

static conn_tls_ctx *client_ctx(const char *ca_file) {
    return client_ctx_with(ca_file, NULL);
}

/* A connected blocking context: a connect timeout, no command timeout (as a program that
 * sets none). */
static Context *connect_to(const char *host) {
    struct timeval tv = {.tv_sec = 20};
    Context *c = CONNECT(host, atoi(port_s), tv);
    if (!c || c->err) {
        printf("connect: %s\n", c ? c->errstr : "out of memory");
        exit(2);
    }
    return c;
}

static Context *connect_plain(void) {
    return connect_to("127.0.0.1");
}

static char *pattern(size_t size, int seed) {
    char *v = malloc(size);
    for (size_t i = 0; i < size; i++) v[i] = (char)('a' + (i * 7 + (size_t)seed) % 26);
    return v;
}

static int set_get(Context *c, const char *k, const char *v, size_t size) {
    Reply *r = COMMAND(c, "SET %s %b", k, v, size);
    int ok = r && r->type != REPLY_ERROR;
    if (r) FREE_REPLY(r);
    r = ok ? COMMAND(c, "GET %s", k) : NULL;
    ok = r && r->type == REPLY_STRING && r->len == size && !memcmp(r->str, v, size);
    if (!ok) printf("GET %s: %s\n", k, r ? "wrong value" : c->errstr);
    if (r) FREE_REPLY(r);
    return ok;
}

/* ---- async ---- */

/* An event loop for async contexts: attach the context, then run one bounded step (at most
 * 0.1 s, returning after events were handled). */
typedef struct {
    const char *name;
    void (*attach)(AsyncContext *ac);
    void (*step)(AsyncContext *ac);
    void (*done)(void);
} event_loop;

#ifdef CLIENT_HIREDIS
static void poll_attach(AsyncContext *ac) {
    redisPollAttach(ac);
}
static void poll_step(AsyncContext *ac) {
    redisPollTick(ac, 0.1);
}
static struct event_base *base;
static void libevent_attach(AsyncContext *ac) {
    base = event_base_new();
    redisLibeventAttach(ac, base);
}
static void libevent_step(AsyncContext *ac) {
    (void)ac;
    struct timeval most = {.tv_usec = 100000};
    event_base_loopexit(base, &most);
    event_base_loop(base, EVLOOP_ONCE);
}
static void libevent_done(void) {
    event_base_free(base);
}
static void nothing(void) {
}
static const event_loop loops[] = {{"poll", poll_attach, poll_step, nothing}, {"libevent", libevent_attach, libevent_step, libevent_done}};
#else
/* libvalkey's sdist ships no adapter: the smallest one, on poll(2), from its ev hooks. */
static struct {
    int read, write;
} interest;
static void add_read(void *p) {
    (void)p;
    interest.read = 1;
}
static void del_read(void *p) {
    (void)p;
    interest.read = 0;
}
static void add_write(void *p) {
    (void)p;
    interest.write = 1;
}
static void del_write(void *p) {
    (void)p;
    interest.write = 0;
}
static void own_attach(AsyncContext *ac) {
    interest.read = interest.write = 0;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
}
static void own_step(AsyncContext *ac) {
    struct pollfd p = {.fd = ac->c.fd, .events = (short)((interest.read ? POLLIN : 0) | (interest.write ? POLLOUT : 0))};
    if (poll(&p, 1, 100) <= 0) return;
    if (p.revents & (POLLIN | POLLERR | POLLHUP)) valkeyAsyncHandleRead(ac);
    if ((p.revents & POLLOUT) && !ac->err) valkeyAsyncHandleWrite(ac);
}
static void nothing(void) {
}
static const event_loop loops[] = {{"poll (the test's own adapter)", own_attach, own_step, nothing}};
#endif

static size_t async_size;
static const char *async_value;
static int async_done, async_ok, async_gone;

static void on_get(AsyncContext *ac, void *reply, void *priv) {
    (void)priv;
    Reply *r = reply;
    async_ok = r && r->type == REPLY_STRING && r->len == async_size && !memcmp(r->str, async_value, async_size);
    if (!r) printf("async GET: %s\n", ac->errstr);
    async_done = 1;
}

/* The library frees a context it disconnects (an error): it must not be touched then. */
static void on_disconnect(const AsyncContext *ac, int status) {
    if (status != ST_OK) printf("async: disconnected: %s\n", ac->errstr);
    async_gone = 1;
}

static int async_roundtrip(const event_loop *loop, conn_tls_ctx *ctx, const char *v, size_t size) {
    AsyncContext *ac = ASYNC_CONNECT("127.0.0.1", atoi(port_s));
    if (!ac || ac->err) return 0;
    if (INITIATE_CONNTLS(&ac->c, ctx, "localhost") != ST_OK) {
        printf("async initiate: %s\n", ac->c.errstr);
        ASYNC_FREE(ac);
        return 0;
    }
    loop->attach(ac);
    ASYNC_ON_DISCONNECT(ac, on_disconnect);
    async_value = v;
    async_size = size;
    async_done = async_ok = async_gone = 0;
    ASYNC_COMMAND(ac, NULL, NULL, "SET async %b", v, size);
    ASYNC_COMMAND(ac, on_get, NULL, "GET async");
    /* Bounded: at most 100,000 steps of at most 0.1 s each. */
    for (int i = 0; i < 100000 && !async_done && !async_gone; i++) loop->step(ac);
    int ok = async_done && async_ok;
    if (!async_done && !async_gone) printf("async: no reply\n");
    if (!async_gone) ASYNC_FREE(ac);
    loop->done();
    return ok;
}

/* ---- modes ---- */

static int roundtrip(const char *transport, size_t size) {
    char *v = pattern(size, 1);
    Context *c = connect_plain();
    conn_tls_ctx *ctx = client_ctx(ca);
    int conntls = !strcmp(transport, "conntls");
    int r = conntls ? INITIATE_CONNTLS(c, ctx, "localhost") : initiate_openssl(c, ca, cert, key);
    EXPECT(r == ST_OK, "initiate (%s): %s", transport, c->errstr);
    if (r == ST_OK) {
        EXPECT(set_get(c, "sync", v, size), "sync round trip");
        if (!failed) printf("sync: %zu bytes back byte for byte\n", size);
    }
    FREE(c);
    for (size_t i = 0; conntls && !failed && i < sizeof loops / sizeof loops[0]; i++) {
        EXPECT(async_roundtrip(&loops[i], ctx, v, size), "async round trip (%s)", loops[i].name);
        if (!failed) printf("async, %s: %zu bytes back byte for byte\n", loops[i].name, size);
    }
    conn_tls_ctx_free(ctx);
    free(v);
    return failed;
}

static int wrongca(const char *other_ca) {
    Context *c = connect_plain();
    conn_tls_ctx *ctx = client_ctx(other_ca);
    EXPECT(INITIATE_CONNTLS(c, ctx, "localhost") == ST_ERR, "a server of another CA was accepted");
    printf("wrong CA: %s\n", c->errstr);
    EXPECT(strstr(c->errstr, "verify") != NULL, "the message does not say verification failed");
    FREE(c);
    conn_tls_ctx_free(ctx);
    return failed;
}

static int ping(Context *c) {
    Reply *r = COMMAND(c, "PING");
    int ok = r && r->type == REPLY_STATUS && !strcmp(r->str, "PONG");
    if (r) FREE_REPLY(r);
    return ok;
}

static int reload(const char *other_ca) {
    conn_tls_ctx *ctx = client_ctx(ca);
    char err[256];
    Context *first = connect_plain();
    EXPECT(INITIATE_CONNTLS(first, ctx, "localhost") == ST_OK, "first: %s", first->errstr);
    conn_tls_config *cfg = client_config(other_ca, cert, key, NULL, err, sizeof err);
    EXPECT(cfg && conn_tls_ctx_reload(ctx, cfg, err, sizeof err) == CONN_TLS_OK, "reload: %s", err);
    conn_tls_config_free(cfg);
    Context *second = connect_plain();
    EXPECT(INITIATE_CONNTLS(second, ctx, "localhost") == ST_ERR, "after the reload, the old CA still verified");
    printf("after reload to another CA: new connection refused (%s)\n", second->errstr);
    EXPECT(ping(first), "the first connection stopped answering after the reload");
    cfg = client_config(ca, cert, key, NULL, err, sizeof err);
    EXPECT(cfg && conn_tls_ctx_reload(ctx, cfg, err, sizeof err) == CONN_TLS_OK, "reload back: %s", err);
    conn_tls_config_free(cfg);
    Context *third = connect_plain();
    EXPECT(INITIATE_CONNTLS(third, ctx, "localhost") == ST_OK && ping(third), "after the reload back: %s", third->errstr);
    if (!failed) printf("reload: first kept answering, second refused, third connected\n");
    FREE(first);
    FREE(second);
    FREE(third);
    conn_tls_ctx_free(ctx);
    return failed;
}

static int pipeline(int mib) {
    enum { VALUE = 64 * 1024 };
    int count = mib * 16;
    Context *c = connect_plain();
    int small = 4096;
    setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    conn_tls_ctx *ctx = client_ctx(ca);
    EXPECT(INITIATE_CONNTLS(c, ctx, "localhost") == ST_OK, "initiate: %s", c->errstr);
    char **values = calloc((size_t)count, sizeof *values);
    for (int i = 0; i < count; i++) {
        values[i] = pattern(VALUE, i);
        APPEND(c, "SET p:%d %b", i, values[i], (size_t)VALUE);
    }
    for (int i = 0; i < count; i++) APPEND(c, "GET p:%d", i);
    int right = 0;
    for (int i = 0; i < 2 * count && !failed; i++) {
        void *reply = NULL;
        if (GET_REPLY(c, &reply) != ST_OK) {
            EXPECT(0, "reply %d: %s", i, c->errstr);
            break;
        }
        Reply *r = reply;
        if (i < count)
            right += r->type == REPLY_STATUS;
        else
            right += r->type == REPLY_STRING && r->len == VALUE && !memcmp(r->str, values[i - count], VALUE);
        FREE_REPLY(r);
    }
    EXPECT(right == 2 * count, "%d of %d replies right", right, 2 * count);
    if (!failed) printf("pipeline: %d MiB of SETs through a 4 KiB send buffer, %d replies right\n", mib, right);
    for (int i = 0; i < count; i++) free(values[i]);
    free(values);
    FREE(c);
    conn_tls_ctx_free(ctx);
    return failed;
}

static int badinput(void) {
    conn_tls_ctx *ctx = client_ctx(ca);
    EXPECT(INITIATE_CONNTLS(NULL, ctx, "localhost") == ST_ERR, "NULL context accepted");
    Context *c = connect_plain();
    EXPECT(INITIATE_CONNTLS(c, NULL, "localhost") == ST_ERR, "NULL conn_tls_ctx accepted");
    printf("NULL conn_tls_ctx: %s\n", c->errstr);
    EXPECT(strstr(c->errstr, "NULL") != NULL, "no message for a NULL conn_tls_ctx");
    FREE(c);
    c = connect_plain(); /* a context with an error set is not reused */
    EXPECT(INITIATE_CONNTLS(c, ctx, "localhost") == ST_OK, "initiate: %s", c->errstr);
    EXPECT(INITIATE_CONNTLS(c, ctx, "localhost") == ST_ERR, "a context already on TLS was initiated again");
    printf("already on TLS: %s\n", c->errstr);
    EXPECT(strstr(c->errstr, "already associated") != NULL, "no message for a context already on TLS");
    FREE(c);
    /* A context whose connect failed (libvalkey's cluster client calls the TLS hook after
     * a failed reconnect too): refused, and the connect's own error stays. Port 1 on
     * loopback: nothing listens there. */
    struct timeval tv = {.tv_sec = 20};
    c = CONNECT("127.0.0.1", 1, tv);
    EXPECT(c && c->err, "a connect to port 1 succeeded");
    if (c && c->err) {
        char before[128];
        snprintf(before, sizeof before, "%s", c->errstr);
        EXPECT(INITIATE_CONNTLS(c, ctx, "localhost") == ST_ERR, "a failed connect initiated");
        printf("failed connect: %s\n", c->errstr);
        EXPECT(!strcmp(c->errstr, before), "the connect's error '%s' became '%s'", before, c->errstr);
    }
    if (c) FREE(c);
    conn_tls_ctx_free(ctx);
    return failed;
}

#ifdef CLIENT_VALKEY
static valkeyClusterContext *cluster_connect(conn_tls_ctx *ctx) {
    static char nodes[64];
    snprintf(nodes, sizeof nodes, "127.0.0.1:%s", port_s);
    valkeyClusterOptions options = {0};
    options.initial_nodes = nodes;
    EXPECT(valkeyClusterOptionsUseConntls(&options, ctx) == VALKEY_OK, "UseConntls");
    EXPECT(valkeyClusterOptionsUseConntls(NULL, ctx) == VALKEY_ERR, "NULL options accepted");
    valkeyClusterContext *cc = valkeyClusterConnectWithOptions(&options);
    EXPECT(cc && !cc->err, "cluster connect: %s", cc ? cc->errstr : "out of memory");
    return cc;
}

static int cluster(size_t size) {
    conn_tls_ctx *ctx = client_ctx(ca);
    valkeyClusterContext *cc = cluster_connect(ctx);
    char *v = pattern(size, 3);
    if (!failed) {
        valkeyReply *r = valkeyClusterCommand(cc, "SET cluster:key %b", v, size);
        EXPECT(r && r->type == VALKEY_REPLY_STATUS, "cluster SET: %s", r ? r->str : cc->errstr);
        if (r) freeReplyObject(r);
        r = valkeyClusterCommand(cc, "GET cluster:key");
        EXPECT(r && r->type == VALKEY_REPLY_STRING && r->len == size && !memcmp(r->str, v, size), "cluster GET: %s",
               r ? "wrong value" : cc->errstr);
        if (r) freeReplyObject(r);
    }
    if (!failed) printf("cluster: %zu bytes back byte for byte through the cluster context\n", size);
    free(v);
    valkeyClusterFree(cc);
    conn_tls_ctx_free(ctx);
    return failed;
}

/* A cluster context whose node stops (the test stops it once this prints "connected" and
 * then writes a line): each later command fails, and once the context reconnects (and
 * calls the TLS hook on the failed connection) the error is still the connect's own. */
static int cluster_stopped(void) {
    conn_tls_ctx *ctx = client_ctx(ca);
    valkeyClusterContext *cc = cluster_connect(ctx);
    if (failed) return failed;
    valkeyReply *r = valkeyClusterCommand(cc, "SET cluster:key up");
    EXPECT(r && r->type == VALKEY_REPLY_STATUS, "cluster SET: %s", r ? r->str : cc->errstr);
    if (r) freeReplyObject(r);
    printf("connected\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 2;
    for (int i = 0; i < 3; i++) {
        r = valkeyClusterCommand(cc, "GET cluster:key");
        EXPECT(r == NULL, "a reply from a stopped node");
        if (r) freeReplyObject(r);
        printf("command %d after the stop: %s\n", i, cc->errstr);
    }
    valkeyClusterFree(cc);
    conn_tls_ctx_free(ctx);
    return failed;
}
#endif

static double now_s(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static int blackhole(const char *transport, const char *host, const char *user_timeout_ms) {
    Context *c = connect_to(host);
    conn_tls_ctx *ctx = client_ctx_with(ca, user_timeout_ms);
    int r = !strcmp(transport, "conntls") ? INITIATE_CONNTLS(c, ctx, NULL) : initiate_openssl(c, ca, cert, key);
    if (r != ST_OK || !ping(c)) {
        printf("set-up: %s\n", c->errstr);
        return 2;
    }
    printf("connected\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 2;
    double start = now_s();
    int answered = ping(c);
    printf("ping after %.1f s: %s\n", now_s() - start, answered ? "answered" : c->errstr);
    FREE(c);
    conn_tls_ctx_free(ctx);
    return answered; /* 0: it failed, as it should */
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: client_transport MODE PORT CA CERT KEY [ARGS]\n");
        return 2;
    }
    const char *mode = argv[1];
    port_s = argv[2];
    ca = argv[3];
    cert = argv[4];
    key = argv[5];
    if (!strcmp(mode, "roundtrip") && argc == 8) return roundtrip(argv[6], (size_t)atol(argv[7]));
    if (!strcmp(mode, "wrongca") && argc == 7) return wrongca(argv[6]);
    if (!strcmp(mode, "reload") && argc == 7) return reload(argv[6]);
    if (!strcmp(mode, "pipeline") && argc == 7) return pipeline(atoi(argv[6]));
    if (!strcmp(mode, "badinput")) return badinput();
#ifdef CLIENT_VALKEY
    if (!strcmp(mode, "cluster") && argc == 7) return cluster((size_t)atol(argv[6]));
    if (!strcmp(mode, "cluster-stopped")) return cluster_stopped();
#endif
    if (!strcmp(mode, "blackhole") && argc == 9) return blackhole(argv[6], argv[7], argv[8]);
    fprintf(stderr, "client_transport: bad arguments\n");
    return 2;
}
