/*
 * What a Redis-family server's TLS connection type on conntls does the same way whatever
 * the server: the connection record, conntls statuses mapped to the connection API's,
 * fd-event interest, reads and writes, the blocking calls, the pending list walk, the
 * contexts per client-authentication mode, and close. contrib/redis/tls.c and
 * contrib/valkey/tls.c include it (copied beside them into the server's src/ as
 * conntls_glue.h) after the server's own headers, so `connection`, `list`, `ae*`,
 * `anet*`, `zmalloc`, `serverLog` and `callHandler` are the server's.
 *
 * The includer defines, before including it:
 *   GLUE_TLS_CONFIG            the server's tls-* settings struct (server.tls_ctx_config)
 *   GLUE_EL(conn)              the event loop the connection's events are in (NULL: none now)
 *   GLUE_EVENTS_HELD(conn)     nonzero while another thread owns the connection (its fd
 *                              events are left alone and its flush waits)
 *   GLUE_TCP()                 the server's TCP connection type
 *   GLUE_WAS_BLOCKING(fd)      whether a blocking call found the fd already blocking
 *   GLUE_AFTER_READ(conn)      what a read leaves behind besides its result (may be empty)
 *   GLUE_TIMER_RESULT          what the server's aeTimeProc returns (int; long long in Valkey)
 *   CT_TLS                     declared: its ConnectionType
 * and after it: tlsHandleEvent (one fd event on a connection), configFor (the tls-* options as conntls options for an
 * auth mode: configWith and the server's own), logConfigureError and pendingList (the list
 * of an event loop).
 */
#ifndef CONNTLS_GLUE_H
#define CONNTLS_GLUE_H

#include <conntls.h>
#include <pthread.h>

/* What the last conntls call on a connection waits for, when it is not the event its
 * caller would expect: a read (or a handshake step) that needs the fd writable, or a
 * write that needs it readable. The event then calls the handler that made the call, so
 * the call is repeated. */
#define TLS_CONN_FLAG_READ_WANT_WRITE (1 << 0)
#define TLS_CONN_FLAG_WRITE_WANT_READ (1 << 1)
/* connShutdown came while committed bytes waited: the socket is shut down when the close
 * that follows has delivered them (closeWhenFlushed). */
#define TLS_CONN_FLAG_SHUTDOWN_ON_CLOSE (1 << 2)

typedef struct tls_connection {
    connection c;
    int flags;
    conn_tls *tls; /* made once the fd exists: on accept, or when the TCP connect is done */
    char *tls_error;
    char *server_name; /* an outgoing link's host name or address (SNI, host check) */
    listNode *pending_list_node;
    long long close_timer; /* while a close waits for committed bytes: its deadline's time event; else -1 */
} tls_connection;

/* tls_connection.flags is read and written only through these, atomically: with IO
 * threads a connection's bits change on two threads (an IO thread records pending bytes
 * and WANT flags after its read; the main thread clears a WANT flag after handing the read
 * on, or takes a write's result while a read is out), and a plain |= or &= on one thread
 * can undo the other's bit (ThreadSanitizer showed it; upstream's review of valkey #3438
 * names the lost update as a crash). Relaxed: the hand-off of the connection itself
 * orders the rest. */
static inline void flagSet(tls_connection *conn, int flag) {
    __atomic_fetch_or(&conn->flags, flag, __ATOMIC_RELAXED);
}

static inline void flagClear(tls_connection *conn, int flag) {
    __atomic_fetch_and(&conn->flags, ~flag, __ATOMIC_RELAXED);
}

static inline int flagTest(const tls_connection *conn, int flag) {
    return __atomic_load_n(&conn->flags, __ATOMIC_RELAXED) & flag;
}

/* A connection the server has closed whose last bytes are still going out: the server no
 * longer knows it, and only closeFlushEvent and closeFlushTimeout touch its events. */
#define CLOSING(conn) ((conn)->close_timer != -1)

static void tlsHandleEvent(struct tls_connection *conn, int mask);
static conn_tls_config *configFor(GLUE_TLS_CONFIG *c, int auth);
static void logConfigureError(const char *err);
static list *pendingList(aeEventLoop *el);

static void tlsEventHandler(struct aeEventLoop *el, int fd, void *clientData, int mask) {
    UNUSED(el);
    UNUSED(fd);
    tlsHandleEvent(clientData, mask);
}

static void onLog(void *ud, int level, const char *msg) {
    UNUSED(ud);
    serverLog(level <= 3 ? LL_WARNING : level <= 6 ? LL_VERBOSE : LL_DEBUG, "%s", msg);
}

/* ---- configuration ---- */

static const char *authName(int mode) {
    return mode == TLS_CLIENT_AUTH_NO ? "no" : mode == TLS_CLIENT_AUTH_OPTIONAL ? "optional" : "yes";
}

/* A conntls configuration from (name, value) pairs, a NULL value set as ""; NULL (logged
 * with the option's tls-* name) when one is refused. */
static conn_tls_config *configFromOptions(const char *options[][2], size_t count) {
    char err[256];
    conn_tls_config *cfg = conn_tls_config_new();
    for (size_t i = 0; i < count; i++) {
        if (conn_tls_config_set(cfg, options[i][0], options[i][1] ? options[i][1] : "", err, sizeof err) != CONN_TLS_OK) {
            serverLog(LL_WARNING, "TLS: tls-%s: %s", options[i][0], err);
            conn_tls_config_free(cfg);
            return NULL;
        }
    }
    return cfg;
}

/* The conntls options for the tls-* settings both servers have (tls-X is X) and an auth
 * mode, then `extra`, the server's own. As in stock, a client certificate is used only
 * with its key: with just one of them set, outgoing links present the server's
 * certificate (so CONFIG SET of the two, one after the other, works). */
static conn_tls_config *configWith(GLUE_TLS_CONFIG *c, int auth, const char *extra[][2], size_t extra_count) {
    char number[2][32];
    snprintf(number[0], sizeof number[0], "%d", c->session_cache_size);
    snprintf(number[1], sizeof number[1], "%d", c->session_cache_timeout);
    int client_identity = c->client_cert_file && c->client_key_file;
    const char *options[24][2] = {
        {"cert-file", c->cert_file},
        {"key-file", c->key_file},
        {"key-file-pass", c->key_file_pass},
        {"client-cert-file", client_identity ? c->client_cert_file : NULL},
        {"client-key-file", client_identity ? c->client_key_file : NULL},
        {"client-key-file-pass", c->client_key_file_pass},
        {"dh-params-file", c->dh_params_file},
        {"ca-cert-file", c->ca_cert_file},
        {"ca-cert-dir", c->ca_cert_dir},
        {"protocols", c->protocols},
        {"ciphers", c->ciphers},
        {"ciphersuites", c->ciphersuites},
        {"prefer-server-ciphers", c->prefer_server_ciphers ? "yes" : "no"},
        {"session-caching", c->session_caching ? "yes" : "no"},
        {"session-cache-size", number[0]},
        {"session-cache-timeout", number[1]},
        {"auth-clients", authName(auth)},
    };
    size_t count = 17;
    for (size_t i = 0; i < extra_count && count < 24; i++, count++) {
        options[count][0] = extra[i][0];
        options[count][1] = extra[i][1];
    }
    return configFromOptions(options, count);
}

/* Stock's checks of the tls-* settings, with stock's words. */
static int checkTLSSettings(GLUE_TLS_CONFIG *c) {
    if (!c->cert_file) {
        serverLog(LL_WARNING, "No tls-cert-file configured!");
        return C_ERR;
    }
    if (!c->key_file) {
        serverLog(LL_WARNING, "No tls-key-file configured!");
        return C_ERR;
    }
    if ((server.tls_auth_clients != TLS_CLIENT_AUTH_NO || server.tls_cluster || server.tls_replication) &&
        !c->ca_cert_file && !c->ca_cert_dir) {
        serverLog(LL_WARNING, "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, "
                              "tls-replication or tls-auth-clients are enabled!");
        return C_ERR;
    }
    return C_OK;
}

/* One conntls context per client-authentication mode, made when first needed: the
 * configured tls-auth-clients for client connections and outgoing links, "yes" for the
 * cluster bus (stock picks the mode per connection with SSL_set_verify). All are built from
 * the same options and reloaded together, under contexts_lock.
 *
 * A mode whose context cannot be built (tls-auth-clients yes set at runtime with no CA:
 * stock answers OK, then fails every client's handshake) is remembered with the reason
 * until the settings next change: a failed build is not repeated on every accept (each
 * reads every file on the main thread), and each refused connection carries the reason. */
static conn_tls_ctx *contexts[3]; /* indexed by TLS_CLIENT_AUTH_NO / _YES / _OPTIONAL */
static char context_failed[3][512]; /* why the mode's context could not be built; "" if not tried or built */
static pthread_mutex_t contexts_lock = PTHREAD_MUTEX_INITIALIZER;

/* Builds (or, with a context already there, swaps a new generation into) the context for
 * `auth` from `cfg` (the settings as conntls options; NULL if one was refused); *swapped
 * says whether a reload found something to change. Caller holds contexts_lock. */
static int buildContextFrom(conn_tls_config *cfg, int auth, int only_if_changed, int *swapped) {
    *swapped = 0;
    if (!cfg) {
        snprintf(context_failed[auth], sizeof context_failed[auth], "a tls-* option was refused (see the log)");
        return C_ERR;
    }
    char err[512];
    int ok;
    if (contexts[auth]) {
        int r = only_if_changed ? conn_tls_ctx_reload_if_changed(contexts[auth], cfg, err, sizeof err)
                                : conn_tls_ctx_reload(contexts[auth], cfg, err, sizeof err);
        ok = r >= 0;
        *swapped = only_if_changed ? r == 1 : r == CONN_TLS_OK;
    } else {
        conn_tls_ctx *ctx = conn_tls_ctx_new(cfg, err, sizeof err);
        ok = ctx != NULL;
        if (ok) __atomic_store_n(&contexts[auth], ctx, __ATOMIC_RELEASE);
    }
    if (!ok) {
        logConfigureError(err);
        snprintf(context_failed[auth], sizeof context_failed[auth], "%s", err);
    }
    return ok ? C_OK : C_ERR;
}

/* buildContextFrom with the settings `c` (read here: main thread only). */
static int buildContext(GLUE_TLS_CONFIG *c, int auth, int only_if_changed, int *swapped) {
    conn_tls_config *cfg = configFor(c, auth);
    int result = buildContextFrom(cfg, auth, only_if_changed, swapped);
    conn_tls_config_free(cfg);
    return result;
}

/* Startup and CONFIG SET tls-* (and, with only_if_changed, a background reload): stock's
 * checks, then the context of the configured mode and every other one already made, built
 * or reloaded from the settings. A failure changes nothing that is live; a success
 * forgets the modes that failed before (the settings they failed with are gone). */
static int configureContexts(GLUE_TLS_CONFIG *c, int only_if_changed, int *swapped) {
    if (checkTLSSettings(c) == C_ERR) return C_ERR;
    pthread_mutex_lock(&contexts_lock);
    int others;
    int result = buildContext(c, server.tls_auth_clients, only_if_changed, swapped);
    for (int auth = 0; auth < 3 && result == C_OK; auth++)
        if (auth != server.tls_auth_clients && contexts[auth]) result = buildContext(c, auth, only_if_changed, &others);
    if (result == C_OK) memset(context_failed, 0, sizeof context_failed);
    pthread_mutex_unlock(&contexts_lock);
    return result;
}

/* The connection type's configure hook: contexts made once at startup (reconfigure 0),
 * rebuilt on CONFIG SET tls-* (1). */
static int configureOnce(GLUE_TLS_CONFIG *c, int reconfigure) {
    if (!reconfigure && contexts[server.tls_auth_clients]) return C_OK;
    int swapped;
    return configureContexts(c, 0, &swapped);
}

/* The context for an auth mode, made on first use from the current settings once TLS is
 * configured at all (CONFIG SET tls-auth-clients changes the mode at any time); NULL when
 * it cannot be made (contextError says why). */
static conn_tls_ctx *contextFor(int auth) {
    if (auth < 0 || auth > 2) auth = TLS_CLIENT_AUTH_YES;
    /* A context, once made, stays until cleanup (reloads swap generations inside it): the
     * common case takes no lock, so an accept never waits behind a background reload that
     * holds contexts_lock while it reads and rebuilds every file. */
    conn_tls_ctx *made = __atomic_load_n(&contexts[auth], __ATOMIC_ACQUIRE);
    if (made) return made;
    pthread_mutex_lock(&contexts_lock);
    int swapped;
    if (!contexts[auth] && !context_failed[auth][0] && (contexts[0] || contexts[1] || contexts[2]))
        buildContext(&server.tls_ctx_config, auth, 0, &swapped);
    conn_tls_ctx *ctx = contexts[auth];
    pthread_mutex_unlock(&contexts_lock);
    return ctx;
}

/* Why contextFor(auth) returned NULL, for the connection's error. */
static const char *contextError(int auth) {
    if (auth < 0 || auth > 2) auth = TLS_CLIENT_AUTH_YES;
    static __thread char why[600];
    pthread_mutex_lock(&contexts_lock);
    if (context_failed[auth][0])
        snprintf(why, sizeof why, "TLS for tls-auth-clients %s: %.511s", authName(auth), context_failed[auth]);
    else
        snprintf(why, sizeof why, "TLS is not configured");
    pthread_mutex_unlock(&contexts_lock);
    return why;
}

static void freeContexts(void) {
    for (int i = 0; i < 3; i++) {
        conn_tls_ctx_free(contexts[i]);
        contexts[i] = NULL;
    }
    memset(context_failed, 0, sizeof context_failed);
}

/* ---- connections ---- */

static void updateTLSError(tls_connection *conn, const char *msg) {
    conn->c.last_errno = 0;
    zfree(conn->tls_error);
    conn->tls_error = zstrdup(msg && *msg ? msg : "TLS error");
}

/* An outgoing link's server name: conntls sends a host name as SNI (an address it does not:
 * RFC 6066) and, where the context checks names, checks either against the certificate. */
static void rememberServerName(tls_connection *conn, const char *addr) {
    zfree(conn->server_name);
    conn->server_name = zstrdup(addr);
}

/* The socket of an outgoing link is connected: now the TLS client. */
static void startClient(tls_connection *conn) {
    conn_tls_ctx *ctx = contextFor(server.tls_auth_clients);
    conn->tls = ctx ? conn_tls_new_client(ctx, conn->c.fd, conn->server_name) : NULL;
    if (!conn->tls) updateTLSError(conn, ctx ? conn_tls_thread_last_error() : contextError(server.tls_auth_clients));
}

/* An accepted fd served with the context of `auth`: ACCEPTING, or ERROR with the reason
 * (the library's, or why the context cannot be made). */
static void startServer(tls_connection *conn, int auth) {
    conn_tls_ctx *ctx = contextFor(auth);
    conn->tls = ctx ? conn_tls_new_server(ctx, conn->c.fd) : NULL;
    if (!conn->tls) {
        updateTLSError(conn, ctx ? conn_tls_thread_last_error() : contextError(auth));
        conn->c.state = CONN_STATE_ERROR;
        return;
    }
    conn->c.state = CONN_STATE_ACCEPTING;
}

/* Records what a conn_tls status asks for. Returns 0 for "call again later" (the WANT
 * flags say on which event), nonzero for an error. */
static int handleStatus(tls_connection *conn, ssize_t status) {
    flagClear(conn, TLS_CONN_FLAG_WRITE_WANT_READ | TLS_CONN_FLAG_READ_WANT_WRITE);
    if (status == CONN_TLS_WANT_WRITE) {
        flagSet(conn, TLS_CONN_FLAG_READ_WANT_WRITE);
        return 0;
    }
    if (status == CONN_TLS_WANT_READ) {
        flagSet(conn, TLS_CONN_FLAG_WRITE_WANT_READ);
        return 0;
    }
    updateTLSError(conn, conn_tls_last_error(conn->tls));
    return 1;
}

/* One handshake step: 1 done (the WANT flags cleared), 0 to be called again on the event
 * the WANT flags name, -1 failed (the reason recorded). Safe on any thread: it touches
 * only this connection. */
static int handshakeStep(tls_connection *conn) {
    int r = conn_tls_handshake(conn->tls);
    if (r == CONN_TLS_OK) {
        flagClear(conn, TLS_CONN_FLAG_WRITE_WANT_READ | TLS_CONN_FLAG_READ_WANT_WRITE);
        return 1;
    }
    return handleStatus(conn, r) ? -1 : 0;
}

/* Read and write interest from the handlers, the WANT flags, and committed bytes that
 * conntls has not put on the socket yet (those need the writable event even when the
 * server has no write handler any more, but not once the connection failed: nothing would
 * ever take them, and the writable event would fire for nobody). */
static void updateSSLEvent(tls_connection *conn) {
    aeEventLoop *el = GLUE_EL(conn);
    if (!el || conn->c.fd < 0 || GLUE_EVENTS_HELD(conn) || CLOSING(conn)) return;
    int mask = aeGetFileEvents(el, conn->c.fd);
    int need_read = conn->c.read_handler || flagTest(conn, TLS_CONN_FLAG_WRITE_WANT_READ);
    int need_write = conn->c.write_handler || flagTest(conn, TLS_CONN_FLAG_READ_WANT_WRITE) ||
                     (conn->c.state == CONN_STATE_CONNECTED && conn_tls_pending_write(conn->tls) > 0);
    if (need_read && !(mask & AE_READABLE)) aeCreateFileEvent(el, conn->c.fd, AE_READABLE, tlsEventHandler, conn);
    if (!need_read && (mask & AE_READABLE)) aeDeleteFileEvent(el, conn->c.fd, AE_READABLE);
    if (need_write && !(mask & AE_WRITABLE)) aeCreateFileEvent(el, conn->c.fd, AE_WRITABLE, tlsEventHandler, conn);
    if (!need_write && (mask & AE_WRITABLE)) aeDeleteFileEvent(el, conn->c.fd, AE_WRITABLE);
}

/* During a handshake: watch only what the last step asked for. */
static void registerHandshakeEvent(tls_connection *conn) {
    aeEventLoop *el = GLUE_EL(conn);
    int mask = aeGetFileEvents(el, conn->c.fd);
    int want_write = flagTest(conn, TLS_CONN_FLAG_READ_WANT_WRITE);
    int keep = want_write ? AE_WRITABLE : AE_READABLE, drop = want_write ? AE_READABLE : AE_WRITABLE;
    if (mask & drop) aeDeleteFileEvent(el, conn->c.fd, drop);
    if (!(mask & keep)) aeCreateFileEvent(el, conn->c.fd, keep, tlsEventHandler, conn);
}

/* After a read or write: the count, 0 when the peer closed (reads: upstream redis #12909),
 * or -1 with errno EAGAIN (try again) or the connection in the error state. */
static int afterIO(tls_connection *conn, ssize_t ret, int is_read, int update_event) {
    if (ret > 0 || (ret == 0 && !is_read)) return (int)ret;
    if (ret == 0) {
        conn->c.state = CONN_STATE_CLOSED;
        return 0;
    }
    if (!handleStatus(conn, ret)) {
        if (update_event) updateSSLEvent(conn);
        errno = EAGAIN;
        return -1;
    }
    conn->c.state = CONN_STATE_ERROR;
    return -1;
}

/* One read, what it leaves behind recorded, the result mapped as afterIO does. */
static int readNow(tls_connection *conn, void *buf, size_t len, int update_event) {
    ssize_t ret = conn_tls_read(conn->tls, buf, len);
    GLUE_AFTER_READ(conn);
    return afterIO(conn, ret, 1, update_event);
}

static int connTLSWrite(connection *conn_, const void *data, size_t data_len) {
    tls_connection *conn = (tls_connection *)conn_;
    if (conn->c.state != CONN_STATE_CONNECTED) return -1;
    return afterIO(conn, conn_tls_write(conn->tls, data, data_len), 0, 1);
}

static int connTLSWritev(connection *conn_, const struct iovec *iov, int iovcnt) {
    tls_connection *conn = (tls_connection *)conn_;
    if (conn->c.state != CONN_STATE_CONNECTED) return -1;
    return afterIO(conn, conn_tls_writev(conn->tls, iov, iovcnt), 0, 1);
}

static int connTLSRead(connection *conn_, void *buf, size_t buf_len) {
    tls_connection *conn = (tls_connection *)conn_;
    if (conn->c.state != CONN_STATE_CONNECTED) return -1;
    return readNow(conn, buf, buf_len, 1);
}

static const char *connTLSGetLastError(connection *conn_) {
    tls_connection *conn = (tls_connection *)conn_;
    if (conn->tls_error) return conn->tls_error;
    return strerror(conn_->last_errno);
}

/* A handler removed also drops the WANT flag that would call it (upstream valkey #3510,
 * redis #15080): otherwise the fd stays watched for an event nobody handles, and the event
 * loop spins. */
static int connTLSSetWriteHandler(connection *conn_, ConnectionCallbackFunc func, int barrier) {
    tls_connection *conn = (tls_connection *)conn_;
    conn->c.write_handler = func;
    if (barrier)
        conn->c.flags |= CONN_FLAG_WRITE_BARRIER;
    else
        conn->c.flags &= ~CONN_FLAG_WRITE_BARRIER;
    if (!func) flagClear(conn, TLS_CONN_FLAG_WRITE_WANT_READ);
    updateSSLEvent(conn);
    return C_OK;
}

static int connTLSSetReadHandler(connection *conn_, ConnectionCallbackFunc func) {
    tls_connection *conn = (tls_connection *)conn_;
    conn->c.read_handler = func;
    if (!func) flagClear(conn, TLS_CONN_FLAG_READ_WANT_WRITE);
    updateSSLEvent(conn);
    return C_OK;
}

/* The CONNECTED state's events: committed bytes still waiting for the socket go out first,
 * then the handlers, readable before writable unless the server asked for a write barrier.
 * Returns 0 when a handler closed the connection (it is gone), 1 otherwise. */
static int handleConnectedEvent(tls_connection *conn, int mask) {
    if ((mask & AE_WRITABLE) && !GLUE_EVENTS_HELD(conn) && conn_tls_pending_write(conn->tls) > 0 &&
        conn_tls_flush(conn->tls) == CONN_TLS_ERR) {
        updateTLSError(conn, conn_tls_last_error(conn->tls));
        conn->c.state = CONN_STATE_ERROR;
    }
    int call_read = ((mask & AE_READABLE) && conn->c.read_handler) ||
                    ((mask & AE_WRITABLE) && flagTest(conn, TLS_CONN_FLAG_READ_WANT_WRITE));
    int call_write = ((mask & AE_WRITABLE) && conn->c.write_handler) ||
                     ((mask & AE_READABLE) && flagTest(conn, TLS_CONN_FLAG_WRITE_WANT_READ));
    int invert = conn->c.flags & CONN_FLAG_WRITE_BARRIER;
    if (!invert && call_read) {
        flagClear(conn, TLS_CONN_FLAG_READ_WANT_WRITE);
        if (!callHandler((connection *)conn, conn->c.read_handler)) return 0;
    }
    if (call_write) {
        flagClear(conn, TLS_CONN_FLAG_WRITE_WANT_READ);
        if (!callHandler((connection *)conn, conn->c.write_handler)) return 0;
    }
    if (invert && call_read) {
        flagClear(conn, TLS_CONN_FLAG_READ_WANT_WRITE);
        if (!callHandler((connection *)conn, conn->c.read_handler)) return 0;
    }
    return 1;
}

/* ---- blocking calls: the fd made blocking with send/receive timeouts; conntls then
 * blocks in the kernel and reports a timeout as WANT_READ/WANT_WRITE ---- */

static void setBlockingTimeout(tls_connection *conn, long long timeout) {
    anetBlock(NULL, conn->c.fd);
    anetSendTimeout(NULL, conn->c.fd, timeout);
    anetRecvTimeout(NULL, conn->c.fd, timeout);
}

static void unsetBlockingTimeout(tls_connection *conn) {
    anetNonBlock(NULL, conn->c.fd);
    anetSendTimeout(NULL, conn->c.fd, 0);
    anetRecvTimeout(NULL, conn->c.fd, 0);
}

/* After the TCP part of a blocking connect: the TLS handshake within `timeout`. */
static int blockingHandshake(tls_connection *conn, const char *addr, long long timeout) {
    rememberServerName(conn, addr);
    startClient(conn);
    if (!conn->tls) {
        conn->c.state = CONN_STATE_ERROR;
        return C_ERR;
    }
    setBlockingTimeout(conn, timeout);
    int r = conn_tls_handshake(conn->tls);
    if (r != CONN_TLS_OK) {
        /* On a blocking fd a WANT status means the send/receive timeout expired. */
        updateTLSError(conn, r == CONN_TLS_ERR ? conn_tls_last_error(conn->tls) : "TLS handshake timed out");
        conn->c.state = CONN_STATE_ERROR;
        return C_ERR;
    }
    unsetBlockingTimeout(conn);
    conn->c.state = CONN_STATE_CONNECTED;
    return C_OK;
}

static ssize_t connTLSSyncWrite(connection *conn_, char *ptr, ssize_t size, long long timeout) {
    tls_connection *conn = (tls_connection *)conn_;
    int blocking = GLUE_WAS_BLOCKING(conn->c.fd);
    setBlockingTimeout(conn, timeout);
    ssize_t ret = conn_tls_write(conn->tls, ptr, (size_t)size);
    /* Everything committed must be on the socket before returning, as with a blocking
     * write: a flush that fails (EPIPE, ECONNRESET) fails the write with its reason; one
     * that is still waiting when the send timeout expires is a timeout. */
    if (ret > 0) {
        int flushed = conn_tls_flush(conn->tls);
        if (flushed != CONN_TLS_OK) ret = flushed == CONN_TLS_ERR ? CONN_TLS_ERR : CONN_TLS_WANT_WRITE;
    }
    ret = afterIO(conn, ret, 0, 0);
    if (!blocking) unsetBlockingTimeout(conn);
    return ret;
}

static ssize_t connTLSSyncRead(connection *conn_, char *ptr, ssize_t size, long long timeout) {
    tls_connection *conn = (tls_connection *)conn_;
    int blocking = GLUE_WAS_BLOCKING(conn->c.fd);
    setBlockingTimeout(conn, timeout);
    ssize_t ret = readNow(conn, ptr, (size_t)size, 0);
    if (!blocking) unsetBlockingTimeout(conn);
    return ret;
}

static ssize_t connTLSSyncReadLine(connection *conn_, char *ptr, ssize_t size, long long timeout) {
    tls_connection *conn = (tls_connection *)conn_;
    ssize_t nread = 0;
    int blocking = GLUE_WAS_BLOCKING(conn->c.fd);
    setBlockingTimeout(conn, timeout);
    for (size--; size > 0; size--) {
        char c;
        if (readNow(conn, &c, 1, 0) <= 0) {
            nread = -1;
            break;
        }
        if (c == '\n') {
            *ptr = '\0';
            if (nread && *(ptr - 1) == '\r') *(ptr - 1) = '\0';
            break;
        }
        *ptr++ = c;
        *ptr = '\0';
        nread++;
    }
    if (!blocking) unsetBlockingTimeout(conn);
    return nread;
}

/* The peer's certificate as PEM, for CLIENT INFO, ACL auto-authentication and modules. */
static sds peerCertPem(connection *conn_) {
    tls_connection *conn = (tls_connection *)conn_;
    if (conn_->type != &CT_TLS || !conn->tls) return NULL;
    ssize_t len = conn_tls_peer_cert_pem(conn->tls, NULL, 0);
    if (len <= 0) return NULL;
    sds pem = sdsnewlen(NULL, (size_t)len);
    if (conn_tls_peer_cert_pem(conn->tls, pem, (size_t)len + 1) != len) {
        sdsfree(pem);
        return NULL;
    }
    return pem;
}

/* ---- the list of connections holding decrypted data no fd event will announce ---- */

static void pendingAdd(tls_connection *conn) {
    if (conn->pending_list_node) return;
    list *l = pendingList(GLUE_EL(conn));
    listAddNodeTail(l, conn);
    conn->pending_list_node = listLast(l);
}

static void pendingRemove(tls_connection *conn) {
    if (!conn->pending_list_node) return;
    listDelNode(pendingList(GLUE_EL(conn)), conn->pending_list_node);
    conn->pending_list_node = NULL;
}

static int hasPendingData(aeEventLoop *el) {
    list *l = pendingList(el);
    return l && listLength(l) > 0;
}

/* Each connection that was on the list when the walk began gets one turn, taken from the
 * head: a handler may close any other connection (CLIENT KILL) and with it remove its node,
 * so no pointer into the list is kept across a handler (the use-after-free of redis #1391,
 * Redis 6.2.24 and Valkey's CVE-2026-56684 came from an iterator that cached the next
 * node). A connection another thread holds goes back to the tail untouched. Returns how
 * many were handled. */
static int processPendingList(aeEventLoop *el) {
    list *l = pendingList(el);
    int processed = 0;
    for (unsigned long turns = l ? listLength(l) : 0; turns > 0 && listLength(l) > 0; turns--) {
        tls_connection *conn = listNodeValue(listFirst(l));
        pendingRemove(conn);
        if (GLUE_EVENTS_HELD(conn)) {
            pendingAdd(conn);
            continue;
        }
        tlsHandleEvent(conn, AE_READABLE);
        processed++;
    }
    return processed;
}

/* ---- close ---- */

/* Best-effort close_notify, then the conn_tls goes; the fd is closed by the TCP layer. */
static void releaseTLS(tls_connection *conn) {
    if (!conn->tls) return;
    if (conn->c.state == CONN_STATE_CONNECTED) conn_tls_shutdown(conn->tls);
    conn_tls_free(conn->tls);
    conn->tls = NULL;
}

/* Frees the connection and closes its fd (through the TCP layer). */
static void finishClose(tls_connection *conn) {
    releaseTLS(conn);
    zfree(conn->tls_error);
    conn->tls_error = NULL;
    zfree(conn->server_name);
    conn->server_name = NULL;
    if (GLUE_EL(conn)) pendingRemove(conn);
    GLUE_TCP()->close((connection *)conn);
}

/* Whether conntls holds bytes the server counts as written that the socket has not taken
 * yet, after one more try to send them. */
static int unsentBytes(tls_connection *conn) {
    return conn->tls && conn->c.state == CONN_STATE_CONNECTED && conn_tls_pending_write(conn->tls) > 0 &&
           conn_tls_flush(conn->tls) == CONN_TLS_WANT_WRITE;
}

/* How long a closed connection may wait for the socket to take its last bytes. The bytes
 * are at most about two TLS records; a peer that reads nothing for this long gets the
 * close without them, as a peer whose socket stops taking data gets from stock when its
 * timeout or the kernel ends the connection. */
#define TLS_CLOSE_FLUSH_MS 10000

/* The close itself, after a connShutdown that waited for it too. */
static void closeNow(tls_connection *conn) {
    if (flagTest(conn, TLS_CONN_FLAG_SHUTDOWN_ON_CLOSE)) {
        releaseTLS(conn);
        shutdown(conn->c.fd, SHUT_RDWR);
    }
    finishClose(conn);
}

static void endDeferredClose(tls_connection *conn, aeEventLoop *el) {
    if (CLOSING(conn)) aeDeleteTimeEvent(el, conn->close_timer);
    conn->close_timer = -1;
    aeDeleteFileEvent(el, conn->c.fd, AE_READABLE | AE_WRITABLE);
    closeNow(conn);
}

static void closeFlushEvent(aeEventLoop *el, int fd, void *clientData, int mask) {
    UNUSED(fd);
    UNUSED(mask);
    tls_connection *conn = clientData;
    /* The committed bytes, then close_notify: a close_notify the socket took only in part
     * would end the peer's stream with a truncated record. */
    int r = conn_tls_shutdown(conn->tls);
    if (r == CONN_TLS_WANT_WRITE) return;
    if (r != CONN_TLS_OK)
        serverLog(LL_VERBOSE, "TLS: the last bytes of a closed connection were not delivered: %s", conn_tls_last_error(conn->tls));
    endDeferredClose(conn, el);
}

static GLUE_TIMER_RESULT closeFlushTimeout(aeEventLoop *el, long long id, void *clientData) {
    UNUSED(id);
    tls_connection *conn = clientData;
    serverLog(LL_NOTICE, "TLS: a closed connection's last %zd bytes were not taken by its peer in %d ms: closed without them",
              conn_tls_pending_write(conn->tls), TLS_CLOSE_FLUSH_MS);
    conn->close_timer = -1; /* this event ends itself */
    endDeferredClose(conn, el);
    return AE_NOMORE;
}

/* The server closes a connection (QUIT, CLIENT_CLOSE_AFTER_REPLY, a protocol error, a
 * kill): bytes it was told were written still go out first. Stock's writes put them in
 * the kernel, which sends them after the close; conntls may hold the unsent part of its
 * last record. So the connection stays, watched only for writable, until they and the
 * close_notify after them are on the socket (then the close) or TLS_CLOSE_FLUSH_MS pass
 * (then the close, logged). The library never blocks: this is the event loop's wait. The server never
 * sees the connection again. */
static void closeWhenFlushed(tls_connection *conn) {
    aeEventLoop *el = GLUE_EL(conn);
    if (!el || CLOSING(conn) || !unsentBytes(conn)) {
        if (!CLOSING(conn)) closeNow(conn);
        return;
    }
    conn->c.read_handler = conn->c.write_handler = conn->c.conn_handler = NULL;
    pendingRemove(conn);
    aeDeleteFileEvent(el, conn->c.fd, AE_READABLE);
    conn->close_timer = aeCreateTimeEvent(el, TLS_CLOSE_FLUSH_MS, closeFlushTimeout, conn, NULL);
    if (conn->close_timer == AE_ERR || aeCreateFileEvent(el, conn->c.fd, AE_WRITABLE, closeFlushEvent, conn) == AE_ERR) {
        serverLog(LL_WARNING, "TLS: cannot wait for a closed connection's last bytes: closed without them");
        endDeferredClose(conn, el);
    }
}

/* connShutdown, which Valkey and Redis 7.2+ call right before connClose while a fork
 * child exists (so that the child's copy of the fd cannot keep the connection open): the
 * TLS state goes and the socket is shut down at once, unless committed bytes wait: then
 * the close that follows delivers them first, and shuts the socket down after. */
static inline void shutdownTLS(tls_connection *conn) { /* inline: unused on Redis 7.0, which has no connShutdown */
    if (unsentBytes(conn)) {
        flagSet(conn, TLS_CONN_FLAG_SHUTDOWN_ON_CLOSE);
        return;
    }
    releaseTLS(conn);
    shutdown(conn->c.fd, SHUT_RDWR);
}

#endif /* CONNTLS_GLUE_H */
