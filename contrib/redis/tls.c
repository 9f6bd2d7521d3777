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

#include <openssl/ssl.h> /* for Sentinel's SSL_CTX declarations only: no OpenSSL call here */

/* Sentinel's TLS links (src/sentinel.c) make hiredis SSL objects from these. On conntls
 * they stay NULL, so a Sentinel refuses TLS links with an error (README.md). */
SSL_CTX *redis_tls_ctx = NULL;
SSL_CTX *redis_tls_client_ctx = NULL;

#if CONN_API_REGISTRY
static ConnectionType CT_TLS;
#define GLUE_EL(conn) ((conn)->c.el)
#define GLUE_TCP() connectionTypeTcp()
#define socketError(conn) anetGetError((conn)->c.fd)
#else
ConnectionType CT_TLS;
extern ConnectionType CT_Socket;
#define GLUE_EL(conn) ((void)(conn), server.el)
#define GLUE_TCP() (&CT_Socket)
#define socketError(conn) connGetSocketError(&(conn)->c)
static list *pending_list; /* the one event loop's */
#endif
#define GLUE_TLS_CONFIG redisTLSContextConfig
#define GLUE_EVENTS_HELD(conn) ((void)(conn), 0) /* no thread but the event loop's steps TLS */
#define GLUE_WAS_BLOCKING(fd) ((void)(fd), 0)    /* blocking calls leave the fd non-blocking, as stock */
#define GLUE_AFTER_READ(conn) ((void)(conn))
#define GLUE_TIMER_RESULT int
#include "conntls_glue.h"

/* ---- configuration ---- */

/* Redis's tls-* settings are the common ones; stock checks no peer names. */
static conn_tls_config *configFor(redisTLSContextConfig *c, int auth) {
    const char *extra[][2] = {{"verify-server-name", "no"}};
    return configWith(c, auth, extra, 1);
}

static void logConfigureError(const char *err) {
    serverLog(LL_WARNING, "Failed to configure TLS: %s", err);
}

static void initTLS(void) {
    conn_tls_set_log(onLog, NULL);
#if !CONN_API_REGISTRY
    pending_list = listCreate();
#endif
}

static list *pendingList(aeEventLoop *el) {
#if CONN_API_REGISTRY
    if (!el->privdata[1]) el->privdata[1] = listCreate();
    return el->privdata[1];
#else
    UNUSED(el);
    return pending_list;
#endif
}

/* ---- connections ---- */

static connection *createTLSConnection(aeEventLoop *el) {
    tls_connection *conn = zcalloc(sizeof(tls_connection));
    conn->c.type = &CT_TLS;
    conn->c.fd = -1;
    conn->close_timer = -1;
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
    startServer(conn, require_auth);
    return (connection *)conn;
}

/* One handshake step, then the connection handler once it is done or failed. Returns
 * C_ERR when the handshake failed and the handler was not called (connAccept's caller
 * closes the connection then), C_OK otherwise; *open says whether the handler ran and left
 * the connection open, so that the caller may still touch it. */
static int stepHandshake(tls_connection *conn, int call_handler_on_error, int *open) {
    *open = 0;
    int step = handshakeStep(conn);
    if (step == 1) {
        conn->c.state = CONN_STATE_CONNECTED;
    } else if (step == 0) {
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

static void tlsHandleEvent(tls_connection *conn, int mask) {
    int open;
    switch (conn->c.state) {
    case CONN_STATE_CONNECTING: {
        int conn_error = socketError(conn);
        if (conn_error) {
            conn->c.last_errno = conn_error;
            conn->c.state = CONN_STATE_ERROR;
        } else {
            if (!conn->tls) startClient(conn);
            if (conn->tls) {
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
    case CONN_STATE_ACCEPTING:
        stepHandshake(conn, 1, &open);
        if (!open) return;
        break;
    case CONN_STATE_CONNECTED:
        if (!handleConnectedEvent(conn, mask)) return;
        /* A handler may have moved the connection to another event loop. */
        if (GLUE_EL(conn) && conn->c.state == CONN_STATE_CONNECTED) {
            if (conn_tls_pending_read(conn->tls) > 0) pendingAdd(conn);
            else pendingRemove(conn);
        }
        break;
    default: break;
    }
    updateSSLEvent(conn);
}

static void connTLSClose(connection *conn_) {
    closeWhenFlushed((tls_connection *)conn_);
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
    if (conn_->state != CONN_STATE_NONE) return C_ERR;
    rememberServerName((tls_connection *)conn_, addr);
    /* TCP first; the TLS client starts in the event handler once it is connected. */
    return GLUE_TCP()->connect(conn_, addr, port, src_addr, connect_handler);
}

static int connTLSBlockingConnect(connection *conn_, const char *addr, int port, long long timeout) {
    if (conn_->state != CONN_STATE_NONE) return C_ERR;
    if (GLUE_TCP()->blocking_connect(conn_, addr, port, timeout) == C_ERR) return C_ERR;
    return blockingHandshake((tls_connection *)conn_, addr, timeout);
}

#if CONN_API_REGISTRY
/* ---- Redis 7.2+: the registered connection type ---- */

static int tlsConfigure(void *priv, int reconfigure) {
    return configureOnce(priv, reconfigure);
}

static void cleanupTLS(void) {
    freeContexts();
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

/* Before a fork's close path (or a replica's shutdown): see shutdownTLS. */
static void connTLSShutdown(connection *conn_) {
    shutdownTLS((tls_connection *)conn_);
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

static int processPendingData(aeEventLoop *el) {
    return processPendingList(el);
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
    freeContexts();
}

int tlsConfigure(redisTLSContextConfig *ctx_config) {
    return configureOnce(ctx_config, 1);
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
    return pending_list ? processPendingList(server.el) : 0;
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
