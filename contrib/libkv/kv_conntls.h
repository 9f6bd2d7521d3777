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

/* kvInitiateConntls and kvGetConntls are libvalkey's valkeyInitiateConntls and
 * valkeyGetConntls under libkv's names: see contrib/libvalkey/valkey_conntls.h for what they
 * do, return and own. */
LIBKV_API int kvInitiateConntls(struct kvContext *c, conn_tls_ctx *ctx, const char *server_name);

LIBKV_API conn_tls *kvGetConntls(struct kvContext *c);

#ifdef __cplusplus
}
#endif

#endif /* KV_CONNTLS_H */
