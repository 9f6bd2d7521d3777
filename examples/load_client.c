/* load_client: a small RESP load generator on conntls's client mode, for machines without
 * redis-benchmark. Prints lines in redis-benchmark -q's shape:
 *   "SET: 12345.67 requests per second, errors=0, disconnects=0"
 *
 *   load_client --port P [--tls --ca F --cert F --key F] [--clients N] [--requests R]
 *               [--size BYTES] [--tests set,get,ping]
 *
 * One thread, one epoll; each client keeps one request in flight. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conntls.h"

typedef struct {
    int fd;
    conn_tls *tls;
    int ready;       /* handshake done */
    size_t out_off;  /* bytes of the request already sent */
    size_t expect;   /* reply bytes still expected; 0: no request in flight */
    long done;
} client;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static ssize_t io_write(client *c, const char *buf, size_t len) {
    if (c->tls) return conn_tls_write(c->tls, buf, len);
    ssize_t n = write(c->fd, buf, len);
    return n < 0 && errno == EAGAIN ? CONN_TLS_WANT_WRITE : n < 0 ? CONN_TLS_ERR : n;
}

static ssize_t io_read(client *c, char *buf, size_t len) {
    if (c->tls) return conn_tls_read(c->tls, buf, len);
    ssize_t n = read(c->fd, buf, len);
    return n < 0 && errno == EAGAIN ? CONN_TLS_WANT_READ : n < 0 ? CONN_TLS_ERR : n;
}

int main(int argc, char **argv) {
    int port = 6380, clients = 50, tls = 0;
    long requests = 10000;
    size_t size = 32;
    const char *ca = NULL, *certf = NULL, *keyf = NULL, *tests = "set,get";
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(argv[i], "--tls")) { tls = 1; continue; }
        if (!strcmp(argv[i], "--port")) port = atoi(v);
        else if (!strcmp(argv[i], "--clients")) clients = atoi(v);
        else if (!strcmp(argv[i], "--requests")) requests = atol(v);
        else if (!strcmp(argv[i], "--size")) size = (size_t)atol(v);
        else if (!strcmp(argv[i], "--ca")) ca = v;
        else if (!strcmp(argv[i], "--cert")) certf = v;
        else if (!strcmp(argv[i], "--key")) keyf = v;
        else if (!strcmp(argv[i], "--tests")) tests = v;
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
        i++;
    }
    conn_tls_ctx *ctx = NULL;
    if (tls) {
        conn_tls_config *cfg = conn_tls_config_new();
        char err[512];
        const char *opts[][2] = {{"ca-cert-file", ca}, {"client-cert-file", certf}, {"client-key-file", keyf}};
        for (int i = 0; i < 3; i++)
            if (opts[i][1] && conn_tls_config_set(cfg, opts[i][0], opts[i][1], err, sizeof err) != CONN_TLS_OK) {
                fprintf(stderr, "%s\n", err);
                return 2;
            }
        ctx = conn_tls_ctx_new(cfg, err, sizeof err);
        conn_tls_config_free(cfg);
        if (!ctx) { fprintf(stderr, "%s\n", err); return 2; }
    }
    char *value = malloc(size);
    memset(value, 'x', size);
    char *set_req = malloc(size + 64), *get_req = "*2\r\n$3\r\nGET\r\n$7\r\nkey:001\r\n";
    int set_len = sprintf(set_req, "*3\r\n$3\r\nSET\r\n$7\r\nkey:001\r\n$%zu\r\n", size);
    memcpy(set_req + set_len, value, size);
    set_len += (int)size;
    memcpy(set_req + set_len, "\r\n", 2);
    set_len += 2;
    char get_reply_head[32];
    size_t get_reply = (size_t)sprintf(get_reply_head, "$%zu\r\n", size) + size + 2;
    static char rbuf[1 << 16];

    char *list = strdup(tests);
    for (char *test = strtok(list, ","); test; test = strtok(NULL, ",")) {
        const char *req;
        size_t req_len, reply_len;
        if (!strcmp(test, "set")) req = set_req, req_len = (size_t)set_len, reply_len = 5;
        else if (!strcmp(test, "get")) req = get_req, req_len = strlen(get_req), reply_len = get_reply;
        else if (!strcmp(test, "ping")) req = "*1\r\n$4\r\nPING\r\n", req_len = 14, reply_len = 7;
        else { fprintf(stderr, "unknown test %s\n", test); return 2; }
        int ep = epoll_create1(0);
        client *cs = calloc((size_t)clients, sizeof *cs);
        long errors = 0, disconnects = 0, issued = 0, completed = 0;
        for (int i = 0; i < clients; i++) {
            client *c = &cs[i];
            c->fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 1; }
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
            c->tls = tls ? conn_tls_new_client(ctx, c->fd, "localhost") : NULL;
            c->ready = !tls;
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        }
        double t0 = now_s(), deadline = t0 + 60;
        int live = clients;
        while (completed < requests && live > 0 && now_s() < deadline) {
            struct epoll_event evs[256];
            int n = epoll_wait(ep, evs, 256, 100);
            for (int e = 0; e < n; e++) {
                client *c = evs[e].data.ptr;
                if (c->fd < 0) continue;
                if (!c->ready) {
                    int r = conn_tls_handshake(c->tls);
                    if (r == CONN_TLS_ERR) goto dead;
                    if (r != CONN_TLS_OK) continue;
                    c->ready = 1;
                }
                if (c->expect == 0 && issued < requests) { /* issue the next request */
                    c->expect = reply_len;
                    c->out_off = 0;
                    issued++;
                }
                while (c->expect && c->out_off < req_len) {
                    ssize_t w = io_write(c, req + c->out_off, req_len - c->out_off);
                    if (w == CONN_TLS_WANT_WRITE || w == CONN_TLS_WANT_READ) break;
                    if (w < 0) goto dead;
                    c->out_off += (size_t)w;
                }
                if (c->tls && conn_tls_pending_write(c->tls) > 0 && conn_tls_flush(c->tls) == CONN_TLS_ERR) goto dead;
                for (;;) {
                    ssize_t r = io_read(c, rbuf, sizeof rbuf);
                    if (r == CONN_TLS_WANT_READ || r == CONN_TLS_WANT_WRITE) break;
                    if (r <= 0) goto dead;
                    if (rbuf[0] == '-' && c->expect == reply_len) errors++;
                    c->expect = (size_t)r >= c->expect ? 0 : c->expect - (size_t)r;
                    if (c->expect == 0) {
                        completed++;
                        c->done++;
                        if (issued < requests) {
                            c->expect = reply_len;
                            c->out_off = 0;
                            issued++;
                            while (c->out_off < req_len) {
                                ssize_t w = io_write(c, req + c->out_off, req_len - c->out_off);
                                if (w == CONN_TLS_WANT_WRITE || w == CONN_TLS_WANT_READ) break;
                                if (w < 0) goto dead;
                                c->out_off += (size_t)w;
                            }
                        }
                    }
                }
                continue;
            dead:
                disconnects++;
                live--;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                conn_tls_free(c->tls);
                close(c->fd);
                c->fd = -1;
            }
        }
        double secs = now_s() - t0;
        for (char *p = test; *p; p++) *p = (char)(*p - 32 * (*p >= 'a' && *p <= 'z'));
        printf("%s: %.2f requests per second, errors=%ld, disconnects=%ld\n", test, completed / secs, errors, disconnects);
        for (int i = 0; i < clients; i++) {
            if (cs[i].fd < 0) continue;
            if (cs[i].tls) conn_tls_shutdown(cs[i].tls);
            conn_tls_free(cs[i].tls);
            close(cs[i].fd);
        }
        free(cs);
        close(ep);
        if (completed < requests) return 1;
    }
    free(list);
    free(value);
    free(set_req);
    conn_tls_ctx_free(ctx);
    return 0;
}
