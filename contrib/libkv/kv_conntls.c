/* libkv over conntls: the kvContextFuncs of a context started by kvInitiateConntls().
 * The transport is contrib/common/conntls_client.h (shared with hiredis and libvalkey),
 * copied beside this file into libkv's src/; this names libkv's types and functions. */
#include "async.h"
#include "kv.h"
#include "net.h"

#include "async_private.h"
#include "kv_conntls.h"
#include "kv_private.h"
#include "sds.h"

#define CLIENT_CONTEXT kvContext
#define CLIENT_ASYNC kvAsyncContext
#define CLIENT_FUNCS kvContextFuncs
#define CLIENT_NAME "kvContext"
#define CLIENT_SET_ERROR kvSetError
#define CLIENT_BUFFER_READ kvBufferRead
#define CLIENT_BUFFER_WRITE kvBufferWrite
#define CLIENT_DISCONNECT kvAsyncDisconnectInternal
#define CLIENT_PROCESS_CALLBACKS kvProcessCallbacks
#define CLIENT_CALLOC vk_calloc
#define CLIENT_FREE vk_free
#define CLIENT_OK KV_OK
#define CLIENT_ERR KV_ERR
#define CLIENT_ERR_IO KV_ERR_IO
#define CLIENT_ERR_EOF KV_ERR_EOF
#define CLIENT_ERR_OTHER KV_ERR_OTHER
#define CLIENT_ERR_OOM KV_ERR_OOM
#define CLIENT_BLOCK KV_BLOCK
#define CLIENT_FUNCS_TCP .connect = kvContextConnectTcp, .close = kvNetClose, .set_timeout = kvTcpSetTimeout,
#define CLIENT_INITIATE kvInitiateConntls
#define CLIENT_GET kvGetConntls
#include "conntls_client.h"
