/* Certificate facts for monitoring (conn_tls_ctx_cert_info) and peer certificate fields
 * (conn_tls_peer_cert_field), checked against what `openssl x509` says of the same files.
 *
 *   cert_info SERVER_END SERVER_SERIAL SERVER2_SERIAL CLIENT_END CLIENT_SERIAL
 *             CA_END CA_SERIAL OTHER_CA_END OTHER_CA_SERIAL
 * (ends in seconds since the epoch, serials in upper-case hex) */
#include <sys/stat.h>

#include "testutil.h"

static char **expect;

static void check_facts(conn_tls_ctx *ctx, int which, long long end, const char *serial, size_t count) {
    int64_t not_after = -1;
    size_t n = 99;
    char buf[128];
    ssize_t len = conn_tls_ctx_cert_info(ctx, which, &not_after, &n, buf, sizeof buf);
    CHECK_EQ(len, (ssize_t)strlen(serial));
    CHECK_EQ(n, count);
    CHECK_EQ(not_after, end);
    if (strcmp(buf, serial) != 0) {
        fprintf(stderr, "which %d: serial %s, expected %s\n", which, buf, serial);
        exit(1);
    }
}

static void facts(void) {
    long long server_end = atoll(expect[1]), client_end = atoll(expect[4]), ca_end = atoll(expect[6]), other_end = atoll(expect[8]);
    conn_tls_config *cfg = config_of("cert-file", cert("server.crt"), "key-file", cert("server.key"), "ca-cert-file",
                                     cert("ca.crt"), "client-cert-file", cert("client.crt"), "client-key-file",
                                     cert("client.key"), NULL);
    conn_tls_ctx *ctx = ctx_from(cfg);
    check_facts(ctx, CONN_TLS_CERT_SERVER, server_end, expect[2], 1);
    check_facts(ctx, CONN_TLS_CERT_CLIENT, client_end, expect[5], 1);
    check_facts(ctx, CONN_TLS_CERT_CA, ca_end, expect[7], 1);

    /* Bad arguments change nothing and write nothing. */
    int64_t t = 7;
    size_t n = 7;
    char small[4] = "xyz";
    CHECK_EQ(conn_tls_ctx_cert_info(NULL, CONN_TLS_CERT_SERVER, &t, &n, NULL, 0), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_ctx_cert_info(ctx, 3, &t, &n, NULL, 0), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_ctx_cert_info(ctx, CONN_TLS_CERT_SERVER, NULL, &n, NULL, 0), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_ctx_cert_info(ctx, CONN_TLS_CERT_SERVER, &t, NULL, NULL, 0), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_ctx_cert_info(ctx, CONN_TLS_CERT_SERVER, &t, &n, NULL, 5), CONN_TLS_EINVAL);
    CHECK(t == 7 && n == 7);
    /* A serial buffer too small gets nothing, the length comes back. */
    CHECK_EQ(conn_tls_ctx_cert_info(ctx, CONN_TLS_CERT_SERVER, &t, &n, small, sizeof small), (ssize_t)strlen(expect[2]));
    CHECK(strcmp(small, "xyz") == 0);

    /* After a rotation, the facts are the new certificate's. */
    conn_tls_config *rotated = config_of("cert-file", cert("server2.crt"), "key-file", cert("server2.key"),
                                         "ca-cert-file", cert("ca.crt"), NULL);
    char err[256];
    CHECK_EQ(conn_tls_ctx_reload(ctx, rotated, err, sizeof err), CONN_TLS_OK);
    char serial[128];
    CHECK(conn_tls_ctx_cert_info(ctx, CONN_TLS_CERT_SERVER, &t, &n, serial, sizeof serial) > 0);
    CHECK(strcmp(serial, expect[3]) == 0);
    /* Without client-cert-file, client connections present cert-file. */
    CHECK(conn_tls_ctx_cert_info(ctx, CONN_TLS_CERT_CLIENT, &t, &n, serial, sizeof serial) > 0);
    CHECK(strcmp(serial, expect[3]) == 0);
    conn_tls_config_free(rotated);
    conn_tls_ctx_free(ctx);

    /* A CA directory: every certificate counts, the earliest expiry wins. */
    const char *tmp = getenv("CONNTLS_TMP") ? getenv("CONNTLS_TMP") : "/tmp";
    char dir[512], cmd[1400];
    snprintf(dir, sizeof dir, "%s/cadir", tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp %s %s %s/", dir, cert("ca.crt"), cert("other-ca.crt"), dir);
    CHECK(system(cmd) == 0);
    ctx = ctx_from(config_of("ca-cert-dir", dir, NULL));
    int first_is_ca = ca_end <= other_end;
    check_facts(ctx, CONN_TLS_CERT_CA, first_is_ca ? ca_end : other_end, first_is_ca ? expect[7] : expect[9], 2);
    /* Client-only, no identity: nothing to report, and that is not an error. */
    CHECK_EQ(conn_tls_ctx_cert_info(ctx, CONN_TLS_CERT_SERVER, &t, &n, serial, sizeof serial), 0);
    CHECK(n == 0 && t == 0 && serial[0] == 0);
    CHECK_EQ(conn_tls_ctx_cert_info(ctx, CONN_TLS_CERT_CLIENT, &t, &n, NULL, 0), 0);
    CHECK_EQ(n, 0);
    conn_tls_ctx_free(ctx);
    CHECK_QUEUE_EMPTY();
}

static void peer_fields(void) {
    conn_tls_ctx *srv = server_ctx(), *cli = client_ctx();
    pair p = connect_pair(srv, cli, "localhost", 0);
    conn_tls *s = p.s, *c = p.c;
    CHECK_EQ(conn_tls_peer_cert_field(s, "CN", NULL, 0), 0); /* no handshake yet: no certificate */
    CHECK_EQ(handshake_both(s, c), CONN_TLS_OK);
    char buf[64];
    CHECK_EQ(conn_tls_peer_cert_field(s, "CN", buf, sizeof buf), 6);
    CHECK(strcmp(buf, "client") == 0);
    CHECK_EQ(conn_tls_peer_cert_field(c, "commonName", buf, sizeof buf), 6);
    CHECK(strcmp(buf, "server") == 0);
    char tiny[3] = "ab";
    CHECK_EQ(conn_tls_peer_cert_field(s, "CN", tiny, sizeof tiny), 6);
    CHECK(strcmp(tiny, "ab") == 0);
    CHECK_EQ(conn_tls_peer_cert_field(s, "O", buf, sizeof buf), 0); /* the subject has no O */
    CHECK_EQ(conn_tls_peer_cert_field(s, "NOSUCHFIELD", buf, sizeof buf), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(s), "NOSUCHFIELD");
    CHECK_EQ(conn_tls_peer_cert_field(s, NULL, buf, sizeof buf), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_peer_cert_field(s, "CN", NULL, 4), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_peer_cert_field(NULL, "CN", buf, sizeof buf), CONN_TLS_EINVAL);

    /* Subject alternative names, by type and index. */
    size_t count = 99;
    CHECK_EQ(conn_tls_peer_cert_san(s, "URI", 0, &count, buf, sizeof buf), 28);
    CHECK(count == 2 && strcmp(buf, "spiffe://conntls.test/client") == 0);
    CHECK_EQ(conn_tls_peer_cert_san(s, "uri", 1, NULL, buf, sizeof buf), 5);
    CHECK(strcmp(buf, "alice") == 0);
    CHECK_EQ(conn_tls_peer_cert_san(s, "URI", 2, &count, tiny, sizeof tiny), 0); /* no third */
    CHECK(count == 2 && strcmp(tiny, "ab") == 0);
    CHECK_EQ(conn_tls_peer_cert_san(s, "DNS", 0, &count, tiny, sizeof tiny), 11); /* too small */
    CHECK(count == 1 && strcmp(tiny, "ab") == 0);
    CHECK_EQ(conn_tls_peer_cert_san(c, "email", 0, &count, buf, sizeof buf), 0);
    CHECK_EQ(count, 0);
    count = 7;
    CHECK_EQ(conn_tls_peer_cert_san(s, "X400", 0, &count, buf, sizeof buf), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(s), "X400");
    CHECK_EQ(conn_tls_peer_cert_san(s, NULL, 0, &count, buf, sizeof buf), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_peer_cert_san(s, "URI", 0, &count, NULL, 4), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_peer_cert_san(NULL, "URI", 0, &count, buf, sizeof buf), CONN_TLS_EINVAL);
    CHECK_EQ(count, 7);
    CHECK_QUEUE_EMPTY();
    close_pair(&p);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
}

int main(int argc, char **argv) {
    CHECK(argc == 10);
    expect = argv;
    facts();
    peer_fields();
    printf("cert_info: ok\n");
    return 0;
}
