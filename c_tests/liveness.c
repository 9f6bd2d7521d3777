/* Dead-peer detection.
 *
 *   liveness options
 *       loopback: the context options tcp-user-timeout / tcp-keepalive and the client
 *       defaults land on the sockets; explicit calls override them.
 *   liveness blackhole SRV_NS CLI_NS SRV_DEV SRV_ADDR
 *       in network namespaces made by the test harness: a conntls server in SRV_NS, six
 *       conntls clients in CLI_NS. After traffic flows, SRV_DEV goes down (no RST):
 *         - a client writing with a 2 s user timeout gets ERR "timed out" within 3.5 s;
 *         - a client writing without user timeout or keepalive is still undetected at 10 s;
 *         - an idle client with keepalive 2/1/3 (user timeout off) gets ERR "timed out"
 *           within 2+1*3+1 s;
 *         - an idle client left with the library's defaults, then given keepalive 1/1/2,
 *           gets ERR within 1+1*2+1 s: the default 30 s user timeout must not stretch it;
 *         - an idle client from a context with tcp-keepalive 1 (1/1/3), within 1+1*3+1 s;
 *         - an idle client whose caller set a 6 s user timeout and then keepalive 1/1/2:
 *           the caller's user timeout wins, ERR after 6 s, within 6+1+1 s. */
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include "testutil.h"

static int sockopt(int fd, int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    CHECK(getsockopt(fd, level, name, &v, &len) == 0);
    return v;
}

static int options(void) {
    /* Context options apply to server and client connections alike. */
    conn_tls_ctx *srv = ctx_from(config_of("cert-file", cert("server.crt"), "key-file", cert("server.key"),
                                           "auth-clients", "no", "tcp-user-timeout", "4321", "tcp-keepalive", "9", NULL));
    int c, s;
    tcp_pair(&c, &s);
    conn_tls *sc = conn_tls_new_server(srv, s);
    CHECK(sc);
    CHECK_EQ(sockopt(s, IPPROTO_TCP, TCP_USER_TIMEOUT), 4321);
    CHECK_EQ(sockopt(s, SOL_SOCKET, SO_KEEPALIVE), 1);
    CHECK_EQ(sockopt(s, IPPROTO_TCP, TCP_KEEPIDLE), 9);
    CHECK_EQ(sockopt(s, IPPROTO_TCP, TCP_KEEPINTVL), 3);
    CHECK_EQ(sockopt(s, IPPROTO_TCP, TCP_KEEPCNT), 3);
    /* Explicit calls override them. */
    CHECK_EQ(conn_tls_set_user_timeout(sc, 1500), CONN_TLS_OK);
    CHECK_EQ(sockopt(s, IPPROTO_TCP, TCP_USER_TIMEOUT), 1500);
    CHECK_EQ(conn_tls_set_keepalive(sc, 5, 2, 4), CONN_TLS_OK);
    CHECK_EQ(sockopt(s, IPPROTO_TCP, TCP_KEEPIDLE), 5);
    CHECK_EQ(sockopt(s, IPPROTO_TCP, TCP_KEEPINTVL), 2);
    CHECK_EQ(sockopt(s, IPPROTO_TCP, TCP_KEEPCNT), 4);
    CHECK_EQ(conn_tls_set_keepalive(sc, 5, 0, 4), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(sc), "interval");
    CHECK_EQ(conn_tls_set_keepalive(sc, 0, 0, 0), CONN_TLS_OK);
    CHECK_EQ(sockopt(s, SOL_SOCKET, SO_KEEPALIVE), 0);
    conn_tls_free(sc);
    close(c);
    close(s);

    /* Server connections are otherwise left alone; client connections get the defaults. */
    conn_tls_ctx *plain = server_ctx(), *cli = client_ctx();
    tcp_pair(&c, &s);
    sc = conn_tls_new_server(plain, s);
    conn_tls *cc = conn_tls_new_client(cli, c, "localhost");
    CHECK(sc && cc);
    CHECK_EQ(sockopt(s, IPPROTO_TCP, TCP_USER_TIMEOUT), 0);
    CHECK_EQ(sockopt(s, SOL_SOCKET, SO_KEEPALIVE), 0);
    CHECK_EQ(sockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT), 30000);
    CHECK_EQ(sockopt(c, SOL_SOCKET, SO_KEEPALIVE), 1);
    CHECK_EQ(sockopt(c, IPPROTO_TCP, TCP_KEEPIDLE), 15);
    /* Keepalive from the caller moves the library's default user timeout with it (to half
     * an interval before the last probe's answer is due), and keepalive off restores it. */
    CHECK_EQ(conn_tls_set_keepalive(cc, 1, 1, 2), CONN_TLS_OK);
    CHECK_EQ(sockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT), 2500);
    CHECK_EQ(conn_tls_set_keepalive(cc, 0, 0, 0), CONN_TLS_OK);
    CHECK_EQ(sockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT), 30000);
    /* A user timeout the caller set is the caller's: keepalive leaves it alone. */
    CHECK_EQ(conn_tls_set_user_timeout(cc, 0), CONN_TLS_OK);
    CHECK_EQ(sockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT), 0);
    CHECK_EQ(conn_tls_set_keepalive(cc, 1, 1, 2), CONN_TLS_OK);
    CHECK_EQ(sockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT), 0);
    conn_tls_free(sc);
    conn_tls_free(cc);
    close(c);
    close(s);

    /* The tcp-keepalive option sets the pace of a client's default user timeout too; an
     * explicit tcp-user-timeout option is the caller's and stays. */
    conn_tls_ctx *ka = ctx_from(config_of("ca-cert-file", cert("ca.crt"), "tcp-keepalive", "9", NULL));
    conn_tls_ctx *ka_ut = ctx_from(config_of("ca-cert-file", cert("ca.crt"), "tcp-keepalive", "9",
                                             "tcp-user-timeout", "60000", NULL));
    tcp_pair(&c, &s);
    cc = conn_tls_new_client(ka, c, "localhost");
    CHECK(cc);
    CHECK_EQ(sockopt(c, IPPROTO_TCP, TCP_KEEPIDLE), 9);
    CHECK_EQ(sockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT), 9000 + 3 * 3000 - 1500);
    conn_tls_free(cc);
    close(c);
    close(s);
    tcp_pair(&c, &s);
    cc = conn_tls_new_client(ka_ut, c, "localhost");
    CHECK(cc);
    CHECK_EQ(sockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT), 60000);
    CHECK_EQ(conn_tls_set_keepalive(cc, 1, 1, 2), CONN_TLS_OK);
    CHECK_EQ(sockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT), 60000);
    conn_tls_free(cc);
    close(c);
    close(s);
    conn_tls_ctx_free(ka);
    conn_tls_ctx_free(ka_ut);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(plain);
    conn_tls_ctx_free(cli);
    printf("liveness options: ok\n");
    return 0;
}

static void enter_netns(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "/var/run/netns/%s", name);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(setns(fd, CLONE_NEWNET) == 0);
    close(fd);
}

enum { PORT = 7443, CLIENTS = 6 };

/* The server: handshakes every connection and reads whatever comes, until killed. */
static void serve(const char *addr, int ready_fd) {
    conn_tls_ctx *ctx = ctx_from(config_of("cert-file", cert("server.crt"), "key-file", cert("server.key"),
                                           "auth-clients", "no", NULL));
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    CHECK(inet_pton(AF_INET, addr, &a.sin_addr) == 1);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 8) == 0);
    CHECK(write(ready_fd, "r", 1) == 1);
    struct pollfd p[1 + CLIENTS];
    conn_tls *conns[1 + CLIENTS] = {0};
    int n = 1;
    p[0] = (struct pollfd){.fd = l, .events = POLLIN};
    for (;;) {
        poll(p, (nfds_t)n, 100);
        if ((p[0].revents & POLLIN) && n < 1 + CLIENTS) {
            int fd = accept(l, NULL, NULL);
            set_nonblocking(fd);
            conns[n] = conn_tls_new_server(ctx, fd);
            p[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
        }
        for (int i = 1; i < n; i++) {
            char buf[4096];
            while (conn_tls_read(conns[i], buf, sizeof buf) > 0) {}
        }
    }
}

static int blackhole(const char *srv_ns, const char *cli_ns, const char *srv_dev, const char *addr) {
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t server = fork();
    CHECK(server >= 0);
    if (server == 0) {
        enter_netns(srv_ns);
        serve(addr, ready[1]);
        _exit(0);
    }
    char r;
    CHECK(read(ready[0], &r, 1) == 1);
    enter_netns(cli_ns);

    conn_tls_ctx *ctx = client_ctx();
    conn_tls_ctx *ka_ctx = ctx_from(config_of("ca-cert-file", cert("ca.crt"), "tcp-keepalive", "1", NULL));
    enum { TIMED = 0, CONTROL = 1, IDLE = 2, DEFAULTS_THEN_KEEPALIVE = 3, OPTION_KEEPALIVE = 4, CALLER_TIMEOUT_WINS = 5 };
    int fds[CLIENTS];
    conn_tls *c[CLIENTS];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    CHECK(inet_pton(AF_INET, addr, &a.sin_addr) == 1);
    for (int i = 0; i < CLIENTS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(connect(fds[i], (struct sockaddr *)&a, sizeof a) == 0);
        set_nonblocking(fds[i]);
        c[i] = conn_tls_new_client(i == OPTION_KEEPALIVE ? ka_ctx : ctx, fds[i], "localhost");
        CHECK(c[i]);
        double deadline = now_s() + 10;
        int h;
        while ((h = conn_tls_handshake(c[i])) != CONN_TLS_OK) {
            CHECK(h != CONN_TLS_ERR && now_s() < deadline);
            struct pollfd p = {.fd = fds[i], .events = h == CONN_TLS_WANT_READ ? POLLIN : POLLOUT};
            poll(&p, 1, 100);
        }
        static char hello[4096];
        CHECK_EQ(write_all(c[i], fds[i], hello, sizeof hello, 5), 0);
    }
    CHECK_EQ(conn_tls_set_user_timeout(c[TIMED], 2000), CONN_TLS_OK);
    CHECK_EQ(conn_tls_set_keepalive(c[TIMED], 0, 0, 0), CONN_TLS_OK);
    CHECK_EQ(conn_tls_set_user_timeout(c[CONTROL], 0), CONN_TLS_OK);
    CHECK_EQ(conn_tls_set_keepalive(c[CONTROL], 0, 0, 0), CONN_TLS_OK);
    CHECK_EQ(conn_tls_set_user_timeout(c[IDLE], 0), CONN_TLS_OK);
    CHECK_EQ(conn_tls_set_keepalive(c[IDLE], 2, 1, 3), CONN_TLS_OK);
    CHECK_EQ(conn_tls_set_keepalive(c[DEFAULTS_THEN_KEEPALIVE], 1, 1, 2), CONN_TLS_OK);
    CHECK_EQ(conn_tls_set_user_timeout(c[CALLER_TIMEOUT_WINS], 6000), CONN_TLS_OK);
    CHECK_EQ(conn_tls_set_keepalive(c[CALLER_TIMEOUT_WINS], 1, 1, 2), CONN_TLS_OK);
    usleep(200000); /* let the traffic so far be acknowledged */

    char cmd[256];
    snprintf(cmd, sizeof cmd, "ip -n %s link set %s down", srv_ns, srv_dev);
    CHECK(system(cmd) == 0);
    double down = now_s(), detected[CLIENTS] = {0};
    char why[CLIENTS][256];
    static char chunk[1024];
    while (now_s() - down < 10.5) {
        for (int i = 0; i < CLIENTS; i++) {
            if (detected[i]) continue;
            ssize_t n;
            if (i != TIMED && i != CONTROL) {
                char b[16];
                n = conn_tls_read(c[i], b, sizeof b);
            } else {
                n = conn_tls_write(c[i], chunk, sizeof chunk);
                if (n == CONN_TLS_WANT_WRITE) n = conn_tls_flush(c[i]);
            }
            if (n == CONN_TLS_ERR) {
                detected[i] = now_s() - down;
                snprintf(why[i], sizeof why[i], "%s", conn_tls_last_error(c[i]));
            }
        }
        usleep(50000);
    }
    printf("black hole: user timeout 2 s detected after %.2f s (%s); keepalive 2/1/3 idle detected after %.2f s (%s); "
           "control %s after %.1f s\n",
           detected[TIMED], detected[TIMED] ? why[TIMED] : "-", detected[IDLE], detected[IDLE] ? why[IDLE] : "-",
           detected[CONTROL] ? "DETECTED" : "still undetected", now_s() - down);
    printf("black hole, idle: defaults then keepalive 1/1/2 detected after %.2f s; tcp-keepalive 1 option after %.2f s; "
           "caller's 6 s user timeout with keepalive 1/1/2 after %.2f s\n",
           detected[DEFAULTS_THEN_KEEPALIVE], detected[OPTION_KEEPALIVE], detected[CALLER_TIMEOUT_WINS]);
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    CHECK(detected[TIMED] > 1.5 && detected[TIMED] <= 3.5);
    CHECK_CONTAINS(why[TIMED], "timed out");
    CHECK(detected[IDLE] > 1.5 && detected[IDLE] <= 2 + 1 * 3 + 1);
    CHECK_CONTAINS(why[IDLE], "timed out");
    CHECK(detected[CONTROL] == 0);
    CHECK(detected[DEFAULTS_THEN_KEEPALIVE] > 0.5 && detected[DEFAULTS_THEN_KEEPALIVE] <= 1 + 1 * 2 + 1);
    CHECK_CONTAINS(why[DEFAULTS_THEN_KEEPALIVE], "timed out");
    CHECK(detected[OPTION_KEEPALIVE] > 0.5 && detected[OPTION_KEEPALIVE] <= 1 + 1 * 3 + 1);
    CHECK_CONTAINS(why[OPTION_KEEPALIVE], "timed out");
    CHECK(detected[CALLER_TIMEOUT_WINS] >= 5.5 && detected[CALLER_TIMEOUT_WINS] <= 6 + 1 + 1);
    CHECK_CONTAINS(why[CALLER_TIMEOUT_WINS], "timed out");
    for (int i = 0; i < CLIENTS; i++) {
        conn_tls_free(c[i]);
        close(fds[i]);
    }
    conn_tls_ctx_free(ctx);
    conn_tls_ctx_free(ka_ctx);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "options") == 0) return options();
    if (argc == 6 && strcmp(argv[1], "blackhole") == 0) return blackhole(argv[2], argv[3], argv[4], argv[5]);
    fprintf(stderr, "usage: liveness options | liveness blackhole SRV_NS CLI_NS SRV_DEV SRV_ADDR\n");
    return 2;
}
