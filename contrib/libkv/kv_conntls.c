/* libkv over conntls: the kvContextFuncs of a context started by kvInitiateConntls().
 *
 * Built inside libkv (src/kv_conntls.c, beside its OpenSSL tls.c, whose shape this follows)
 * because a transport reads the output buffer (an sds) and drives libkv's asynchronous
 * machinery. What differs from tls.c is what conntls makes unnecessary or necessary:
 *  - no lastLen: conntls never needs a write retried with the same bytes, so the output
 *    buffer is simply written from its start each time and trimmed by what was committed;
 *  - write interest stays while conntls holds committed bytes the socket has not taken
 *    (conn_tls_pending_write), even once libkv's output buffer is empty;
 *  - a write that must wait for the socket to be readable (the handshake) stops write
 *    interest until the next read event, instead of spinning on a writable socket. */
#include "async.h"
#include "kv.h"
#include "net.h"

#include <errno.h>
#include <string.h>

#include "async_private.h"
#include "kv_conntls.h"
#include "kv_private.h"
#include "sds.h"

typedef struct kvConntls {
    conn_tls *conn;
    int write_waits_read; /* the last write wants the socket readable first */
    int read_waits_write; /* the last read wants the socket writable first */
} kvConntls;

static kvContextFuncs kvContextConntlsFuncs;

/* A blocking socket returns EAGAIN only when its SO_RCVTIMEO / SO_SNDTIMEO expired. */
static const char TIMED_OUT[] = "Resource temporarily unavailable";

static void setConntlsError(kvContext *c, conn_tls *conn, int status) {
    if (status == CONN_TLS_WANT_READ || status == CONN_TLS_WANT_WRITE)
        kvSetError(c, KV_ERR_IO, TIMED_OUT);
    else
        kvSetError(c, KV_ERR_IO, conn ? conn_tls_last_error(conn) : conn_tls_thread_last_error());
}

int kvInitiateConntls(kvContext *c, conn_tls_ctx *ctx, const char *server_name) {
    if (c == NULL || ctx == NULL) return KV_ERR;
    if (c->privctx) {
        kvSetError(c, KV_ERR_OTHER, "kvContext was already associated");
        return KV_ERR;
    }
    conn_tls *conn = conn_tls_new_client(ctx, c->fd, server_name);
    if (conn == NULL) {
        setConntlsError(c, NULL, CONN_TLS_ERR);
        return KV_ERR;
    }
    if (c->flags & KV_BLOCK) {
        /* On the blocking socket the handshake runs to its end in one call; WANT_* means
         * the socket's timeout expired. */
        int r = conn_tls_handshake(conn);
        if (r != CONN_TLS_OK) {
            setConntlsError(c, conn, r);
            conn_tls_free(conn);
            return KV_ERR;
        }
    }
    /* Asynchronous and non-blocking contexts may not even be connected yet: their first
     * write or read takes the first handshake step. */
    kvConntls *t = vk_calloc(1, sizeof *t);
    if (t == NULL) {
        conn_tls_free(conn);
        kvSetError(c, KV_ERR_OOM, "Out of memory");
        return KV_ERR;
    }
    t->conn = conn;
    c->funcs = &kvContextConntlsFuncs;
    c->privctx = t;
    return KV_OK;
}

conn_tls *kvGetConntls(kvContext *c) {
    return c && c->funcs == &kvContextConntlsFuncs && c->privctx ? ((kvConntls *)c->privctx)->conn : NULL;
}

static void conntlsFree(void *privctx) {
    kvConntls *t = privctx;
    if (t == NULL) return;
    conn_tls_free(t->conn); /* never closes the fd: kvNetClose does */
    vk_free(t);
}

/* One conn_tls_read: at most one record, which libkv's 16 KiB read buffer always holds
 * whole, so no decrypted byte is left behind where the event loop cannot see it. */
static ssize_t conntlsRead(kvContext *c, char *buf, size_t bufcap) {
    kvConntls *t = c->privctx;
    ssize_t n = conn_tls_read(t->conn, buf, bufcap);
    if (n > 0) return n;
    if (n == 0) {
        kvSetError(c, KV_ERR_EOF, "Server closed the connection");
        return -1;
    }
    if ((n == CONN_TLS_WANT_READ || n == CONN_TLS_WANT_WRITE) && !(c->flags & KV_BLOCK)) {
        t->read_waits_write = n == CONN_TLS_WANT_WRITE;
        return 0;
    }
    setConntlsError(c, t->conn, (int)n);
    return -1;
}

/* Commits what conntls takes of the output buffer; libkv trims that much. Blocking
 * contexts also wait until it is on the socket, as their callers expect. */
static ssize_t conntlsWrite(kvContext *c) {
    kvConntls *t = c->privctx;
    ssize_t n = conn_tls_write(t->conn, c->obuf, sdslen(c->obuf));
    if (n >= 0) {
        if (c->flags & KV_BLOCK) {
            int r = CONN_TLS_OK;
            while (conn_tls_pending_write(t->conn) > 0 && (r = conn_tls_flush(t->conn)) == CONN_TLS_OK) {
            }
            if (r != CONN_TLS_OK) {
                setConntlsError(c, t->conn, r);
                return -1;
            }
        }
        return n;
    }
    if ((n == CONN_TLS_WANT_READ || n == CONN_TLS_WANT_WRITE) && !(c->flags & KV_BLOCK)) {
        t->write_waits_read = n == CONN_TLS_WANT_READ;
        return 0;
    }
    setConntlsError(c, t->conn, (int)n);
    return -1;
}

/* Sends what conntls holds; returns KV_ERR after disconnecting. */
static int conntlsFlushHeld(kvAsyncContext *ac) {
    kvConntls *t = ac->c.privctx;
    if (conn_tls_pending_write(t->conn) > 0 && conn_tls_flush(t->conn) == CONN_TLS_ERR) {
        setConntlsError(&ac->c, t->conn, CONN_TLS_ERR);
        kvAsyncDisconnectInternal(ac);
        return KV_ERR;
    }
    return KV_OK;
}

/* Writes what libkv has and what conntls holds; returns KV_ERR after disconnecting. */
static int conntlsFlushAll(kvAsyncContext *ac) {
    kvContext *c = &ac->c;
    kvConntls *t = c->privctx;
    int done = 0;
    t->write_waits_read = 0;
    if (conntlsFlushHeld(ac) == KV_ERR) return KV_ERR;
    if (kvBufferWrite(c, &done) == KV_ERR) {
        kvAsyncDisconnectInternal(ac);
        return KV_ERR;
    }
    if (done) {
        if (conntlsFlushHeld(ac) == KV_ERR) return KV_ERR;
        done = conn_tls_pending_write(t->conn) == 0;
    }
    if (!done && !t->write_waits_read)
        _EL_ADD_WRITE(ac);
    else
        _EL_DEL_WRITE(ac); /* done, or waiting for a read event */
    return KV_OK;
}

static void conntlsAsyncWrite(kvAsyncContext *ac) {
    if (conntlsFlushAll(ac) == KV_OK) _EL_ADD_READ(ac); /* always read after writing */
}

static void conntlsAsyncRead(kvAsyncContext *ac) {
    kvContext *c = &ac->c;
    kvConntls *t = c->privctx;
    if (t->write_waits_read && conntlsFlushAll(ac) != KV_OK) return;
    t->read_waits_write = 0;
    if (kvBufferRead(c) == KV_ERR) {
        kvAsyncDisconnectInternal(ac);
        return;
    }
    /* A read may have made conntls answer (a handshake flight, a KeyUpdate), or finished
     * the handshake a waiting write needs. */
    if (t->read_waits_write || conn_tls_pending_write(t->conn) > 0 || sdslen(c->obuf) > 0) _EL_ADD_WRITE(ac);
    _EL_ADD_READ(ac);
    kvProcessCallbacks(ac);
}

static kvContextFuncs kvContextConntlsFuncs = {
    .connect = kvContextConnectTcp,
    .close = kvNetClose,
    .free_privctx = conntlsFree,
    .async_read = conntlsAsyncRead,
    .async_write = conntlsAsyncWrite,
    .read = conntlsRead,
    .write = conntlsWrite,
    .set_timeout = kvTcpSetTimeout,
};
