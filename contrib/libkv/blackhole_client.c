/* blackhole_client: a libkv client that waits on a server that vanishes (a black hole),
 * over the conntls transport or libkv's own OpenSSL one; by hand, in network namespaces
 * (contrib/libkv/README.md has the commands).
 *
 *   blackhole_client conntls|openssl HOST PORT CA CERT KEY [USER_TIMEOUT_MS]
 *
 * Connects (blocking context), PINGs, prints "connected", then waits for a line on stdin
 * (the black hole is made meanwhile), PINGs again and prints how long that took and how
 * it ended. With conntls, USER_TIMEOUT_MS is the context's tcp-user-timeout (default:
 * conntls's own, 30 s). Built against a libkv tree with TLS (libkv.a, libkv_tls.a):
 *
 *   cc -O2 contrib/libkv/blackhole_client.c -I$LIBKV/include $LIBKV/lib/libkv_tls.a \
 *      $LIBKV/lib/libkv.a $(pkg-config --cflags --libs conntls) -lssl -lcrypto -o blackhole_client
 */
#include <kv/kv.h>
#include <kv/kv_conntls.h>
#include <kv/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(const char *what, const char *why) {
    fprintf(stderr, "blackhole_client: %s: %s\n", what, why);
    return 1;
}

/* TLS on a connected context, through the transport named by `kind`. */
static int start_tls(kvContext *c, const char *kind, const char *ca, const char *cert, const char *key, const char *user_timeout) {
    if (!strcmp(kind, "openssl")) {
        kvTLSContextError err = KV_TLS_CTX_NONE;
        kvTLSContext *tls = kvCreateTLSContext(ca, NULL, cert, key, NULL, &err);
        if (!tls) return fail("kvCreateTLSContext", kvTLSContextGetError(err));
        return kvInitiateTLSWithContext(c, tls) == KV_OK ? 0 : fail("kvInitiateTLSWithContext", c->errstr);
    }
    conn_tls_config *cfg = conn_tls_config_new();
    char err[256];
    const char *options[][2] = {{"ca-cert-file", ca}, {"client-cert-file", cert}, {"client-key-file", key},
                                {"tcp-user-timeout", user_timeout}};
    for (size_t i = 0; i < 4; i++)
        if (options[i][1] && conn_tls_config_set(cfg, options[i][0], options[i][1], err, sizeof err) != CONN_TLS_OK)
            return fail("conntls option", err);
    conn_tls_ctx *ctx = conn_tls_ctx_new(cfg, err, sizeof err);
    conn_tls_config_free(cfg);
    if (!ctx) return fail("conn_tls_ctx_new", err);
    return kvInitiateConntls(c, ctx, NULL) == KV_OK ? 0 : fail("kvInitiateConntls", c->errstr);
}

int main(int argc, char **argv) {
    if (argc < 7 || (strcmp(argv[1], "conntls") && strcmp(argv[1], "openssl"))) {
        fprintf(stderr, "usage: blackhole_client conntls|openssl HOST PORT CA CERT KEY [USER_TIMEOUT_MS]\n");
        return 2;
    }
    kvContext *c = kvConnect(argv[2], atoi(argv[3]));
    if (!c || c->err) return fail("connect", c ? c->errstr : "out of memory");
    if (start_tls(c, argv[1], argv[4], argv[5], argv[6], argc > 7 ? argv[7] : NULL)) return 1;
    kvReply *r = kvCommand(c, "PING");
    if (!r) return fail("PING", c->errstr);
    freeReplyObject(r);
    printf("connected\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return fail("stdin", "closed");
    double start = now_s();
    r = kvCommand(c, "PING");
    printf("%s after %.1f s: %s\n", argv[1], now_s() - start, r ? "answered" : c->errstr);
    if (r) freeReplyObject(r);
    kvFree(c);
    return 0;
}
