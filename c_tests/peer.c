/* A conntls peer for interop tests against openssl s_server / s_client.
 *
 *   peer server [count=N] [rotate-cert=F rotate-key=F] [option=value...]
 *       listens on 127.0.0.1, prints "port P", serves N connections one after another: each
 *       handshakes, reads one line, answers "echo:<line>", sends close_notify. Before each
 *       connection after the first, rotates to rotate-cert/rotate-key if given.
 *   peer client PORT [name=SNI] [count=N] [option=value...]
 *       connects N times, handshakes, sends "ping\n" and prints the first reply line.
 *
 * Prints one line per connection: "handshake ok <protocol> <cipher> peer-cert=<bytes>
 * reused=<0|1> generation=<g>" or "handshake error: <reason>", then "reply: <line>". */
#include "testutil.h"

static const char *arg_value(int argc, char **argv, const char *key) {
    size_t n = strlen(key);
    for (int i = 2; i < argc; i++)
        if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
    return NULL;
}

static int is_peer_key(const char *arg) {
    static const char *keys[] = {"count=", "name=", "rotate-cert=", "rotate-key=", NULL};
    for (const char **k = keys; *k; k++)
        if (strncmp(arg, *k, strlen(*k)) == 0) return 1;
    return 0;
}

/* Every name=value argument that is not the peer's own becomes a conntls option. */
static conn_tls_config *config_from_args(int argc, char **argv, int first) {
    conn_tls_config *cfg = conn_tls_config_new();
    char err[256];
    for (int i = first; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || is_peer_key(argv[i])) continue;
        *eq = 0;
        if (conn_tls_config_set(cfg, argv[i], eq + 1, err, sizeof err) != CONN_TLS_OK) {
            printf("config error: %s\n", err);
            exit(2);
        }
        *eq = '=';
    }
    return cfg;
}

/* Steps the handshake, waiting on the fd, for at most 10 s. */
static int handshake(conn_tls *c, int fd) {
    double deadline = now_s() + 10;
    for (;;) {
        int r = conn_tls_handshake(c);
        if (r == CONN_TLS_OK || r == CONN_TLS_ERR || now_s() > deadline) return r;
        struct pollfd p = {.fd = fd, .events = r == CONN_TLS_WANT_READ ? POLLIN : POLLOUT};
        poll(&p, 1, 100);
    }
}

static void report(conn_tls *c) {
    printf("handshake ok %s %s peer-cert=%zd reused=%d generation=%llu\n", conn_tls_protocol(c),
           conn_tls_cipher(c), conn_tls_peer_cert_pem(c, NULL, 0), conn_tls_session_reused(c),
           (unsigned long long)conn_tls_generation(c));
}

/* Reads up to and including '\n' (or the peer's close) into line. */
static int read_line(conn_tls *c, int fd, char *line, size_t cap) {
    size_t got = 0;
    double deadline = now_s() + 10;
    while (got + 1 < cap && (got == 0 || line[got - 1] != '\n')) {
        ssize_t n = conn_tls_read(c, line + got, 1);
        if (n > 0) {
            got++;
        } else if (n == 0) {
            break;
        } else if ((n == CONN_TLS_WANT_READ || n == CONN_TLS_WANT_WRITE) && now_s() < deadline) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            poll(&p, 1, 100);
        } else {
            printf("read error: %s\n", conn_tls_last_error(c));
            return -1;
        }
    }
    line[got] = 0;
    if (got && line[got - 1] == '\n') line[got - 1] = 0;
    return 0;
}

static int finish(conn_tls *c, int fd) {
    double deadline = now_s() + 5;
    int r;
    while ((r = conn_tls_shutdown(c)) == CONN_TLS_WANT_WRITE && now_s() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, 100);
    }
    return r;
}

static int serve(int argc, char **argv) {
    int count = arg_value(argc, argv, "count") ? atoi(arg_value(argc, argv, "count")) : 1;
    conn_tls_config *cfg = config_from_args(argc, argv, 2);
    char err[512];
    conn_tls_ctx *ctx = conn_tls_ctx_new(cfg, err, sizeof err);
    if (!ctx) {
        printf("context error: %s\n", err);
        return 2;
    }
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 8) == 0);
    CHECK(getsockname(l, (struct sockaddr *)&a, &alen) == 0);
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    int failures = 0;
    for (int i = 0; i < count; i++) {
        if (i > 0 && arg_value(argc, argv, "rotate-cert")) {
            conn_tls_config_set(cfg, "cert-file", arg_value(argc, argv, "rotate-cert"), err, sizeof err);
            conn_tls_config_set(cfg, "key-file", arg_value(argc, argv, "rotate-key"), err, sizeof err);
            if (conn_tls_ctx_reload(ctx, cfg, err, sizeof err) != CONN_TLS_OK) {
                printf("reload error: %s\n", err);
                return 2;
            }
        }
        int fd = accept(l, NULL, NULL);
        CHECK(fd >= 0);
        set_nonblocking(fd);
        conn_tls *c = conn_tls_new_server(ctx, fd);
        CHECK(c);
        if (handshake(c, fd) != CONN_TLS_OK) {
            printf("handshake error: %s\n", conn_tls_last_error(c));
            failures++;
        } else {
            report(c);
            char line[256], reply[300];
            if (read_line(c, fd, line, sizeof line) == 0) {
                printf("reply: %s\n", line);
                int n = snprintf(reply, sizeof reply, "echo:%s\n", line);
                if (write_all(c, fd, reply, (size_t)n, 5) != 0 || finish(c, fd) != CONN_TLS_OK) failures++;
            } else {
                failures++;
            }
        }
        fflush(stdout);
        conn_tls_free(c);
        close(fd);
    }
    close(l);
    conn_tls_ctx_free(ctx);
    conn_tls_config_free(cfg);
    return failures ? 1 : 0;
}

static int connect_to(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    double deadline = now_s() + 10;
    for (;;) { /* the server may still be starting */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            set_nonblocking(fd);
            return fd;
        }
        close(fd);
        if (now_s() > deadline) return -1;
        usleep(20000);
    }
}

static int client(int argc, char **argv) {
    int port = atoi(argv[2]);
    const char *name = arg_value(argc, argv, "name");
    int count = arg_value(argc, argv, "count") ? atoi(arg_value(argc, argv, "count")) : 1;
    conn_tls_config *cfg = config_from_args(argc, argv, 3);
    char err[512];
    conn_tls_ctx *ctx = conn_tls_ctx_new(cfg, err, sizeof err);
    conn_tls_config_free(cfg);
    if (!ctx) {
        printf("context error: %s\n", err);
        return 2;
    }
    int failures = 0;
    for (int i = 0; i < count; i++) {
        int fd = connect_to(port);
        CHECK(fd >= 0);
        conn_tls *c = conn_tls_new_client(ctx, fd, name);
        CHECK(c);
        char line[256];
        if (handshake(c, fd) != CONN_TLS_OK) {
            printf("handshake error: %s\n", conn_tls_last_error(c));
            failures++;
        } else if (write_all(c, fd, "ping\n", 5, 5) != 0 || read_line(c, fd, line, sizeof line) != 0) {
            /* With TLS 1.3 a rejected client certificate shows up here, after the handshake. */
            printf("handshake error: %s\n", conn_tls_last_error(c));
            failures++;
        } else {
            report(c);
            printf("reply: %s\n", line);
            finish(c, fd);
        }
        fflush(stdout);
        conn_tls_free(c);
        close(fd);
    }
    conn_tls_ctx_free(ctx);
    return failures ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "server") == 0) return serve(argc, argv);
    if (argc >= 3 && strcmp(argv[1], "client") == 0) return client(argc, argv);
    fprintf(stderr, "usage: peer server [opts] | peer client PORT [opts]\n");
    return 2;
}
