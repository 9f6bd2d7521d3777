/* deploy_client MODE PORT CA CERT KEY TRANSPORT [ARGS]
 * The client of tests/deployments.rs, built against libvalkey 0.5.0 (-DCLIENT_VALKEY: its
 * cluster client, or a plain context) or hiredis 1.2.0 (-DCLIENT_HIREDIS: failover-plain
 * and failover-sentinel only), against the TLS cluster node (or Sentinel) on
 * 127.0.0.1:PORT, mutual TLS with CERT/KEY signed by CA, over TRANSPORT: conntls
 * (contrib/libvalkey's or contrib/hiredis's transport) or openssl (the library's own TLS,
 * its default settings). One mode per run:
 *   write NAME SECONDS MAX RATE SIZE ACKS
 *       SETs NAME:0, NAME:1 ... (at most MAX keys, at most RATE a second, 0 for no limit,
 *       for at most SECONDS) of SIZE-byte values that name their key; every key the
 *       cluster acknowledged with +OK is appended to the file ACKS (one index a line);
 *       a failed SET is counted and the next key tried
 *   verify NAME SIZE ACKS
 *       GETs every key ACKS lists: each must hold its value, byte for byte
 *   read-replica NAME SECONDS
 *       READONLY on the node at PORT (a replica), then GETs of NAME:0, NAME:1 ... for
 *       SECONDS: what it served, what it redirected (another shard's slot), errors
 *   failover NAME TAG SECONDS USER_TIMEOUT_MS ACKS
 *       A writer for a failover (conntls with tcp-user-timeout USER_TIMEOUT_MS): SETs of
 *       64-byte values to {TAG}:NAME:i (verify takes {TAG}:NAME as its NAME),
 *       each acknowledged only once WAIT 1 2000 on the key's node says a replica has it
 *       (appended to ACKS). Prints "connected" after the first, then waits for a line on
 *       stdin (the test silences the primary meanwhile) and writes on for SECONDS,
 *       printing "recovered after S s" at the first write acknowledged after that line;
 *       after a failed command the slot map is fetched again, as an application does
 *   failover-plain NAME TAG SECONDS USER_TIMEOUT_MS ACKS
 *       The same through a plain context to the primary of TAG's slot, looked up in the
 *       first node's CLUSTER SLOTS, and looked up again after a failed SET
 *   failover-sentinel NAME TAG SECONDS USER_TIMEOUT_MS ACKS
 *       The same through a plain context to the primary the Sentinel at PORT names for
 *       the service "mymaster" (SENTINEL GET-MASTER-ADDR-BY-NAME), asked again after a
 *       failed SET; TAG only names the keys
 *   verify-sentinel NAME SIZE ACKS
 *       verify on the primary the Sentinel at PORT names
 * The cluster's first node, or the Sentinel, is DEPLOY_HOST (an environment variable;
 * 127.0.0.1 by default).
 * Prints one line of counts; exit 0 when the mode's counts hold (write: always; verify:
 * nothing lost; read-replica: something served, no error), 1 otherwise, 2 on bad set-up. */
#include <conntls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "client_library.h"

static const char *port_s, *ca, *cert, *key, *transport;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
    if (s <= 0) return;
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static const char *user_timeout_ms; /* conntls's tcp-user-timeout, when set */

static conn_tls_ctx *conntls_ctx(void) {
    char err[256];
    conn_tls_config *cfg = client_config(ca, cert, key, user_timeout_ms, err, sizeof err);
    conn_tls_ctx *ctx = cfg ? conn_tls_ctx_new(cfg, err, sizeof err) : NULL;
    conn_tls_config_free(cfg);
    if (!ctx) {
        printf("conntls context: %s\n", err);
        exit(2);
    }
    return ctx;
}

#ifdef CLIENT_VALKEY
static valkeyClusterContext *cluster_connect(void) {
    static char nodes[64];
    const char *host = getenv("DEPLOY_HOST");
    snprintf(nodes, sizeof nodes, "%s:%s", host ? host : "127.0.0.1", port_s);
    static struct timeval connect_timeout = {.tv_sec = 10};
    valkeyClusterOptions options = {0};
    options.initial_nodes = nodes;
    options.connect_timeout = &connect_timeout;
    if (!strcmp(transport, "conntls")) {
        valkeyClusterOptionsUseConntls(&options, conntls_ctx());
    } else {
        valkeyTLSContextError e;
        options.tls = valkeyCreateTLSContext(ca, NULL, cert, key, "localhost", &e);
        options.tls_init_fn = &valkeyInitiateTLSWithContext;
        if (!options.tls) {
            printf("libvalkey TLS context: %s\n", valkeyTLSContextGetError(e));
            exit(2);
        }
    }
    valkeyClusterContext *cc = valkeyClusterConnectWithOptions(&options);
    if (!cc || cc->err) {
        printf("cluster connect: %s\n", cc ? cc->errstr : "out of memory");
        exit(2);
    }
    return cc;
}
#endif

/* Key `i` of writer `name`, and its value: the key, then a pattern that depends on i. */
static void key_of(char *k, size_t klen, const char *name, long i) {
    snprintf(k, klen, "%s:%ld", name, i);
}

static void value_of(char *v, size_t size, const char *k, long i) {
    for (size_t j = 0; j < size; j++) v[j] = (char)('a' + (j * 7 + (size_t)i) % 26);
    memcpy(v, k, strlen(k) < size ? strlen(k) : size);
}

#ifdef CLIENT_VALKEY /* libvalkey's cluster client */
static int write_keys(const char *name, double seconds, long max, double rate, size_t size, const char *acks_path) {
    FILE *acks = fopen(acks_path, "a");
    if (!acks) return 2;
    valkeyClusterContext *cc = cluster_connect();
    char *v = malloc(size), k[128];
    long acked = 0, failed = 0;
    double start = now_s(), end = start + seconds;
    char first_error[256] = "";
    for (long i = 0; i < max && now_s() < end; i++) {
        if (rate > 0) sleep_s(start + (double)i / rate - now_s());
        key_of(k, sizeof k, name, i);
        value_of(v, size, k, i);
        valkeyReply *r = valkeyClusterCommand(cc, "SET %s %b", k, v, size);
        if (r && r->type == VALKEY_REPLY_STATUS && !strcmp(r->str, "OK")) {
            fprintf(acks, "%ld\n", i);
            acked++;
        } else {
            if (!failed) snprintf(first_error, sizeof first_error, "%s", r ? r->str : cc->errstr);
            failed++;
            sleep_s(0.01); /* a failing cluster is not hammered */
        }
        if (r) freeReplyObject(r);
    }
    double took = now_s() - start;
    printf("writer %s over %s: acked %ld, failed %ld, %.0f SET/s%s%s\n", name, transport, acked, failed,
           (double)(acked + failed) / (took > 0 ? took : 1), failed ? "; first error: " : "", first_error);
    fclose(acks);
    free(v);
    valkeyClusterFree(cc);
    return 0;
}

/* How verify GETs a key: through the cluster client or a plain context. */
typedef struct {
    Reply *(*get)(void *self, const char *k);
    const char *(*error)(void *self); /* why get returned NULL */
    void *self;
} getter;

static int verify(getter g, const char *name, size_t size, const char *acks_path) {
    FILE *acks = fopen(acks_path, "r");
    if (!acks) return 2;
    char *v = malloc(size), k[128];
    long i, checked = 0, lost = 0, wrong = 0;
    while (fscanf(acks, "%ld", &i) == 1) {
        key_of(k, sizeof k, name, i);
        value_of(v, size, k, i);
        Reply *r = g.get(g.self, k);
        if (!r || r->type != REPLY_STRING)
            lost++;
        else if (r->len != size || memcmp(r->str, v, size))
            wrong++;
        if ((lost || wrong) && lost + wrong == 1) printf("first missing or wrong: %s (%s)\n", k, r ? "reply" : g.error(g.self));
        if (r) FREE_REPLY(r);
        checked++;
    }
    printf("verify %s: %ld acknowledged, %ld lost, %ld wrong\n", name, checked, lost, wrong);
    fclose(acks);
    free(v);
    return lost || wrong;
}

static Reply *cluster_get(void *self, const char *k) {
    return valkeyClusterCommand(self, "GET %s", k);
}

static const char *cluster_error(void *self) {
    return ((valkeyClusterContext *)self)->errstr;
}

static int read_replica(const char *name, double seconds) {
    struct timeval tv = {.tv_sec = 10};
    valkeyContext *c = valkeyConnectWithTimeout("127.0.0.1", atoi(port_s), tv);
    conn_tls_ctx *ctx = !strcmp(transport, "conntls") ? conntls_ctx() : NULL;
    if (!c || c->err ||
        (ctx ? valkeyInitiateConntls(c, ctx, "localhost") : initiate_openssl(c, ca, cert, key)) != VALKEY_OK) {
        printf("replica connect: %s\n", c ? c->errstr : "out of memory");
        return 2;
    }
    valkeyReply *r = valkeyCommand(c, "READONLY");
    if (!r || r->type != VALKEY_REPLY_STATUS) {
        printf("READONLY: %s\n", r ? r->str : c->errstr);
        return 2;
    }
    freeReplyObject(r);
    long served = 0, moved = 0, errors = 0;
    char k[128], first_error[256] = "";
    double end = now_s() + seconds;
    for (long i = 0; now_s() < end; i++) {
        key_of(k, sizeof k, name, i % 100000);
        r = valkeyCommand(c, "GET %s", k);
        if (r && (r->type == VALKEY_REPLY_STRING || r->type == VALKEY_REPLY_NIL))
            served++;
        else if (r && r->type == VALKEY_REPLY_ERROR && !strncmp(r->str, "MOVED", 5))
            moved++;
        else {
            if (!errors) snprintf(first_error, sizeof first_error, "%s", r ? r->str : c->errstr);
            errors++;
        }
        if (r) freeReplyObject(r);
        if (!r) break; /* the connection is gone: counted, not retried */
    }
    printf("reader over %s: served %ld, redirected %ld, errors %ld%s%s\n", transport, served, moved, errors,
           errors ? "; first error: " : "", first_error);
    valkeyFree(c);
    conn_tls_ctx_free(ctx);
    return served == 0 || errors > 0;
}
#endif

/* ---- failover: one loop, over a cluster context or over a plain context ---- */

/* A writer's step: SET k to v, then WAIT 1 2000 on the key's primary. Returns 1 when a
 * replica has it, 0 when set but not replicated, -1 when the SET failed (why, in err):
 * the writer has then prepared its next try (a fresh slot map, a new connection). */
typedef struct {
    int (*write)(void *self, const char *k, const char *v, size_t n, char *err, size_t errlen);
    void *self;
} writer;

static int failover(writer w, const char *name, const char *tag, double seconds, const char *acks_path) {
    FILE *acks = fopen(acks_path, "a");
    if (!acks) return 2;
    char v[64], k[160], prefix[128], first_error[256] = "", err[256];
    snprintf(prefix, sizeof prefix, "{%s}:%s", tag, name); /* verify takes it as NAME */
    long acked = 0, failed = 0, unreplicated = 0;
    double went = 0, recovered = -1, end = 0;
    for (long i = 0; !went || now_s() < end; i++) {
        key_of(k, sizeof k, prefix, i);
        value_of(v, sizeof v, k, i);
        int written = w.write(w.self, k, v, sizeof v, err, sizeof err);
        if (written == 1) {
            fprintf(acks, "%ld\n", i);
            fflush(acks);
            acked++;
            if (!went) {
                /* Connected and replicated: the test may silence the primary now. */
                printf("connected\n");
                fflush(stdout);
                char line[16];
                if (!fgets(line, sizeof line, stdin)) return 2;
                went = now_s();
                end = went + seconds;
            } else if (recovered < 0) {
                recovered = now_s() - went;
                printf("recovered after %.1f s\n", recovered);
                fflush(stdout);
            }
        } else if (written == 0) {
            unreplicated++;
        } else {
            if (!failed) snprintf(first_error, sizeof first_error, "%s", err);
            failed++;
            sleep_s(0.1); /* a failing cluster is not hammered */
        }
    }
    printf("failover %s over %s: acked %ld, failed %ld, not replicated %ld%s%s\n", name, transport, acked, failed,
           unreplicated, failed ? "; first error: " : "", first_error);
    fclose(acks);
    return 0;
}

#ifdef CLIENT_VALKEY
/* Through libvalkey's cluster client; after a failed SET the slot map is fetched again
 * (the primary may have moved), as an application does. */
static int cluster_write(void *self, const char *k, const char *v, size_t n, char *err, size_t errlen) {
    valkeyClusterContext *cc = self;
    valkeyReply *r = valkeyClusterCommand(cc, "SET %s %b", k, v, n);
    int ok = r && r->type == VALKEY_REPLY_STATUS;
    if (!ok) snprintf(err, errlen, "%s", r ? r->str : cc->errstr);
    if (r) freeReplyObject(r);
    if (!ok) {
        valkeyClusterUpdateSlotmap(cc);
        return -1;
    }
    valkeyClusterNode *node = valkeyClusterGetNodeByKey(cc, (char *)k);
    r = node ? valkeyClusterCommandToNode(cc, node, "WAIT 1 2000") : NULL;
    int replicated = r && r->type == VALKEY_REPLY_INTEGER && r->integer >= 1;
    if (r) freeReplyObject(r);
    return replicated;
}
#endif

/* A blocking context on TRANSPORT to host:port (no command timeout, as a program that
 * sets none), or NULL. */
static Context *connect_tls(const char *host, int port) {
    static conn_tls_ctx *ctx;
    struct timeval tv = {.tv_sec = 10};
    Context *c = CONNECT(host, port, tv);
    if (!c || c->err) {
        if (c) FREE(c);
        return NULL;
    }
    if (!strcmp(transport, "conntls") && !ctx) ctx = conntls_ctx();
    if ((ctx ? INITIATE_CONNTLS(c, ctx, NULL) : initiate_openssl(c, ca, cert, key)) != ST_OK) {
        FREE(c);
        return NULL;
    }
    return c;
}

/* The node at DEPLOY_HOST:PORT (the cluster's first node, or the Sentinel), connected. */
static Context *connect_first(void) {
    const char *host = getenv("DEPLOY_HOST");
    return connect_tls(host ? host : "127.0.0.1", atoi(port_s));
}

/* The primary of {tag}'s slot, as the first node names it in CLUSTER SLOTS, connected;
 * NULL when none answers. */
static Context *primary_by_slots(const char *tag) {
    Context *seed = connect_first();
    if (!seed) return NULL;
    Reply *r = COMMAND(seed, "CLUSTER KEYSLOT {%s}", tag);
    long long slot = r && r->type == REPLY_INTEGER ? r->integer : -1;
    if (r) FREE_REPLY(r);
    r = slot >= 0 ? COMMAND(seed, "CLUSTER SLOTS") : NULL;
    Context *c = NULL;
    for (size_t i = 0; r && r->type == REPLY_ARRAY && i < r->elements && !c; i++) {
        Reply *range = r->element[i]; /* first slot, last slot, [host, port, id...] of the primary */
        if (range->elements >= 3 && range->element[0]->integer <= slot && slot <= range->element[1]->integer &&
            range->element[2]->elements >= 2)
            c = connect_tls(range->element[2]->element[0]->str, (int)range->element[2]->element[1]->integer);
    }
    if (r) FREE_REPLY(r);
    FREE(seed);
    return c;
}

/* The primary the Sentinel names for "mymaster", connected; NULL when none answers. */
static Context *primary_by_sentinel(const char *tag) {
    (void)tag;
    Context *sentinel = connect_first();
    if (!sentinel) return NULL;
    Reply *r = COMMAND(sentinel, "SENTINEL GET-MASTER-ADDR-BY-NAME mymaster");
    Context *c = NULL;
    if (r && r->type == REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REPLY_STRING)
        c = connect_tls(r->element[0]->str, atoi(r->element[1]->str));
    if (r) FREE_REPLY(r);
    FREE(sentinel);
    return c;
}

/* Through a plain context to the primary `lookup` found; after a failed command the
 * context is dropped and the primary looked up again. */
typedef struct {
    Context *c;
    const char *tag;
    Context *(*lookup)(const char *tag);
} plain_client;

static int plain_write(void *self, const char *k, const char *v, size_t n, char *err, size_t errlen) {
    plain_client *p = self;
    if (!p->c) p->c = p->lookup(p->tag);
    if (!p->c) {
        snprintf(err, errlen, "no primary answered");
        return -1;
    }
    Reply *r = COMMAND(p->c, "SET %s %b", k, v, n);
    int ok = r && r->type == REPLY_STATUS;
    if (!ok) snprintf(err, errlen, "%s", r ? r->str : p->c->errstr);
    if (r) FREE_REPLY(r);
    if (!ok) {
        FREE(p->c);
        p->c = NULL;
        return -1;
    }
    r = COMMAND(p->c, "WAIT 1 2000");
    int replicated = r && r->type == REPLY_INTEGER && r->integer >= 1;
    if (r) FREE_REPLY(r);
    return replicated;
}

#ifdef CLIENT_VALKEY
static Reply *plain_get(void *self, const char *k) {
    plain_client *p = self;
    if (!p->c) p->c = p->lookup(p->tag);
    Reply *r = p->c ? COMMAND(p->c, "GET %s", k) : NULL;
    if (!r && p->c) {
        FREE(p->c);
        p->c = NULL;
    }
    return r;
}

static const char *plain_error(void *self) {
    plain_client *p = self;
    return p->c ? p->c->errstr : "no primary answered";
}
#endif

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: deploy_client MODE PORT CA CERT KEY conntls|openssl ARGS\n");
        return 2;
    }
    const char *mode = argv[1];
    port_s = argv[2], ca = argv[3], cert = argv[4], key = argv[5], transport = argv[6];
#ifdef CLIENT_VALKEY
    if (!strcmp(mode, "write") && argc == 13)
        return write_keys(argv[7], atof(argv[8]), atol(argv[9]), atof(argv[10]), (size_t)atol(argv[11]), argv[12]);
    if (!strcmp(mode, "verify") && argc == 10) {
        valkeyClusterContext *cc = cluster_connect();
        int status = verify((getter){cluster_get, cluster_error, cc}, argv[7], (size_t)atol(argv[8]), argv[9]);
        valkeyClusterFree(cc);
        return status;
    }
    if (!strcmp(mode, "verify-sentinel") && argc == 10) {
        plain_client p = {NULL, NULL, primary_by_sentinel};
        int status = verify((getter){plain_get, plain_error, &p}, argv[7], (size_t)atol(argv[8]), argv[9]);
        if (p.c) FREE(p.c);
        return status;
    }
    if (!strcmp(mode, "read-replica") && argc == 9) return read_replica(argv[7], atof(argv[8]));
    if (!strcmp(mode, "failover") && argc == 12) {
        user_timeout_ms = argv[10];
        writer w = {cluster_write, cluster_connect()};
        return failover(w, argv[7], argv[8], atof(argv[9]), argv[11]);
    }
#endif
    int by_slots = !strcmp(mode, "failover-plain"), by_sentinel = !strcmp(mode, "failover-sentinel");
    if ((by_slots || by_sentinel) && argc == 12) {
        user_timeout_ms = argv[10];
        plain_client p = {NULL, argv[8], by_slots ? primary_by_slots : primary_by_sentinel};
        writer w = {plain_write, &p};
        return failover(w, argv[7], argv[8], atof(argv[9]), argv[11]);
    }
    fprintf(stderr, "deploy_client: bad arguments\n");
    return 2;
}
