/* A TLS client of a RESP server (Redis, Valkey) on plain OpenSSL: an independent peer for
 * the server triggers of tests/redis.rs. Blocking sockets with 20 s send/receive timeouts,
 * so nothing waits forever.
 *
 *   resp_tls_peer PORT CA CERT KEY pipeline CONNS REQUESTS OUTSTANDING CHUNK SIZE[,SIZE...]
 *     Sets key:<i> to SIZE_i bytes of a known pattern, then CONNS connections at once each
 *     send REQUESTS GETs of the keys in turn, at most OUTSTANDING unanswered, and read the
 *     replies CHUNK bytes a millisecond (slower than the server writes: its replies pile up
 *     while a write is blocked, and new requests keep arriving). Every reply byte is
 *     checked. Prints a line per connection ("ok" or "dropped ... after N replies: why");
 *     exit 0 when every connection got every reply right, 1 otherwise, 2 on set-up errors.
 *
 *   resp_tls_peer PORT CA CERT KEY gather COUNT SMALL BIG
 *     The stack-buffer trigger (valkey #4307), without timing: a connection with a 4 KiB
 *     receive buffer sends COUNT GETs of SMALL-byte values in one record (their replies, under
 *     the 64 KiB a server gathers into one write, cannot fit in the pipe: the write
 *     blocks), waits until reply bytes reach its socket (the server's write has been
 *     tried), then sends a GET of a BIG-byte value before reading anything, so that the
 *     server's retry of the blocked write finds the big reply behind the small ones. Then
 *     reads every reply and checks every byte. Exit 0 when all came right, 1 when the
 *     connection was dropped or a byte was wrong, 2 on set-up errors.
 *
 *   resp_tls_peer PORT CA CERT KEY quit CHUNK SIZE[,SIZE...]
 *     A close right after the last reply: for each SIZE, key:<i> set to SIZE bytes, then a
 *     connection with a 4 KiB receive buffer sends GET key:<i> and QUIT in one record and
 *     reads CHUNK bytes a millisecond until the server closes. Every byte of the bulk
 *     reply is checked, then +OK must follow, then the end of the stream (printed: how a
 *     server ends a TLS stream on a full socket is its own). Prints a line per size; exit
 *     0 when every reply came whole, 1 otherwise, 2 on set-up errors.
 *
 *   resp_tls_peer PORT CA CERT KEY churn COUNT
 *     Clients that leave mid-handshake (valkey #1883's "unexpected eof" accept errors),
 *     COUNT of them one after another, in turn: closing right after the TCP connect,
 *     after sending the ClientHello, and after reading the server's first flight without
 *     answering it. Then checks that the server still completes a handshake and answers
 *     PING. Exit 0 when it does, 1 otherwise, 2 on set-up errors.
 *
 *   resp_tls_peer PORT CA CERT KEY killpair ROUNDS SERVER_PID
 *     The pending-list trigger, ROUNDS times: clients A and B each send
 *     SET <40,000-byte bulk> whose last TLS record also carries CLIENT KILL ID <the other>,
 *     both written while the server is stopped (SIGSTOP, then SIGCONT: the test started
 *     it), so that it wakes with the same bytes waiting on both and reads them in step:
 *     both reach the end of their bulk in one event-loop turn with the CLIENT KILL still
 *     decrypted in the TLS layer, whatever the machine's speed. Then checks that the
 *     server still answers PING. Exit 0 when it always did, 1 when it stopped answering
 *     (the round is printed), 2 on set-up errors. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <poll.h>

static int port;
static SSL_CTX *ctx;
static int rcvbuf; /* SO_RCVBUF of the connections made, when set */

typedef struct {
    int fd;
    SSL *ssl;
} peer;

static void die(const char *what) {
    fprintf(stderr, "resp_tls_peer: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static int peer_open(peer *p) {
    p->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 20};
    int one = 1;
    setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (rcvbuf) setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (connect(p->fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    p->ssl = SSL_new(ctx);
    SSL_set_fd(p->ssl, p->fd);
    return SSL_connect(p->ssl) == 1 ? 0 : -1;
}

static void peer_close(peer *p) {
    if (p->ssl) SSL_free(p->ssl);
    close(p->fd);
    p->ssl = NULL;
}

static int send_all(peer *p, const char *buf, size_t len) {
    return len == 0 || SSL_write(p->ssl, buf, (int)len) == (int)len ? 0 : -1;
}

/* Reads one line (a simple reply) into buf; returns its length or -1. */
static int read_line(peer *p, char *buf, int cap) {
    int n = 0;
    while (n < cap - 1) {
        if (SSL_read(p->ssl, buf + n, 1) != 1) return -1;
        if (buf[n++] == '\n') break;
    }
    buf[n] = 0;
    return n;
}

static char pattern(size_t key, size_t j) {
    return (char)('a' + (j + 7 * key) % 26);
}

/* ---- pipeline ---- */

static size_t nsizes, sizes[16];
static long requests, outstanding, chunk;

static char *set_command(size_t key, size_t *len) {
    size_t size = sizes[key];
    char head[128];
    int h = snprintf(head, sizeof head, "*3\r\n$3\r\nSET\r\n$%zu\r\nkey:%zu\r\n$%zu\r\n",
                     (size_t)snprintf(NULL, 0, "key:%zu", key), key, size);
    char *cmd = malloc((size_t)h + size + 2);
    memcpy(cmd, head, (size_t)h);
    for (size_t j = 0; j < size; j++) cmd[h + j] = pattern(key, j);
    memcpy(cmd + h + size, "\r\n", 2);
    *len = (size_t)h + size + 2;
    return cmd;
}

/* The byte at offset `at` of the expected reply to GET key:`key`. */
static int expected(size_t key, size_t at, char *c) {
    char head[32];
    size_t h = (size_t)snprintf(head, sizeof head, "$%zu\r\n", sizes[key]);
    if (at < h) *c = head[at];
    else if (at < h + sizes[key]) *c = pattern(key, at - h);
    else *c = "\r\n"[at - h - sizes[key]];
    return at + 1 == h + sizes[key] + 2; /* last byte of this reply */
}

/* key:<i> set to sizes[i] bytes of the pattern, on a connection of its own. */
static void set_keys(void) {
    peer setup = {0};
    if (peer_open(&setup) != 0) die("set-up connection failed");
    for (size_t k = 0; k < nsizes; k++) {
        size_t len;
        char *cmd = set_command(k, &len), line[64];
        if (send_all(&setup, cmd, len) != 0 || read_line(&setup, line, sizeof line) < 0 || strcmp(line, "+OK\r\n"))
            die("SET failed");
        free(cmd);
    }
    peer_close(&setup);
}

static int send_get(peer *p, size_t key) {
    char cmd[64];
    int len = snprintf(cmd, sizeof cmd, "*2\r\n$3\r\nGET\r\n$%d\r\nkey:%zu\r\n", snprintf(NULL, 0, "key:%zu", key), key);
    return send_all(p, cmd, (size_t)len);
}

/* Where a connection is in the replies it reads: to GETs of keys first, first+1, ... */
typedef struct {
    size_t first;
    long done; /* replies complete and right */
    size_t at; /* offset in the current one */
} replies;

/* One read (at most cap bytes), every byte checked. 0, or -1 with why it stopped. */
static int read_some(peer *p, replies *r, char *buf, int cap, char *why, size_t whylen) {
    int n = SSL_read(p->ssl, buf, cap);
    if (n <= 0) {
        int e = SSL_get_error(p->ssl, n);
        snprintf(why, whylen, "%s", e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ? "closed by the server" : "TLS error");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char c;
        int last = expected((r->first + (size_t)r->done) % nsizes, r->at, &c);
        if (buf[i] != c) {
            snprintf(why, whylen, "wrong byte at offset %zu of reply %ld", r->at, r->done);
            return -1;
        }
        r->at++;
        if (last) {
            r->done++;
            r->at = 0;
        }
    }
    return 0;
}

static void *pipeline_conn(void *arg) {
    long id = (long)arg, sent = 0;
    replies r = {0};
    char *buf = malloc((size_t)chunk), why[256] = "";
    peer p = {0};
    if (peer_open(&p) != 0) {
        snprintf(why, sizeof why, "handshake failed");
        goto out;
    }
    while (r.done < requests) {
        while (sent < requests && sent - r.done < outstanding) {
            if (send_get(&p, (size_t)sent % nsizes) != 0) {
                snprintf(why, sizeof why, "write failed");
                goto out;
            }
            sent++;
        }
        if (read_some(&p, &r, buf, (int)chunk, why, sizeof why) != 0) goto out;
        usleep(1000);
    }
out:
    if (*why)
        printf("connection %ld: dropped after %ld replies: %s\n", id, r.done, why);
    else
        printf("connection %ld: ok, %ld replies\n", id, r.done);
    fflush(stdout);
    peer_close(&p);
    free(buf);
    return (void *)(intptr_t)(*why != 0);
}

static int pipeline(int argc, char **argv) {
    if (argc != 5) die("pipeline CONNS REQUESTS OUTSTANDING CHUNK SIZE[,SIZE...]");
    long conns = atol(argv[0]);
    requests = atol(argv[1]);
    outstanding = atol(argv[2]);
    chunk = atol(argv[3]);
    for (char *s = strtok(argv[4], ","); s && nsizes < 16; s = strtok(NULL, ",")) sizes[nsizes++] = (size_t)atol(s);
    if (conns < 1 || conns > 64 || requests < 1 || outstanding < 1 || chunk < 1 || !nsizes) die("bad pipeline arguments");

    set_keys();
    pthread_t t[64];
    for (long i = 0; i < conns; i++) pthread_create(&t[i], NULL, pipeline_conn, (void *)i);
    int failed = 0;
    for (long i = 0; i < conns; i++) {
        void *r;
        pthread_join(t[i], &r);
        failed |= r != NULL;
    }
    return failed;
}

/* ---- gather ---- */

static int gather(int argc, char **argv) {
    if (argc != 3) die("gather COUNT SMALL BIG");
    long count = atol(argv[0]);
    size_t small = (size_t)atol(argv[1]), big = (size_t)atol(argv[2]);
    if (count < 1 || count > 15 || !small || !big) die("bad gather arguments");
    for (long i = 0; i < count; i++) sizes[nsizes++] = small;
    sizes[nsizes++] = big;
    set_keys();

    peer p = {0};
    rcvbuf = 4096;
    if (peer_open(&p) != 0) die("handshake failed");
    /* The GETs in one TLS record: read in one go, their replies written in one go. */
    char why[256] = "", gets[15 * 64];
    size_t len = 0;
    for (long i = 0; i < count; i++)
        len += (size_t)snprintf(gets + len, sizeof gets - len, "*2\r\n$3\r\nGET\r\n$%d\r\nkey:%ld\r\n",
                                snprintf(NULL, 0, "key:%ld", i), i);
    if (send_all(&p, gets, len)) snprintf(why, sizeof why, "write failed");
    /* Reply bytes on the socket: the server has read the GETs and tried its write. */
    struct pollfd w = {.fd = p.fd, .events = POLLIN};
    if (!*why && poll(&w, 1, 20000) != 1) snprintf(why, sizeof why, "no reply in 20 s");
    if (!*why && send_get(&p, (size_t)count)) snprintf(why, sizeof why, "write failed");
    replies r = {0};
    enum { CAP = 1 << 16 };
    char *buf = malloc(CAP);
    while (!*why && r.done < count + 1) read_some(&p, &r, buf, CAP, why, sizeof why);
    free(buf);
    peer_close(&p);
    if (*why) {
        printf("gather: dropped after %ld replies: %s\n", r.done, why);
        return 1;
    }
    printf("gather: ok, %ld replies\n", r.done);
    return 0;
}

/* ---- quit ---- */

static int quit(int argc, char **argv) {
    if (argc != 2) die("quit CHUNK SIZE[,SIZE...]");
    chunk = atol(argv[0]);
    for (char *tok = strtok(argv[1], ","); tok && nsizes < 16; tok = strtok(NULL, ",")) sizes[nsizes++] = (size_t)atol(tok);
    if (chunk < 1 || !nsizes) die("bad quit arguments");
    set_keys();
    int failed = 0;
    char *buf = malloc((size_t)chunk);
    for (size_t k = 0; k < nsizes; k++) {
        peer p = {0};
        rcvbuf = 4096;
        if (peer_open(&p) != 0) die("handshake failed");
        char cmd[128], why[256] = "";
        int len = snprintf(cmd, sizeof cmd, "*2\r\n$3\r\nGET\r\n$%d\r\nkey:%zu\r\n*1\r\n$4\r\nQUIT\r\n",
                           snprintf(NULL, 0, "key:%zu", k), k);
        if (send_all(&p, cmd, (size_t)len)) snprintf(why, sizeof why, "write failed");
        replies r = {.first = k};
        const char ok[] = "+OK\r\n";
        size_t after = 0; /* bytes of +OK read */
        const char *end = "";
        while (!*why && !*end) {
            struct timespec ms = {.tv_nsec = 1000000};
            nanosleep(&ms, NULL);
            int n = SSL_read(p.ssl, buf, (int)chunk);
            if (n <= 0) {
                int e = SSL_get_error(p.ssl, n);
                end = e == SSL_ERROR_ZERO_RETURN ? "close_notify" : e == SSL_ERROR_SYSCALL ? "EOF" : "a TLS error";
                /* Once everything came, how the stream ends is the server's TLS close: stock's
                 * own SSL_shutdown can leave a truncated alert on a full socket. */
                if (r.done != 1 || after != sizeof ok - 1)
                    snprintf(why, sizeof why, "the stream ended (%s) after %zu bytes of the bulk and %zu of +OK", end,
                             r.done ? sizes[k] : r.at, after);
                break;
            }
            for (int i = 0; i < n && !*why; i++) {
                if (r.done == 0) {
                    char c;
                    int last = expected(k, r.at, &c);
                    if (buf[i] != c) snprintf(why, sizeof why, "wrong byte at offset %zu", r.at);
                    r.at++;
                    if (last) r.done = 1;
                } else if (after < sizeof ok - 1 && buf[i] == ok[after]) {
                    after++;
                } else {
                    snprintf(why, sizeof why, "unexpected byte after the bulk");
                }
            }
        }
        peer_close(&p);
        if (*why) printf("quit %zu: %s\n", sizes[k], why);
        else printf("quit %zu: whole, +OK, then %s\n", sizes[k], end);
        failed |= *why != 0;
    }
    free(buf);
    return failed;
}

/* ---- churn ---- */

static int churn(int argc, char **argv) {
    if (argc != 1) die("churn COUNT");
    long count = atol(argv[0]);
    if (count < 1) die("bad churn arguments");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (long i = 0; i < count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            printf("churn: connection %ld refused\n", i);
            close(fd);
            return 1;
        }
        if (i % 3) {
            SSL *ssl = SSL_new(ctx);
            SSL_set_fd(ssl, fd);
            SSL_set_connect_state(ssl);
            /* Non-blocking from here: one step sends the ClientHello (WANT_READ). */
            struct timeval tv = {.tv_sec = 5};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            BIO_set_nbio(SSL_get_rbio(ssl), 1);
            SSL_do_handshake(ssl);
            if (i % 3 == 2) {
                /* The server's first flight, unanswered. */
                struct pollfd w = {.fd = fd, .events = POLLIN};
                if (poll(&w, 1, 5000) == 1) SSL_do_handshake(ssl);
            }
            SSL_free(ssl);
        }
        close(fd);
    }
    peer p = {0};
    char line[64];
    int alive = peer_open(&p) == 0 && send_all(&p, "*1\r\n$4\r\nPING\r\n", 14) == 0 &&
                read_line(&p, line, sizeof line) > 0 && !strcmp(line, "+PONG\r\n");
    peer_close(&p);
    printf("churn: %ld clients left mid-handshake; the server %s\n", count, alive ? "answers" : "stopped answering");
    return alive ? 0 : 1;
}

/* ---- killpair ---- */

static long client_id(peer *p) {
    char line[64];
    if (send_all(p, "*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n", 24) != 0 || read_line(p, line, sizeof line) < 0 || line[0] != ':')
        return -1;
    return atol(line + 1);
}

/* SET of a 40,000-byte bulk; its last 64 bytes, the CRLF and CLIENT KILL ID `victim` go in
 * a TLS record of their own (*tail). */
static char *kill_payload(long victim, size_t *len, size_t *tail) {
    enum { BULK = 40000, LAST = 64 };
    char id[32], kill[128];
    snprintf(id, sizeof id, "%ld", victim);
    int k = snprintf(kill, sizeof kill, "*4\r\n$6\r\nCLIENT\r\n$4\r\nKILL\r\n$2\r\nID\r\n$%zu\r\n%s\r\n", strlen(id), id);
    const char *head = "*3\r\n$3\r\nSET\r\n$4\r\nbulk\r\n$40000\r\n";
    size_t h = strlen(head);
    char *p = malloc(h + BULK + 2 + (size_t)k);
    memcpy(p, head, h);
    memset(p + h, 'x', BULK);
    memcpy(p + h + BULK, "\r\n", 2);
    memcpy(p + h + BULK + 2, kill, (size_t)k);
    *len = h + BULK + 2 + (size_t)k;
    *tail = LAST + 2 + (size_t)k;
    return p;
}

static void wait_for_kill_answer(peer *p) {
    char line[64];
    while (read_line(p, line, sizeof line) > 0 && line[0] != ':') {}
}

static int killpair(int argc, char **argv) {
    if (argc != 2) die("killpair ROUNDS SERVER_PID");
    long rounds = atol(argv[0]);
    pid_t server = (pid_t)atol(argv[1]);
    if (rounds < 1 || server <= 1) die("bad killpair arguments");
    for (long r = 1; r <= rounds; r++) {
        peer a = {0}, b = {0}, watcher = {0};
        if (peer_open(&a) || peer_open(&b) || peer_open(&watcher)) {
            printf("round %ld: the server refused a connection\n", r);
            return 1;
        }
        long ida = client_id(&a), idb = client_id(&b);
        if (ida < 0 || idb < 0) die("CLIENT ID failed");
        size_t la, ta, lb, tb;
        char *pa = kill_payload(idb, &la, &ta), *pb = kill_payload(ida, &lb, &tb);
        /* The same records on both connections (the tail in one of its own), written while
         * the server is stopped: 40 KB each fit in the sockets' buffers. */
        if (kill(server, SIGSTOP) != 0) die("SIGSTOP");
        int wrote = send_all(&a, pa, la - ta) | send_all(&b, pb, lb - tb) |
                    send_all(&a, pa + la - ta, ta) | send_all(&b, pb + lb - tb, tb);
        if (kill(server, SIGCONT) != 0) die("SIGCONT");
        free(pa);
        free(pb);
        if (wrote) die("write failed");
        /* Each of A and B ends with its CLIENT KILL's answer or with its connection closed
         * (killed by the other, or the server gone); only then is the server asked. */
        char line[64];
        wait_for_kill_answer(&a);
        wait_for_kill_answer(&b);
        int alive = send_all(&watcher, "*1\r\n$4\r\nPING\r\n", 14) == 0 &&
                    read_line(&watcher, line, sizeof line) > 0 && !strcmp(line, "+PONG\r\n");
        peer_close(&a);
        peer_close(&b);
        peer_close(&watcher);
        if (!alive) {
            printf("round %ld: the server stopped answering\n", r);
            return 1;
        }
        printf("round %ld: server alive\n", r);
    }
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN); /* a server that drops us: an error, not a death */
    if (argc < 6) die("usage: resp_tls_peer PORT CA CERT KEY pipeline|gather|churn|killpair|quit ...");
    port = atoi(argv[1]);
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_load_verify_locations(ctx, argv[2], NULL) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, argv[3]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[4], SSL_FILETYPE_PEM) != 1)
        die("client context");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (!strcmp(argv[5], "pipeline")) return pipeline(argc - 6, argv + 6);
    if (!strcmp(argv[5], "killpair")) return killpair(argc - 6, argv + 6);
    if (!strcmp(argv[5], "gather")) return gather(argc - 6, argv + 6);
    if (!strcmp(argv[5], "churn")) return churn(argc - 6, argv + 6);
    if (!strcmp(argv[5], "quit")) return quit(argc - 6, argv + 6);
    die("unknown mode");
}
