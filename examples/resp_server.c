/* resp_server: a small RESP2 server in the shape of Valkey's connection layer, on conntls.
 *
 *   resp_server --tls-port P --port Q --cert F --key F --ca F [--sndbuf BYTES]
 *               [--handshake-threads N] [--auth-clients no|yes|optional]
 *   Port 0 picks a free port; the first line printed names both ports.
 *
 * - One epoll event-loop thread owns every established connection.
 * - TLS handshakes run on handshake threads (each its own epoll); a finished connection
 *   comes back through a queue and an eventfd, never touching the event loop from there.
 * - Replies are a list of chunks (small replies copied into 16 KiB blocks, large values
 *   referenced, not copied), sent with conn_tls_writev; write interest stays on while
 *   anything is queued or conn_tls_pending_write() > 0.
 * - Reads drain while conn_tls_pending_read() > 0.
 * - TLS and plain TCP listeners side by side.
 * - Certificates: conn_tls_ctx_reload_if_changed every second and on SIGHUP.
 * - SIGTERM: close_notify to every TLS client, then exit with a stats line on stdout.
 * Commands: PING SET GET DEL INCR LPUSH RPUSH LPOP RPOP LRANGE CONFIG QUIT (CONFIG GET
 * answers an empty list); anything else: -ERR unknown command. Malformed RESP: an error
 * reply, then the connection is closed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "conntls.h"

#define MAX_ARGS 1024
#define MAX_BULK (64 << 20)
#define BLOCK 16384
#define REF_MIN 4096 /* values at least this long are referenced in replies, not copied */
#define HANDSHAKE_TIMEOUT_S 10

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) die("out of memory");
    return p;
}

/* ---- values: reference-counted strings and lists ---- */

typedef struct str {
    int refs;
    size_t len;
    char data[];
} str;

static str *str_new(const char *data, size_t len) {
    str *s = xmalloc(sizeof *s + len + 1);
    s->refs = 1;
    s->len = len;
    memcpy(s->data, data, len);
    s->data[len] = 0;
    return s;
}

static void str_drop(str *s) {
    if (s && --s->refs == 0) free(s);
}

typedef struct { /* a ring buffer: O(1) at both ends */
    str **items;
    size_t head, len, cap;
} list;

static void list_grow(list *l) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    str **items = xmalloc(cap * sizeof *items);
    for (size_t i = 0; i < l->len; i++) items[i] = l->items[(l->head + i) % l->cap];
    free(l->items);
    l->items = items;
    l->head = 0;
    l->cap = cap;
}

static str *list_at(list *l, size_t i) { return l->items[(l->head + i) % l->cap]; }

typedef struct entry {
    char *key;
    size_t klen;
    str *value; /* a string, or NULL for a list */
    list *list;
    struct entry *next;
} entry;

#define BUCKETS (1 << 16)
static entry *table[BUCKETS];

static uint64_t hash(const char *k, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
    return h;
}

static entry **lookup(const char *k, size_t n) {
    entry **e = &table[hash(k, n) & (BUCKETS - 1)];
    while (*e && ((*e)->klen != n || memcmp((*e)->key, k, n) != 0)) e = &(*e)->next;
    return e;
}

static void entry_free(entry *e) {
    str_drop(e->value);
    if (e->list) {
        for (size_t i = 0; i < e->list->len; i++) str_drop(list_at(e->list, i));
        free(e->list->items);
        free(e->list);
    }
    free(e->key);
    free(e);
}

static entry *entry_create(entry **slot, const char *k, size_t n) {
    entry *e = calloc(1, sizeof *e);
    e->key = xmalloc(n);
    memcpy(e->key, k, n);
    e->klen = n;
    *slot = e;
    return e;
}

/* ---- clients and their reply lists ---- */

typedef struct chunk {
    struct chunk *next;
    str *ref;   /* a referenced value, or NULL for an owned block */
    size_t len; /* bytes in the block (owned) */
    size_t off; /* bytes already committed */
    char block[];
} chunk;

typedef struct client {
    int fd;
    conn_tls *tls; /* NULL on the plain listener */
    char *in;
    size_t in_len, in_cap;
    chunk *head, *tail;
    int closing;    /* QUIT or a protocol error: close once the replies are out */
    int want_write; /* EPOLLOUT is registered */
    double handshake_deadline;
    struct client *next_done; /* handshake queue link */
} client;

static struct {
    uint64_t tls_accepted, plain_accepted, handshake_errors, conn_errors, protocol_errors, commands;
    uint64_t rotations_seen;
} stats;

static void reply_bytes(client *c, const char *data, size_t len) {
    while (len > 0) {
        chunk *t = c->tail;
        if (!t || t->ref || t->len == BLOCK) {
            t = xmalloc(sizeof *t + BLOCK);
            t->next = NULL;
            t->ref = NULL;
            t->len = t->off = 0;
            if (c->tail) c->tail->next = t;
            else c->head = t;
            c->tail = t;
        }
        size_t n = len < BLOCK - t->len ? len : BLOCK - t->len;
        memcpy(t->block + t->len, data, n);
        t->len += n;
        data += n;
        len -= n;
    }
}

static void reply_fmt(client *c, const char *fmt, ...) {
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    reply_bytes(c, buf, (size_t)n);
}

static void reply_bulk(client *c, str *s) {
    if (!s) {
        reply_bytes(c, "$-1\r\n", 5);
        return;
    }
    reply_fmt(c, "$%zu\r\n", s->len);
    if (s->len >= REF_MIN) {
        chunk *r = xmalloc(sizeof *r);
        r->next = NULL;
        r->ref = s;
        s->refs++;
        r->len = s->len;
        r->off = 0;
        c->tail->next = r;
        c->tail = r;
    } else {
        reply_bytes(c, s->data, s->len);
    }
    reply_bytes(c, "\r\n", 2);
}

static void reply_error(client *c, const char *msg) { reply_fmt(c, "-ERR %s\r\n", msg); }

/* ---- commands ---- */

typedef struct {
    const char *p;
    size_t n;
} arg;

static int is(arg a, const char *name) { return a.n == strlen(name) && strncasecmp(a.p, name, a.n) == 0; }

static int parse_ll(arg a, long long *out) {
    if (a.n == 0 || a.n > 20) return 0;
    char buf[24];
    memcpy(buf, a.p, a.n);
    buf[a.n] = 0;
    char *end;
    errno = 0;
    *out = strtoll(buf, &end, 10);
    return errno == 0 && *end == 0;
}

static list *list_of(arg key, int create, int *wrongtype) {
    entry **slot = lookup(key.p, key.n);
    *wrongtype = 0;
    if (*slot && !(*slot)->list) {
        *wrongtype = 1;
        return NULL;
    }
    if (!*slot) {
        if (!create) return NULL;
        entry_create(slot, key.p, key.n)->list = calloc(1, sizeof(list));
    }
    return (*slot)->list;
}

static void drop_if_empty(arg key) {
    entry **slot = lookup(key.p, key.n);
    if (*slot && (*slot)->list && (*slot)->list->len == 0) {
        entry *e = *slot;
        *slot = e->next;
        entry_free(e);
    }
}

#define WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"

static void command(client *c, arg *a, int argc) {
    stats.commands++;
    int wrong;
    if (is(a[0], "PING")) {
        if (argc > 1) {
            reply_fmt(c, "$%zu\r\n", a[1].n);
            reply_bytes(c, a[1].p, a[1].n);
            reply_bytes(c, "\r\n", 2);
        } else {
            reply_bytes(c, "+PONG\r\n", 7);
        }
    } else if (is(a[0], "SET") && argc >= 3) {
        entry **slot = lookup(a[1].p, a[1].n);
        if (*slot && (*slot)->list) {
            entry *e = *slot;
            *slot = e->next;
            entry_free(e);
        }
        entry *e = *slot ? *slot : entry_create(slot, a[1].p, a[1].n);
        str_drop(e->value);
        e->value = str_new(a[2].p, a[2].n);
        reply_bytes(c, "+OK\r\n", 5);
    } else if (is(a[0], "GET") && argc == 2) {
        entry *e = *lookup(a[1].p, a[1].n);
        if (e && e->list) reply_error(c, WRONGTYPE);
        else reply_bulk(c, e ? e->value : NULL);
    } else if (is(a[0], "DEL") && argc >= 2) {
        long long n = 0;
        for (int i = 1; i < argc; i++) {
            entry **slot = lookup(a[i].p, a[i].n);
            if (*slot) {
                entry *e = *slot;
                *slot = e->next;
                entry_free(e);
                n++;
            }
        }
        reply_fmt(c, ":%lld\r\n", n);
    } else if (is(a[0], "INCR") && argc == 2) {
        entry **slot = lookup(a[1].p, a[1].n);
        long long v = 0;
        if (*slot && ((*slot)->list || !parse_ll((arg){(*slot)->value->data, (*slot)->value->len}, &v) || v == LLONG_MAX)) {
            reply_error(c, "value is not an integer or out of range");
            return;
        }
        entry *e = *slot ? *slot : entry_create(slot, a[1].p, a[1].n);
        char buf[24];
        int n = snprintf(buf, sizeof buf, "%lld", v + 1);
        str_drop(e->value);
        e->value = str_new(buf, (size_t)n);
        reply_fmt(c, ":%lld\r\n", v + 1);
    } else if ((is(a[0], "LPUSH") || is(a[0], "RPUSH")) && argc >= 3) {
        list *l = list_of(a[1], 1, &wrong);
        if (wrong) return reply_error(c, WRONGTYPE);
        for (int i = 2; i < argc; i++) {
            if (l->len == l->cap) list_grow(l);
            str *v = str_new(a[i].p, a[i].n);
            if (is(a[0], "LPUSH")) {
                l->head = (l->head + l->cap - 1) % l->cap;
                l->items[l->head] = v;
            } else {
                l->items[(l->head + l->len) % l->cap] = v;
            }
            l->len++;
        }
        reply_fmt(c, ":%zu\r\n", l->len);
    } else if ((is(a[0], "LPOP") || is(a[0], "RPOP")) && argc == 2) {
        list *l = list_of(a[1], 0, &wrong);
        if (wrong) return reply_error(c, WRONGTYPE);
        if (!l || l->len == 0) return reply_bulk(c, NULL);
        str *v;
        if (is(a[0], "LPOP")) {
            v = l->items[l->head];
            l->head = (l->head + 1) % l->cap;
        } else {
            v = list_at(l, l->len - 1);
        }
        l->len--;
        reply_bulk(c, v);
        str_drop(v);
        drop_if_empty(a[1]);
    } else if (is(a[0], "LRANGE") && argc == 4) {
        long long start, stop;
        if (!parse_ll(a[2], &start) || !parse_ll(a[3], &stop)) return reply_error(c, "value is not an integer or out of range");
        list *l = list_of(a[1], 0, &wrong);
        if (wrong) return reply_error(c, WRONGTYPE);
        long long len = l ? (long long)l->len : 0;
        if (start < 0) start += len;
        if (stop < 0) stop += len;
        if (start < 0) start = 0;
        if (stop >= len) stop = len - 1;
        if (start > stop || len == 0) return reply_bytes(c, "*0\r\n", 4);
        reply_fmt(c, "*%lld\r\n", stop - start + 1);
        for (long long i = start; i <= stop; i++) reply_bulk(c, list_at(l, (size_t)i));
    } else if (is(a[0], "CONFIG") && argc >= 2 && is(a[1], "GET")) {
        reply_bytes(c, "*0\r\n", 4);
    } else if (is(a[0], "QUIT")) {
        reply_bytes(c, "+OK\r\n", 5);
        c->closing = 1;
    } else {
        reply_error(c, "unknown command");
    }
}

/* Parses and runs every complete command in the input buffer. Returns -1 on a protocol
 * error (an error reply is queued and the client will be closed). */
static int process_input(client *c) {
    static arg args[MAX_ARGS];
    size_t pos = 0;
    while (pos < c->in_len && !c->closing) {
        char *p = c->in + pos, *end = c->in + c->in_len;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            if (end - p > 65536) goto bad;
            break;
        }
        int argc = 0;
        if (*p == '*') { /* multibulk */
            long long n;
            if (!parse_ll((arg){p + 1, (size_t)(nl - p - 1 - (nl[-1] == '\r'))}, &n) || n < 0 || n > MAX_ARGS) goto bad;
            char *q = nl + 1;
            int complete = 1;
            for (long long i = 0; i < n; i++) {
                char *l = memchr(q, '\n', (size_t)(end - q));
                if (!l) {
                    complete = 0;
                    break;
                }
                long long blen;
                if (*q != '$' || !parse_ll((arg){q + 1, (size_t)(l - q - 1 - (l[-1] == '\r'))}, &blen) || blen < 0 || blen > MAX_BULK) goto bad;
                if (end - (l + 1) < blen + 2) {
                    complete = 0;
                    break;
                }
                args[argc++] = (arg){l + 1, (size_t)blen};
                q = l + 1 + blen;
                if (q[0] != '\r' || q[1] != '\n') goto bad;
                q += 2;
            }
            if (!complete) break;
            pos = (size_t)(q - c->in);
        } else { /* inline: words on one line */
            char *q = p, *stop = nl - (nl > p && nl[-1] == '\r');
            while (q < stop && argc < MAX_ARGS) {
                while (q < stop && *q == ' ') q++;
                char *w = q;
                while (q < stop && *q != ' ') q++;
                if (q > w) args[argc++] = (arg){w, (size_t)(q - w)};
            }
            pos = (size_t)(nl + 1 - c->in);
        }
        if (argc > 0) command(c, args, argc);
    }
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
    return 0;
bad:
    stats.protocol_errors++;
    reply_error(c, "Protocol error");
    c->closing = 1;
    c->in_len = 0;
    return -1;
}

/* ---- the event loop ---- */

static int epfd, done_efd;
static conn_tls_ctx *ctx;
static conn_tls_config *cfg;
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static client *done_queue;
static int sndbuf;
static client *clients[65536];

static void watch(client *c, int want_write) {
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = c};
    if (want_write != c->want_write) {
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_write = want_write;
    }
}

static void client_free(client *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    clients[c->fd] = NULL;
    conn_tls_free(c->tls);
    close(c->fd);
    while (c->head) {
        chunk *n = c->head->next;
        str_drop(c->head->ref);
        free(c->head);
        c->head = n;
    }
    free(c->in);
    free(c);
}

/* Sends queued replies: 0 when all is out, 1 when the socket is full, -1 on error. */
static int send_replies(client *c) {
    for (;;) {
        struct iovec iov[64];
        int n = 0;
        for (chunk *k = c->head; k && n < 64; k = k->next) {
            const char *base = k->ref ? k->ref->data : k->block;
            iov[n++] = (struct iovec){(void *)(base + k->off), k->len - k->off};
        }
        if (n == 0) break;
        ssize_t sent;
        if (c->tls) {
            sent = conn_tls_writev(c->tls, iov, n);
            if (sent == CONN_TLS_WANT_WRITE || sent == CONN_TLS_WANT_READ) return 1;
            if (sent < 0) return -1;
        } else {
            sent = writev(c->fd, iov, n);
            if (sent < 0) return errno == EAGAIN ? 1 : -1;
        }
        while (sent > 0) { /* drop what was committed */
            chunk *k = c->head;
            size_t left = k->len - k->off;
            if ((size_t)sent < left) {
                k->off += (size_t)sent;
                break;
            }
            sent -= (ssize_t)left;
            c->head = k->next;
            if (!c->head) c->tail = NULL;
            str_drop(k->ref);
            free(k);
        }
    }
    if (c->tls && conn_tls_pending_write(c->tls) > 0) {
        int r = conn_tls_flush(c->tls);
        if (r == CONN_TLS_WANT_WRITE) return 1;
        if (r != CONN_TLS_OK) return -1;
    }
    return 0;
}

/* Writes what can go now, then keeps write interest exactly while something waits. */
static void flush_client(client *c) {
    int r = send_replies(c);
    if (r < 0) {
        stats.conn_errors++;
        client_free(c);
    } else if (r == 0 && c->closing) {
        if (c->tls) conn_tls_shutdown(c->tls);
        client_free(c);
    } else {
        watch(c, r == 1);
    }
}

static void read_client(client *c) {
    for (;;) {
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 32768;
            c->in = realloc(c->in, c->in_cap);
        }
        ssize_t n = c->tls ? conn_tls_read(c->tls, c->in + c->in_len, c->in_cap - c->in_len)
                           : read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n > 0) {
            c->in_len += (size_t)n;
            if (process_input(c) < 0) break;
            continue; /* more may be buffered (conn_tls_pending_read) or on the socket */
        }
        if (n == 0) { /* the peer closed */
            client_free(c);
            return;
        }
        if (c->tls ? (n == CONN_TLS_WANT_READ || n == CONN_TLS_WANT_WRITE) : errno == EAGAIN) break;
        stats.conn_errors++;
        client_free(c);
        return;
    }
    flush_client(c);
}

static client *client_new(int fd, conn_tls *tls) {
    client *c = calloc(1, sizeof *c);
    c->fd = fd;
    c->tls = tls;
    return c;
}

static void add_to_loop(client *c) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    clients[c->fd] = c;
}

/* ---- handshake threads ---- */

typedef struct {
    int ep;
    int wake; /* eventfd: new connections queued */
    pthread_mutex_t lock;
    client *queue;
    client **inflight; /* owned by the thread: handshakes it is driving */
    size_t n_inflight, cap_inflight;
} hs_thread;

/* Stops driving c (done, failed or timed out) and gives it back to the event loop. */
static void hand_back(client *c);
static void finish_handshake(hs_thread *t, client *c, int ok) {
    epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
    for (size_t i = 0; i < t->n_inflight; i++)
        if (t->inflight[i] == c) {
            t->inflight[i] = t->inflight[--t->n_inflight];
            break;
        }
    if (!ok) c->closing = 2; /* failed: the loop counts and closes it */
    hand_back(c);
}

static hs_thread *hs;
static int hs_count = 2, hs_next;

static void hand_back(client *c) {
    pthread_mutex_lock(&done_lock);
    c->next_done = done_queue;
    done_queue = c;
    pthread_mutex_unlock(&done_lock);
    uint64_t one = 1;
    if (write(done_efd, &one, sizeof one) < 0) {}
}

static void *handshake_thread(void *p) {
    hs_thread *t = p;
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(t->ep, evs, 64, 200);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) { /* new connections */
                uint64_t v;
                if (read(t->wake, &v, sizeof v) < 0) {}
                pthread_mutex_lock(&t->lock);
                client *q = t->queue;
                t->queue = NULL;
                pthread_mutex_unlock(&t->lock);
                while (q) {
                    client *next = q->next_done;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = q};
                    epoll_ctl(t->ep, EPOLL_CTL_ADD, q->fd, &ev);
                    q->handshake_deadline = now_s() + HANDSHAKE_TIMEOUT_S;
                    if (t->n_inflight == t->cap_inflight) {
                        t->cap_inflight = t->cap_inflight ? 2 * t->cap_inflight : 64;
                        t->inflight = realloc(t->inflight, t->cap_inflight * sizeof *t->inflight);
                    }
                    t->inflight[t->n_inflight++] = q;
                    q = next;
                }
                continue;
            }
            client *c = evs[i].data.ptr;
            int r = conn_tls_handshake(c->tls);
            if (r == CONN_TLS_WANT_READ || r == CONN_TLS_WANT_WRITE) {
                struct epoll_event ev = {.events = r == CONN_TLS_WANT_READ ? EPOLLIN : EPOLLOUT, .data.ptr = c};
                epoll_ctl(t->ep, EPOLL_CTL_MOD, c->fd, &ev);
                continue;
            }
            finish_handshake(t, c, r == CONN_TLS_OK);
        }
        /* Handshakes that stall (a slowloris peer) fail after HANDSHAKE_TIMEOUT_S. */
        double now = now_s();
        for (size_t i = t->n_inflight; i-- > 0;)
            if (t->inflight[i]->handshake_deadline < now) finish_handshake(t, t->inflight[i], 0);
    }
    return NULL;
}

static void start_handshake(client *c) {
    hs_thread *t = &hs[hs_next++ % hs_count];
    pthread_mutex_lock(&t->lock);
    c->next_done = t->queue;
    t->queue = c;
    pthread_mutex_unlock(&t->lock);
    uint64_t one = 1;
    if (write(t->wake, &one, sizeof one) < 0) {}
}

static void collect_handshakes(void) {
    uint64_t v;
    if (read(done_efd, &v, sizeof v) < 0) {}
    pthread_mutex_lock(&done_lock);
    client *q = done_queue;
    done_queue = NULL;
    pthread_mutex_unlock(&done_lock);
    while (q) {
        client *c = q;
        q = q->next_done;
        if (c->closing == 2) {
            stats.handshake_errors++;
            c->closing = 0;
            client_free(c);
            continue;
        }
        add_to_loop(c);
        read_client(c); /* data may have arrived with the handshake */
    }
}

/* ---- listeners, signals, main ---- */

/* Listens on 127.0.0.1:*port (0: any free port, written back). */
static int listen_on(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 511) != 0) die("cannot listen on 127.0.0.1:%d: %s", *port, strerror(errno));
    getsockname(fd, (struct sockaddr *)&a, &alen);
    *port = ntohs(a.sin_port);
    return fd;
}

static void accept_all(int lfd, int tls) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) return;
        if (fd >= (int)(sizeof clients / sizeof clients[0])) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (sndbuf) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        if (tls) {
            conn_tls *t = conn_tls_new_server(ctx, fd);
            if (!t) {
                close(fd);
                continue;
            }
            stats.tls_accepted++;
            start_handshake(client_new(fd, t));
        } else {
            stats.plain_accepted++;
            add_to_loop(client_new(fd, NULL));
        }
    }
}

static void reload(const char *why) {
    char err[512];
    int r = conn_tls_ctx_reload_if_changed(ctx, cfg, err, sizeof err);
    if (r == 1) fprintf(stderr, "resp_server: %s: certificates reloaded, generation %llu\n", why, (unsigned long long)conn_tls_ctx_generation(ctx));
    else if (r < 0) fprintf(stderr, "resp_server: %s: reload failed, keeping generation %llu: %s\n", why, (unsigned long long)conn_tls_ctx_generation(ctx), err);
}

static void on_log(void *ud, int level, const char *msg) {
    (void)ud;
    if (level <= 4) fprintf(stderr, "conntls[%d]: %s\n", level, msg);
}

int main(int argc, char **argv) {
    int tls_port = 6380, port = 6379;
    const char *certf = NULL, *keyf = NULL, *caf = NULL, *auth = "optional";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tls-port")) tls_port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--cert")) certf = argv[i + 1];
        else if (!strcmp(argv[i], "--key")) keyf = argv[i + 1];
        else if (!strcmp(argv[i], "--ca")) caf = argv[i + 1];
        else if (!strcmp(argv[i], "--auth-clients")) auth = argv[i + 1];
        else if (!strcmp(argv[i], "--sndbuf")) sndbuf = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--handshake-threads")) hs_count = atoi(argv[i + 1]);
        else die("unknown option %s", argv[i]);
    }
    if (!certf || !keyf || !caf) die("usage: resp_server --cert F --key F --ca F [--tls-port P] [--port Q] [--sndbuf N]");
    signal(SIGPIPE, SIG_IGN);
    conn_tls_set_log(on_log, NULL);
    cfg = conn_tls_config_new();
    char err[512];
    const char *opts[][2] = {{"cert-file", certf}, {"key-file", keyf}, {"ca-cert-file", caf}, {"auth-clients", auth}};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if (conn_tls_config_set(cfg, opts[i][0], opts[i][1], err, sizeof err) != CONN_TLS_OK) die("%s", err);
    ctx = conn_tls_ctx_new(cfg, err, sizeof err);
    if (!ctx) die("%s", err);

    epfd = epoll_create1(0);
    done_efd = eventfd(0, EFD_NONBLOCK);
    int tls_l = listen_on(&tls_port), plain_l = listen_on(&port);
    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec every_second = {{1, 0}, {1, 0}};
    timerfd_settime(timer, 0, &every_second, NULL);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* before the threads start, so they inherit it */
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK);
    static char tags[5];
    int fds[] = {tls_l, plain_l, done_efd, timer, sfd};
    for (int i = 0; i < 5; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tags[i]};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &ev);
    }
    hs = calloc((size_t)hs_count, sizeof *hs);
    for (int i = 0; i < hs_count; i++) {
        hs[i].ep = epoll_create1(0);
        hs[i].wake = eventfd(0, EFD_NONBLOCK);
        pthread_mutex_init(&hs[i].lock, NULL);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(hs[i].ep, EPOLL_CTL_ADD, hs[i].wake, &ev);
        pthread_t t;
        pthread_create(&t, NULL, handshake_thread, &hs[i]);
        pthread_detach(t);
    }
    printf("resp_server: tls 127.0.0.1:%d, plain 127.0.0.1:%d\n", tls_port, port);
    fflush(stdout);
    int running = 1;
    while (running) {
        struct epoll_event evs[256];
        int n = epoll_wait(epfd, evs, 256, 1000);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &tags[0]) accept_all(tls_l, 1);
            else if (p == &tags[1]) accept_all(plain_l, 0);
            else if (p == &tags[2]) collect_handshakes();
            else if (p == &tags[3]) {
                uint64_t v;
                if (read(timer, &v, sizeof v) < 0) {}
                reload("timer");
            } else if (p == &tags[4]) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGHUP) reload("SIGHUP");
                    else running = 0;
                }
            } else {
                client *c = p;
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_client(c);
                else if (evs[i].events & EPOLLOUT) flush_client(c);
            }
        }
    }
    /* SIGTERM: close_notify to every TLS client that can take it now, then exit. */
    for (size_t fd = 0; fd < sizeof clients / sizeof clients[0]; fd++) {
        if (!clients[fd]) continue;
        if (clients[fd]->tls) conn_tls_shutdown(clients[fd]->tls);
        client_free(clients[fd]);
    }
    printf("stats: tls_accepted=%llu plain_accepted=%llu handshake_errors=%llu conn_errors=%llu protocol_errors=%llu commands=%llu generation=%llu\n",
           (unsigned long long)stats.tls_accepted, (unsigned long long)stats.plain_accepted,
           (unsigned long long)stats.handshake_errors, (unsigned long long)stats.conn_errors,
           (unsigned long long)stats.protocol_errors, (unsigned long long)stats.commands,
           (unsigned long long)conn_tls_ctx_generation(ctx));
    conn_tls_ctx_free(ctx);
    conn_tls_config_free(cfg);
    return 0;
}
