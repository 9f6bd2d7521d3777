/* libkv (Valkey's client library, deps/libkv) over conntls: a transport for kvContext.
 *
 * kvInitiateConntls() puts a connected context onto a conntls connection made from a
 * conn_tls_ctx, for blocking and asynchronous contexts alike, in place of
 * kvInitiateTLS(). The connection then has conntls's write guarantee (no "bad length",
 * whatever is retried), its dead-peer defaults for client connections (TCP_USER_TIMEOUT
 * 30 s and keepalive after 15 s idle, or the context's tcp-user-timeout /
 * tcp-keepalive options) and the context's live generation of certificates (reloads
 * apply to new connections).
 *
 * Installed into libkv as include/kv/kv_conntls.h and src/kv_conntls.c (contrib/libkv/README.md);
 * it builds into libkv_tls and needs libconntls (pkg-config conntls) where it is used. */
#ifndef KV_CONNTLS_H
#define KV_CONNTLS_H

#include <conntls.h>

#include "visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kvContext;

/* Starts TLS on a connected context `c` with a client connection from `ctx`.
 *
 * `server_name` (copied) is sent as SNI and the server's certificate must match it (an IP
 * address is matched against the certificate's IP entries); NULL sends no SNI and checks
 * the chain only. The context keeps the socket it has: conntls never closes it; kvFree
 * frees the TLS state, then closes it as usual.
 *
 * Blocking contexts (kvConnect...) run the handshake to the end here, on the blocking
 * socket, within the context's timeouts; asynchronous and non-blocking ones start it,
 * and the first reads and writes finish it.
 * Returns KV_OK, or KV_ERR with c->err / c->errstr set (conntls's reason: the handshake,
 * the certificate, the socket); the context is then as before, without TLS. */
LIBKV_API int kvInitiateConntls(struct kvContext *c, conn_tls_ctx *ctx, const char *server_name);

/* The conntls connection under a context started by kvInitiateConntls (for
 * conn_tls_protocol, conn_tls_peer_cert_field, conn_tls_set_user_timeout...), or NULL. */
LIBKV_API conn_tls *kvGetConntls(struct kvContext *c);

#ifdef __cplusplus
}
#endif

#endif /* KV_CONNTLS_H */
