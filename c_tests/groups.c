/* Key-exchange groups: the groups option is checked when a context is built and names
 * an unknown group; the group a handshake used is reported. On OpenSSL 3.5 and later the
 * hybrid post-quantum X25519MLKEM768 works end to end and is what default contexts pick;
 * on 3.0, asking for it fails with a message naming it. */
#include "testutil.h"

/* The minor version of the OpenSSL 3 the library runs on ("OpenSSL 3.5.5 ..." -> 5). */
static int openssl_minor(void) {
    int major = 0, minor = 0;
    CHECK(sscanf(conn_tls_openssl_version(), "OpenSSL %d.%d", &major, &minor) == 2);
    return major > 3 ? 100 + minor : minor;
}

/* The group a handshake between a server and a client with these groups options used
 * (NULL: unset), copied into out. */
static void handshake_group(const char *server_groups, const char *client_groups, char *out, size_t len) {
    conn_tls_config *s = config_of("cert-file", cert("server.crt"), "key-file", cert("server.key"), "auth-clients", "no", NULL);
    conn_tls_config *c = config_of("ca-cert-file", cert("ca.crt"), NULL);
    if (server_groups) CHECK_EQ(conn_tls_config_set(s, "groups", server_groups, NULL, 0), CONN_TLS_OK);
    if (client_groups) CHECK_EQ(conn_tls_config_set(c, "groups", client_groups, NULL, 0), CONN_TLS_OK);
    conn_tls_ctx *srv = ctx_from(s), *cli = ctx_from(c);
    pair p = connect_pair(srv, cli, "localhost", 0);
    CHECK(conn_tls_group(p.c)[0] == 0); /* nothing before the handshake */
    CHECK_EQ(handshake_both(p.s, p.c), CONN_TLS_OK);
    CHECK(strcmp(conn_tls_group(p.s), conn_tls_group(p.c)) == 0);
    snprintf(out, len, "%s", conn_tls_group(p.c));
    close_pair(&p);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
}

static void expect_refused(const char *groups, const char *needle) {
    conn_tls_config *cfg = config_of("ca-cert-file", cert("ca.crt"), NULL);
    CHECK_EQ(conn_tls_config_set(cfg, "groups", groups, NULL, 0), CONN_TLS_OK); /* syntax only */
    char err[512] = "";
    CHECK(conn_tls_ctx_new(cfg, err, sizeof err) == NULL);
    CHECK_CONTAINS(err, "option 'groups'");
    CHECK_CONTAINS(err, needle);
    conn_tls_config_free(cfg);
}

int main(void) {
    int minor = openssl_minor();
    char group[64];
    handshake_group("X25519:P-256", "P-256", group, sizeof group);
    printf("server X25519:P-256, client P-256: %s\n", group);
    CHECK(strcmp(group, "secp256r1") == 0 || strcmp(group, "P-256") == 0);
    handshake_group("P-384:X25519", "X25519:P-384", group, sizeof group);
    CHECK(strcmp(group, "X25519") == 0 || strcmp(group, "x25519") == 0);
    expect_refused("NO-SUCH-GROUP:X25519", "'NO-SUCH-GROUP'");
    expect_refused("X25519:P-256:nonsense", "'nonsense'");

    handshake_group(NULL, NULL, group, sizeof group);
    printf("%s, default contexts: %s\n", conn_tls_openssl_version(), group);
    if (minor >= 5) {
        CHECK(strcmp(group, "X25519MLKEM768") == 0);
        handshake_group("X25519MLKEM768", "X25519MLKEM768:X25519", group, sizeof group);
        CHECK(strcmp(group, "X25519MLKEM768") == 0);
        /* A peer without it falls back to a classical group. */
        handshake_group(NULL, "X25519", group, sizeof group);
        CHECK(strcmp(group, "X25519") == 0 || strcmp(group, "x25519") == 0);
    } else {
        CHECK(strcmp(group, "X25519") == 0 || strcmp(group, "x25519") == 0);
        expect_refused("X25519MLKEM768", "'X25519MLKEM768'");
        expect_refused("X25519MLKEM768:X25519", "'X25519MLKEM768'");
    }
    CHECK(conn_tls_group(NULL)[0] == 0);
    CHECK_QUEUE_EMPTY();
    printf("groups: ok\n");
    return 0;
}
