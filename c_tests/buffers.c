/* release-buffers: with yes (the default) a connection gives its OpenSSL record buffers
 * back once they are empty, so idle connections hold none; with no it keeps them (fewer
 * instructions per small request: BENCHMARKS.md). 100 connection pairs per setting, each
 * having carried a request and a reply, then idle: the heap they hold, from mallinfo2. */
#include <malloc.h>

#include "testutil.h"

enum { PAIRS = 100 };

/* The heap held by PAIRS idle pairs whose server context has release-buffers `release`. */
static long idle_heap(const char *release) {
    conn_tls_ctx *srv = ctx_from(config_of("cert-file", cert("server.crt"), "key-file", cert("server.key"),
                                           "auth-clients", "no", "release-buffers", release, NULL));
    conn_tls_ctx *cli = ctx_from(config_of("ca-cert-file", cert("ca.crt"), "release-buffers", release, NULL));
    static pair pairs[PAIRS];
    long before = (long)mallinfo2().uordblks;
    for (int i = 0; i < PAIRS; i++) {
        pair *p = &pairs[i];
        *p = connect_pair(srv, cli, "localhost", 0);
        CHECK_EQ(handshake_both(p->s, p->c), CONN_TLS_OK);
        char buf[32];
        CHECK_EQ(write_all(p->c, p->sv[1], "GET key\r\n", 9, 10), 0);
        CHECK_EQ(read_exact(p->s, p->sv[0], buf, 9, 10), 0);
        CHECK_EQ(write_all(p->s, p->sv[0], "$5\r\nvalue\r\n", 11, 10), 0);
        CHECK_EQ(read_exact(p->c, p->sv[1], buf, 11, 10), 0);
    }
    long held = (long)mallinfo2().uordblks - before;
    for (int i = 0; i < PAIRS; i++) close_pair(&pairs[i]);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
    return held;
}

int main(void) {
    char err[128];
    conn_tls_config *cfg = conn_tls_config_new();
    CHECK_EQ(conn_tls_config_set(cfg, "release-buffers", "sometimes", err, sizeof err), CONN_TLS_EINVAL);
    CHECK_CONTAINS(err, "release-buffers");
    conn_tls_config_free(cfg);

    long released = idle_heap("yes"), kept = idle_heap("no");
    printf("release-buffers: %d idle pairs hold %ld KB of heap with yes, %ld KB with no\n", PAIRS, released / 1024,
           kept / 1024);
    /* With no, each side keeps at least its read buffer, which holds a whole record
     * (16 KB and more); with yes, none (about 48 KB a pair here, OpenSSL 3.0). */
    CHECK(kept - released >= PAIRS * 2 * 16 * 1024);
    return 0;
}
