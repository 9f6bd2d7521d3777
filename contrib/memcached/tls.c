/* memcached's TLS on libconntls, in place of memcached's tls.c (1.6.18 and 1.6.38; see
 * contrib/memcached/README.md). memcached's event loop, buffers and state machine are
 * untouched; what OpenSSL did is libconntls's:
 *  - the acceptor thread only wraps the socket and hands it to conntls's handshake pool
 *    (key exchange and signature hold up neither accepts nor the workers' established
 *    clients); the main thread collects finished handshakes and dispatches them to workers
 *    as stock dispatches accepted connections. With the pool full, the worker that owns
 *    the connection steps the handshake before its first read or write;
 *  - sendmsg hands memcached's iovecs to conn_tls_writev as they are (no copy into
 *    ssl_wbuf, no 16 KiB cap per call);
 *  - refresh_certs builds a new generation from the files (the CA too) and swaps it in
 *    atomically: no lock on the accept path.
 * CONNTLS_MEMCACHED_VERSION (10618 or 10638) comes from the version's patch (memcached.h). */
#include "memcached.h"

#ifdef TLS

#include "tls.h"
#include <conntls.h>
#include <errno.h>
#include <string.h>
#include <sysexits.h>
#include <sys/param.h>
/* For the values memcached's settings hold and `stats settings` prints (SSL_VERIFY_*,
 * TLS1_*_VERSION, SSL_FILETYPE_PEM): stock's, unchanged. No OpenSSL function is called. */
#include <openssl/ssl.h>

#ifndef MAXPATHLEN
#define MAXPATHLEN 4096
#endif

#define ERROR_MSG_SIZE (MAXPATHLEN + 320)

/* One TLS connection as memcached holds it (conn->ssl). */
typedef struct {
    conn_tls *tls;
    /* Bytes conntls committed that memcached has not been told of: reported once their
     * ciphertext is on the socket, so that "all sent" to memcached means on the wire
     * (memcached then waits for reads only, and nothing would flush the rest). */
    size_t held;
    bool established;
    /* The listener requires a client certificate but there is no CA to verify one with:
     * the context asks for one ("optional", where any certificate fails verification), and
     * a client that sent none is refused once the handshake is done, as stock refuses
     * every client then (conntls builds no "yes" context without a CA). */
    bool require_cert;
    /* Such a client, refused: see refuse(). */
    bool refused;
    /* While inside the pool: what the acceptor would have dispatched it with. */
    int sfd;
    enum network_transport transport;
    uint64_t tag;
    enum protocol protocol;
} mc_tls;

/* The handshake pool (ssl_attach) and its collector's event on the main thread. */
static conn_tls_pool *pool;
static struct event pool_event;

/* One context per client-certificate policy a listener asks for (conn->ssl_enabled:
 * DEFAULT follows ssl_verify_mode; 1.6.38's btls: never asks, mtls: requires). Made on
 * first use, reloaded together by refresh_certs; a context's pointer never changes once
 * set (reloads swap generations inside it), so accepts read it without a lock. */
static conn_tls_ctx *contexts[MC_SSL_ENABLED_PEER + 1];
/* Serializes making contexts and reloading them (config below is rebuilt each time). */
static pthread_mutex_t contexts_lock = PTHREAD_MUTEX_INITIALIZER;

/* Whether clients of `policy` must present a certificate; *asks: whether they are asked. */
static bool requires_cert(uint8_t policy, bool *asks) {
    switch (policy) {
    case MC_SSL_ENABLED_NOPEER:
        *asks = false;
        return false;
    case MC_SSL_ENABLED_PEER:
        *asks = true;
        return true;
    default:
        *asks = (settings.ssl_verify_mode & SSL_VERIFY_PEER) != 0;
        return *asks && (settings.ssl_verify_mode & SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
    }
}

static const char *auth_clients_for(uint8_t policy) {
    bool asks;
    bool required = requires_cert(policy, &asks);
    if (!asks)
        return "no";
    return required && settings.ssl_ca_cert ? "yes" : "optional";
}

/* "TLSv1.2 TLSv1.3" for ssl_min_version TLS1_2_VERSION: every version from the minimum. */
static const char *protocols_from(int min_version) {
    switch (min_version) {
    case TLS1_VERSION:
        return "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3";
    case TLS1_1_VERSION:
        return "TLSv1.1 TLSv1.2 TLSv1.3";
    case TLS1_3_VERSION:
        return "TLSv1.3";
    default:
        return "TLSv1.2 TLSv1.3";
    }
}

/* The configuration memcached's ssl_* settings describe, for `policy`. NULL with `err`
 * set when an option is refused. */
static conn_tls_config *config_for(uint8_t policy, char *err, size_t errlen) {
    conn_tls_config *cfg = conn_tls_config_new();
    if (cfg == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* ssl_key may be left out when the key is in the chain file (memcached's help). */
    const char *key = settings.ssl_key ? settings.ssl_key : settings.ssl_chain_cert;
    const char *options[][2] = {
        {"cert-file", settings.ssl_chain_cert ? settings.ssl_chain_cert : ""},
        {"key-file", key ? key : ""},
        {"ca-cert-file", settings.ssl_ca_cert ? settings.ssl_ca_cert : ""},
        {"ciphers", settings.ssl_ciphers ? settings.ssl_ciphers : ""},
        {"protocols", protocols_from(settings.ssl_min_version)},
        {"session-caching", settings.ssl_session_cache ? "yes" : "no"},
        {"auth-clients", auth_clients_for(policy)},
    };
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
        if (conn_tls_config_set(cfg, options[i][0], options[i][1], err, errlen) != CONN_TLS_OK) {
            conn_tls_config_free(cfg);
            return NULL;
        }
    }
    return cfg;
}

/* Makes (once) or reloads the context of `policy`; the caller holds contexts_lock. */
static bool build_context(uint8_t policy, char *err, size_t errlen) {
    conn_tls_config *cfg = config_for(policy, err, errlen);
    if (cfg == NULL)
        return false;
    bool ok;
    if (contexts[policy] != NULL) {
        ok = conn_tls_ctx_reload(contexts[policy], cfg, err, errlen) == CONN_TLS_OK;
    } else {
        conn_tls_ctx *ctx = conn_tls_ctx_new(cfg, err, errlen);
        __atomic_store_n(&contexts[policy], ctx, __ATOMIC_RELEASE);
        ok = ctx != NULL;
    }
    conn_tls_config_free(cfg);
    return ok;
}

static conn_tls_ctx *context_for(uint8_t policy, char *err, size_t errlen) {
    if (policy > MC_SSL_ENABLED_PEER)
        policy = MC_SSL_ENABLED_DEFAULT;
    conn_tls_ctx *ctx = __atomic_load_n(&contexts[policy], __ATOMIC_ACQUIRE);
    if (ctx != NULL)
        return ctx;
    pthread_mutex_lock(&contexts_lock);
    if (contexts[policy] == NULL)
        build_context(policy, err, errlen);
    ctx = contexts[policy];
    pthread_mutex_unlock(&contexts_lock);
    return ctx;
}

/* A TLS failure on socket `sfd`: logged where memcached logs its connection events. */
static void log_tls_error(int sfd, logger *l, const char *msg) {
#if CONNTLS_MEMCACHED_VERSION >= 10638
    LOGGER_LOG(l, LOG_CONNEVENTS, LOGGER_CONNECTION_TLSERROR, NULL, sfd, msg);
#else
    (void)l;
    if (settings.verbose)
        fprintf(stderr, "%d: TLS error: %s\n", sfd, msg);
#endif
}

/* WANT_* become EAGAIN, as memcached's callers expect of a non-blocking socket; a failure
 * is logged and counted, and ends the connection. */
static ssize_t failed(conn *c, mc_tls *t, ssize_t status) {
    if (status == CONN_TLS_WANT_READ || status == CONN_TLS_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    log_tls_error(c->sfd, c->thread->l, conn_tls_last_error(t->tls));
#if CONNTLS_MEMCACHED_VERSION >= 10638
    STATS_LOCK();
    stats.ssl_proto_errors++;
    STATS_UNLOCK();
#endif
    errno = ECONNRESET;
    return -1;
}

/* A connection whose handshake failed (or never started): logged, counted; false. */
static bool handshake_failed(int sfd, logger *l, const char *why) {
    log_tls_error(sfd, l, why);
    STATS_LOCK();
    stats.ssl_handshake_errors++;
    STATS_UNLOCK();
    errno = ECONNRESET;
    return false;
}

/* A client refused after its handshake (require_cert) is closed with a reset once it has
 * sent its first request or closed, as stock's refusal (a fatal alert) leaves it: its
 * read fails and it writes nothing more. A plain close would let it read an EOF and
 * answer with close_notify into a socket its own request had already reset (SIGPIPE in
 * memcached's t/ssl_ports.t). Until then the refused client holds its connection as a
 * client that stops mid-handshake does. */
static bool refuse(conn *c, mc_tls *t) {
    char discard[512];
    ssize_t n = conn_tls_read(t->tls, discard, sizeof(discard));
    if (n == CONN_TLS_WANT_READ || n == CONN_TLS_WANT_WRITE) {
        errno = EAGAIN;
        return false;
    }
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->sfd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    errno = ECONNRESET;
    return false;
}

#define NO_CERTIFICATE "the listener requires a client certificate and the client sent none"

/* A handshake that finished (on a worker or in the pool): established, its new session
 * counted; false, for refuse(), when the client sent no certificate it had to send. */
static bool handshake_done(mc_tls *t) {
    if (t->require_cert && conn_tls_peer_cert_pem(t->tls, NULL, 0) == 0)
        return false;
    t->established = true;
    if (settings.ssl_session_cache && !conn_tls_session_reused(t->tls)) {
        STATS_LOCK();
        stats.ssl_new_sessions++;
        STATS_UNLOCK();
    }
    return true;
}

/* Steps the handshake; true once it is done. */
static bool handshake(conn *c, mc_tls *t) {
    if (t->refused)
        return refuse(c, t);
    int status = conn_tls_handshake(t->tls);
    if (status == CONN_TLS_OK) {
        if (handshake_done(t))
            return true;
        t->refused = true;
        handshake_failed(c->sfd, c->thread->l, NO_CERTIFICATE);
        return refuse(c, t);
    }
    if (status == CONN_TLS_WANT_READ || status == CONN_TLS_WANT_WRITE) {
        errno = EAGAIN;
        return false;
    }
    return handshake_failed(c->sfd, c->thread->l, conn_tls_last_error(t->tls));
}

static ssize_t ssl_read(conn *c, void *buf, size_t count) {
    mc_tls *t = c->ssl;
    if (!t->established && !handshake(c, t))
        return -1;
    ssize_t n = conn_tls_read(t->tls, buf, count);
    return n >= 0 ? n : failed(c, t, n);
}

static ssize_t send_iov(conn *c, const struct iovec *iov, int iovcnt) {
    mc_tls *t = c->ssl;
    if (!t->established && !handshake(c, t))
        return -1;
    if (conn_tls_pending_write(t->tls) > 0) {
        int status = conn_tls_flush(t->tls);
        if (status != CONN_TLS_OK)
            return failed(c, t, status);
    }
    if (t->held > 0) {
        /* memcached presents the same bytes again after EAGAIN: they are on the wire now. */
        ssize_t n = t->held;
        t->held = 0;
        return n;
    }
    ssize_t n = conn_tls_writev(t->tls, iov, iovcnt);
    if (n < 0)
        return failed(c, t, n);
    if (n > 0 && conn_tls_pending_write(t->tls) > 0) {
        t->held = n;
        errno = EAGAIN;
        return -1;
    }
    return n;
}

static ssize_t ssl_sendmsg(conn *c, struct msghdr *msg, int flags) {
    (void)flags;
    return send_iov(c, msg->msg_iov, (int)msg->msg_iovlen);
}

static ssize_t ssl_write(conn *c, void *buf, size_t count) {
    struct iovec iov = {.iov_base = buf, .iov_len = count};
    return send_iov(c, &iov, 1);
}

void *ssl_accept(conn *c, int sfd, bool *fail) {
    if (!c->ssl_enabled)
        return NULL;
    char err[ERROR_MSG_SIZE] = "";
    conn_tls_ctx *ctx = context_for(c->ssl_enabled, err, sizeof(err));
    mc_tls *t = ctx ? calloc(1, sizeof(*t)) : NULL;
    if (t != NULL) {
        bool asks;
        t->require_cert = requires_cert(c->ssl_enabled, &asks) && !settings.ssl_ca_cert;
        t->tls = conn_tls_new_server(ctx, sfd);
        if (t->tls == NULL) {
            snprintf(err, sizeof(err), "%s", conn_tls_thread_last_error());
            free(t);
            t = NULL;
        }
    } else if (ctx != NULL) {
        snprintf(err, sizeof(err), "out of memory");
    }
    if (t == NULL) {
        handshake_failed(c->sfd, NULL, err);
        *fail = true;
        return NULL;
    }
    if (pool != NULL) {
        t->sfd = sfd;
        t->transport = c->transport;
        t->tag = c->tag;
        t->protocol = c->protocol;
        if (conn_tls_pool_submit(pool, t->tls, t) == CONN_TLS_OK)
            return SSL_HANDSHAKE_POOLED;
        /* The pool is full: the worker steps this one. */
    }
    return t;
}

/* The main thread's event on the pool's fd: finished handshakes go to a worker, as the
 * acceptor dispatches a plain connection; failed ones are counted and closed. A client
 * that owed a certificate is dispatched refused (the worker resets it: refuse()). */
static void collect_handshakes(int fd, short which, void *arg) {
    (void)fd, (void)which, (void)arg;
    conn_tls *tls;
    void *user;
    int status;
    while (conn_tls_pool_collect(pool, &tls, &user, &status) == 1) {
        mc_tls *t = user;
        if (status != CONN_TLS_OK) {
            handshake_failed(t->sfd, NULL, tls ? conn_tls_last_error(tls) : "freed in the pool");
            conn_tls_free(tls);
            close(t->sfd);
            free(t);
            continue;
        }
        if (!handshake_done(t)) {
            t->refused = true;
            handshake_failed(t->sfd, NULL, NO_CERTIFICATE);
        }
        dispatch_conn_new(t->sfd, conn_new_cmd, EV_READ | EV_PERSIST, READ_BUFFER_CACHED, t->transport, t, t->tag, t->protocol);
    }
}

/* A handshake not done in 30 s gives its pool slot up (stock has no handshake timeout;
 * its acceptor stepped a handshake once and left the rest to a worker's reads). */
#define POOL_TIMEOUT_MS 30000

void ssl_attach(struct event_base *base) {
    /* Half the worker threads' count: handshakes share the cores with the workers' requests
     * instead of queuing on the workers ahead of them. At most half of maxconns wait inside,
     * as they hold their fds outside memcached's connection count. */
    unsigned threads = settings.num_threads > 1 ? (unsigned)settings.num_threads / 2 : 1;
    unsigned inflight = settings.maxconns > 32 ? (unsigned)settings.maxconns / 2 : 16;
    pool = conn_tls_pool_new(threads, inflight, POOL_TIMEOUT_MS);
    if (pool == NULL) {
        fprintf(stderr, "conntls: no handshake pool (%s): the workers step handshakes\n", conn_tls_thread_last_error());
        return;
    }
    event_set(&pool_event, conn_tls_pool_fd(pool), EV_READ | EV_PERSIST, collect_handshakes, NULL);
    event_base_set(base, &pool_event);
    if (event_add(&pool_event, 0) == -1) {
        fprintf(stderr, "conntls: the handshake pool's event could not be added: the workers step handshakes\n");
        conn_tls_pool_free(pool);
        pool = NULL;
    }
}

void ssl_init_conn(conn *c, void *ssl_in) {
    if (ssl_in) {
        c->ssl = ssl_in;
        c->read = ssl_read;
        c->sendmsg = ssl_sendmsg;
        c->write = ssl_write;
    }
}

bool ssl_pending(conn *c) {
    mc_tls *t = c->ssl;
    return t != NULL && conn_tls_pending_read(t->tls) > 0;
}

void ssl_conn_close(void *ssl_in) {
    mc_tls *t = ssl_in;
    if (t == NULL)
        return;
    if (t->established)
        conn_tls_shutdown(t->tls); /* close_notify if the socket takes it; never waits */
    conn_tls_free(t->tls);
    free(t);
}

/* conntls never prints; with -v its warnings and errors go where memcached's do. */
static void log_to_stderr(void *ud, int level, const char *msg) {
    (void)ud;
    if (settings.verbose > 0 && level <= 4)
        fprintf(stderr, "conntls: %s\n", msg);
}

int ssl_init(void) {
    assert(settings.ssl_enabled);
    if (settings.ssl_kernel_tls) {
        fprintf(stderr, "Kernel TLS offload is not available: this memcached runs its TLS on "
                        "libconntls, which has no kernel TLS (leave out ssl_kernel_tls)\n");
        exit(EX_USAGE);
    }
    if (settings.ssl_keyformat != SSL_FILETYPE_PEM) {
        fprintf(stderr, "ssl_keyformat %d is not available: this memcached runs its TLS on "
                        "libconntls, which reads PEM keys only (ssl_keyformat=%d)\n",
                settings.ssl_keyformat, SSL_FILETYPE_PEM);
        exit(EX_USAGE);
    }
    conn_tls_set_log(log_to_stderr, NULL);
    char err[ERROR_MSG_SIZE];
    conn_tls_ctx *ctx = context_for(MC_SSL_ENABLED_DEFAULT, err, sizeof(err));
    if (ctx == NULL) {
        fprintf(stderr, "Error loading the TLS settings: %s\n", err);
        exit(EX_USAGE);
    }
    settings.ssl_last_cert_refresh_time = current_time;
    return 0;
}

bool refresh_certs(char **errmsg) {
    char err[ERROR_MSG_SIZE];
    bool ok = true;
    pthread_mutex_lock(&contexts_lock);
    for (uint8_t policy = 0; ok && policy <= MC_SSL_ENABLED_PEER; policy++) {
        if (contexts[policy] != NULL)
            ok = build_context(policy, err, sizeof(err));
    }
    pthread_mutex_unlock(&contexts_lock);
    if (ok) {
        settings.ssl_last_cert_refresh_time = current_time;
        return true;
    }
    /* The text protocol sends this line back as it is. */
    size_t len = strlen(err) + 64;
    *errmsg = malloc(len);
    if (*errmsg != NULL)
        snprintf(*errmsg, len, "Error loading the certificates: %s\r\n", err);
    return false;
}

const char *ssl_proto_text(int version) {
    switch (version) {
    case TLS1_VERSION:
        return "tlsv1.0";
    case TLS1_1_VERSION:
        return "tlsv1.1";
    case TLS1_2_VERSION:
        return "tlsv1.2";
    case TLS1_3_VERSION:
        return "tlsv1.3";
    default:
        return "unknown";
    }
}

#if CONNTLS_MEMCACHED_VERSION >= 10638
/* The peer certificate's CN, for the proxy's Lua; the caller uses it at once (the buffer
 * is the thread's, valid until its next call). */
const unsigned char *ssl_get_peer_cn(conn *c, int *len) {
    static __thread char cn[256];
    mc_tls *t = c->ssl;
    if (t == NULL)
        return NULL;
    ssize_t n = conn_tls_peer_cert_field(t->tls, "CN", cn, sizeof(cn));
    if (n <= 0 || (size_t)n >= sizeof(cn))
        return NULL;
    *len = (int)n;
    return (const unsigned char *)cn;
}

void ssl_init_settings(void) {
    settings.ssl_enabled = false;
    settings.ssl_ctx = NULL;
    settings.ssl_chain_cert = NULL;
    settings.ssl_key = NULL;
    settings.ssl_verify_mode = SSL_VERIFY_NONE;
    settings.ssl_keyformat = SSL_FILETYPE_PEM;
    settings.ssl_ciphers = NULL;
    settings.ssl_ca_cert = NULL;
    settings.ssl_last_cert_refresh_time = current_time;
    settings.ssl_wbuf_size = 16 * 1024; /* accepted, unused: sends are not copied */
    settings.ssl_session_cache = false;
    settings.ssl_kernel_tls = false;
    settings.ssl_min_version = TLS1_2_VERSION;
}

void ssl_help(void) {
    printf("   - ssl_chain_cert:      certificate chain file in PEM format\n"
           "   - ssl_key:             private key, if not part of the -ssl_chain_cert\n"
           "   - ssl_keyformat:       private key format: PEM only with conntls (default: PEM)\n");
    printf("   - ssl_verify_mode:     peer certificate verification mode, default is 0(None).\n"
           "                          valid values are 0(None), 1(Request), 2(Require)\n"
           "                          or 3(Once)\n");
    printf("   - ssl_ciphers:         specify cipher list to be used\n"
           "   - ssl_ca_cert:         PEM format file of acceptable client CA's\n"
           "   - ssl_wbuf_size:       accepted and unused with conntls (responses are not\n"
           "                          copied into a buffer)\n");
    printf("   - ssl_session_cache:   enable server-side SSL session cache, to support session\n"
           "                          resumption\n"
           "   - ssl_kernel_tls:      not available with conntls\n"
           "   - ssl_min_version:     minimum protocol version to accept (default: %s)\n",
           ssl_proto_text(settings.ssl_min_version));
    printf("                          valid values are 0(%s), 1(%s), 2(%s), or 3(%s).\n",
           ssl_proto_text(TLS1_VERSION), ssl_proto_text(TLS1_1_VERSION),
           ssl_proto_text(TLS1_2_VERSION), ssl_proto_text(TLS1_3_VERSION));
    verify_default("ssl_keyformat", settings.ssl_keyformat == SSL_FILETYPE_PEM);
    verify_default("ssl_verify_mode", settings.ssl_verify_mode == SSL_VERIFY_NONE);
    verify_default("ssl_min_version", settings.ssl_min_version == TLS1_2_VERSION);
}

bool ssl_set_verify_mode(int verify) {
    static const int modes[] = {
        SSL_VERIFY_NONE,
        SSL_VERIFY_PEER,
        SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
        SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE,
    };
    if (verify < 0 || verify > 3)
        return false;
    settings.ssl_verify_mode = modes[verify];
    return true;
}

bool ssl_set_min_version(int version) {
    static const int versions[] = {TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};
    if (version < 0 || version > 3)
        return false;
    settings.ssl_min_version = versions[version];
    return true;
}
#endif

#endif /* TLS */
