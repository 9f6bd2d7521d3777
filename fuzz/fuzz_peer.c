/* libFuzzer harness: bytes from the peer, before and after a genuine handshake.
 *
 * Input byte 0 picks the mode, the rest drives it:
 *  0: the rest is what a client sends a conntls server (a ClientHello or garbage), then EOF;
 *  1: a conntls client sends its ClientHello; the rest is the "server's" answer, then EOF;
 *  2: a plain OpenSSL client completes a genuine handshake with a conntls server; then
 *     each (action, argument) byte pair is one thing the client does: application data,
 *     a KeyUpdate, close_notify, raw garbage, a record with one byte flipped, a truncated
 *     record followed by EOF. The server reads after each.
 *
 * Checked: every return value is a documented one, and counts are within what was
 * asked; failures are sticky (the same ERR and message on every later call); bytes the
 * server returns are exactly a prefix of what the client genuinely sent, in order, never
 * garbage; last_error is never NULL; the error queue stays empty. */
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "fuzz.h"

static conn_tls_ctx *server_ctx, *client_ctx;
static SSL_CTX *plain_client;

static void setup(void) {
    if (server_ctx) return;
    const char *srv[] = {"cert-file", cert_path("server.crt"), "key-file", cert_path("server.key"), "auth-clients", "no", NULL};
    const char *cli[] = {"ca-cert-file", cert_path("ca.crt"), NULL};
    server_ctx = ctx_of(srv);
    client_ctx = ctx_of(cli);
    plain_client = SSL_CTX_new(TLS_client_method());
    EXPECT(plain_client);
    SSL_CTX_set_verify(plain_client, SSL_VERIFY_NONE, NULL);
}

static unsigned char pattern(size_t i) {
    return (unsigned char)(i * 131 + 7);
}

/* After an ERR, every call fails the same way. */
static void expect_sticky(conn_tls *c) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", conn_tls_last_error(c));
    EXPECT(msg[0]);
    char buf[16];
    EXPECT(conn_tls_handshake(c) == CONN_TLS_ERR);
    EXPECT(conn_tls_read(c, buf, sizeof buf) == CONN_TLS_ERR);
    EXPECT(conn_tls_write(c, "x", 1) == CONN_TLS_ERR);
    EXPECT(strcmp(conn_tls_last_error(c), msg) == 0);
}

/* Modes 0 and 1: the conntls side steps its handshake on whatever arrives. */
static void raw_peer(int client_side, const uint8_t *data, size_t len) {
    int sv[2];
    nonblocking_pair(sv);
    conn_tls *c = client_side ? conn_tls_new_client(client_ctx, sv[0], "localhost") : conn_tls_new_server(server_ctx, sv[0]);
    EXPECT(c);
    int r = conn_tls_handshake(c);
    EXPECT(is_status(r) && r != CONN_TLS_EINVAL);
    if (len > 0) EXPECT(write(sv[1], data, len) >= 0);
    shutdown(sv[1], SHUT_WR);
    char drain[4096];
    for (int i = 0; i < 50 && r != CONN_TLS_ERR; i++) {
        r = conn_tls_handshake(c);
        EXPECT(r == CONN_TLS_OK || r == CONN_TLS_ERR || r == CONN_TLS_WANT_READ || r == CONN_TLS_WANT_WRITE);
        while (read(sv[1], drain, sizeof drain) > 0) {}
        if (r == CONN_TLS_OK) break;
    }
    /* With EOF behind the bytes, the handshake cannot be left waiting for more. */
    EXPECT(r == CONN_TLS_ERR || r == CONN_TLS_OK);
    if (r == CONN_TLS_ERR) expect_sticky(c);
    EXPECT_QUEUE_EMPTY();
    conn_tls_free(c);
    close(sv[0]);
    close(sv[1]);
}

typedef struct {
    int fd;        /* the client's end of the socket pair */
    SSL *ssl;      /* plain OpenSSL client over memory BIOs */
    BIO *in, *out; /* what the client reads / what it wrote */
} client;

/* Moves the client's output to the socket, and what the socket has to the client. */
static void pump(client *cl) {
    char buf[16384];
    int n;
    while ((n = BIO_read(cl->out, buf, sizeof buf)) > 0) EXPECT(write(cl->fd, buf, (size_t)n) == n);
    ssize_t got;
    while ((got = read(cl->fd, buf, sizeof buf)) > 0) BIO_write(cl->in, buf, (int)got);
}

/* Ciphertext of the client writing len pattern bytes from offset at, taken out of its
 * output BIO rather than sent; 0 when the client can no longer write (it sent
 * close_notify), and then *sent is left alone. */
static size_t ciphertext(client *cl, size_t *sent, size_t len, unsigned char *out, size_t cap) {
    unsigned char plain[4096];
    for (size_t i = 0; i < len; i++) plain[i] = pattern(*sent + i);
    if (SSL_write(cl->ssl, plain, (int)len) != (int)len) {
        ERR_clear_error();
        return 0;
    }
    *sent += len;
    int n = BIO_read(cl->out, out, (int)cap);
    return n > 0 ? (size_t)n : 0;
}

static void after_handshake(const uint8_t *data, size_t len) {
    int sv[2];
    nonblocking_pair(sv);
    conn_tls *s = conn_tls_new_server(server_ctx, sv[0]);
    EXPECT(s);
    client cl = {.fd = sv[1], .ssl = SSL_new(plain_client), .in = BIO_new(BIO_s_mem()), .out = BIO_new(BIO_s_mem())};
    SSL_set_bio(cl.ssl, cl.in, cl.out);
    SSL_set_connect_state(cl.ssl);
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 100 && !(cdone && sdone); i++) {
        if (!cdone) cdone = SSL_do_handshake(cl.ssl) == 1;
        pump(&cl);
        if (!sdone) {
            int r = conn_tls_handshake(s);
            EXPECT(r == CONN_TLS_OK || r == CONN_TLS_WANT_READ || r == CONN_TLS_WANT_WRITE);
            sdone = r == CONN_TLS_OK;
        }
        pump(&cl);
    }
    EXPECT(cdone && sdone);
    ERR_clear_error(); /* the client's own queue, not the library's business */

    size_t sent = 0, received = 0; /* genuine bytes the client sent / the server returned */
    int closed = 0, dead = 0;
    unsigned char wire[8192];
    char buf[4096];
    for (size_t i = 0; i + 1 < len && !dead && !closed; i += 2) {
        unsigned arg = data[i + 1];
        size_t n;
        switch (data[i] % 6) {
        case 0: /* application data */
            n = ciphertext(&cl, &sent, arg * 16 + 1, wire, sizeof wire);
            EXPECT(write(cl.fd, wire, n) == (ssize_t)n);
            break;
        case 1: /* KeyUpdate, asking the server to update too */
            SSL_key_update(cl.ssl, SSL_KEY_UPDATE_REQUESTED);
            SSL_do_handshake(cl.ssl);
            break;
        case 2: /* close_notify */
            SSL_shutdown(cl.ssl);
            break;
        case 3: /* raw garbage, arg bytes of the input */
            n = arg < len - i - 2 ? arg : len - i - 2;
            if (n) EXPECT(write(cl.fd, data + i + 2, n) == (ssize_t)n);
            i += n;
            break;
        case 4: /* a record with one byte flipped */
            n = ciphertext(&cl, &sent, 64, wire, sizeof wire);
            if (n) wire[arg % n] ^= (unsigned char)(1 + (arg % 255));
            EXPECT(write(cl.fd, wire, n) == (ssize_t)n);
            break;
        case 5: /* part of a record, then EOF */
            n = ciphertext(&cl, &sent, 200, wire, sizeof wire);
            if (n) EXPECT(write(cl.fd, wire, arg % n) == (ssize_t)(arg % n));
            shutdown(cl.fd, SHUT_WR);
            break;
        }
        pump(&cl);
        for (;;) {
            ssize_t r = conn_tls_read(s, buf, sizeof buf);
            EXPECT(r > 0 ? (size_t)r <= sizeof buf : r == 0 || r == CONN_TLS_ERR || r == CONN_TLS_WANT_READ || r == CONN_TLS_WANT_WRITE);
            if (r > 0) {
                /* Only what the client genuinely sent, in order. */
                EXPECT(received + (size_t)r <= sent);
                for (ssize_t k = 0; k < r; k++) EXPECT((unsigned char)buf[k] == pattern(received + (size_t)k));
                received += (size_t)r;
                continue;
            }
            if (r == 0) closed = 1;
            if (r == CONN_TLS_ERR) dead = 1;
            break;
        }
        EXPECT_QUEUE_EMPTY();
        if (!dead && conn_tls_pending_write(s) > 0) EXPECT(is_status(conn_tls_flush(s)));
        pump(&cl);
        SSL_read(cl.ssl, buf, sizeof buf); /* lets the client take a KeyUpdate answer */
        ERR_clear_error();
    }
    if (dead) expect_sticky(s);
    if (closed) EXPECT(conn_tls_read(s, buf, sizeof buf) == 0);
    EXPECT_QUEUE_EMPTY();
    SSL_free(cl.ssl);
    conn_tls_free(s);
    close(sv[0]);
    close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    if (size == 0) return 0;
    switch (data[0] % 3) {
    case 0: raw_peer(0, data + 1, size - 1); break;
    case 1: raw_peer(1, data + 1, size - 1); break;
    default: after_handshake(data + 1, size - 1); break;
    }
    return 0;
}
