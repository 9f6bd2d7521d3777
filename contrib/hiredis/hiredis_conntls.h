/* hiredis 1.x over conntls: a transport for redisContext, in place of hiredis_ssl.
 *
 * redisInitiateConntls() puts a connected context onto a conntls connection made from a
 * conn_tls_ctx, for blocking and asynchronous contexts alike (any of hiredis's event
 * adapters), where a program calls redisInitiateSSLWithContext(). The connection then has
 * conntls's write guarantee (no "bad length", whatever is retried), its dead-peer defaults
 * for client connections (TCP_USER_TIMEOUT 30 s and keepalive after 15 s idle, or the
 * context's tcp-user-timeout / tcp-keepalive options) and the context's live generation of
 * certificates (conn_tls_ctx_reload applies to the connections made after it, with no
 * reconnect of the others).
 *
 * Built beside hiredis into libhiredis_conntls (contrib/hiredis/README.md); a program
 * links it, libhiredis and libconntls (pkg-config conntls). */
#ifndef HIREDIS_CONNTLS_H
#define HIREDIS_CONNTLS_H

#include <conntls.h>

#ifdef __cplusplus
extern "C" {
#endif

struct redisContext;

/* Starts TLS on a connected context `c` with a client connection from `ctx`.
 *
 * `server_name` (copied) is sent as SNI and the server's certificate must match it (an IP
 * address is matched against the certificate's IP entries); NULL sends no SNI and checks
 * the chain only. The context keeps its socket: conntls never closes it; redisFree frees
 * the TLS state, then closes it as usual.
 *
 * Blocking contexts run the handshake to the end here, within the context's timeouts;
 * asynchronous and non-blocking ones start it, and their first reads and writes finish it.
 * Returns REDIS_OK, or REDIS_ERR with c->err / c->errstr set (conntls's reason: the
 * handshake, the certificate, the socket; "the conn_tls_ctx is NULL"; "redisContext was
 * already associated" for a context already on TLS), the context then as before. A NULL
 * `c` returns REDIS_ERR. */
int redisInitiateConntls(struct redisContext *c, conn_tls_ctx *ctx, const char *server_name);

/* The conntls connection under a context started by redisInitiateConntls (for
 * conn_tls_protocol, conn_tls_peer_cert_field, conn_tls_set_user_timeout...), or NULL. */
conn_tls *redisGetConntls(struct redisContext *c);

#ifdef __cplusplus
}
#endif

#endif /* HIREDIS_CONNTLS_H */
