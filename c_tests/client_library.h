/* The client library a program of c_tests/client_transport.c or benches/client_bench.c is
 * built against, under one set of names: hiredis 1.2.0 (-DCLIENT_HIREDIS) or libvalkey
 * 0.5.0 (-DCLIENT_VALKEY), their conntls transports (contrib/hiredis, contrib/libvalkey)
 * with client_config(), and initiate_openssl(), TLS through the library's own OpenSSL. */
#ifndef CLIENT_LIBRARY_H
#define CLIENT_LIBRARY_H

#ifdef CLIENT_HIREDIS
#include "async.h"
#include "hiredis.h"
#include "hiredis_conntls.h"
#include "hiredis_ssl.h"
#define Context redisContext
#define AsyncContext redisAsyncContext
#define Reply redisReply
#define CONNECT redisConnectWithTimeout
#define ASYNC_CONNECT redisAsyncConnect
#define COMMAND redisCommand
#define APPEND redisAppendCommand
#define GET_REPLY redisGetReply
#define ASYNC_COMMAND redisAsyncCommand
#define ASYNC_FREE redisAsyncFree
#define ASYNC_ON_DISCONNECT redisAsyncSetDisconnectCallback
#define FREE redisFree
#define INITIATE_CONNTLS redisInitiateConntls
#define ST_OK REDIS_OK
#define ST_ERR REDIS_ERR
#define REPLY_STRING REDIS_REPLY_STRING
#define REPLY_STATUS REDIS_REPLY_STATUS
#define REPLY_ERROR REDIS_REPLY_ERROR
#define REPLY_INTEGER REDIS_REPLY_INTEGER
#define REPLY_ARRAY REDIS_REPLY_ARRAY
#define REPLY_NIL REDIS_REPLY_NIL
#define FREE_REPLY freeReplyObject
static int initiate_openssl(Context *c, const char *ca, const char *cert, const char *key) {
    redisSSLContextError e;
    redisSSLContext *ssl = redisCreateSSLContext(ca, NULL, cert, key, "localhost", &e);
    return ssl && redisInitiateSSLWithContext(c, ssl) == REDIS_OK ? ST_OK : ST_ERR; /* ssl kept: one per run */
}
#endif

#ifdef CLIENT_VALKEY
#include "async.h"
#include "cluster.h"
#include "tls.h"
#include "valkey.h"
#include "valkey_conntls.h"
#define Context valkeyContext
#define AsyncContext valkeyAsyncContext
#define Reply valkeyReply
#define CONNECT valkeyConnectWithTimeout
#define ASYNC_CONNECT valkeyAsyncConnect
#define ASYNC_COMMAND valkeyAsyncCommand
#define ASYNC_FREE valkeyAsyncFree
#define ASYNC_ON_DISCONNECT valkeyAsyncSetDisconnectCallback
#define COMMAND valkeyCommand
#define APPEND valkeyAppendCommand
#define GET_REPLY valkeyGetReply
#define FREE valkeyFree
#define INITIATE_CONNTLS valkeyInitiateConntls
#define ST_OK VALKEY_OK
#define ST_ERR VALKEY_ERR
#define REPLY_STRING VALKEY_REPLY_STRING
#define REPLY_STATUS VALKEY_REPLY_STATUS
#define REPLY_ERROR VALKEY_REPLY_ERROR
#define REPLY_INTEGER VALKEY_REPLY_INTEGER
#define REPLY_ARRAY VALKEY_REPLY_ARRAY
#define REPLY_NIL VALKEY_REPLY_NIL
#define FREE_REPLY freeReplyObject
static int initiate_openssl(Context *c, const char *ca, const char *cert, const char *key) {
    valkeyTLSContextError e;
    valkeyTLSContext *tls = valkeyCreateTLSContext(ca, NULL, cert, key, "localhost", &e);
    return tls && valkeyInitiateTLSWithContext(c, tls) == VALKEY_OK ? ST_OK : ST_ERR; /* kept: one per run */
}
#endif

/* The conntls client configuration of CA `ca`, client certificate `cert` / `key` and, when
 * not NULL, tcp-user-timeout `user_timeout_ms`; NULL with the reason in `err` when an
 * option is refused. */
static conn_tls_config *client_config(const char *ca, const char *cert, const char *key, const char *user_timeout_ms,
                                      char *err, size_t errlen) {
    const char *options[][2] = {{"ca-cert-file", ca}, {"client-cert-file", cert}, {"client-key-file", key},
                                {"tcp-user-timeout", user_timeout_ms}};
    conn_tls_config *cfg = conn_tls_config_new();
    for (size_t i = 0; cfg && i < (user_timeout_ms ? 4u : 3u); i++)
        if (conn_tls_config_set(cfg, options[i][0], options[i][1], err, errlen) != CONN_TLS_OK) {
            conn_tls_config_free(cfg);
            return NULL;
        }
    return cfg;
}

#endif /* CLIENT_LIBRARY_H */
