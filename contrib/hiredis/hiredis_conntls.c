/* hiredis 1.x over conntls: the redisContextFuncs of a context started by
 * redisInitiateConntls(). The transport is contrib/common/conntls_client.h (shared with
 * libvalkey), copied beside this file into hiredis's tree; this names hiredis's
 * types and functions. Built beside ssl.c into libhiredis_conntls (README.md). */
#include "hiredis.h"
#include "async.h"
#include "net.h"

#include "async_private.h"
#include "hiredis_conntls.h"
#include "sds.h"
#if defined(__has_include)
#if __has_include("sdscompat.h")
/* The hiredis that Valkey and Redis bundle in deps/ names sds hi_sds; this maps the names. */
#include "sdscompat.h"
#endif
#endif

/* hiredis's, not in its public headers (ssl.c declares it the same way). */
void __redisSetError(redisContext *c, int type, const char *str);

#define CLIENT_CONTEXT redisContext
#define CLIENT_ASYNC redisAsyncContext
#define CLIENT_FUNCS redisContextFuncs
#define CLIENT_NAME "redisContext"
#define CLIENT_SET_ERROR __redisSetError
#define CLIENT_BUFFER_READ redisBufferRead
#define CLIENT_BUFFER_WRITE redisBufferWrite
#define CLIENT_DISCONNECT __redisAsyncDisconnect
#define CLIENT_PROCESS_CALLBACKS redisProcessCallbacks
#define CLIENT_CALLOC hi_calloc
#define CLIENT_FREE hi_free
#define CLIENT_OK REDIS_OK
#define CLIENT_ERR REDIS_ERR
#define CLIENT_ERR_IO REDIS_ERR_IO
#define CLIENT_ERR_EOF REDIS_ERR_EOF
#define CLIENT_ERR_OTHER REDIS_ERR_OTHER
#define CLIENT_ERR_OOM REDIS_ERR_OOM
#define CLIENT_BLOCK REDIS_BLOCK
#define CLIENT_FUNCS_TCP .close = redisNetClose,
#define CLIENT_INITIATE redisInitiateConntls
#define CLIENT_GET redisGetConntls
#include "conntls_client.h"
