/*
 * Valkey's TLS connection type on conntls.
 *
 * Two generations of Valkey's connection API, told apart by VALKEY_VERSION_NUM:
 * - Valkey 8.1 (Debian 13's 8.1.1): type names as strings, hiredis in deps/.
 * - Valkey 9.1 (Debian unstable's 9.1.2): int type ids, multipath connects, get_peer_user
 *   (a certificate's CN or SAN URI names the ACL user), the INFO certificate fields,
 *   tls-auto-reload-interval through src/tls.h, libvalkey in deps/.
 * Nothing else in the tree changes: built in (BUILD_TLS=yes) or as the TLS module an
 * unmodified server loads (BUILD_TLS=module). valkey-9.1-conntls.patch adds options stock
 * lacks (declared in its src/conntls_options.h). Compiles in place of src/tls.c; link
 * with `pkg-config --cflags --libs conntls`. See README.md beside it.
 *
 * The event-loop logic stays here; every OpenSSL call is inside libconntls:
 * - writes go through conn_tls_writev: no last_failed_write_data_len, no stack buffer;
 * - IO-thread accepts step conn_tls_handshake and only set flags for the main thread;
 * - CONFIG SET tls-* and tls-auto-reload-interval use conn_tls_ctx_reload(_if_changed),
 *   so connections keep their generation and sessions survive rotations.
 */

#define VALKEYMODULE_CORE_MODULE /* A module that's part of the server core, uses server.h too. */

#include "server.h"
#include "connhelpers.h"
#include "adlist.h"
#include "io_threads.h"
#include "bio.h"

#if VALKEY_VERSION_NUM >= 0x00090100
#define VALKEY_91 1
#define TLS_TYPE_NAME getConnectionTypeName(CONN_TYPE_TLS)
#define MODULE_OPTIONS (VALKEYMODULE_OPTIONS_HANDLE_REPL_ASYNC_LOAD | VALKEYMODULE_OPTIONS_HANDLE_ATOMIC_SLOT_MIGRATION)
#else
#define VALKEY_91 0 /* Valkey 8.1 */
#define TLS_TYPE_NAME CONN_TYPE_TLS
#define MODULE_OPTIONS VALKEYMODULE_OPTIONS_HANDLE_REPL_ASYNC_LOAD
#endif

#if defined(USE_OPENSSL) &&                    \
    ((USE_OPENSSL == 1 /* BUILD_YES */) ||     \
     ((USE_OPENSSL == 2 /* BUILD_MODULE */) && \
      (defined(BUILD_TLS_MODULE) && BUILD_TLS_MODULE == 2)))

#include <conntls.h>
#include <stdatomic.h>
#if defined(__has_include) && __has_include("conntls_options.h")
#include "conntls_options.h" /* valkey-9.1-conntls.patch's options; defines CONNTLS_TLS_OPTIONS */
#endif
#if VALKEY_91
#include "tls.h"

static uint64_t info_generation; /* generation the INFO cert fields were read from */
#endif

static list *pending_list = NULL;

/* Flags beside conntls_glue.h's WANT flags. */
#define TLS_CONN_FLAG_POSTPONE_UPDATE_STATE (1 << 3)
#define TLS_CONN_FLAG_HAS_PENDING (1 << 4)
#define TLS_CONN_FLAG_ACCEPT_ERROR (1 << 5)
#define TLS_CONN_FLAG_ACCEPT_SUCCESS (1 << 6)
#define TLS_CONN_FLAG_IN_POOL (1 << 7)        /* its handshake is in the pool: hands off */
#define TLS_CONN_FLAG_CLOSE_COLLECTED (1 << 8) /* closed meanwhile: free it when collected */

static ConnectionType CT_TLS;
struct tls_connection;
static void notePendingRead(struct tls_connection *conn);
#define GLUE_TLS_CONFIG serverTLSContextConfig
#define GLUE_EL(conn) ((void)(conn), server.el)
/* An IO thread's job or the handshake pool has the connection: hands off. */
#define GLUE_EVENTS_HELD(conn) (flagTest(conn, TLS_CONN_FLAG_POSTPONE_UPDATE_STATE | TLS_CONN_FLAG_IN_POOL))
#define GLUE_TCP() connectionTypeTcp()
#define GLUE_WAS_BLOCKING(fd) anetIsBlock(NULL, (fd))
#define GLUE_AFTER_READ(conn) notePendingRead(conn)
#define GLUE_TIMER_RESULT long long
#include "conntls_glue.h"

/* ---- configuration ---- */

/* Valkey's own tls-* settings beside the common ones (valkey-9.1-conntls.patch's). */
static conn_tls_config *configFor(serverTLSContextConfig *c, int auth) {
#ifdef CONNTLS_TLS_OPTIONS
    char user_timeout[32];
    snprintf(user_timeout, sizeof user_timeout, "%d", conntls_tls_tcp_user_timeout);
    const char *extra[][2] = {
        {"groups", conntls_tls_groups},
        {"verify-server-name", conntls_tls_verify_server_name ? "yes" : "no"},
        {"tcp-user-timeout", user_timeout}, /* last: left out when 0 */
    };
    /* tls-tcp-user-timeout 0 leaves conntls's defaults: accepted connections untouched,
     * outgoing links 30 s (with keepalive). */
    return configWith(c, auth, extra, conntls_tls_tcp_user_timeout ? 3 : 2);
#else
    /* Stock checks the chain of the peers it connects to, not their names. */
    const char *extra[][2] = {{"verify-server-name", "no"}};
    return configWith(c, auth, extra, 1);
#endif
}

/* Valkey's words for certificates outside their validity period (conntls's messages start
 * with the option they are about), then conntls's. */
static void logConfigureError(const char *err) {
    if (strstr(err, "not valid now")) {
        if (!strncmp(err, "cert-file", 9)) serverLog(LL_WARNING, "Server TLS certificate is invalid. Aborting TLS configuration.");
        if (!strncmp(err, "client-cert-file", 16)) serverLog(LL_WARNING, "Client TLS certificate is invalid. Aborting TLS configuration.");
        if (!strncmp(err, "ca-cert-", 8)) serverLog(LL_WARNING, "One or more loaded CA certificates are invalid. Aborting TLS configuration.");
    }
    serverLog(LL_WARNING, "Failed to configure TLS: %s", err);
}

/* ---- certificate facts for INFO (9.1) ---- */

#if VALKEY_91

static void tlsClearCertInfo(long long *expiry, sds *serial);
static void tlsClearAllCertInfo(void);

static void storeCertInfo(conn_tls_ctx *ctx, int which, long long *expiry, sds *serial) {
    int64_t not_after = 0;
    size_t count = 0;
    char hex[128];
    tlsClearCertInfo(expiry, serial);
    if (!ctx || conn_tls_ctx_cert_info(ctx, which, &not_after, &count, hex, sizeof hex) < 0 || count == 0) return;
    *expiry = not_after;
    *serial = sdsnew(hex);
}

static void tlsRefreshAllCertInfo(void) {
    conn_tls_ctx *ctx = contexts[server.tls_auth_clients];
    if (server.tls_port || server.tls_replication || server.tls_cluster)
        storeCertInfo(ctx, CONN_TLS_CERT_SERVER, &server.tls_server_cert_expire_time, &server.tls_server_cert_serial);
    else
        tlsClearCertInfo(&server.tls_server_cert_expire_time, &server.tls_server_cert_serial);
    /* Valkey reports a client certificate only when tls-client-cert-file names one. */
    storeCertInfo(server.tls_ctx_config.client_cert_file ? ctx : NULL, CONN_TLS_CERT_CLIENT,
                  &server.tls_client_cert_expire_time, &server.tls_client_cert_serial);
    storeCertInfo(ctx, CONN_TLS_CERT_CA, &server.tls_ca_cert_expire_time, &server.tls_ca_cert_serial);
    info_generation = ctx ? conn_tls_ctx_generation(ctx) : 0;
}

void tlsResetCertInfo(void) {
    if (server.tls_port || server.tls_replication || server.tls_cluster) {
        tlsRefreshAllCertInfo();
        return;
    }
    tlsClearAllCertInfo();
}

static _Atomic long long lastTlsConfigureTime = 0;
#endif

/* ---- configure and reload ---- */

/* Startup and CONFIG SET tls-*: synchronous; a failure changes nothing. */
static int tlsConfigureSync(void *priv, int reconfigure) {
    int result = configureOnce(priv, reconfigure);
#if VALKEY_91
    /* tls-auto-reload-interval counts from the last configure, as stock's. */
    atomic_store_explicit(&lastTlsConfigureTime, server.ustime, memory_order_relaxed);
    if (result == C_OK) tlsRefreshAllCertInfo();
#endif
    return result;
}

#if VALKEY_91

/* tls-auto-reload-interval: the settings are read on the main thread when the job is made
 * (tlsReconfigureIfNeeded), as conntls options for each context in use, because CONFIG SET
 * replaces them there: stock's job (and this glue's first one) read server.tls_ctx_config
 * and server.ustime on the bio thread, races ThreadSanitizer showed (a CONFIG SET of
 * tls-cert-file freeing the string the job was reading; the main thread's clock). The job
 * reads the files and swaps the new generations, only when a file or option changed.
 * Guarded by reload_lock; a job takes what the latest cron run left. */
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;
static conn_tls_config *reload_configs[3]; /* per auth mode, as contexts[]; NULL: none */

/* On the bio thread. Stock's log lines (stock logs the first when it detects a change,
 * before building; conntls detects and builds in one call). */
void tlsConfigureAsync(void) {
    conn_tls_config *configs[3];
    pthread_mutex_lock(&reload_lock);
    memcpy(configs, reload_configs, sizeof configs);
    memset(reload_configs, 0, sizeof reload_configs);
    pthread_mutex_unlock(&reload_lock);
    int swapped = 0, result = C_OK;
    pthread_mutex_lock(&contexts_lock);
    for (int auth = 0; auth < 3; auth++) {
        int one;
        if (!configs[auth]) continue;
        if (buildContextFrom(configs[auth], auth, 1, &one) == C_ERR) result = C_ERR;
        swapped |= one;
        conn_tls_config_free(configs[auth]);
    }
    if (result == C_OK) memset(context_failed, 0, sizeof context_failed);
    pthread_mutex_unlock(&contexts_lock);
    if (swapped || result == C_ERR) serverLog(LL_NOTICE, "TLS materials changed, reloading in background");
    if (result == C_ERR) serverLog(LL_WARNING, "Background TLS reload failed");
    if (!swapped && result == C_OK) serverLog(LL_DEBUG, "TLS reload skipped: materials unchanged");
}

/* Main thread, after the bio job: the new generation is already live; the INFO fields
 * follow it. */
void tlsApplyPendingReload(void) {
    conn_tls_ctx *ctx = contexts[server.tls_auth_clients];
    if (!ctx || conn_tls_ctx_generation(ctx) == info_generation) return;
    tlsRefreshAllCertInfo();
    serverLog(LL_NOTICE, "TLS materials reloaded successfully");
}

/* Main thread (cron): the settings for the bio job, then the job. The interval counts from
 * the job's making, even when it fails (stock counts from the job's end, reading the main
 * thread's clock there, and retries a failed reload at every cron run). */
void tlsReconfigureIfNeeded(void) {
    long long last = atomic_load_explicit(&lastTlsConfigureTime, memory_order_relaxed);
    long long age_s = (server.ustime - last) / 1000000;
    if (server.tls_ctx_config.auto_reload_interval == 0 || age_s < server.tls_ctx_config.auto_reload_interval) return;
    if (checkTLSSettings(&server.tls_ctx_config) == C_ERR) return;
    pthread_mutex_lock(&reload_lock);
    for (int auth = 0; auth < 3; auth++) {
        conn_tls_config_free(reload_configs[auth]);
        /* contexts[] changes only on this thread: read without contexts_lock */
        reload_configs[auth] = contexts[auth] ? configFor(&server.tls_ctx_config, auth) : NULL;
    }
    pthread_mutex_unlock(&reload_lock);
    bioCreateTlsReloadJob();
    atomic_store_explicit(&lastTlsConfigureTime, server.ustime, memory_order_relaxed);
}
#endif

static void tlsInit(void) {
    conn_tls_set_log(onLog, NULL);
    pending_list = listCreate();
}

/* For Sentinel's links with the clients patch (valkey-8.1-clients.patch puts them on
 * contrib/hiredis's transport, valkey-9.1-conntls.patch on contrib/libvalkey's): the
 * client context of the live generation, as replication's links use, so reloads and the
 * dead-peer defaults apply to them too; NULL when TLS is not configured. */
conn_tls_ctx *tlsClientContext(void) {
    return contextFor(server.tls_auth_clients);
}

/* Stock's sentinel.c (no patch) makes its TLS links with the client library's OpenSSL
 * TLS on these OpenSSL contexts, which do not exist on conntls: NULL, so Sentinel refuses
 * TLS links to instances ("not configured") instead of reaching into OpenSSL behind the
 * library. (struct ssl_ctx_st is OpenSSL's SSL_CTX, named without OpenSSL's headers.) */
struct ssl_ctx_st *valkey_tls_ctx = NULL;
struct ssl_ctx_st *valkey_tls_client_ctx = NULL;

static conn_tls_pool *pool; /* tls-handshake-threads' handshake pool, made when first needed */

/* Also called in forked children (Sentinel's script child runs connTypeCleanupAll). A
 * child has no event loop of its own: the epoll instance is the parent's, so unregistering
 * the pool's fd would unregister it in the parent. conn_tls_pool_fd tells: -1 in a child,
 * where the pool's threads are the parent's (and conn_tls_pool_free returns without
 * joining them). */
static void tlsCleanup(void) {
    if (pool && conn_tls_pool_fd(pool) != -1) aeDeleteFileEvent(server.el, conn_tls_pool_fd(pool), AE_READABLE);
    conn_tls_pool_free(pool);
    pool = NULL;
    freeContexts();
#if VALKEY_91
    tlsClearAllCertInfo();
#endif
}

/* ---- connections ---- */

static connection *createTLSConnection(void) {
    tls_connection *conn = zcalloc(sizeof(tls_connection));
    conn->c.type = &CT_TLS;
    conn->c.fd = -1;
    conn->close_timer = -1;
    conn->c.iovcnt = IOV_MAX;
    return (connection *)conn;
}

static connection *connCreateTLS(void) {
    return createTLSConnection();
}

/* An accepted fd; priv points to the client-authentication mode of its listener. */
static connection *connCreateAcceptedTLS(int fd, void *priv) {
    tls_connection *conn = (tls_connection *)createTLSConnection();
    conn->c.fd = fd;
    startServer(conn, *(int *)priv);
    return (connection *)conn;
}

static int connTLSAccept(connection *_conn, ConnectionCallbackFunc accept_handler);

static void postPoneUpdateSSLState(connection *conn_, int postpone) {
    tls_connection *conn = (tls_connection *)conn_;
    if (postpone)
        flagSet(conn, TLS_CONN_FLAG_POSTPONE_UPDATE_STATE);
    else
        flagClear(conn, TLS_CONN_FLAG_POSTPONE_UPDATE_STATE);
}

/* Main thread: the connection is on the pending list (decrypted bytes that no fd event
 * will announce) exactly while notePendingRead found some. */
static void syncPendingList(tls_connection *conn) {
    if (flagTest(conn, TLS_CONN_FLAG_POSTPONE_UPDATE_STATE)) return;
    if (flagTest(conn, TLS_CONN_FLAG_HAS_PENDING))
        pendingAdd(conn);
    else
        pendingRemove(conn);
}

/* After every read, on whatever thread made it: records whether decrypted bytes wait,
 * as a flag only (the pending list is the main thread's: syncPendingList). */
static void notePendingRead(tls_connection *conn) {
    if (conn_tls_pending_read(conn->tls) > 0)
        flagSet(conn, TLS_CONN_FLAG_HAS_PENDING);
    else
        flagClear(conn, TLS_CONN_FLAG_HAS_PENDING);
}

/* Main thread: act on a handshake step's result (which may have run on an IO thread). */
static int TLSHandleAcceptResult(tls_connection *conn, int call_handler_on_error) {
    serverAssert(conn->c.state == CONN_STATE_ACCEPTING);
    if (flagTest(conn, TLS_CONN_FLAG_ACCEPT_SUCCESS)) {
        conn->c.state = CONN_STATE_CONNECTED;
    } else if (flagTest(conn, TLS_CONN_FLAG_ACCEPT_ERROR)) {
        conn->c.state = CONN_STATE_ERROR;
        if (!call_handler_on_error) return C_ERR;
    } else {
        registerHandshakeEvent(conn);
        return C_OK;
    }
    if (!callHandler((connection *)conn, conn->c.conn_handler)) return C_ERR;
    conn->c.conn_handler = NULL;
    return C_OK;
}

static void updateSSLState(connection *conn_) {
    tls_connection *conn = (tls_connection *)conn_;
    if (conn->c.state == CONN_STATE_ACCEPTING) {
        if (TLSHandleAcceptResult(conn, 1) == C_ERR || conn->c.state != CONN_STATE_CONNECTED) return;
    }
    updateSSLEvent(conn);
    syncPendingList(conn);
}

/* One handshake step; safe on an IO thread: it only sets this connection's flags. */
static void TLSAccept(tls_connection *conn) {
    int step = handshakeStep(conn);
    if (step == 1) flagSet(conn, TLS_CONN_FLAG_ACCEPT_SUCCESS);
    if (step == -1) flagSet(conn, TLS_CONN_FLAG_ACCEPT_ERROR);
}

#if VALKEY_91
/* The certificate text conntls copies out (a CN, a SAN entry) as an sds of its whole
 * length: an embedded NUL stays in it. NULL when absent or empty. */
static sds certText(ssize_t (*copy)(conn_tls *, const char *, size_t, char *, size_t), conn_tls *tls, const char *what,
                    size_t index) {
    ssize_t len = copy(tls, what, index, NULL, 0);
    if (len <= 0) return NULL;
    sds text = sdsnewlen(SDS_NOINIT, (size_t)len);
    if (copy(tls, what, index, text, (size_t)len + 1) != len) {
        sdsfree(text);
        return NULL;
    }
    return text;
}

static ssize_t copyField(conn_tls *tls, const char *name, size_t index, char *buf, size_t len) {
    UNUSED(index);
    return conn_tls_peer_cert_field(tls, name, buf, len);
}

static ssize_t copySan(conn_tls *tls, const char *type, size_t index, char *buf, size_t len) {
    return conn_tls_peer_cert_san(tls, type, index, NULL, buf, len);
}

/* tls-auth-clients-user uri: the first SAN URI that names an enabled user; a URI with a
 * NUL in it is skipped. cert_username gets the last URI looked at, as stock. */
static user *userFromSanUri(conn_tls *tls, sds *cert_username) {
    size_t count = 0;
    if (conn_tls_peer_cert_san(tls, "URI", 0, &count, NULL, 0) < 0) return NULL;
    for (size_t i = 0; i < count; i++) {
        sds uri = certText(copySan, tls, "URI", i);
        if (!uri || memchr(uri, '\0', sdslen(uri))) {
            serverLog(LL_DEBUG, "TLS: Invalid or malformed SAN URI in certificate");
            sdsfree(uri);
            continue;
        }
        user *u = ACLGetUserByName(uri, sdslen(uri));
        if (cert_username) {
            sdsfree(*cert_username);
            *cert_username = uri;
        } else {
            sdsfree(uri);
        }
        if (u && (u->flags & USER_FLAG_ENABLED)) return u;
    }
    return NULL;
}

/* The ACL user a client certificate names (tls-auth-clients-user cn or uri), as stock 9.1.2:
 * the CN is compared whole, so a CN of "admin", a NUL and more does not match "admin"
 * (valkey #4577). cert_username gets the CN even when no user matches, for the ACL log. */
static user *tlsGetPeerUser(connection *conn_, sds *cert_username) {
    tls_connection *conn = (tls_connection *)conn_;
    if (!conn || !conn->tls || conn->c.state != CONN_STATE_CONNECTED) return NULL;
    /* Valkey asks on every accepted connection: with tls-auth-clients-user off, nothing
     * of the certificate is read (the presence check below encodes it). */
    int field = server.tls_ctx_config.client_auth_user;
    if (field != TLS_CLIENT_FIELD_CN && field != TLS_CLIENT_FIELD_URI) return NULL;
    if (conn_tls_peer_cert_pem(conn->tls, NULL, 0) <= 0) return NULL; /* no certificate */
    switch (field) {
    case TLS_CLIENT_FIELD_URI: {
        user *u = userFromSanUri(conn->tls, cert_username);
        if (!u) serverLog(LL_VERBOSE, "TLS: No matching user found in certificate SAN URI fields");
        return u;
    }
    case TLS_CLIENT_FIELD_CN: {
        sds cn = certText(copyField, conn->tls, "CN", 0);
        if (!cn) {
            serverLog(LL_DEBUG, "TLS: Failed to extract CN in certificate subject");
            return NULL;
        }
        user *u = ACLGetUserByName(cn, sdslen(cn));
        if (!u || !(u->flags & USER_FLAG_ENABLED)) {
            sds repr = server.hide_user_data_from_log ? NULL : sdscatrepr(sdsempty(), cn, sdslen(cn));
            serverLog(LL_VERBOSE, "TLS: No matching user found for certificate CN %s", repr ? repr : "*redacted*");
            sdsfree(repr);
            u = NULL;
        }
        if (cert_username)
            *cert_username = cn;
        else
            sdsfree(cn);
        return u;
    }
    default: return NULL;
    }
}
#endif

static conn_tls_pool *handshakePool(void);
static int submitToPool(tls_connection *conn);
static int connectDone(tls_connection *conn);

static void tlsHandleEvent(tls_connection *conn, int mask) {
    /* An IO thread has the connection (a read, write or accept job is out): its state and
     * session are that thread's until the job comes back and updateSSLState acts. The
     * server's handlers would return at once; stock's tlsHandleEvent read the state first,
     * racing the IO thread that sets it (ThreadSanitizer showed it). */
    if (flagTest(conn, TLS_CONN_FLAG_POSTPONE_UPDATE_STATE)) return;
    switch (conn->c.state) {
    case CONN_STATE_CONNECTING: {
        int conn_error = anetGetError(conn->c.fd);
        if (conn_error) {
            conn->c.last_errno = conn_error;
            conn->c.state = CONN_STATE_ERROR;
        } else {
            /* The socket is connected: now the TLS client. The chain is verified; a host
             * name is sent as SNI; with tls-verify-server-name the peer's name (host name
             * or address) is checked too. With tls-handshake-threads the handshake runs on
             * the pool (a replica's or cluster node's reconnects then cost the main thread
             * no key exchange or signature); when the pool is full, here. */
            int fresh = !conn->tls;
            if (fresh) startClient(conn);
            if (fresh && conn->tls && inMainThread() && handshakePool() && submitToPool(conn) == CONN_TLS_OK) return;
            int step = conn->tls ? handshakeStep(conn) : -1;
            if (step == 1) {
                conn->c.state = CONN_STATE_CONNECTED;
            } else if (step == 0) {
                registerHandshakeEvent(conn);
                return;
            } else {
                conn->c.state = CONN_STATE_ERROR;
            }
        }
        if (!connectDone(conn)) return;
        break;
    }
    case CONN_STATE_ACCEPTING:
        if (connTLSAccept((connection *)conn, NULL) == C_ERR || conn->c.state != CONN_STATE_CONNECTED) return;
        break;
    case CONN_STATE_CONNECTED: {
        if (!handleConnectedEvent(conn, mask)) return;
        syncPendingList(conn);
        break;
    }
    default: break;
    }
    updateSSLEvent(conn);
}

static int pauseAcceptingIfFull(aeEventLoop *el, int fd, void *privdata);

static void tlsAcceptHandler(aeEventLoop *el, int fd, void *privdata, int mask) {
    int cport, cfd;
    int max = server.max_new_tls_conns_per_cycle;
    char cip[NET_IP_STR_LEN];
    struct ClientFlags flags = {0};
    UNUSED(mask);
    while (max--) {
        if (pauseAcceptingIfFull(el, fd, privdata)) return;
        cfd = anetTcpAccept(server.neterr, fd, cip, sizeof(cip), &cport);
        if (cfd == ANET_ERR) {
#if VALKEY_91
            if (anetRetryAcceptOnError(errno)) continue;
#endif
            if (errno != EWOULDBLOCK) serverLog(LL_WARNING, "Accepting client connection: %s", server.neterr);
            return;
        }
        serverLog(LL_VERBOSE, "Accepted %s:%d", cip, cport);
        if (server.tcpkeepalive) anetKeepAlive(NULL, cfd, server.tcpkeepalive);
        acceptCommonHandler(connCreateAcceptedTLS(cfd, &server.tls_auth_clients), flags, cip);
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

static int connTLSIsIntegrityChecked(void) {
    return 1;
}

static void forgetPaused(int fd);

/* CONFIG SET tls-port closes the listener: a paused fd of it must not be resumed later,
 * when its number may belong to a client. */
static void connTLSCloseListener(connListener *listener) {
    for (int i = 0; i < listener->count; i++) forgetPaused(listener->fd[i]);
    connectionTypeTcp()->closeListener(listener);
}

/* Valkey calls this before connClose while a fork child exists (unlinkClient). A
 * handshake in the pool is the pool's until collected: the socket's shutdown makes it fail
 * there, and connTLSClose's free waits for the collection. */
static void connTLSShutdown(connection *conn_) {
    tls_connection *conn = (tls_connection *)conn_;
    if (flagTest(conn, TLS_CONN_FLAG_IN_POOL)) {
        connectionTypeTcp()->shutdown(conn_);
        return;
    }
    shutdownTLS(conn);
}

static void connTLSClose(connection *conn_) {
    tls_connection *conn = (tls_connection *)conn_;
    if (flagTest(conn, TLS_CONN_FLAG_IN_POOL)) {
        /* The pool still steps this handshake: the rest waits for poolCollect. */
        flagSet(conn, TLS_CONN_FLAG_CLOSE_COLLECTED);
        return;
    }
    closeWhenFlushed(conn);
}

/* tls-handshake-threads: handshakes run on conntls's pool, off the main thread: accepted
 * ones, and the outgoing links' (replication, cluster bus) once their TCP connect is done.
 * With tcp-backlog handshakes inside, the client listeners stop accepting until half of
 * them are collected: the rest of a storm waits in the kernel's backlog (where clients
 * that give up cost nothing), not in server memory, and is not refused into a reconnect
 * loop. The pool's own bound, twice that, leaves room for cluster-bus links. A handshake
 * not done in TLS_POOL_TIMEOUT_MS fails, so a stalled client cannot hold a slot. */
#define TLS_POOL_TIMEOUT_MS 10000
#ifdef CONNTLS_TLS_OPTIONS
#define TLS_HANDSHAKE_THREADS conntls_tls_handshake_threads /* valkey-9.1-conntls.patch's option */
#else
#define TLS_HANDSHAKE_THREADS 0 /* unpatched: no tls-handshake-threads */
#endif
/* The pool could not start: handshakes stay on the main thread. The option keeps its
 * value (it is immutable: CONFIG GET and CONFIG REWRITE show what was configured). */
static int pool_failed;
static int pool_inside; /* submitted, not yet collected */
static struct {
    int fd;
    void *privdata;
} paused[CONFIG_BINDADDR_MAX]; /* client listeners not accepting while the pool is full */
static int paused_count;

/* Main thread: a client listener stops accepting while tcp-backlog handshakes are inside. */
static int pauseAcceptingIfFull(aeEventLoop *el, int fd, void *privdata) {
    if (!pool || pool_inside < server.tcp_backlog || paused_count == CONFIG_BINDADDR_MAX) return 0;
    aeDeleteFileEvent(el, fd, AE_READABLE);
    paused[paused_count].fd = fd;
    paused[paused_count].privdata = privdata;
    paused_count++;
    return 1;
}

static void forgetPaused(int fd) {
    for (int i = 0; i < paused_count; i++) {
        if (paused[i].fd != fd) continue;
        paused[i--] = paused[--paused_count];
    }
}

static void resumeAcceptingIfRoom(void) {
    if (!paused_count || pool_inside > server.tcp_backlog / 2) return;
    while (paused_count--)
        aeCreateFileEvent(server.el, paused[paused_count].fd, AE_READABLE, tlsAcceptHandler, paused[paused_count].privdata);
    paused_count = 0;
}

/* Main thread: the pool's fd is readable; act on each finished handshake. */
static void poolCollect(struct aeEventLoop *el, int fd, void *clientData, int mask) {
    UNUSED(el);
    UNUSED(fd);
    UNUSED(clientData);
    UNUSED(mask);
    conn_tls *tls;
    void *user;
    int status;
    while (conn_tls_pool_collect(pool, &tls, &user, &status) == 1) {
        tls_connection *conn = user;
        flagClear(conn, TLS_CONN_FLAG_IN_POOL);
        pool_inside--;
        if (flagTest(conn, TLS_CONN_FLAG_CLOSE_COLLECTED)) {
            finishClose(conn);
            continue;
        }
        if (status != CONN_TLS_OK) updateTLSError(conn, conn_tls_last_error(tls));
        if (conn->c.state == CONN_STATE_CONNECTING) {
            /* An outgoing link: its connect handler, then the events it asked for. */
            conn->c.state = status == CONN_TLS_OK ? CONN_STATE_CONNECTED : CONN_STATE_ERROR;
            if (connectDone(conn)) updateSSLEvent(conn);
            continue;
        }
        flagSet(conn, status == CONN_TLS_OK ? TLS_CONN_FLAG_ACCEPT_SUCCESS : TLS_CONN_FLAG_ACCEPT_ERROR);
        /* The accept handler, then the events the client asked for meanwhile. */
        updateSSLState((connection *)conn);
    }
    resumeAcceptingIfRoom();
}

/* An outgoing link's handshake ended (state CONNECTED or ERROR): its connect handler, once.
 * 0 when the handler closed the connection. */
static int connectDone(tls_connection *conn) {
    if (!callHandler((connection *)conn, conn->c.conn_handler)) return 0;
    conn->c.conn_handler = NULL;
    return 1;
}

/* The pool, started on the first handshake with tls-handshake-threads set; NULL without. */
static conn_tls_pool *handshakePool(void) {
    if (pool || pool_failed || TLS_HANDSHAKE_THREADS <= 0) return pool;
    pool = conn_tls_pool_new((unsigned)TLS_HANDSHAKE_THREADS, 2 * (unsigned)server.tcp_backlog, TLS_POOL_TIMEOUT_MS);
    if (!pool) {
        serverLog(LL_WARNING, "TLS handshake pool not started (%s): handshakes stay on the main thread",
                  conn_tls_thread_last_error());
        pool_failed = 1;
        return NULL;
    }
    if (aeCreateFileEvent(server.el, conn_tls_pool_fd(pool), AE_READABLE, poolCollect, NULL) == AE_ERR) {
        serverLog(LL_WARNING, "TLS handshake pool not watched: handshakes stay on the main thread");
        conn_tls_pool_free(pool);
        pool = NULL;
        pool_failed = 1;
        return NULL;
    }
    return pool;
}

/* Main thread: the handshake goes to the pool. Returns conntls's status: CONN_TLS_BUSY when
 * the pool is full (nothing taken). */
static int submitToPool(tls_connection *conn) {
    int r = conn_tls_pool_submit(pool, conn->tls, conn);
    if (r == CONN_TLS_OK) {
        /* The pool waits on the fd now; the handlers set meanwhile (an accepted client's
         * read handler, set before the accept) are watched again once it is collected. */
        aeDeleteFileEvent(server.el, conn->c.fd, AE_READABLE | AE_WRITABLE);
        flagSet(conn, TLS_CONN_FLAG_IN_POOL);
        pool_inside++;
    }
    return r;
}

static int connTLSAccept(connection *_conn, ConnectionCallbackFunc accept_handler) {
    tls_connection *conn = (tls_connection *)_conn;
    if (conn->c.state != CONN_STATE_ACCEPTING) return C_ERR;
    int call_handler_on_error = 1;
    if (accept_handler) {
        conn->c.conn_handler = accept_handler;
        call_handler_on_error = 0;
    }
    /* On an IO thread: one step, and the main thread handles the result. */
    if (!inMainThread()) {
        TLSAccept(conn);
        return C_OK;
    }
    if (handshakePool()) {
        int r = submitToPool(conn);
        if (r == CONN_TLS_OK) return C_OK;
        updateTLSError(conn, r == CONN_TLS_BUSY ? "too many TLS handshakes in flight" : conn_tls_thread_last_error());
        flagSet(conn, TLS_CONN_FLAG_ACCEPT_ERROR);
        return TLSHandleAcceptResult(conn, call_handler_on_error);
    }
    if (trySendAcceptToIOThreads(_conn) == C_OK) return C_OK;
    TLSAccept(conn);
    return TLSHandleAcceptResult(conn, call_handler_on_error);
}

static int connTLSConnect(connection *conn_,
                          const char *addr,
                          int port,
                          const char *src_addr,
#if VALKEY_91
                          int multipath,
#endif
                          ConnectionCallbackFunc connect_handler) {
    if (conn_->state != CONN_STATE_NONE) return C_ERR;
    rememberServerName((tls_connection *)conn_, addr);
    /* TCP first; the TLS client starts in the event handler once it is connected. */
#if VALKEY_91
    return connectionTypeTcp()->connect(conn_, addr, port, src_addr, multipath, connect_handler);
#else
    return connectionTypeTcp()->connect(conn_, addr, port, src_addr, connect_handler);
#endif
}

static int connTLSBlockingConnect(connection *conn_, const char *addr, int port, long long timeout) {
    if (conn_->state != CONN_STATE_NONE) return C_ERR;
    if (connectionTypeTcp()->blocking_connect(conn_, addr, port, timeout) == C_ERR) return C_ERR;
    return blockingHandshake((tls_connection *)conn_, addr, timeout);
}

#if VALKEY_91
static int connTLSGetType(void) {
    return CONN_TYPE_TLS;
}
#else
static const char *connTLSGetType(connection *conn) {
    UNUSED(conn);
    return CONN_TYPE_TLS;
}
#endif

static list *pendingList(aeEventLoop *el) {
    UNUSED(el);
    return pending_list;
}

static int tlsHasPendingData(void) {
    return hasPendingData(server.el);
}

static int tlsProcessPendingData(void) {
    return processPendingList(server.el);
}

static ConnectionType CT_TLS = {
    .get_type = connTLSGetType,
    .init = tlsInit,
    .cleanup = tlsCleanup,
    .configure = tlsConfigureSync,
    .ae_handler = tlsEventHandler,
    .accept_handler = tlsAcceptHandler,
    .addr = connTLSAddr,
    .is_local = connTLSIsLocal,
    .listen = connTLSListen,
    .closeListener = connTLSCloseListener,
    .conn_create = connCreateTLS,
    .conn_create_accepted = connCreateAcceptedTLS,
    .shutdown = connTLSShutdown,
    .close = connTLSClose,
    .connect = connTLSConnect,
    .blocking_connect = connTLSBlockingConnect,
    .accept = connTLSAccept,
    .read = connTLSRead,
    .write = connTLSWrite,
    .writev = connTLSWritev,
    .set_write_handler = connTLSSetWriteHandler,
    .set_read_handler = connTLSSetReadHandler,
    .get_last_error = connTLSGetLastError,
    .sync_write = connTLSSyncWrite,
    .sync_read = connTLSSyncRead,
    .sync_readline = connTLSSyncReadLine,
    .has_pending_data = tlsHasPendingData,
    .process_pending_data = tlsProcessPendingData,
    .postpone_update_state = postPoneUpdateSSLState,
    .update_state = updateSSLState,
    .get_peer_cert = peerCertPem,
#if VALKEY_91
    .get_peer_user = tlsGetPeerUser,
#endif
    .connIntegrityChecked = connTLSIsIntegrityChecked,
};

int RedisRegisterConnectionTypeTLS(void) {
    return connTypeRegister(&CT_TLS);
}

#else /* USE_OPENSSL */

#if VALKEY_91
static void tlsClearAllCertInfo(void);

void tlsResetCertInfo(void) {
    if (server.tls_port || server.tls_replication || server.tls_cluster) return;
    tlsClearAllCertInfo();
}
#endif

int RedisRegisterConnectionTypeTLS(void) {
    serverLog(LL_VERBOSE, "Connection type %s not builtin", TLS_TYPE_NAME);
    return C_ERR;
}

#endif

#if VALKEY_91
static void tlsClearCertInfo(long long *expiry, sds *serial) {
    if (expiry) *expiry = 0;
    if (serial && *serial) {
        sdsfree(*serial);
        *serial = NULL;
    }
}

static void tlsClearAllCertInfo(void) {
    tlsClearCertInfo(&server.tls_server_cert_expire_time, &server.tls_server_cert_serial);
    tlsClearCertInfo(&server.tls_client_cert_expire_time, &server.tls_client_cert_serial);
    tlsClearCertInfo(&server.tls_ca_cert_expire_time, &server.tls_ca_cert_serial);
}
#endif

#if defined(BUILD_TLS_MODULE) && BUILD_TLS_MODULE == 2 /* BUILD_MODULE */

#include "release.h"

/* Stock's loader: a TLS module loads only into the server build it was made with (the
 * build id of release.h: version, SOURCE_DATE_EPOCH or host and time, git sha and dirty
 * flag), and only at startup. */
int ValkeyModule_OnLoad(void *ctx, ValkeyModuleString **argv, int argc) {
    UNUSED(argv);
    UNUSED(argc);
    if (strcmp(REDIS_BUILD_ID_RAW, serverBuildIdRaw())) {
        serverLog(LL_NOTICE, "Connection type %s was not built together with the %s-server used.", TLS_TYPE_NAME, SERVER_NAME);
        return VALKEYMODULE_ERR;
    }
    if (ValkeyModule_Init(ctx, "tls", 1, VALKEYMODULE_APIVER_1) == VALKEYMODULE_ERR) return VALKEYMODULE_ERR;
    if ((ValkeyModule_GetContextFlags(ctx) & VALKEYMODULE_CTX_FLAGS_SERVER_STARTUP) == 0) {
        serverLog(LL_NOTICE, "Connection type %s can be loaded only during bootup", TLS_TYPE_NAME);
        return VALKEYMODULE_ERR;
    }
    ValkeyModule_SetModuleOptions(ctx, MODULE_OPTIONS);
    if (connTypeRegister(&CT_TLS) != C_OK) return VALKEYMODULE_ERR;
    return VALKEYMODULE_OK;
}

int ValkeyModule_OnUnload(void *arg) {
    UNUSED(arg);
    serverLog(LL_NOTICE, "Connection type %s can not be unloaded", TLS_TYPE_NAME);
    return VALKEYMODULE_ERR;
}
#endif
