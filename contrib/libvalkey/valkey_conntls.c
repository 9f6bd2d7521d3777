/* libvalkey over conntls: the valkeyContextFuncs of a context started by
 * valkeyInitiateConntls(), and the TLS hook of a cluster context. The transport is
 * contrib/common/conntls_client.h (shared with hiredis), copied beside this
 * file into libvalkey's src/; this names libvalkey's types and functions. */
#include "async.h"
#include "net.h"
#include "valkey.h"

#include "async_private.h"
#include "cluster.h"
#include "valkey_conntls.h"
#include "valkey_private.h"
#include "sds.h"

#define CLIENT_CONTEXT valkeyContext
#define CLIENT_ASYNC valkeyAsyncContext
#define CLIENT_FUNCS valkeyContextFuncs
#define CLIENT_NAME "valkeyContext"
#define CLIENT_SET_ERROR valkeySetError
#define CLIENT_BUFFER_READ valkeyBufferRead
#define CLIENT_BUFFER_WRITE valkeyBufferWrite
#define CLIENT_DISCONNECT valkeyAsyncDisconnectInternal
#define CLIENT_PROCESS_CALLBACKS valkeyProcessCallbacks
#define CLIENT_CALLOC vk_calloc
#define CLIENT_FREE vk_free
#define CLIENT_OK VALKEY_OK
#define CLIENT_ERR VALKEY_ERR
#define CLIENT_ERR_IO VALKEY_ERR_IO
#define CLIENT_ERR_EOF VALKEY_ERR_EOF
#define CLIENT_ERR_OTHER VALKEY_ERR_OTHER
#define CLIENT_ERR_OOM VALKEY_ERR_OOM
#define CLIENT_BLOCK VALKEY_BLOCK
#define CLIENT_FUNCS_TCP .connect = valkeyContextConnectTcp, .close = valkeyNetClose, .set_timeout = valkeyTcpSetTimeout,
#define CLIENT_INITIATE valkeyInitiateConntls
#define CLIENT_GET valkeyGetConntls
#include "conntls_client.h"

/* The cluster context calls this for each node connection it makes, with the `tls` its
 * options carried: here a conn_tls_ctx. Nodes are known by address (or the host names
 * they announce): the name is checked as conn_tls_new_client checks any. */
static int clusterInitConntls(valkeyContext *c, struct valkeyTLSContext *tls) {
    return valkeyInitiateConntls(c, (conn_tls_ctx *)(void *)tls, c->tcp.host);
}

int valkeyClusterOptionsUseConntls(valkeyClusterOptions *options, conn_tls_ctx *ctx) {
    if (options == NULL || ctx == NULL) return VALKEY_ERR;
    options->tls = ctx;
    options->tls_init_fn = clusterInitConntls;
    return VALKEY_OK;
}
