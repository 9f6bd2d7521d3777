/* Heap held by an idle TLS connection pair, conntls against bare OpenSSL of the same
 * version, in one run.
 *
 *   idle_memory [--valkey] CERTS_DIR [PAIRS [GROUPS]]
 *
 * Each pair (server and client, over a socketpair) handshakes, sends 16 KiB each way and
 * reads it all; then the pairs sit idle and the heap in use (mallinfo2) is divided by
 * their number. GROUPS (e.g. X25519) sets the key-exchange groups of every context;
 * otherwise each OpenSSL's default applies (X25519MLKEM768 first on 3.5+). Kinds: conntls on both sides; bare OpenSSL with SSL_MODE_RELEASE_BUFFERS;
 * bare OpenSSL without it. --valkey configures both kinds as Valkey does (a client
 * certificate required and checked, session cache of 20480 for 300 s) and also prints
 * the server side alone: the heap still held once the clients are freed. Build it against the OpenSSL under test (its headers and
 * libssl/libcrypto, statically for a prefix from openssl-src) and a libconntls built
 * against the same line; BENCHMARKS.md has the commands. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <malloc.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conntls.h"

#define CHECK(c)                                                           \
    do {                                                                   \
        if (!(c)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            exit(1);                                                       \
        }                                                                  \
    } while (0)

enum { CHUNK = 16384 };
static const char *dir, *groups;
static int valkey; /* --valkey */
static char data[CHUNK];

static const char *path(const char *name) {
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static size_t heap(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

typedef struct {
    int fd[2];
    conn_tls *cs, *cc;
    SSL *ss, *sc;
} pair;

static conn_tls_ctx *conntls_ctx(int server) {
    conn_tls_config *cfg = conn_tls_config_new();
    char err[256];
    if (server) {
        CHECK(conn_tls_config_set(cfg, "cert-file", path("server.crt"), err, sizeof err) == CONN_TLS_OK);
        CHECK(conn_tls_config_set(cfg, "key-file", path("server.key"), err, sizeof err) == CONN_TLS_OK);
        if (valkey) {
            const char *options[][2] = {{"ca-cert-file", path("ca.crt")}, {"auth-clients", "yes"},
                                        {"session-cache-size", "20480"}, {"session-cache-timeout", "300"}};
            for (int i = 0; i < 4; i++) CHECK(conn_tls_config_set(cfg, options[i][0], options[i][1], err, sizeof err) == CONN_TLS_OK);
        } else {
            CHECK(conn_tls_config_set(cfg, "auth-clients", "no", err, sizeof err) == CONN_TLS_OK);
        }
    } else {
        CHECK(conn_tls_config_set(cfg, "ca-cert-file", path("ca.crt"), err, sizeof err) == CONN_TLS_OK);
        if (valkey) {
            CHECK(conn_tls_config_set(cfg, "client-cert-file", path("client.crt"), err, sizeof err) == CONN_TLS_OK);
            CHECK(conn_tls_config_set(cfg, "client-key-file", path("client.key"), err, sizeof err) == CONN_TLS_OK);
        }
    }
    if (groups) CHECK(conn_tls_config_set(cfg, "groups", groups, err, sizeof err) == CONN_TLS_OK);
    conn_tls_ctx *ctx = conn_tls_ctx_new(cfg, err, sizeof err);
    if (!ctx) fprintf(stderr, "%s\n", err);
    CHECK(ctx);
    conn_tls_config_free(cfg);
    return ctx;
}

static SSL_CTX *bare_ctx(int server, int release) {
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    CHECK(ctx);
    if (server) {
        CHECK(SSL_CTX_use_certificate_chain_file(ctx, path("server.crt")) == 1);
        CHECK(SSL_CTX_use_PrivateKey_file(ctx, path("server.key"), SSL_FILETYPE_PEM) == 1);
        if (valkey) { /* as Valkey's tls.c sets a server context up */
            CHECK(SSL_CTX_load_verify_locations(ctx, path("ca.crt"), NULL) == 1);
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
            SSL_CTX_sess_set_cache_size(ctx, 20480);
            SSL_CTX_set_timeout(ctx, 300);
            CHECK(SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"idle", 4) == 1);
        }
    } else {
        CHECK(SSL_CTX_load_verify_locations(ctx, path("ca.crt"), NULL) == 1);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (valkey) {
            CHECK(SSL_CTX_use_certificate_chain_file(ctx, path("client.crt")) == 1);
            CHECK(SSL_CTX_use_PrivateKey_file(ctx, path("client.key"), SSL_FILETYPE_PEM) == 1);
        }
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (release) SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (groups) CHECK(SSL_CTX_set1_groups_list(ctx, groups) == 1);
    return ctx;
}

/* conntls: both sides, one step each in turn. */
static void conntls_pair(pair *p, conn_tls_ctx *srv, conn_tls_ctx *cli) {
    p->cs = conn_tls_new_server(srv, p->fd[0]);
    p->cc = conn_tls_new_client(cli, p->fd[1], valkey ? NULL : "localhost"); /* Valkey checks no host name */
    CHECK(p->cs && p->cc);
    int s = CONN_TLS_WANT_READ, c = CONN_TLS_WANT_READ;
    while (s != CONN_TLS_OK || c != CONN_TLS_OK) {
        if (c != CONN_TLS_OK) c = conn_tls_handshake(p->cc);
        if (s != CONN_TLS_OK) s = conn_tls_handshake(p->cs);
        CHECK(s != CONN_TLS_ERR && c != CONN_TLS_ERR);
    }
    conn_tls *from[2] = {p->cs, p->cc}, *to[2] = {p->cc, p->cs};
    for (int dir_ = 0; dir_ < 2; dir_++) {
        size_t sent = 0, got = 0;
        char buf[CHUNK];
        while (got < CHUNK) {
            if (sent < CHUNK) {
                ssize_t n = conn_tls_write(from[dir_], data + sent, CHUNK - sent);
                if (n > 0) sent += (size_t)n;
            }
            conn_tls_flush(from[dir_]);
            ssize_t r = conn_tls_read(to[dir_], buf, sizeof buf);
            if (r > 0) got += (size_t)r;
            CHECK(r != CONN_TLS_ERR && r != 0);
        }
    }
}

/* Bare OpenSSL, the usual way: SSL_set_fd, SSL_accept / SSL_connect, SSL_write / SSL_read. */
static void bare_pair(pair *p, SSL_CTX *srv, SSL_CTX *cli) {
    p->ss = SSL_new(srv);
    p->sc = SSL_new(cli);
    SSL_set_fd(p->ss, p->fd[0]);
    SSL_set_fd(p->sc, p->fd[1]);
    if (!valkey) X509_VERIFY_PARAM_set1_host(SSL_get0_param(p->sc), "localhost", 0);
    int s = 0, c = 0;
    while (!s || !c) {
        if (!c) c = SSL_connect(p->sc) == 1;
        if (!s) s = SSL_accept(p->ss) == 1;
    }
    SSL *from[2] = {p->ss, p->sc}, *to[2] = {p->sc, p->ss};
    for (int d = 0; d < 2; d++) {
        CHECK(SSL_write(from[d], data, CHUNK) == CHUNK);
        size_t got = 0;
        char buf[CHUNK];
        while (got < CHUNK) {
            int r = SSL_read(to[d], buf, sizeof buf);
            if (r > 0) got += (size_t)r;
        }
    }
}

enum { CONNTLS, BARE_RELEASE, BARE };
static const char *names[] = {"conntls", "bare OpenSSL, RELEASE_BUFFERS", "bare OpenSSL"};

/* Heap per idle pair; *server_side: what stays once the clients are freed. */
static double per_pair(int kind, int pairs, double *server_side) {
    conn_tls_ctx *csrv = NULL, *ccli = NULL;
    SSL_CTX *bsrv = NULL, *bcli = NULL;
    if (kind == CONNTLS) {
        csrv = conntls_ctx(1);
        ccli = conntls_ctx(0);
    } else {
        bsrv = bare_ctx(1, kind == BARE_RELEASE);
        bcli = bare_ctx(0, kind == BARE_RELEASE);
    }
    pair *p = calloc((size_t)pairs, sizeof *p);
    CHECK(p);
    /* One pair first, so what a context allocates on first use is not counted. */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p[0].fd) == 0);
    if (kind == CONNTLS) conntls_pair(&p[0], csrv, ccli);
    else bare_pair(&p[0], bsrv, bcli);
    size_t before = heap();
    for (int i = 1; i < pairs; i++) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p[i].fd) == 0);
        if (kind == CONNTLS) conntls_pair(&p[i], csrv, ccli);
        else bare_pair(&p[i], bsrv, bcli);
    }
    ERR_clear_error();
    double bytes = (double)(heap() - before) / (pairs - 1);
    for (int i = 1; i < pairs; i++) {
        conn_tls_free(p[i].cc);
        SSL_free(p[i].sc);
        p[i].cc = NULL;
        p[i].sc = NULL;
    }
    *server_side = (double)(heap() - before) / (pairs - 1);
    for (int i = 0; i < pairs; i++) {
        conn_tls_free(p[i].cs);
        conn_tls_free(p[i].cc);
        SSL_free(p[i].ss);
        SSL_free(p[i].sc);
        close(p[i].fd[0]);
        close(p[i].fd[1]);
    }
    free(p);
    conn_tls_ctx_free(csrv);
    conn_tls_ctx_free(ccli);
    SSL_CTX_free(bsrv);
    SSL_CTX_free(bcli);
    return bytes;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "--valkey")) {
        valkey = 1;
        argv++;
        argc--;
    }
    CHECK(argc >= 2);
    dir = argv[1];
    int pairs = argc > 2 ? atoi(argv[2]) : 300;
    groups = argc > 3 ? argv[3] : NULL;
    CHECK(pairs >= 2);
    memset(data, 'd', sizeof data);
    printf("libconntls on %s; bare side on %s; %d idle pairs, 16 KiB each way; groups %s%s\n", conn_tls_openssl_version(),
           OpenSSL_version(OPENSSL_VERSION), pairs, groups ? groups : "(default)",
           valkey ? "; as Valkey: client certificates, session cache" : "");
    double kib[3], server_kib[3];
    for (int k = 0; k < 3; k++) {
        kib[k] = per_pair(k, pairs, &server_kib[k]) / 1024;
        server_kib[k] /= 1024;
    }
    printf("| %s | %s | %.1f KiB | %.1f KiB | %.1f KiB | %.2fx |\n", OpenSSL_version(OPENSSL_VERSION),
           groups ? groups : "default", kib[CONNTLS], kib[BARE_RELEASE], kib[BARE], kib[CONNTLS] / kib[BARE_RELEASE]);
    for (int k = 0; k < 3; k++)
        printf("  %s: %.1f KiB per idle pair, %.1f KiB (%.1f KB) its server side alone\n", names[k], kib[k], server_kib[k],
               server_kib[k] * 1.024);
    return 0;
}
