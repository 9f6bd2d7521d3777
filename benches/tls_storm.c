/* tls_storm: a TLS connection storm against a RESP server (valkey #4308) or memcached,
 * measured from the client side, with the server's own counters.
 *
 *   tls_storm --port P --ca F [--cert F --key F] [--storm N] [--give-up-ms T]
 *             [--patient M] [--seconds S] [--server-pid PID] [--counters FILE]
 *             [--protocol resp|memcached]
 *
 * N storm clients connect at once; each that has not finished its TLS handshake within
 * T ms gives up (closes) and connects again at once; one that finishes sends PING, reads
 * the answer, closes and connects again. Meanwhile M patient clients, connected before
 * the storm, each keep one GET in flight. After S seconds it prints one line:
 *   handshakes/s (finished by a client that was still there), give-ups/s, patient GET/s,
 *   patient p50 / p99 latency (ms), and, with --server-pid: the server's CPU seconds and
 *   RSS; with --counters (the file of a server run under benches/storm_counter.c): the
 *   connections it accepted and the handshakes it wasted (first flights computed for
 *   clients that had already closed).
 * The storm and the patient clients are two processes (one thread, one epoll each), so
 * the storm's client-side handshakes do not delay the patient clients' answers; client-side
 * TLS is conntls (its cost is the same for every server measured). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../c_tests/testutil.h" /* now_s, config_of, ctx_from */
#include "server_proc.h"

typedef struct {
    int fd;
    conn_tls *tls;
    int patient;
    int stage;       /* 0 handshaking, 1 request sent, waiting for the answer */
    double started;  /* of the handshake (storm) or of the request in flight (patient) */
} client;

static void die(const char *what) {
    fprintf(stderr, "tls_storm: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int port, epfd;
static conn_tls_ctx *ctx;
static long finished, gave_up, failed, gets;
static samples latency;

static void watch(client *c, int events, int op) {
    struct epoll_event ev = {.events = (uint32_t)events, .data.ptr = c};
    epoll_ctl(epfd, op, c->fd, &ev);
}

static void connect_client(client *c) {
    c->fd = loopback_connect(port);
    if (c->fd < 0) die("connect");
    c->tls = conn_tls_new_client(ctx, c->fd, NULL);
    if (!c->tls) {
        fprintf(stderr, "tls_storm: %s\n", conn_tls_thread_last_error());
        exit(1);
    }
    c->stage = 0;
    c->started = now_s();
    watch(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void drop(client *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    conn_tls_free(c->tls);
    close(c->fd);
}

/* The request every client sends once handshaken, and the patient clients keep in flight:
 * a RESP GET, or with --protocol memcached memcached's text get; either answer fits one
 * read. */
static const char *get = "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";

static void send_get(client *c) {
    size_t len = strlen(get);
    c->stage = 1;
    c->started = now_s();
    if (conn_tls_write(c->tls, get, len) != (ssize_t)len) {
        failed++;
        drop(c);
        connect_client(c);
        return;
    }
    watch(c, EPOLLIN | (conn_tls_pending_write(c->tls) ? EPOLLOUT : 0), EPOLL_CTL_MOD);
}

/* Steps a client on an event; returns nothing, reconnecting clients as they finish. */
static void step(client *c) {
    if (c->stage == 0) {
        int r = conn_tls_handshake(c->tls);
        if (r == CONN_TLS_WANT_READ || r == CONN_TLS_WANT_WRITE) {
            watch(c, r == CONN_TLS_WANT_READ ? EPOLLIN : EPOLLOUT, EPOLL_CTL_MOD);
            return;
        }
        if (r != CONN_TLS_OK) {
            failed++;
            drop(c);
            connect_client(c);
            return;
        }
        if (!c->patient) finished++;
        send_get(c);
        return;
    }
    if (conn_tls_pending_write(c->tls) && conn_tls_flush(c->tls) == CONN_TLS_ERR) goto broken;
    char buf[512];
    ssize_t n = conn_tls_read(c->tls, buf, sizeof buf);
    if (n == CONN_TLS_WANT_READ || n == CONN_TLS_WANT_WRITE) return;
    if (n <= 0) goto broken;
    if (c->patient) {
        gets++;
        if (!samples_add(&latency, (now_s() - c->started) * 1000)) die("realloc");
        send_get(c);
    } else {
        drop(c); /* one answer, then the next connection */
        connect_client(c);
    }
    return;
broken:
    failed++;
    drop(c);
    connect_client(c);
}

/* Server CPU seconds (user + system) and RSS (KiB) from /proc. */
static void server_stats(int pid, double *cpu, long *rss_kib) {
    *cpu = proc_cpu_s(pid);
    *rss_kib = proc_rss_kib(pid);
}

/* The server's counters from benches/storm_counter.c: accepted, wasted; -1 without them. */
static void server_counters(const char *path, long long out[2]) {
    out[0] = out[1] = -1;
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) return;
    uint64_t v[2];
    if (fread(v, sizeof v, 1, f) == 1) {
        out[0] = (long long)v[0];
        out[1] = (long long)v[1];
    }
    fclose(f);
}

int main(int argc, char **argv) {
    const char *ca = NULL, *cert = NULL, *key = NULL;
    int storm = 2000, patient = 20, give_up_ms = 1000, pid = 0;
    const char *counters = NULL;
    double seconds = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "--port")) port = atoi(v);
        else if (!strcmp(o, "--ca")) ca = v;
        else if (!strcmp(o, "--cert")) cert = v;
        else if (!strcmp(o, "--key")) key = v;
        else if (!strcmp(o, "--storm")) storm = atoi(v);
        else if (!strcmp(o, "--patient")) patient = atoi(v);
        else if (!strcmp(o, "--give-up-ms")) give_up_ms = atoi(v);
        else if (!strcmp(o, "--seconds")) seconds = atof(v);
        else if (!strcmp(o, "--server-pid")) pid = atoi(v);
        else if (!strcmp(o, "--counters")) counters = v;
        else if (!strcmp(o, "--protocol") && !strcmp(v, "memcached")) get = "get key\r\n";
        else if (!strcmp(o, "--protocol") && !strcmp(v, "resp")) continue;
        else {
            fprintf(stderr, "tls_storm: unknown option %s\n", o);
            return 2;
        }
    }
    if (!port || !ca) {
        fprintf(stderr, "usage: tls_storm --port P --ca F [--cert F --key F] [--storm N] [--give-up-ms T] [--patient M] "
                        "[--seconds S] [--server-pid PID] [--counters FILE] [--protocol resp|memcached]\n");
        return 2;
    }
    struct rlimit rl = {storm + patient + 256, storm + patient + 256};
    setrlimit(RLIMIT_NOFILE, &rl);
    /* The patient clients run in a process of their own: on a small machine the storm's
     * client-side handshakes would otherwise delay them too, and that is not the server's
     * latency. `ready` says the patient clients are connected, `go` starts both halves,
     * `result` brings the patient figures back. */
    int ready[2], go[2], result[2];
    if (pipe(ready) || pipe(go) || pipe(result)) die("pipe");
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) die("fork");
    int np = child == 0 ? patient : 0, ns = child == 0 ? 0 : storm; /* this process's clients */
    ctx = ctx_from(config_of("ca-cert-file", ca, "client-cert-file", cert ? cert : "", "client-key-file", key ? key : "",
                             "session-caching", "no", NULL));
    epfd = epoll_create1(0);
    client *clients = calloc((size_t)(ns + np) + 1, sizeof *clients);
    if (!clients) die("calloc");
    struct epoll_event events[256];
    char byte = 0;
    double cpu0 = 0, cpu1 = 0;
    long rss0 = 0, rss1 = 0, peak_rss = 0;
    long long count0[2] = {-1, -1}, count1[2] = {-1, -1};
    if (child == 0) {
        /* Handshaken before the storm (no session resumption: every storm handshake is a
         * full one). */
        for (int i = 0; i < np; i++) {
            clients[i].patient = 1;
            connect_client(&clients[i]);
        }
        double settle = now_s() + 10;
        while (now_s() < settle) {
            int done = 0;
            for (int i = 0; i < np; i++) done += clients[i].stage == 1;
            if (done == np) break;
            int n = epoll_wait(epfd, events, 256, 50);
            for (int i = 0; i < n; i++) step(events[i].data.ptr);
        }
        if (write(ready[1], &byte, 1) != 1 || read(go[0], &byte, 1) != 1) die("pipe");
        gets = latency.n = 0;
    } else {
        if (read(ready[0], &byte, 1) != 1) die("the patient clients' process ended early");
        server_counters(counters, count0);
        if (pid) server_stats(pid, &cpu0, &rss0);
        for (int i = 0; i < ns; i++) connect_client(&clients[i]);
        if (write(go[1], &byte, 1) != 1) die("pipe");
    }
    double start = now_s(), end = start + seconds, next_sweep = start;
    while (now_s() < end) {
        int n = epoll_wait(epfd, events, 256, 10);
        for (int i = 0; i < n; i++) step(events[i].data.ptr);
        double t = now_s();
        if (t >= next_sweep && child != 0) {
            /* Storm clients past their patience give up and try again. */
            for (int i = 0; i < ns; i++) {
                client *c = &clients[i];
                if (c->stage == 0 && (t - c->started) * 1000 > give_up_ms) {
                    gave_up++;
                    drop(c);
                    connect_client(c);
                }
            }
            if (pid) {
                double cpu;
                long rss;
                server_stats(pid, &cpu, &rss);
                if (rss > peak_rss) peak_rss = rss;
            }
            next_sweep = t + 0.05;
        }
    }
    double elapsed = now_s() - start;
    if (child == 0) {
        samples_sort(&latency);
        double p[4] = {gets / elapsed, samples_at(&latency, 1, 2), samples_at(&latency, 99, 100),
                       (double)failed};
        if (write(result[1], p, sizeof p) != (ssize_t)sizeof p) die("pipe");
        for (int i = 0; i < np; i++) drop(&clients[i]);
        _exit(0);
    }
    if (pid) server_stats(pid, &cpu1, &rss1);
    server_counters(counters, count1);
    double patient_figures[4]; /* GET/s, p50, p99, failures */
    if (read(result[0], patient_figures, sizeof patient_figures) != (ssize_t)sizeof patient_figures) die("the patient clients' process ended early");
    waitpid(child, NULL, 0);
    failed += (long)patient_figures[3];
    printf("storm %d clients (give up after %d ms), %d patient, %.0f s: handshakes %.0f/s, give-ups %.0f/s, failures %ld; "
           "patient GET %.0f/s, p50 %.2f ms, p99 %.2f ms",
           storm, give_up_ms, patient, elapsed, finished / elapsed, gave_up / elapsed, failed, patient_figures[0],
           patient_figures[1], patient_figures[2]);
    if (pid) printf("; server CPU %.1f s, RSS %.1f -> peak %.1f MB", cpu1 - cpu0, rss0 / 1024.0, peak_rss / 1024.0);
    if (count0[0] >= 0 && count1[0] >= 0) {
        long long accepted = count1[0] - count0[0], wasted = count1[1] - count0[1];
        printf("; accepted %lld (%.0f/s), wasted handshakes %lld (%.0f/s)", accepted, accepted / elapsed, wasted, wasted / elapsed);
    }
    printf("\n");
    for (int i = 0; i < ns; i++) drop(&clients[i]);
    conn_tls_ctx_free(ctx);
    free(clients);
    free(latency.v);
    return 0;
}
