/* A hiredis-family client library over conntls: the context functions of a context
 * started by CLIENT_INITIATE(), for hiredis 1.x (redisContext) and libvalkey
 * (valkeyContext), which share hiredis's pluggable transport. Each library's file
 * (contrib/hiredis/hiredis_conntls.c, contrib/libvalkey/valkey_conntls.c) includes the library's private headers, names its types and
 * functions with the macros below, then includes this file, once; it is built inside the
 * library, beside its OpenSSL transport, whose shape this follows.
 *
 *   CLIENT_CONTEXT, CLIENT_ASYNC, CLIENT_FUNCS   the context, async context, funcs types
 *   CLIENT_NAME                                  the context type's name, for messages
 *   CLIENT_SET_ERROR(c, type, str)               the library's set-error function
 *   CLIENT_BUFFER_READ, CLIENT_BUFFER_WRITE      its buffer read / write
 *   CLIENT_DISCONNECT, CLIENT_PROCESS_CALLBACKS  its async disconnect and callback run
 *   CLIENT_CALLOC, CLIENT_FREE                   its allocator
 *   CLIENT_OK, CLIENT_ERR, CLIENT_ERR_IO, CLIENT_ERR_EOF, CLIENT_ERR_OTHER,
 *   CLIENT_ERR_OOM, CLIENT_BLOCK                 its status and flag values
 *   CLIENT_FUNCS_TCP                             initializers of its TCP slots
 *   CLIENT_INITIATE, CLIENT_GET                  the public functions' names
 *
 * What differs from the OpenSSL transports is what conntls makes unnecessary or necessary:
 *  - no lastLen: conntls never needs a write retried with the same bytes, so the output
 *    buffer is simply written from its start each time and trimmed by what was committed;
 *  - write interest stays while conntls holds committed bytes the socket has not taken
 *    (conn_tls_pending_write), even once the output buffer is empty;
 *  - a write that must wait for the socket to be readable (the handshake) stops write
 *    interest until the next read event, instead of spinning on a writable socket. */
#include <conntls.h>
#include <errno.h>
#include <string.h>

typedef struct clientConntls {
    conn_tls *conn;
    int write_waits_read; /* the last write wants the socket readable first */
    int read_waits_write; /* the last read wants the socket writable first */
} clientConntls;

static CLIENT_FUNCS contextConntlsFuncs;

/* A blocking socket returns EAGAIN only when its SO_RCVTIMEO / SO_SNDTIMEO expired. */
static const char TIMED_OUT[] = "Resource temporarily unavailable";

static void setConntlsError(CLIENT_CONTEXT *c, conn_tls *conn, int status) {
    if (status == CONN_TLS_WANT_READ || status == CONN_TLS_WANT_WRITE)
        CLIENT_SET_ERROR(c, CLIENT_ERR_IO, TIMED_OUT);
    else
        CLIENT_SET_ERROR(c, CLIENT_ERR_IO, conn ? conn_tls_last_error(conn) : conn_tls_thread_last_error());
}

int CLIENT_INITIATE(CLIENT_CONTEXT *c, conn_tls_ctx *ctx, const char *server_name) {
    if (c == NULL) return CLIENT_ERR;
    /* A context whose connect failed keeps the library's own error ("Connection refused"):
     * libvalkey's cluster client calls its TLS hook after a failed reconnect too, fd -1. */
    if (c->err) return CLIENT_ERR;
    if (ctx == NULL) {
        CLIENT_SET_ERROR(c, CLIENT_ERR_OTHER, "the conn_tls_ctx is NULL");
        return CLIENT_ERR;
    }
    if (c->privctx) {
        CLIENT_SET_ERROR(c, CLIENT_ERR_OTHER, CLIENT_NAME " was already associated");
        return CLIENT_ERR;
    }
    conn_tls *conn = conn_tls_new_client(ctx, c->fd, server_name);
    if (conn == NULL) {
        setConntlsError(c, NULL, CONN_TLS_ERR);
        return CLIENT_ERR;
    }
    if (c->flags & CLIENT_BLOCK) {
        /* On the blocking socket the handshake runs to its end in one call; WANT_* means
         * the socket's timeout expired. */
        int r = conn_tls_handshake(conn);
        if (r != CONN_TLS_OK) {
            setConntlsError(c, conn, r);
            conn_tls_free(conn);
            return CLIENT_ERR;
        }
    }
    /* Asynchronous and non-blocking contexts may not even be connected yet: their first
     * write or read takes the first handshake step. */
    clientConntls *t = CLIENT_CALLOC(1, sizeof *t);
    if (t == NULL) {
        conn_tls_free(conn);
        CLIENT_SET_ERROR(c, CLIENT_ERR_OOM, "Out of memory");
        return CLIENT_ERR;
    }
    t->conn = conn;
    c->funcs = &contextConntlsFuncs;
    c->privctx = t;
    return CLIENT_OK;
}

conn_tls *CLIENT_GET(CLIENT_CONTEXT *c) {
    return c && c->funcs == &contextConntlsFuncs && c->privctx ? ((clientConntls *)c->privctx)->conn : NULL;
}

static void conntlsFree(void *privctx) {
    clientConntls *t = privctx;
    if (t == NULL) return;
    conn_tls_free(t->conn); /* never closes the fd: the library's close does */
    CLIENT_FREE(t);
}

/* One conn_tls_read: at most one record, which the library's 16 KiB read buffer always holds
 * whole, so no decrypted byte is left behind where the event loop cannot see it. */
static ssize_t conntlsRead(CLIENT_CONTEXT *c, char *buf, size_t bufcap) {
    clientConntls *t = c->privctx;
    ssize_t n = conn_tls_read(t->conn, buf, bufcap);
    if (n > 0) return n;
    if (n == 0) {
        CLIENT_SET_ERROR(c, CLIENT_ERR_EOF, "Server closed the connection");
        return -1;
    }
    if ((n == CONN_TLS_WANT_READ || n == CONN_TLS_WANT_WRITE) && !(c->flags & CLIENT_BLOCK)) {
        t->read_waits_write = n == CONN_TLS_WANT_WRITE;
        return 0;
    }
    setConntlsError(c, t->conn, (int)n);
    return -1;
}

/* Commits what conntls takes of the output buffer; the library trims that much. Blocking
 * contexts commit the whole buffer and wait until it is on the socket, as their callers
 * expect, in one call: the library moves what is left of the buffer to its front after
 * each return, so returning after each part would copy a large pipeline over and over. */
static ssize_t conntlsWrite(CLIENT_CONTEXT *c) {
    clientConntls *t = c->privctx;
    size_t len = sdslen(c->obuf);
    ssize_t n = conn_tls_write(t->conn, c->obuf, len);
    if (n >= 0) {
        if (c->flags & CLIENT_BLOCK) {
            size_t total = (size_t)n;
            int r = CONN_TLS_OK;
            for (;;) {
                /* On the blocking socket a flush sends everything or the timeout expired. */
                if (conn_tls_pending_write(t->conn) > 0) r = conn_tls_flush(t->conn);
                if (r != CONN_TLS_OK || total == len) break;
                n = conn_tls_write(t->conn, c->obuf + total, len - total);
                if (n < 0) {
                    r = (int)n;
                    break;
                }
                total += (size_t)n;
            }
            if (r != CONN_TLS_OK) {
                setConntlsError(c, t->conn, r);
                return -1;
            }
            return (ssize_t)total;
        }
        return n;
    }
    if ((n == CONN_TLS_WANT_READ || n == CONN_TLS_WANT_WRITE) && !(c->flags & CLIENT_BLOCK)) {
        t->write_waits_read = n == CONN_TLS_WANT_READ;
        return 0;
    }
    setConntlsError(c, t->conn, (int)n);
    return -1;
}

/* Sends what conntls holds; returns CLIENT_ERR after disconnecting. */
static int conntlsFlushHeld(CLIENT_ASYNC *ac) {
    clientConntls *t = ac->c.privctx;
    if (conn_tls_pending_write(t->conn) > 0 && conn_tls_flush(t->conn) == CONN_TLS_ERR) {
        setConntlsError(&ac->c, t->conn, CONN_TLS_ERR);
        CLIENT_DISCONNECT(ac);
        return CLIENT_ERR;
    }
    return CLIENT_OK;
}

/* Writes what the library has and what conntls holds; returns CLIENT_ERR after disconnecting. */
static int conntlsFlushAll(CLIENT_ASYNC *ac) {
    CLIENT_CONTEXT *c = &ac->c;
    clientConntls *t = c->privctx;
    int done = 0;
    t->write_waits_read = 0;
    if (conntlsFlushHeld(ac) == CLIENT_ERR) return CLIENT_ERR;
    if (CLIENT_BUFFER_WRITE(c, &done) == CLIENT_ERR) {
        CLIENT_DISCONNECT(ac);
        return CLIENT_ERR;
    }
    if (done) {
        if (conntlsFlushHeld(ac) == CLIENT_ERR) return CLIENT_ERR;
        done = conn_tls_pending_write(t->conn) == 0;
    }
    if (!done && !t->write_waits_read)
        _EL_ADD_WRITE(ac);
    else
        _EL_DEL_WRITE(ac); /* done, or waiting for a read event */
    return CLIENT_OK;
}

static void conntlsAsyncWrite(CLIENT_ASYNC *ac) {
    if (conntlsFlushAll(ac) == CLIENT_OK) _EL_ADD_READ(ac); /* always read after writing */
}

static void conntlsAsyncRead(CLIENT_ASYNC *ac) {
    CLIENT_CONTEXT *c = &ac->c;
    clientConntls *t = c->privctx;
    if (t->write_waits_read && conntlsFlushAll(ac) != CLIENT_OK) return;
    t->read_waits_write = 0;
    if (CLIENT_BUFFER_READ(c) == CLIENT_ERR) {
        CLIENT_DISCONNECT(ac);
        return;
    }
    /* A read may have made conntls answer (a handshake flight, a KeyUpdate), or finished
     * the handshake a waiting write needs. */
    if (t->read_waits_write || conn_tls_pending_write(t->conn) > 0 || sdslen(c->obuf) > 0) _EL_ADD_WRITE(ac);
    _EL_ADD_READ(ac);
    CLIENT_PROCESS_CALLBACKS(ac);
}

static CLIENT_FUNCS contextConntlsFuncs = {
    CLIENT_FUNCS_TCP /* the library's own TCP slots: connect, close, set_timeout */
    .free_privctx = conntlsFree,
    .async_read = conntlsAsyncRead,
    .async_write = conntlsAsyncWrite,
    .read = conntlsRead,
    .write = conntlsWrite,
};
