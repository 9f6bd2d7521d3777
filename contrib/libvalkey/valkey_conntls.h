/* libvalkey over conntls: a transport for valkeyContext and valkeyClusterContext, in place
 * of libvalkey's OpenSSL TLS (valkeyInitiateTLSWithContext).
 *
 * The connection has conntls's write guarantee (no "bad length", whatever is retried),
 * its dead-peer defaults for client connections (TCP_USER_TIMEOUT 30 s and keepalive
 * after 15 s idle, or the context's tcp-user-timeout / tcp-keepalive options) and the
 * context's live generation of certificates (conn_tls_ctx_reload applies to connections
 * made after it).
 *
 * Built beside libvalkey into libvalkey_conntls (contrib/libvalkey/README.md); a program
 * links it, libvalkey and libconntls (pkg-config conntls). */
#ifndef VALKEY_CONNTLS_H
#define VALKEY_CONNTLS_H

#include <conntls.h>

#include "cluster.h"
#include "visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

struct valkeyContext;

/* Starts TLS on a connected context `c` with a client connection from `ctx`.
 *
 * `server_name` (copied) is sent as SNI and the server's certificate must match it (an IP
 * address is matched against the certificate's IP entries); NULL sends no SNI and checks
 * the chain only. The context keeps its socket: conntls never closes it; valkeyFree
 * frees the TLS state, then closes it as usual.
 *
 * Blocking contexts run the handshake to the end here, within the context's timeouts;
 * asynchronous and non-blocking ones start it, and their first reads and writes finish it.
 * Returns VALKEY_OK, or VALKEY_ERR with c->err / c->errstr set (conntls's reason; "the
 * conn_tls_ctx is NULL"; "valkeyContext was already associated" for a context already on
 * TLS), the context then as before. A NULL `c` returns VALKEY_ERR. */
LIBVALKEY_API int valkeyInitiateConntls(struct valkeyContext *c, conn_tls_ctx *ctx, const char *server_name);

/* The conntls connection under a context started by valkeyInitiateConntls, or NULL. */
LIBVALKEY_API conn_tls *valkeyGetConntls(struct valkeyContext *c);

/* Makes a cluster context of `options` connect to every node over conntls from `ctx`
 * (which must outlive the cluster context), each node's address or announced host name
 * checked against its certificate. Returns VALKEY_OK, VALKEY_ERR for a NULL argument. */
LIBVALKEY_API int valkeyClusterOptionsUseConntls(valkeyClusterOptions *options, conn_tls_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif /* VALKEY_CONNTLS_H */
