/*
 * conntls: TLS connections for C servers, over the system OpenSSL 3.
 *
 * Link with `pkg-config --cflags --libs conntls` (libconntls.so.0, or libconntls.a with
 * `pkg-config --static`).
 *
 * Conventions every function follows:
 *  - Status codes: CONN_TLS_OK 0, CONN_TLS_ERR -1 (fatal for the connection;
 *    conn_tls_last_error says why), CONN_TLS_WANT_READ -2 / CONN_TLS_WANT_WRITE -3 (nothing
 *    done; call again when the fd is readable / writable), CONN_TLS_EINVAL -4 (bad
 *    argument; nothing changed), CONN_TLS_BUSY -5 (the handshake pool is full). Functions
 *    returning ssize_t return a count >= 0 or one of these. The values are fixed and never
 *    reused.
 *  - Threads: a conn_tls_ctx and a conn_tls_config may be used from any number of threads
 *    at once. A conn_tls is used by one thread at a time, but any thread: the caller's own
 *    hand-off (a mutex, a queue) is all the synchronisation needed.
 *  - Every call leaves the calling thread's OpenSSL error queue empty. No call aborts,
 *    prints, installs signal handlers, raises SIGPIPE, blocks on a non-blocking fd or
 *    closes the caller's fd.
 *  - NULL handles never crash: status calls give CONN_TLS_EINVAL, constructors NULL,
 *    counts and generations 0, strings "". Every _free accepts NULL. A const handle means
 *    the call does not change it.
 *  - Strings returned by the library stay valid until the next call on the same handle.
 *    err/errlen pairs: err may be NULL when errlen is 0; otherwise the message is
 *    truncated to fit and always NUL-terminated. Outputs are written only on success,
 *    except err, written only on failure.
 */


#ifndef CONNTLS_H
#define CONNTLS_H

/* Generated from src/ by tools/gen-header (cbindgen). Do not edit; run `make header`. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define CONN_TLS_VERSION "0.1.0"
#define CONN_TLS_VERSION_MAJOR 0
#define CONN_TLS_VERSION_MINOR 1
#define CONN_TLS_VERSION_PATCH 0


/*
 conn_tls_ctx_cert_info: the server's own certificate (cert-file).
 */
#define CONN_TLS_CERT_SERVER 0

/*
 conn_tls_ctx_cert_info: the certificate client connections present (client-cert-file,
 else cert-file).
 */
#define CONN_TLS_CERT_CLIENT 1

/*
 conn_tls_ctx_cert_info: the trusted CA certificates (ca-cert-file and ca-cert-dir).
 */
#define CONN_TLS_CERT_CA 2

#define CONN_TLS_OK 0

#define CONN_TLS_ERR -1

#define CONN_TLS_WANT_READ -2

#define CONN_TLS_WANT_WRITE -3

#define CONN_TLS_EINVAL -4

/*
 The handshake pool is full: nothing was taken; try again later (or close).
 */
#define CONN_TLS_BUSY -5

/*
 A set of options to build a context from (conn_tls_config). Internally locked, so a
 background reload may read it while another thread sets options.
 */
typedef struct conn_tls_config conn_tls_config;

/*
 One TLS connection over a caller-owned socket (conn_tls).
 */
typedef struct conn_tls conn_tls;

/*
 Everything connections are made from (conn_tls_ctx): the live generation of
 certificates and settings, swapped atomically by reloads, and the client session store.
 */
typedef struct conn_tls_ctx conn_tls_ctx;

/*
 A handshake pool (conn_tls_pool): worker threads that drive submitted handshakes.
 */
typedef struct conn_tls_pool conn_tls_pool;

/*
 The C callback: `ud` as given, a syslog level, a NUL-terminated message valid for the call.
 */
typedef void (*conn_tls_log_callback)(void *ud, int level, const char *msg);

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/*
 Makes a configuration holding the defaults (those of Valkey's tls-* options).

 Ownership: the caller owns the result and frees it with conn_tls_config_free.
 Threads: a configuration may be used from several threads; set and the context calls
 that read it are serialized inside.
 Returns NULL only when out of memory.
 */
conn_tls_config *conn_tls_config_new(void);

/*
 Sets option `name` to `value`. Names are Valkey's tls-* names without the prefix:
 cert-file, key-file, key-file-pass, client-cert-file, client-key-file,
 client-key-file-pass, ca-cert-file, ca-cert-dir, dh-params-file, protocols, ciphers,
 ciphersuites, prefer-server-ciphers, session-caching, session-cache-size,
 session-cache-timeout, auth-clients (no/yes/optional; default yes), tcp-user-timeout (ms)
 and tcp-keepalive (s). An empty value unsets a file, passphrase or cipher option.

 Only syntax is checked here (numbers, yes/no, protocol names); files and cipher strings
 are checked by conn_tls_ctx_new / conn_tls_ctx_reload.

 Returns CONN_TLS_OK, or CONN_TLS_EINVAL (NULL cfg/name/value, unknown name, malformed
 value) with a message naming the option in `err`; a rejected value leaves the earlier
 one in place. `err` may be NULL when `errlen` is 0; the message is truncated to fit and
 always NUL-terminated. The strings are copied; the caller keeps ownership.
 */
int conn_tls_config_set(conn_tls_config *cfg, const char *name, const char *value, char *err, size_t errlen);

/*
 Frees a configuration. NULL is accepted and ignored. Contexts built from it are not
 affected.
 */
void conn_tls_config_free(conn_tls_config *cfg);

/*
 Makes a server-side connection on `fd`, an accepted, connected, non-blocking stream
 socket. It uses the context's live generation until freed, and gets the context's
 tcp-user-timeout / tcp-keepalive if set (server connections are otherwise left as the
 socket is).

 Ownership: the fd stays the caller's; the library reads, writes and sets socket options
 on it, never closes it. The caller owns the result and frees it with conn_tls_free,
 before closing the fd.
 Threads: any thread; the context may be in use by other threads.
 Returns NULL when `ctx` is NULL, `fd` is not an open stream socket, or the context has
 no cert-file/key-file (the reason goes to the log callback).
 */
conn_tls *conn_tls_new_server(conn_tls_ctx *ctx, int fd);

/*
 Makes a client-side connection on `fd`, a connected (or connecting) non-blocking stream
 socket. The peer's chain is always verified against ca-cert-file / ca-cert-dir (the
 system's trust store when neither is set). `server_name` (copied) is sent as SNI and
 the certificate must match it (an IP address is matched against the certificate's IP
 entries and not sent as SNI); NULL sends no SNI and checks the chain only.

 Resumption: the context keeps the newest session it got for each server_name (NULL
 counts as one name) and offers it here. Liveness defaults for client connections, unless
 the context options set them: TCP_USER_TIMEOUT 30000 ms and keepalive after 15 s idle
 (probes every 5 s, 3 of them) on TCP sockets. The user timeout also fails a server that
 is alive but does not read for 30 s; raise it with conn_tls_set_user_timeout for peers
 that may legitimately stall longer, or set 0 to turn it off.

 Ownership, threads and NULL returns as conn_tls_new_server.
 */
conn_tls *conn_tls_new_client(conn_tls_ctx *ctx, int fd, const char *server_name);

/*
 Runs one handshake step.

 Threads: any thread; each step may run on a different thread, ordered by the caller's
 own hand-off (a mutex, a queue).
 Returns CONN_TLS_OK when the handshake is done and its last flight is on the socket,
 CONN_TLS_WANT_READ / CONN_TLS_WANT_WRITE (call again when the fd is readable /
 writable), CONN_TLS_ERR (conn_tls_last_error says why: the peer's certificate, a
 protocol error, a timeout...), CONN_TLS_EINVAL for NULL.
 */
int conn_tls_handshake(conn_tls *c);

/*
 Reads decrypted bytes into `buf` (at most `len`). Drives the handshake first if it is
 not done.

 Returns the number of bytes read (> 0); 0 when the peer closed the stream (close_notify
 or EOF); CONN_TLS_WANT_READ / CONN_TLS_WANT_WRITE; CONN_TLS_ERR; CONN_TLS_EINVAL for a
 NULL handle, a NULL `buf` or `len` 0. When conn_tls_pending_read(c) > 0 afterwards,
 decrypted bytes wait: read again without waiting for the fd. A read may make the
 library send (a KeyUpdate answer): when conn_tls_pending_write(c) > 0, keep write
 interest.
 */
ssize_t conn_tls_read(conn_tls *c, void *buf, size_t len);

/*
 conn_tls_writev with one buffer. `buf` may be NULL when `len` is 0.
 */
ssize_t conn_tls_write(conn_tls *c, const void *buf, size_t len);

/*
 Writes the concatenation of `iov[0..iovcnt]`. Drives the handshake first if it is not
 done.

 Returns n > 0: the first n bytes are committed. The library owns them and delivers them
 in order, before any byte of a later call, as long as the caller calls conn_tls_flush
 (or writes again) when the fd is writable; conn_tls_pending_write(c) > 0 says some are
 not on the socket yet, so keep write interest.
 Returns CONN_TLS_WANT_WRITE / CONN_TLS_WANT_READ: nothing of this call was committed,
 and the next call may pass any data at all (OpenSSL's write-retry rule is the library's
 business: no sequence of calls can produce "bad length" or "bad write retry").
 Returns 0 when there is nothing to write (iovcnt 0 or all lengths 0); committed bytes
 still move along. CONN_TLS_ERR: the connection is dead. CONN_TLS_EINVAL: NULL handle,
 iovcnt < 0 or > IOV_MAX, NULL iov with iovcnt > 0, or an entry with a NULL base and a
 non-zero length; nothing was written.

 The caller may reuse or free its buffers as soon as the call returns. Memory stays
 bounded whatever the iov: at most about 33 KiB of ciphertext (two records) waits per
 connection, none on an idle one.
 */
ssize_t conn_tls_writev(conn_tls *c, const struct iovec *iov, int iovcnt);

/*
 Sends committed bytes that wait for the socket.
 Returns CONN_TLS_OK when nothing committed is left unsent, CONN_TLS_WANT_WRITE while
 some waits, CONN_TLS_ERR, or CONN_TLS_EINVAL for NULL.
 */
int conn_tls_flush(conn_tls *c);

/*
 Bytes committed but not yet on the socket (0 for NULL). While > 0, keep write interest
 on the fd and call conn_tls_flush when it is writable. Does not change the connection.
 */
size_t conn_tls_pending_write(const conn_tls *c);

/*
 Decrypted bytes waiting to be read (0 for NULL): while > 0, call conn_tls_read without
 waiting for the fd. Does not change the connection.
 */
size_t conn_tls_pending_read(const conn_tls *c);

/*
 Flushes what is committed, then sends close_notify (the peer's is not waited for).
 Returns CONN_TLS_OK when close_notify is on the socket (or the handshake never
 finished, so there is nothing to close), CONN_TLS_WANT_WRITE (call again when
 writable), CONN_TLS_ERR, CONN_TLS_EINVAL for NULL. Never closes the fd.
 */
int conn_tls_shutdown(conn_tls *c);

/*
 Frees a connection; NULL is accepted. Never blocks, never closes the fd; committed
 bytes not yet sent are dropped. The caller closes the fd afterwards.
 */
void conn_tls_free(conn_tls *c);

/*
 Why the most recent call that returned CONN_TLS_ERR or CONN_TLS_EINVAL on this
 connection failed; "" when none did, or for NULL. Never NULL. The string belongs to the
 connection and stays valid until the next call on it.
 */
const char *conn_tls_last_error(const conn_tls *c);

/*
 The context generation this connection was created with (0 for NULL).
 */
uint64_t conn_tls_generation(const conn_tls *c);

/*
 Sets TCP_USER_TIMEOUT on the connection's socket, overriding the context's default:
 once sent data stays unacknowledged for `ms` milliseconds, the kernel drops the
 connection and the next call returns CONN_TLS_ERR with conn_tls_last_error saying the
 peer timed out. 0 turns it off (then a black-holed peer takes about 15 minutes of
 retransmits to detect). Note that a peer that is alive but does not read is failed too.
 Returns CONN_TLS_OK, or CONN_TLS_EINVAL (NULL, a socket that is not TCP, a value the
 kernel refuses) with the reason in conn_tls_last_error.
 */
int conn_tls_set_user_timeout(conn_tls *c, unsigned int ms);

/*
 Sets TCP keepalive on the connection's socket, overriding the context's default: after
 `idle_s` idle seconds, `count` probes `interval_s` seconds apart; with none answered the
 next call returns CONN_TLS_ERR ("peer timed out"). Detects a dead peer of an idle
 connection within idle_s + interval_s * count seconds; it does not help while sent data
 is unacknowledged (that is conn_tls_set_user_timeout's job). `idle_s` 0 turns keepalive
 off. Returns CONN_TLS_OK, or CONN_TLS_EINVAL (NULL, a non-TCP socket, a zero interval
 or count) with the reason in conn_tls_last_error.
 */
int conn_tls_set_keepalive(conn_tls *c, unsigned int idle_s, unsigned int interval_s, unsigned int count);

/*
 Copies the peer's certificate, PEM-encoded, into `buf`, like snprintf: returns the PEM
 length without the NUL (0 when the peer sent no certificate), and writes the PEM,
 NUL-terminated, only when `len` is larger than that. `buf` may be NULL when `len` is 0.
 Returns CONN_TLS_EINVAL for a NULL handle or a NULL `buf` with `len` > 0.
 */
ssize_t conn_tls_peer_cert_pem(conn_tls *c, char *buf, size_t len);

/*
 Copies the text of subject field `name` ("CN", "O", "OU"... any short or long name
 OpenSSL knows) of the peer's certificate into `buf`, like conn_tls_peer_cert_pem:
 returns its length without the NUL (0 when the peer sent no certificate or the subject
 has no such field) and writes it, NUL-terminated, only when `len` is larger. For
 Valkey's tls-auth-clients-user (the CN names the user). Returns CONN_TLS_EINVAL for a
 NULL handle or name, an unknown field name, or a NULL `buf` with `len` > 0.
 */
ssize_t conn_tls_peer_cert_field(conn_tls *c, const char *name, char *buf, size_t len);

/*
 The negotiated protocol ("TLSv1.2", "TLSv1.3"); "" before the handshake is done or for
 NULL. Static string. Does not change the connection.
 */
const char *conn_tls_protocol(const conn_tls *c);

/*
 The negotiated cipher's OpenSSL name (e.g. "TLS_AES_128_GCM_SHA256"); "" before the
 handshake or for NULL. Static string. Does not change the connection.
 */
const char *conn_tls_cipher(const conn_tls *c);

/*
 1 when the handshake resumed an earlier session, else 0 (also for NULL).
 */
int conn_tls_session_reused(const conn_tls *c);

/*
 Builds a context from `cfg`: reads every file the options name and checks them all.

 Ownership: `cfg` stays the caller's (it may be freed right after); the caller owns the
 result and frees it with conn_tls_ctx_free.
 Threads: a context may be used from any number of threads at once.
 Returns NULL on failure, with a message in `err` naming the file or option and the
 reason (missing, unreadable, not PEM, wrong or missing passphrase, key does not match
 the certificate, no CA while auth-clients is yes/optional, no usable cipher...).
 A context without cert-file/key-file makes client connections only.
 */
conn_tls_ctx *conn_tls_ctx_new(const conn_tls_config *cfg, char *err, size_t errlen);

/*
 Builds a new generation from `cfg` and, once it is complete and checked, swaps it in
 atomically.

 Threads: safe while other threads create connections and run handshakes and IO on any
 connection; concurrent reloads are serialized. Connections created after the call
 returns use the new settings; older ones keep theirs until freed. Sessions issued
 before the reload still resume after it unless the trust settings (ca-cert-file,
 ca-cert-dir, auth-clients) changed.
 Returns CONN_TLS_OK; CONN_TLS_ERR with a message (as conn_tls_ctx_new's) when the new
 settings do not build, and then nothing changes; CONN_TLS_EINVAL for NULL arguments.
 */
int conn_tls_ctx_reload(conn_tls_ctx *ctx, const conn_tls_config *cfg, char *err, size_t errlen);

/*
 Like conn_tls_ctx_reload, but only when an option or the content of a file named by the
 options changed since the live generation was built.

 Threads: meant to be called from a background thread on a timer.
 Returns 1 when it swapped in a new generation, 0 when nothing changed, or a negative
 code (CONN_TLS_ERR with a message, CONN_TLS_EINVAL) when it failed; then nothing changes.
 */
int conn_tls_ctx_reload_if_changed(conn_tls_ctx *ctx, const conn_tls_config *cfg, char *err, size_t errlen);

/*
 The live generation: 1 after conn_tls_ctx_new, one more per successful reload.
 Returns 0 for NULL. Does not change the context.
 */
uint64_t conn_tls_ctx_generation(const conn_tls_ctx *ctx);

/*
 Frees a context. NULL is accepted. Connections made from it may still be live: they
 keep working and are freed normally with conn_tls_free.
 */
void conn_tls_ctx_free(conn_tls_ctx *ctx);

/*
 Facts about the certificates of the live generation, for INFO-style monitoring
 (Valkey's tls_*_cert_expire_time and tls_*_cert_serial): `which` is CONN_TLS_CERT_SERVER,
 CONN_TLS_CERT_CLIENT or CONN_TLS_CERT_CA.

 On success writes `*count` (how many certificates; 0 when none is configured),
 `*not_after` (the earliest expiry among them, seconds since the epoch; 0 when none) and
 the serial number of the one expiring first, upper-case hex, into `serial` like
 snprintf; returns the serial's length without the NUL. Returns CONN_TLS_EINVAL (nothing
 written) for a NULL ctx, not_after or count, an unknown `which`, or a NULL `serial` with
 `serial_len` > 0. Threads: any; does not change the context.
 */
ssize_t conn_tls_ctx_cert_info(const conn_tls_ctx *ctx, int which, int64_t *not_after, size_t *count, char *serial, size_t serial_len);

/*
 The library's version, "MAJOR.MINOR.PATCH" (the same as CONN_TLS_VERSION in this
 header when the header matches the library). Static; never freed.
 */
const char *conn_tls_version(void);

/*
 Sends the library's log messages to `cb` (NULL: drop them; the default). Levels follow
 syslog: 3 error, 4 warning, 6 info, 7 debug. `cb` may be called from any thread that
 calls into the library, with `ud` as given; `msg` is valid only during the call. The
 library never prints to stdout or stderr.
 */
void conn_tls_set_log(conn_tls_log_callback cb, void *ud);

/*
 Starts a handshake pool for servers without IO threads of their own: `threads` worker
 threads drive submitted handshakes to completion, each waiting on the connections' fds
 itself. At most `max_inflight` connections are inside the pool at once (submitted and
 not yet collected); a handshake not done within `timeout_ms` fails ("handshake timed
 out"), so a peer that stalls cannot hold a slot.

 Ownership: the caller owns the pool and frees it with conn_tls_pool_free.
 Threads: submit, collect and fd may be called from any thread.
 Returns NULL when an argument is 0 or the threads cannot start (the reason goes to the
 log callback).
 */
conn_tls_pool *conn_tls_pool_new(unsigned int threads, unsigned int max_inflight, unsigned int timeout_ms);

/*
 Hands connection `c` (made by conn_tls_new_server or conn_tls_new_client, handshake not
 done) to the pool, tagged with `user`.

 Ownership: on CONN_TLS_OK the pool owns `c` until conn_tls_pool_collect gives it back;
 do not use it meanwhile. On any other return the caller still owns `c`.
 Returns CONN_TLS_OK; CONN_TLS_BUSY when max_inflight connections are inside (nothing
 taken: retry after collecting, or refuse the client); CONN_TLS_EINVAL for NULL.
 */
int conn_tls_pool_submit(conn_tls_pool *pool, conn_tls *c, void *user);

/*
 A file descriptor that is readable while finished connections wait to be collected:
 watch it for reading in the caller's event loop. It belongs to the pool (do not close
 or read it). Returns -1 for NULL. Does not change the pool.
 */
int conn_tls_pool_fd(const conn_tls_pool *pool);

/*
 Takes one finished connection out of the pool.

 Returns 1 and writes the connection to `*c`, its `user` tag to `*user` and its
 handshake status to `*status` (CONN_TLS_OK, or CONN_TLS_ERR with the reason in
 conn_tls_last_error(*c), e.g. "handshake timed out"); the caller owns `*c` again.
 Returns 0 when none waits (outputs untouched), CONN_TLS_EINVAL for a NULL argument.
 */
int conn_tls_pool_collect(conn_tls_pool *pool, conn_tls **c, void **user, int *status);

/*
 Stops the pool's threads and frees it; NULL is accepted. Connections still inside
 (not collected) are freed; their fds stay open and remain the caller's. Blocks until
 the threads have stopped (at most one handshake step each).
 */
void conn_tls_pool_free(conn_tls_pool *pool);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* CONNTLS_H */
