/* idle_clients: what an idle client costs a RESP server (valkey, redis), in server RSS.
 *
 *   idle_clients --server-pid PID --port P [--ca F [--cert F --key F]] [--count N]
 *
 * Opens N connections to P (TLS with --ca, with a client certificate if given), each
 * sends PING and reads +PONG; then they sit idle and the server's RSS (from /proc) is
 * compared with its RSS before. Prints KB (1000 bytes) of server RSS per idle client.
 * One kind per server: a server reuses what earlier clients freed, so each kind is
 * measured on a fresh one (benches/valkey_idle.sh). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_proc.h"

#include "../c_tests/testutil.h" /* config_of, ctx_from */

static void die(const char *what) {
    fprintf(stderr, "idle_clients: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(1);
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) die("connect");
    return fd;
}

static void wait_fd(int fd, int status) {
    struct pollfd p = {.fd = fd, .events = status == CONN_TLS_WANT_WRITE ? POLLOUT : POLLIN};
    if (poll(&p, 1, 10000) != 1) die("the server did not answer within 10 s");
}

/* PING and +PONG over a blocking plain socket, or conntls over a blocking one. */
static void ping(int fd, conn_tls *tls) {
    static const char cmd[] = "*1\r\n$4\r\nPING\r\n";
    char buf[16];
    ssize_t n;
    if (!tls) {
        if (write(fd, cmd, sizeof cmd - 1) != (ssize_t)(sizeof cmd - 1)) die("write");
        n = read(fd, buf, sizeof buf);
    } else {
        int r;
        while ((r = conn_tls_handshake(tls)) == CONN_TLS_WANT_READ || r == CONN_TLS_WANT_WRITE) wait_fd(fd, r);
        if (r != CONN_TLS_OK) {
            fprintf(stderr, "idle_clients: handshake: %s\n", conn_tls_last_error(tls));
            exit(1);
        }
        if (conn_tls_write(tls, cmd, sizeof cmd - 1) != (ssize_t)(sizeof cmd - 1)) die("conn_tls_write");
        while ((n = conn_tls_read(tls, buf, sizeof buf)) == CONN_TLS_WANT_READ || n == CONN_TLS_WANT_WRITE) wait_fd(fd, (int)n);
    }
    if (n < 5 || memcmp(buf, "+PONG", 5) != 0) die("no +PONG");
}

/* KB of server RSS per idle client of one kind. */
static double per_client(int pid, int port, conn_tls_ctx *ctx, int count) {
    int *fds = calloc((size_t)count, sizeof *fds);
    conn_tls **tls = calloc((size_t)count, sizeof *tls);
    if (!fds || !tls) die("calloc");
    sleep(1);
    long before = proc_rss_kib(pid);
    for (int i = 0; i < count; i++) {
        fds[i] = connect_to(port);
        if (ctx && !(tls[i] = conn_tls_new_client(ctx, fds[i], NULL))) die(conn_tls_thread_last_error());
        ping(fds[i], tls[i]);
    }
    sleep(1);
    long after = proc_rss_kib(pid);
    for (int i = 0; i < count; i++) {
        conn_tls_free(tls[i]);
        close(fds[i]);
    }
    free(fds);
    free(tls);
    return (double)(after - before) * 1024 / 1000 / count;
}

int main(int argc, char **argv) {
    int pid = 0, port = 0, count = 3000;
    const char *ca = NULL, *cert = NULL, *key = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "--server-pid")) pid = atoi(v);
        else if (!strcmp(o, "--port")) port = atoi(v);
        else if (!strcmp(o, "--ca")) ca = v;
        else if (!strcmp(o, "--cert")) cert = v;
        else if (!strcmp(o, "--key")) key = v;
        else if (!strcmp(o, "--count")) count = atoi(v);
        else {
            fprintf(stderr, "idle_clients: unknown option %s\n", o);
            return 2;
        }
    }
    if (!pid || !port || count < 1) {
        fprintf(stderr, "usage: idle_clients --server-pid PID --port P [--ca F [--cert F --key F]] [--count N]\n");
        return 2;
    }
    struct rlimit rl = {(rlim_t)count + 64, (rlim_t)count + 64};
    setrlimit(RLIMIT_NOFILE, &rl);
    conn_tls_ctx *ctx = ca ? ctx_from(config_of("ca-cert-file", ca, "client-cert-file", cert ? cert : "",
                                                 "client-key-file", key ? key : "", NULL))
                           : NULL;
    printf("%d idle %s clients: %.1f KB of server RSS each\n", count, ctx ? (cert ? "mutual-TLS" : "TLS") : "plain",
           per_client(pid, port, ctx, count));
    conn_tls_ctx_free(ctx);
    return 0;
}
