/* What the server benchmarks' clients share (tls_storm.c, mc_load.c, idle_clients.c): a
 * non-blocking loopback connection, the measured server's CPU and memory from /proc, and
 * latency samples. Header-only; each includes it once. */
#ifndef CONNTLS_BENCH_SERVER_PROC_H
#define CONNTLS_BENCH_SERVER_PROC_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A TCP connection to 127.0.0.1:port, non-blocking, with TCP_NODELAY, connecting; -1 with
 * errno when the socket or connect fails outright. */
static inline int loopback_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Process `pid`'s CPU seconds (user + system); -1 when /proc cannot be read. */
static inline double proc_cpu_s(int pid) {
    char path[64], buf[1024];
    unsigned long ut = 0, st = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *p = fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
    fclose(f);
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Process `pid`'s resident memory in KiB; -1 when /proc cannot be read. */
static inline long proc_rss_kib(int pid) {
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = atol(line + 6);
    fclose(f);
    return kib;
}

/* qsort's comparison of doubles (latency samples). */
static inline int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Latency samples (ms), grown as they come. */
typedef struct {
    double *v;
    long n, cap;
} samples;

/* Appends `x`; 0 when memory runs out. */
static inline int samples_add(samples *s, double x) {
    if (s->n == s->cap) {
        long cap = s->cap ? s->cap * 2 : 1 << 16;
        double *v = realloc(s->v, sizeof *v * (size_t)cap);
        if (!v) return 0;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return 1;
}

/* After samples_sort: the sample at fraction `num/den` of the way up (p50: 1/2, p99:
 * 99/100); 0 when there is none. */
static inline void samples_sort(samples *s) { qsort(s->v, (size_t)s->n, sizeof *s->v, cmp_double); }
static inline double samples_at(const samples *s, long num, long den) { return s->n ? s->v[s->n * num / den] : 0; }

#endif
