/* A connection's life between a conntls server and a conntls client on real sockets:
 * handshake, data both ways, pending_read, peer certificate, protocol and cipher,
 * resumption through the context's session store, reloads and generations, a context
 * freed under live connections, shutdown, and a peer that sends garbage. */
#include "testutil.h"

static const char *PEM_START = "-----BEGIN CERTIFICATE-----";

/* Server sends a line after the handshake, which also makes the client take in the
 * session tickets that came with it. */
static void exchange(pair *p) {
    char buf[64];
    CHECK_EQ(write_all(p->s, p->sv[0], "welcome", 7, 5), 0);
    CHECK_EQ(read_exact(p->c, p->sv[1], buf, 7, 5), 0);
    CHECK(memcmp(buf, "welcome", 7) == 0);
}

static void basics(void) {
    conn_tls_ctx *srv = server_ctx(), *cli = client_ctx();
    pair p = connect_pair(srv, cli, "localhost", 1);
    CHECK(conn_tls_protocol(p.c)[0] == 0); /* nothing negotiated yet */
    CHECK_EQ(handshake_both(p.s, p.c), CONN_TLS_OK);
    CHECK_QUEUE_EMPTY();
    CHECK(strcmp(conn_tls_protocol(p.s), "TLSv1.3") == 0);
    CHECK(strcmp(conn_tls_protocol(p.c), "TLSv1.3") == 0);
    CHECK(strlen(conn_tls_cipher(p.c)) > 0);
    CHECK(strcmp(conn_tls_cipher(p.s), conn_tls_cipher(p.c)) == 0);
    CHECK_EQ(conn_tls_session_reused(p.c), 0);
    CHECK_EQ(conn_tls_generation(p.s), 1);
    CHECK(conn_tls_last_error(p.s)[0] == 0);

    /* Peer certificates, snprintf-style: the server sees client.crt, the client server.crt. */
    ssize_t len = conn_tls_peer_cert_pem(p.s, NULL, 0);
    CHECK(len > 100);
    char small[10];
    memset(small, 'z', sizeof small);
    CHECK_EQ(conn_tls_peer_cert_pem(p.s, small, sizeof small), len);
    CHECK(small[0] == 'z'); /* too small: nothing written */
    char *pem = malloc((size_t)len + 1);
    CHECK_EQ(conn_tls_peer_cert_pem(p.s, pem, (size_t)len + 1), len);
    CHECK(strncmp(pem, PEM_START, strlen(PEM_START)) == 0 && pem[len] == 0);
    FILE *f = fopen(cert("client.crt"), "r");
    char file[4096];
    size_t flen = fread(file, 1, sizeof file, f);
    fclose(f);
    CHECK(flen == (size_t)len && memcmp(file, pem, flen) == 0);
    free(pem);
    CHECK(conn_tls_peer_cert_pem(p.c, NULL, 0) > 100);

    /* Data both ways; writev gathers pieces; pending_read reports what waits. */
    struct iovec iov[3] = {{"hello ", 6}, {"", 0}, {"world", 5}};
    CHECK_EQ(conn_tls_writev(p.c, iov, 3), 11);
    char buf[64];
    CHECK_EQ(read_exact(p.s, p.sv[0], buf, 4, 5), 0);
    CHECK(memcmp(buf, "hell", 4) == 0);
    CHECK_EQ(conn_tls_pending_read(p.s), 7);
    CHECK_EQ(conn_tls_read(p.s, buf, sizeof buf), 7);
    CHECK(memcmp(buf, "o world", 7) == 0);
    CHECK_EQ(conn_tls_pending_read(p.s), 0);
    CHECK_EQ(conn_tls_read(p.s, buf, sizeof buf), CONN_TLS_WANT_READ);
    exchange(&p);
    CHECK_EQ(conn_tls_pending_write(p.s), 0);
    CHECK_EQ(conn_tls_flush(p.s), CONN_TLS_OK);

    /* Shutdown: close_notify reaches the client as a read of 0; the fd stays open. */
    CHECK_EQ(conn_tls_shutdown(p.s), CONN_TLS_OK);
    CHECK_EQ(conn_tls_shutdown(p.s), CONN_TLS_OK);
    ssize_t n;
    double deadline = now_s() + 5;
    while ((n = conn_tls_read(p.c, buf, sizeof buf)) == CONN_TLS_WANT_READ && now_s() < deadline) usleep(1000);
    CHECK_EQ(n, 0);
    CHECK(fcntl(p.sv[0], F_GETFD) >= 0);
    CHECK_QUEUE_EMPTY();
    close_pair(&p);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
}

static void resumption_and_reload(void) {
    conn_tls_ctx *srv = server_ctx(), *cli = client_ctx();
    pair first = connect_pair(srv, cli, "localhost", 0);
    CHECK_EQ(handshake_both(first.s, first.c), CONN_TLS_OK);
    exchange(&first);
    CHECK_EQ(conn_tls_session_reused(first.c), 0);

    /* The next client connection to the same name resumes by itself... */
    pair second = connect_pair(srv, cli, "localhost", 0);
    CHECK_EQ(handshake_both(second.s, second.c), CONN_TLS_OK);
    exchange(&second);
    CHECK_EQ(conn_tls_session_reused(second.c), 1);
    CHECK_EQ(conn_tls_session_reused(second.s), 1);
    /* ...one to another name does not (NULL is a name of its own). */
    pair other = connect_pair(srv, cli, NULL, 0);
    CHECK_EQ(handshake_both(other.s, other.c), CONN_TLS_OK);
    CHECK_EQ(conn_tls_session_reused(other.c), 0);
    close_pair(&other);

    /* Reloads with the same trust keep sessions resumable and bump the generation. */
    conn_tls_config *rotated = config_of("cert-file", cert("server2.crt"), "key-file", cert("server2.key"),
                                         "ca-cert-file", cert("ca.crt"), NULL);
    char err[256];
    for (int i = 0; i < 3; i++) CHECK_EQ(conn_tls_ctx_reload(srv, rotated, err, sizeof err), CONN_TLS_OK);
    CHECK_EQ(conn_tls_ctx_generation(srv), 4);
    pair third = connect_pair(srv, cli, "localhost", 0);
    CHECK_EQ(conn_tls_generation(third.s), 4);
    CHECK_EQ(conn_tls_generation(first.s), 1);
    CHECK_EQ(handshake_both(third.s, third.c), CONN_TLS_OK);
    exchange(&third);
    CHECK_EQ(conn_tls_session_reused(third.c), 1);
    close_pair(&third);

    /* A broken reload changes nothing. */
    conn_tls_config *broken = config_of("cert-file", cert("server2.crt"), "key-file", cert("server.key"),
                                        "ca-cert-file", cert("ca.crt"), NULL);
    err[0] = 0;
    CHECK_EQ(conn_tls_ctx_reload(srv, broken, err, sizeof err), CONN_TLS_ERR);
    CHECK_CONTAINS(err, "does not match");
    CHECK_EQ(conn_tls_ctx_generation(srv), 4);
    CHECK_EQ(conn_tls_ctx_reload_if_changed(srv, broken, err, sizeof err), CONN_TLS_ERR);
    CHECK_EQ(conn_tls_ctx_generation(srv), 4);
    conn_tls_config_free(broken);
    /* Unchanged options and files: reload_if_changed does nothing. */
    CHECK_EQ(conn_tls_ctx_reload_if_changed(srv, rotated, err, sizeof err), 0);
    CHECK_EQ(conn_tls_ctx_generation(srv), 4);

    /* Trust changes (auth-clients) end resumption: new ticket keys. */
    CHECK_EQ(conn_tls_config_set(rotated, "auth-clients", "optional", err, sizeof err), CONN_TLS_OK);
    CHECK_EQ(conn_tls_ctx_reload_if_changed(srv, rotated, err, sizeof err), 1);
    CHECK_EQ(conn_tls_ctx_generation(srv), 5);
    pair fourth = connect_pair(srv, cli, "localhost", 0);
    CHECK_EQ(handshake_both(fourth.s, fourth.c), CONN_TLS_OK);
    CHECK_EQ(conn_tls_session_reused(fourth.c), 0);
    close_pair(&fourth);
    conn_tls_config_free(rotated);

    /* Connections outlive their context. */
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
    exchange(&first);
    exchange(&second);
    close_pair(&first);
    close_pair(&second);
    CHECK_QUEUE_EMPTY();
}

static void write_file(const char *path, const char *from) {
    FILE *in = fopen(from, "r"), *out = fopen(path, "w");
    CHECK(in && out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) CHECK(fwrite(buf, 1, n, out) == n);
    fclose(in);
    fclose(out);
}

/* reload_if_changed watches the content of the files, not only the options. */
static void reload_if_changed_files(void) {
    const char *tmp = getenv("CONNTLS_TMP") ? getenv("CONNTLS_TMP") : "/tmp";
    char crt[512], key[512], err[256];
    snprintf(crt, sizeof crt, "%s/live.crt", tmp);
    snprintf(key, sizeof key, "%s/live.key", tmp);
    write_file(crt, cert("server.crt"));
    write_file(key, cert("server.key"));
    conn_tls_config *cfg = config_of("cert-file", crt, "key-file", key, "auth-clients", "no", NULL);
    conn_tls_ctx *srv = conn_tls_ctx_new(cfg, err, sizeof err), *cli = ctx_from(config_of("ca-cert-file", cert("ca.crt"), NULL));
    CHECK(srv);
    CHECK_EQ(conn_tls_ctx_reload_if_changed(srv, cfg, err, sizeof err), 0);
    write_file(crt, cert("server.crt")); /* rewritten with the same bytes: no change */
    CHECK_EQ(conn_tls_ctx_reload_if_changed(srv, cfg, err, sizeof err), 0);
    CHECK_EQ(conn_tls_ctx_generation(srv), 1);
    write_file(key, cert("server2.key"));
    write_file(crt, cert("server2.crt"));
    CHECK_EQ(conn_tls_ctx_reload_if_changed(srv, cfg, err, sizeof err), 1);
    CHECK_EQ(conn_tls_ctx_generation(srv), 2);
    CHECK_EQ(conn_tls_ctx_reload_if_changed(srv, cfg, err, sizeof err), 0);
    /* New connections get the new certificate. */
    pair p = connect_pair(srv, cli, "localhost", 0);
    CHECK_EQ(handshake_both(p.s, p.c), CONN_TLS_OK);
    char pem[8192];
    ssize_t len = conn_tls_peer_cert_pem(p.c, pem, sizeof pem);
    FILE *f = fopen(cert("server2.crt"), "r");
    char want[8192];
    size_t wlen = fread(want, 1, sizeof want, f);
    fclose(f);
    CHECK(len == (ssize_t)wlen && memcmp(pem, want, wlen) == 0);
    close_pair(&p);
    /* A half-written pair (new key, old certificate) is refused; nothing changes. */
    write_file(key, cert("server.key"));
    CHECK_EQ(conn_tls_ctx_reload_if_changed(srv, cfg, err, sizeof err), CONN_TLS_ERR);
    CHECK_CONTAINS(err, "does not match");
    CHECK_EQ(conn_tls_ctx_generation(srv), 2);
    conn_tls_config_free(cfg);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
}

static void resumption_off(void) {
    conn_tls_ctx *srv = ctx_from(config_of("cert-file", cert("server.crt"), "key-file", cert("server.key"),
                                           "auth-clients", "no", "session-caching", "no", NULL));
    conn_tls_ctx *cli = ctx_from(config_of("ca-cert-file", cert("ca.crt"), NULL));
    for (int i = 0; i < 2; i++) {
        pair p = connect_pair(srv, cli, "localhost", 0);
        CHECK_EQ(handshake_both(p.s, p.c), CONN_TLS_OK);
        exchange(&p);
        CHECK_EQ(conn_tls_session_reused(p.c), 0);
        /* No client certificate was asked for. */
        CHECK_EQ(conn_tls_peer_cert_pem(p.s, NULL, 0), 0);
        close_pair(&p);
    }
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
}

static void verification_failures(void) {
    conn_tls_ctx *srv = server_ctx(), *cli = client_ctx();
    /* Hostname mismatch. */
    pair p = connect_pair(srv, cli, "not-localhost.example", 0);
    CHECK_EQ(handshake_both(p.c, p.s), CONN_TLS_ERR);
    CHECK_CONTAINS(conn_tls_last_error(p.c), "verify failed");
    CHECK_CONTAINS(conn_tls_last_error(p.c), "hostname mismatch");
    /* A dead connection stays dead, with the same reason. */
    CHECK_EQ(conn_tls_write(p.c, "x", 1), CONN_TLS_ERR);
    CHECK_CONTAINS(conn_tls_last_error(p.c), "hostname mismatch");
    close_pair(&p);
    /* IP addresses are matched against the certificate's IP entries. */
    p = connect_pair(srv, cli, "127.0.0.1", 0);
    CHECK_EQ(handshake_both(p.c, p.s), CONN_TLS_OK);
    close_pair(&p);
    p = connect_pair(srv, cli, "10.9.8.7", 0);
    CHECK_EQ(handshake_both(p.c, p.s), CONN_TLS_ERR);
    close_pair(&p);
    /* verify-server-name no: the name is only sent as SNI, the chain is still checked. */
    conn_tls_ctx *open_srv = ctx_from(config_of("cert-file", cert("server.crt"), "key-file", cert("server.key"),
                                                "auth-clients", "no", NULL));
    conn_tls_ctx *sni_only = ctx_from(config_of("ca-cert-file", cert("ca.crt"), "verify-server-name", "no", NULL));
    p = connect_pair(open_srv, sni_only, "not-localhost.example", 0);
    CHECK_EQ(handshake_both(p.c, p.s), CONN_TLS_OK);
    close_pair(&p);
    p = connect_pair(open_srv, sni_only, "10.9.8.7", 0);
    CHECK_EQ(handshake_both(p.c, p.s), CONN_TLS_OK);
    close_pair(&p);
    conn_tls_ctx *wrong_ca = ctx_from(config_of("ca-cert-file", cert("other-ca.crt"), "verify-server-name", "no", NULL));
    p = connect_pair(open_srv, wrong_ca, "localhost", 0);
    CHECK_EQ(handshake_both(p.c, p.s), CONN_TLS_ERR);
    CHECK_CONTAINS(conn_tls_last_error(p.c), "verify failed");
    conn_tls_ctx_free(open_srv);
    conn_tls_ctx_free(sni_only);
    conn_tls_ctx_free(wrong_ca);
    CHECK_CONTAINS(conn_tls_last_error(p.c), "verify failed");
    close_pair(&p);

    /* A client that trusts another CA rejects the server. */
    conn_tls_ctx *stranger = ctx_from(config_of("ca-cert-file", cert("other-ca.crt"), "client-cert-file",
                                                cert("client.crt"), "client-key-file", cert("client.key"), NULL));
    p = connect_pair(srv, stranger, "localhost", 0);
    CHECK_EQ(handshake_both(p.c, p.s), CONN_TLS_ERR);
    CHECK_CONTAINS(conn_tls_last_error(p.c), "verify failed");
    close_pair(&p);
    conn_tls_ctx_free(stranger);

    /* A client without a certificate is refused when auth-clients is yes. */
    conn_tls_ctx *anonymous = ctx_from(config_of("ca-cert-file", cert("ca.crt"), NULL));
    p = connect_pair(srv, anonymous, "localhost", 0);
    int r = handshake_both(p.s, p.c);
    if (r == CONN_TLS_OK) { /* TLS 1.3: the client may finish first; the server's verdict follows */
        char b[8];
        r = read_exact(p.c, p.sv[1], b, 1, 5);
    }
    CHECK_EQ(r, CONN_TLS_ERR);
    CHECK_CONTAINS(conn_tls_last_error(p.s), "certificate");
    close_pair(&p);

    /* auth-clients optional with no CA (what a server serves after CONFIG SET
     * tls-auth-clients optional without one): a client without a certificate connects, a
     * client's certificate fails verification, as with OpenSSL's empty trust store. */
    conn_tls_ctx *no_ca = ctx_from(config_of("cert-file", cert("server.crt"), "key-file", cert("server.key"),
                                             "auth-clients", "optional", NULL));
    p = connect_pair(no_ca, anonymous, "localhost", 0);
    CHECK_EQ(handshake_both(p.s, p.c), CONN_TLS_OK);
    exchange(&p);
    close_pair(&p);
    p = connect_pair(no_ca, cli, "localhost", 0);
    r = handshake_both(p.s, p.c);
    if (r == CONN_TLS_OK) {
        char b[8];
        r = read_exact(p.c, p.sv[1], b, 1, 5);
    }
    CHECK_EQ(r, CONN_TLS_ERR);
    CHECK_CONTAINS(conn_tls_last_error(p.s), "verify failed");
    close_pair(&p);
    conn_tls_ctx_free(no_ca);
    conn_tls_ctx_free(anonymous);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
    CHECK_QUEUE_EMPTY();
}

static void garbage_peer(void) {
    conn_tls_ctx *srv = server_ctx();
    int sv[2];
    socket_pair(sv);
    conn_tls *s = conn_tls_new_server(srv, sv[0]);
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(write(sv[1], junk, sizeof junk - 1) == (ssize_t)(sizeof junk - 1));
    CHECK_EQ(conn_tls_handshake(s), CONN_TLS_ERR);
    CHECK(strlen(conn_tls_last_error(s)) > 0);
    CHECK_QUEUE_EMPTY();
    conn_tls_free(s);
    close(sv[1]);
    /* A peer that closes mid-handshake. */
    socket_pair(sv);
    s = conn_tls_new_server(srv, sv[0]);
    CHECK_EQ(conn_tls_handshake(s), CONN_TLS_WANT_READ);
    close(sv[1]);
    CHECK_EQ(conn_tls_handshake(s), CONN_TLS_ERR);
    CHECK_CONTAINS(conn_tls_last_error(s), "closed");
    conn_tls_free(s);
    close(sv[0]);
    conn_tls_ctx_free(srv);
}

/* A client that sent its ClientHello and gave up (closed its side) before the server got
 * to it: the server fails the handshake without answering (no key exchange, no signature
 * for nobody), on TCP and on a socket pair. */
static void client_gone_before_handshake(void) {
    conn_tls_ctx *srv = server_ctx(), *cli = client_ctx();
    for (int tcp = 0; tcp < 2; tcp++) {
        pair p = connect_pair(srv, cli, "localhost", tcp);
        CHECK_EQ(conn_tls_handshake(p.c), CONN_TLS_WANT_READ); /* the ClientHello is sent */
        CHECK(shutdown(p.sv[1], SHUT_WR) == 0);
        usleep(20000);
        CHECK_EQ(conn_tls_handshake(p.s), CONN_TLS_ERR);
        CHECK_CONTAINS(conn_tls_last_error(p.s), "closed the connection before its handshake began");
        CHECK_EQ(conn_tls_handshake(p.s), CONN_TLS_ERR); /* and stays failed */
        char byte;
        CHECK_EQ(recv(p.sv[1], &byte, 1, 0), -1); /* no ServerHello came */
        CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
        close_pair(&p);
    }
    /* Still there: the same first step answers, and the handshake completes. */
    pair p = connect_pair(srv, cli, "localhost", 1);
    CHECK_EQ(conn_tls_handshake(p.c), CONN_TLS_WANT_READ);
    usleep(20000);
    CHECK_EQ(conn_tls_handshake(p.s), CONN_TLS_WANT_READ);
    CHECK_EQ(handshake_both(p.s, p.c), CONN_TLS_OK);
    close_pair(&p);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
    CHECK_QUEUE_EMPTY();
}

int main(void) {
    basics();
    resumption_and_reload();
    reload_if_changed_files();
    resumption_off();
    verification_failures();
    garbage_peer();
    client_gone_before_handshake();
    printf("session: ok\n");
    return 0;
}
