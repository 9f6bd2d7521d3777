/*
 * Redis's TLS connection type on conntls.
 *
 * Compiles in place of src/tls.c of Redis 7.0.15 (Debian 12) and Redis 8.0.2 (Debian 13),
 * built with BUILD_TLS=yes; link with libconntls (see README.md beside it). The two
 * connection APIs differ in shape, not in logic, so one file serves both:
 * - Redis 7.0 (before 7.2): a fixed ConnectionType of 15 slots, CT_TLS and the tls*
 *   functions that server.c, config.c and cluster.c call directly, one event loop;
 * - Redis 8.0 (the 7.2+ registry): a registered ConnectionType with init/configure/listen
 *   slots, and connections that move between event loops (IO threads), each loop with its
 *   own list of connections holding decrypted data.
 * CONN_API_REGISTRY below selects the generation.
 *
 * The event-loop logic stays here; every OpenSSL call is inside libconntls:
 * - writes go through conn_tls_writev: OpenSSL's retry rule cannot be broken ("bad
 *   length") and nothing is gathered on the stack;
 * - CONFIG SET tls-* swaps a new generation in: a failure changes nothing, connections keep
 *   the generation they started with.
 */

#include "server.h"
#include "connhelpers.h"
#include "adlist.h"
#include "version.h"

#if !defined(USE_OPENSSL) || (defined(BUILD_TLS_MODULE) && BUILD_TLS_MODULE == 2)
#error "contrib/redis/tls.c is built into the server: BUILD_TLS=yes"
#endif

#if REDIS_VERSION_NUM >= 0x00070200
#define CONN_API_REGISTRY 1
#else
#define CONN_API_REGISTRY 0
#endif

#include <arpa/inet.h>
#include <conntls.h>
#include <openssl/ssl.h> /* for Sentinel's SSL_CTX declarations only: no OpenSSL call here */

/* Sentinel's TLS links (src/sentinel.c) make hiredis SSL objects from these. On conntls
 * they stay NULL, so a Sentinel refuses TLS links with an error (README.md). */
SSL_CTX *redis_tls_ctx = NULL;
SSL_CTX *redis_tls_client_ctx = NULL;

#define TLS_CONN_FLAG_READ_WANT_WRITE (1 << 0)
#define TLS_CONN_FLAG_WRITE_WANT_READ (1 << 1)

typedef struct tls_connection {
    connection c;
    int flags;
    conn_tls *tls;     /* made once the fd exists: on accept, or when the TCP connect is done */
    char *tls_error;
    char *server_name; /* an outgoing link's host name or address: conntls sends a name as SNI */
    listNode *pending_list_node;
} tls_connection;

/* One conntls context per client-authentication mode, made when first needed: the
 * configured tls-auth-clients for client connections, "yes" for the cluster bus (stock
 * picks the mode per connection with SSL_set_verify). All are built from the same options
 * and reloaded together. Outgoing links use the one of tls-auth-clients. */
static conn_tls_ctx *contexts[3]; /* indexed by TLS_CLIENT_AUTH_NO / _YES / _OPTIONAL */
static pthread_mutex_t contexts_lock = PTHREAD_MUTEX_INITIALIZER;

#if CONN_API_REGISTRY
static ConnectionType CT_TLS;
#define connTcp() connectionTypeTcp()
#define CONN_EL(conn) ((conn)->c.el)
#define socketError(conn) anetGetError((conn)->c.fd)
#else
ConnectionType CT_TLS;
extern ConnectionType CT_Socket;
#define connTcp() (&CT_Socket)
#define CONN_EL(conn) ((void)(conn), server.el)
#define socketError(conn) connGetSocketError(&(conn)->c)
static list *pending_list; /* the one event loop's */
#endif

static void onLog(void *ud, int level, const char *msg) {
    UNUSED(ud);
    serverLog(level <= 3 ? LL_WARNING : level <= 6 ? LL_VERBOSE : LL_DEBUG, "%s", msg);
}

/* ---- configuration ---- */

static const char *authName(int mode) {
    return mode == TLS_CLIENT_AUTH_NO ? "no" : mode == TLS_CLIENT_AUTH_OPTIONAL ? "optional" : "yes";
}

/* The conntls options for Redis's tls-* settings and an auth mode; NULL (logged) when one
 * is refused. tls-X is X. As in stock, a client certificate is used only with its key;
 * otherwise outgoing links present tls-cert-file. Stock checks no peer names. */
static conn_tls_config *configFor(redisTLSContextConfig *c, int auth) {
    char number[2][32], err[256];
    snprintf(number[0], sizeof number[0], "%d", c->session_cache_size);
    snprintf(number[1], sizeof number[1], "%d", c->session_cache_timeout);
    int client_identity = c->client_cert_file && c->client_key_file;
    const char *options[][2] = {
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
        {"verify-server-name", "no"},
        {"prefer-server-ciphers", c->prefer_server_ciphers ? "yes" : "no"},
        {"session-caching", c->session_caching ? "yes" : "no"},
        {"session-cache-size", number[0]},
        {"session-cache-timeout", number[1]},
        {"auth-clients", authName(auth)},
    };
    conn_tls_config *cfg = conn_tls_config_new();
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
        if (conn_tls_config_set(cfg, options[i][0], options[i][1] ? options[i][1] : "", err, sizeof err) != CONN_TLS_OK) {
            serverLog(LL_WARNING, "TLS: tls-%s: %s", options[i][0], err);
            conn_tls_config_free(cfg);
            return NULL;
        }
    }
    return cfg;
}

/* Builds the context for `auth`, or swaps a new generation into it with `reload`. */
static int buildContext(redisTLSContextConfig *c, int auth, int reload) {
    conn_tls_config *cfg = configFor(c, auth);
    if (!cfg) return C_ERR;
    char err[512];
    int ok;
    if (reload && contexts[auth]) {
        ok = conn_tls_ctx_reload(contexts[auth], cfg, err, sizeof err) == CONN_TLS_OK;
    } else {
        conn_tls_ctx *ctx = conn_tls_ctx_new(cfg, err, sizeof err);
        ok = ctx != NULL;
        if (ok) contexts[auth] = ctx;
    }
    conn_tls_config_free(cfg);
    if (!ok) serverLog(LL_WARNING, "Failed to configure TLS: %s", err);
    return ok ? C_OK : C_ERR;
}

/* The context for an auth mode, made on first use from the current settings once TLS is
 * configured at all (CONFIG SET tls-auth-clients changes the mode at any time). */
static conn_tls_ctx *contextFor(int auth) {
    if (auth < 0 || auth > 2) auth = TLS_CLIENT_AUTH_YES;
    pthread_mutex_lock(&contexts_lock);
    if (!contexts[auth] && (contexts[0] || contexts[1] || contexts[2])) buildContext(&server.tls_ctx_config, auth, 0);
    conn_tls_ctx *ctx = contexts[auth];
    pthread_mutex_unlock(&contexts_lock);
    return ctx;
}

/* Startup and CONFIG SET tls-*: stock's checks and messages, then every context built or
 * reloaded from the new settings. A failure changes nothing that is live. */
static int configureAll(redisTLSContextConfig *c) {
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
    pthread_mutex_lock(&contexts_lock);
    int result = buildContext(c, server.tls_auth_clients, 1);
    for (int auth = 0; auth < 3 && result == C_OK; auth++)
        if (auth != server.tls_auth_clients && contexts[auth]) result = buildContext(c, auth, 1);
    pthread_mutex_unlock(&contexts_lock);
    return result;
}

static void initTLS(void) {
    conn_tls_set_log(onLog, NULL);
#if !CONN_API_REGISTRY
    pending_list = listCreate();
#endif
}

static void cleanupTLS(void) {
    for (int i = 0; i < 3; i++) {
        conn_tls_ctx_free(contexts[i]);
        contexts[i] = NULL;
    }
}

/* ---- the list of connections holding decrypted data no fd event will announce ---- */

static list *pendingList(aeEventLoop *el) {
#if CONN_API_REGISTRY
    if (!el->privdata[1]) el->privdata[1] = listCreate();
    return el->privdata[1];
#else
    UNUSED(el);
    return pending_list;
#endif
}

static void pendingAdd(tls_connection *conn) {
    if (conn->pending_list_node) return;
    list *l = pendingList(CONN_EL(conn));
    listAddNodeTail(l, conn);
    conn->pending_list_node = listLast(l);
}

static void pendingRemove(tls_connection *conn) {
    if (!conn->pending_list_node) return;
    listDelNode(pendingList(CONN_EL(conn)), conn->pending_list_node);
    conn->pending_list_node = NULL;
}

static void tlsHandleEvent(tls_connection *conn, int mask);

static int hasPendingData(aeEventLoop *el) {
    return listLength(pendingList(el)) > 0;
}

/* Each connection that was on the list when the walk began is served once, taken from the
 * head: a handler may close any other connection (CLIENT KILL) and with it remove its node,
 * so no pointer into the list is kept across a handler (the use-after-free fixed upstream
 * in Redis 6.2.24 and Valkey's CVE-2026-56684 came from an iterator that cached the next
 * node). A connection that still holds data after its turn goes back to the tail. */
static int processPendingData(aeEventLoop *el) {
    list *l = pendingList(el);
    int processed = 0;
    for (unsigned long turns = listLength(l); turns > 0 && listLength(l) > 0; turns--) {
        tls_connection *conn = listNodeValue(listFirst(l));
        pendingRemove(conn);
        tlsHandleEvent(conn, AE_READABLE);
        processed++;
    }
    return processed;
}

/* ---- connections ---- */

static void updateTLSError(tls_connection *conn, const char *msg) {
    conn->c.last_errno = 0;
    zfree(conn->tls_error);
    conn->tls_error = zstrdup(msg && *msg ? msg : "TLS error");
}

static connection *createTLSConnection(aeEventLoop *el) {
    tls_connection *conn = zcalloc(sizeof(tls_connection));
    conn->c.type = &CT_TLS;
    conn->c.fd = -1;
#if CONN_API_REGISTRY
    conn->c.el = el;
    conn->c.iovcnt = IOV_MAX;
#else
    UNUSED(el);
#endif
    return (connection *)conn;
}

/* An accepted fd served with the context of `require_auth`. */
static connection *createAcceptedTLS(aeEventLoop *el, int fd, int require_auth) {
    tls_connection *conn = (tls_connection *)createTLSConnection(el);
    conn->c.fd = fd;
    conn_tls_ctx *ctx = contextFor(require_auth);
    conn->tls = ctx ? conn_tls_new_server(ctx, fd) : NULL;
    if (!conn->tls) {
        updateTLSError(conn, ctx ? conn_tls_thread_last_error() : "TLS is not configured");
        conn->c.state = CONN_STATE_ERROR;
        return (connection *)conn;
    }
    conn->c.state = CONN_STATE_ACCEPTING;
    return (connection *)conn;
}

static void tlsEventHandler(struct aeEventLoop *el, int fd, void *clientData, int mask);

/* Records what a conn_tls status asks for. Returns 0 for "call again later" (the WANT
 * flags say on which event), nonzero for an error. */
static int handleStatus(tls_connection *conn, ssize_t status) {
    conn->flags &= ~(TLS_CONN_FLAG_WRITE_WANT_READ | TLS_CONN_FLAG_READ_WANT_WRITE);
    if (status == CONN_TLS_WANT_WRITE) {
        conn->flags |= TLS_CONN_FLAG_READ_WANT_WRITE;
        return 0;
    }
    if (status == CONN_TLS_WANT_READ) {
        conn->flags |= TLS_CONN_FLAG_WRITE_WANT_READ;
        return 0;
    }
    updateTLSError(conn, conn_tls_last_error(conn->tls));
    return 1;
}

/* Read and write interest from the handlers, the WANT flags, and committed bytes that
 * conntls has not put on the socket yet (those need the writable event even when the
 * server has no write handler any more). */
static void updateSSLEvent(tls_connection *conn) {
    aeEventLoop *el = CONN_EL(conn);
    if (!el || conn->c.fd < 0) return; /* unbound (between event loops): rebinding updates */
    int mask = aeGetFileEvents(el, conn->c.fd);
    int need_read = conn->c.read_handler || (conn->flags & TLS_CONN_FLAG_WRITE_WANT_READ);
    int need_write = conn->c.write_handler || (conn->flags & TLS_CONN_FLAG_READ_WANT_WRITE) ||
                     (conn->c.state == CONN_STATE_CONNECTED && conn_tls_pending_write(conn->tls) > 0);
    if (need_read && !(mask & AE_READABLE)) aeCreateFileEvent(el, conn->c.fd, AE_READABLE, tlsEventHandler, conn);
    if (!need_read && (mask & AE_READABLE)) aeDeleteFileEvent(el, conn->c.fd, AE_READABLE);
    if (need_write && !(mask & AE_WRITABLE)) aeCreateFileEvent(el, conn->c.fd, AE_WRITABLE, tlsEventHandler, conn);
    if (!need_write && (mask & AE_WRITABLE)) aeDeleteFileEvent(el, conn->c.fd, AE_WRITABLE);
}

/* During a handshake: watch only what the last step asked for. */
static void registerHandshakeEvent(tls_connection *conn) {
    aeEventLoop *el = CONN_EL(conn);
    int mask = aeGetFileEvents(el, conn->c.fd);
    int want_write = conn->flags & TLS_CONN_FLAG_READ_WANT_WRITE;
    int keep = want_write ? AE_WRITABLE : AE_READABLE, drop = want_write ? AE_READABLE : AE_WRITABLE;
    if (mask & drop) aeDeleteFileEvent(el, conn->c.fd, drop);
    if (!(mask & keep)) aeCreateFileEvent(el, conn->c.fd, keep, tlsEventHandler, conn);
}

/* After a read or write: the count, 0 when the peer closed (reads), or -1 with errno
 * EAGAIN (try again) or the connection in the error state. */
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

/* One handshake step, then the connection handler once it is done or failed. Returns
 * C_ERR when the handshake failed and the handler was not called (connAccept's caller
 * closes the connection then), C_OK otherwise; *open says whether the handler ran and left
 * the connection open, so that the caller may still touch it. */
static int stepHandshake(tls_connection *conn, int call_handler_on_error, int *open) {
    *open = 0;
    int r = conn_tls_handshake(conn->tls);
    if (r == CONN_TLS_OK) {
        conn->flags &= ~(TLS_CONN_FLAG_WRITE_WANT_READ | TLS_CONN_FLAG_READ_WANT_WRITE);
        conn->c.state = CONN_STATE_CONNECTED;
    } else if (!handleStatus(conn, r)) {
        registerHandshakeEvent(conn);
        return C_OK;
    } else {
        conn->c.state = CONN_STATE_ERROR;
        if (!call_handler_on_error) return C_ERR;
    }
    if (!callHandler((connection *)conn, conn->c.conn_handler)) return C_OK;
    conn->c.conn_handler = NULL;
    *open = 1;
    return C_OK;
}

/* The socket of an outgoing link is connected: now the TLS client. The chain is verified;
 * a host name is sent as SNI (an address is not: RFC 6066). */
static void startClient(tls_connection *conn) {
    conn_tls_ctx *ctx = contextFor(server.tls_auth_clients);
    conn->tls = ctx ? conn_tls_new_client(ctx, conn->c.fd, conn->server_name) : NULL;
    if (!conn->tls) updateTLSError(conn, ctx ? conn_tls_thread_last_error() : "TLS is not configured");
}

static void tlsHandleEvent(tls_connection *conn, int mask) {
    switch (conn->c.state) {
    case CONN_STATE_CONNECTING: {
        int conn_error = socketError(conn);
        if (conn_error) {
            conn->c.last_errno = conn_error;
            conn->c.state = CONN_STATE_ERROR;
        } else {
            if (!conn->tls) startClient(conn);
            if (conn->tls) {
                int open;
                stepHandshake(conn, 1, &open);
                if (!open) return;
                break;
            }
            conn->c.state = CONN_STATE_ERROR;
        }
        if (!callHandler((connection *)conn, conn->c.conn_handler)) return;
        conn->c.conn_handler = NULL;
        break;
    }
    case CONN_STATE_ACCEPTING: {
        int open;
        stepHandshake(conn, 1, &open);
        if (!open) return;
        break;
    }
    case CONN_STATE_CONNECTED: {
        /* Committed bytes still waiting for the socket go out first. */
        if ((mask & AE_WRITABLE) && conn_tls_pending_write(conn->tls) > 0 && conn_tls_flush(conn->tls) == CONN_TLS_ERR) {
            updateTLSError(conn, conn_tls_last_error(conn->tls));
            conn->c.state = CONN_STATE_ERROR;
        }
        int call_read = ((mask & AE_READABLE) && conn->c.read_handler) ||
                        ((mask & AE_WRITABLE) && (conn->flags & TLS_CONN_FLAG_READ_WANT_WRITE));
        int call_write = ((mask & AE_WRITABLE) && conn->c.write_handler) ||
                         ((mask & AE_READABLE) && (conn->flags & TLS_CONN_FLAG_WRITE_WANT_READ));
        /* Readable before writable, unless the server asked for a write barrier. */
        int invert = conn->c.flags & CONN_FLAG_WRITE_BARRIER;
        if (!invert && call_read) {
            conn->flags &= ~TLS_CONN_FLAG_READ_WANT_WRITE;
            if (!callHandler((connection *)conn, conn->c.read_handler)) return;
        }
        if (call_write) {
            conn->flags &= ~TLS_CONN_FLAG_WRITE_WANT_READ;
            if (!callHandler((connection *)conn, conn->c.write_handler)) return;
        }
        if (invert && call_read) {
            conn->flags &= ~TLS_CONN_FLAG_READ_WANT_WRITE;
            if (!callHandler((connection *)conn, conn->c.read_handler)) return;
        }
        /* A handler may have moved the connection to another event loop. */
        if (CONN_EL(conn) && conn->c.state == CONN_STATE_CONNECTED) {
            if (conn_tls_pending_read(conn->tls) > 0) pendingAdd(conn);
            else pendingRemove(conn);
        }
        break;
    }
    default: break;
    }
    updateSSLEvent(conn);
}

static void tlsEventHandler(struct aeEventLoop *el, int fd, void *clientData, int mask) {
    UNUSED(el);
    UNUSED(fd);
    tlsHandleEvent(clientData, mask);
}

/* Best-effort close_notify, then the conn_tls goes; the fd is closed by the TCP layer. */
static void releaseTLS(tls_connection *conn) {
    if (!conn->tls) return;
    if (conn->c.state == CONN_STATE_CONNECTED) conn_tls_shutdown(conn->tls);
    conn_tls_free(conn->tls);
    conn->tls = NULL;
}

static void connTLSClose(connection *conn_) {
    tls_connection *conn = (tls_connection *)conn_;
    releaseTLS(conn);
    zfree(conn->tls_error);
    conn->tls_error = NULL;
    zfree(conn->server_name);
    conn->server_name = NULL;
    if (CONN_EL(conn)) pendingRemove(conn);
    connTcp()->close(conn_);
}

static int connTLSAccept(connection *conn_, ConnectionCallbackFunc accept_handler) {
    tls_connection *conn = (tls_connection *)conn_;
    if (conn->c.state != CONN_STATE_ACCEPTING) return C_ERR;
    conn->c.conn_handler = accept_handler;
    int open;
    return stepHandshake(conn, 0, &open);
}

static int connTLSConnect(connection *conn_, const char *addr, int port, const char *src_addr,
                          ConnectionCallbackFunc connect_handler) {
    tls_connection *conn = (tls_connection *)conn_;
    if (conn->c.state != CONN_STATE_NONE) return C_ERR;
    zfree(conn->server_name);
    conn->server_name = zstrdup(addr);
    /* TCP first; the TLS client starts in the event handler once it is connected. */
    return connTcp()->connect(conn_, addr, port, src_addr, connect_handler);
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
    return afterIO(conn, conn_tls_read(conn->tls, buf, buf_len), 1, 1);
}

static const char *connTLSGetLastError(connection *conn_) {
    tls_connection *conn = (tls_connection *)conn_;
    if (conn->tls_error) return conn->tls_error;
    return NULL;
}

/* A handler removed also drops the WANT flag that would call it (upstream Valkey #3510,
 * Redis #15080): otherwise the fd stays watched for an event nobody handles, and the event
 * loop spins. */
static int connTLSSetWriteHandler(connection *conn_, ConnectionCallbackFunc func, int barrier) {
    tls_connection *conn = (tls_connection *)conn_;
    conn->c.write_handler = func;
    if (barrier)
        conn->c.flags |= CONN_FLAG_WRITE_BARRIER;
    else
        conn->c.flags &= ~CONN_FLAG_WRITE_BARRIER;
    if (!func) conn->flags &= ~TLS_CONN_FLAG_WRITE_WANT_READ;
    updateSSLEvent(conn);
    return C_OK;
}

static int connTLSSetReadHandler(connection *conn_, ConnectionCallbackFunc func) {
    tls_connection *conn = (tls_connection *)conn_;
    conn->c.read_handler = func;
    if (!func) conn->flags &= ~TLS_CONN_FLAG_READ_WANT_WRITE;
    updateSSLEvent(conn);
    return C_OK;
}

/* Sync IO makes the fd blocking with send/receive timeouts; conntls then blocks in the
 * kernel and reports a timeout as WANT_READ/WANT_WRITE. */
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

static int connTLSBlockingConnect(connection *conn_, const char *addr, int port, long long timeout) {
    tls_connection *conn = (tls_connection *)conn_;
    if (conn->c.state != CONN_STATE_NONE) return C_ERR;
    if (connTcp()->blocking_connect(conn_, addr, port, timeout) == C_ERR) return C_ERR;
    conn->server_name = zstrdup(addr);
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
    setBlockingTimeout(conn, timeout);
    ssize_t ret = conn_tls_write(conn->tls, ptr, (size_t)size);
    /* Everything committed must be on the socket before returning, as with a blocking write. */
    if (ret > 0 && conn_tls_flush(conn->tls) != CONN_TLS_OK) ret = CONN_TLS_WANT_WRITE;
    ret = afterIO(conn, ret, 0, 0);
    unsetBlockingTimeout(conn);
    return ret;
}

static ssize_t connTLSSyncRead(connection *conn_, char *ptr, ssize_t size, long long timeout) {
    tls_connection *conn = (tls_connection *)conn_;
    setBlockingTimeout(conn, timeout);
    ssize_t ret = afterIO(conn, conn_tls_read(conn->tls, ptr, (size_t)size), 1, 0);
    unsetBlockingTimeout(conn);
    return ret;
}

static ssize_t connTLSSyncReadLine(connection *conn_, char *ptr, ssize_t size, long long timeout) {
    tls_connection *conn = (tls_connection *)conn_;
    ssize_t nread = 0;
    setBlockingTimeout(conn, timeout);
    for (size--; size > 0; size--) {
        char c;
        if (afterIO(conn, conn_tls_read(conn->tls, &c, 1), 1, 0) <= 0) {
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
    unsetBlockingTimeout(conn);
    return nread;
}

/* The peer's certificate as PEM, for CLIENT INFO and modules. */
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

#if CONN_API_REGISTRY
/* ---- Redis 7.2+: the registered connection type ---- */

static int tlsConfigure(void *priv, int reconfigure) {
    if (!reconfigure && contexts[server.tls_auth_clients]) return C_OK;
    return configureAll(priv);
}

static connection *connCreateTLS(struct aeEventLoop *el) {
    return createTLSConnection(el);
}

static connection *connCreateAcceptedTLS(struct aeEventLoop *el, int fd, void *priv) {
    return createAcceptedTLS(el, fd, *(int *)priv);
}

static void tlsAcceptHandler(aeEventLoop *el, int fd, void *privdata, int mask) {
    int cport, cfd;
    int max = server.max_new_tls_conns_per_cycle;
    char cip[NET_IP_STR_LEN];
    UNUSED(mask);
    UNUSED(privdata);
    while (max--) {
        cfd = anetTcpAccept(server.neterr, fd, cip, sizeof(cip), &cport);
        if (cfd == ANET_ERR) {
            if (errno != EWOULDBLOCK) serverLog(LL_WARNING, "Accepting client connection: %s", server.neterr);
            return;
        }
        serverLog(LL_VERBOSE, "Accepted %s:%d", cip, cport);
        acceptCommonHandler(connCreateAcceptedTLS(el, cfd, &server.tls_auth_clients), 0, cip);
    }
}

static int connTLSAddr(connection *conn, char *ip, size_t ip_len, int *port, int remote) {
    return anetFdToString(conn->fd, ip, ip_len, port, remote);
}

static int connTLSIsLocal(connection *conn) {
    return connectionTypeTcp()->is_local(conn);
}

static int connTLSListen(connListener *listener) {
    return listenToPort(listener);
}

/* Before a fork's close path (or a replica's shutdown): the TLS state goes with the fd. */
static void connTLSShutdown(connection *conn_) {
    releaseTLS((tls_connection *)conn_);
    connectionTypeTcp()->shutdown(conn_);
}

/* Leaving an event loop (to or from an IO thread): no event and no pending-list entry may
 * stay behind in the old one. */
static void connTLSUnbindEventLoop(connection *conn_) {
    tls_connection *conn = (tls_connection *)conn_;
    if (!conn->c.el) return;
    int mask = aeGetFileEvents(conn->c.el, conn->c.fd);
    if (mask & AE_READABLE) aeDeleteFileEvent(conn->c.el, conn->c.fd, AE_READABLE);
    if (mask & AE_WRITABLE) aeDeleteFileEvent(conn->c.el, conn->c.fd, AE_WRITABLE);
    pendingRemove(conn);
}

static int connTLSRebindEventLoop(connection *conn_, aeEventLoop *el) {
    tls_connection *conn = (tls_connection *)conn_;
    serverAssert(!conn->c.el && !conn->c.read_handler && !conn->c.write_handler && !conn->pending_list_node);
    conn->c.el = el;
    if (el && conn->tls && conn_tls_pending_read(conn->tls) > 0) pendingAdd(conn);
    updateSSLEvent(conn);
    return C_OK;
}

static const char *connTLSGetType(connection *conn_) {
    UNUSED(conn_);
    return CONN_TYPE_TLS;
}

static ConnectionType CT_TLS = {
    .get_type = connTLSGetType,
    .init = initTLS,
    .cleanup = cleanupTLS,
    .configure = tlsConfigure,
    .ae_handler = tlsEventHandler,
    .accept_handler = tlsAcceptHandler,
    .addr = connTLSAddr,
    .is_local = connTLSIsLocal,
    .listen = connTLSListen,
    .conn_create = connCreateTLS,
    .conn_create_accepted = connCreateAcceptedTLS,
    .shutdown = connTLSShutdown,
    .close = connTLSClose,
    .connect = connTLSConnect,
    .blocking_connect = connTLSBlockingConnect,
    .accept = connTLSAccept,
    .unbind_event_loop = connTLSUnbindEventLoop,
    .rebind_event_loop = connTLSRebindEventLoop,
    .read = connTLSRead,
    .write = connTLSWrite,
    .writev = connTLSWritev,
    .set_write_handler = connTLSSetWriteHandler,
    .set_read_handler = connTLSSetReadHandler,
    .get_last_error = connTLSGetLastError,
    .sync_write = connTLSSyncWrite,
    .sync_read = connTLSSyncRead,
    .sync_readline = connTLSSyncReadLine,
    .has_pending_data = hasPendingData,
    .process_pending_data = processPendingData,
    .get_peer_cert = peerCertPem,
};

int RedisRegisterConnectionTypeTLS(void) {
    return connTypeRegister(&CT_TLS);
}

#else
/* ---- Redis 7.0: the fixed connection type and the functions the server calls ---- */

void tlsInit(void) {
    initTLS();
}

void tlsCleanup(void) {
    cleanupTLS();
}

int tlsConfigure(redisTLSContextConfig *ctx_config) {
    return configureAll(ctx_config);
}

int isTlsConfigured(void) {
    return contexts[0] || contexts[1] || contexts[2];
}

connection *connCreateTLS(void) {
    return createTLSConnection(NULL);
}

connection *connCreateAcceptedTLS(int fd, int require_auth) {
    return createAcceptedTLS(NULL, fd, require_auth);
}

int tlsHasPendingData(void) {
    return pending_list && hasPendingData(server.el);
}

int tlsProcessPendingData(void) {
    return pending_list ? processPendingData(server.el) : 0;
}

sds connTLSGetPeerCert(connection *conn) {
    return peerCertPem(conn);
}

static int connTLSGetType(connection *conn_) {
    UNUSED(conn_);
    return CONN_TYPE_TLS;
}

ConnectionType CT_TLS = {
    .ae_handler = tlsEventHandler,
    .accept = connTLSAccept,
    .connect = connTLSConnect,
    .blocking_connect = connTLSBlockingConnect,
    .read = connTLSRead,
    .write = connTLSWrite,
    .writev = connTLSWritev,
    .close = connTLSClose,
    .set_write_handler = connTLSSetWriteHandler,
    .set_read_handler = connTLSSetReadHandler,
    .get_last_error = connTLSGetLastError,
    .sync_write = connTLSSyncWrite,
    .sync_read = connTLSSyncRead,
    .sync_readline = connTLSSyncReadLine,
    .get_type = connTLSGetType,
};
#endif
