/*
 * conntls: TLS connections for C servers, over the system OpenSSL 3.
 *
 * Link with `pkg-config --cflags --libs conntls` (libconntls.so.0), or with
 * `pkg-config --cflags --libs conntls-static` (libconntls.a by its path: with the .so
 * installed too, `-lconntls` would take the .so, even under `pkg-config --static`).
 *
 * Conventions every function follows:
 *  - Status codes (the enum conn_tls_status; functions take and return them as int):
 *    CONN_TLS_OK 0, CONN_TLS_ERR -1 (fatal for the connection; conn_tls_last_error says
 *    why), CONN_TLS_WANT_READ -2 / CONN_TLS_WANT_WRITE -3 (nothing done; call again when
 *    the fd is readable / writable), CONN_TLS_EINVAL -4 (bad argument; nothing changed),
 *    CONN_TLS_BUSY -5 (the handshake pool is full). Functions returning ssize_t return a
 *    count >= 0 or one of these. The values are fixed and never reused;
 *    conn_tls_status_name names them.
 *  - Every call that fails (a NULL from a constructor, ERR, EINVAL or BUSY) also leaves
 *    its status and message for the calling thread: conn_tls_thread_last_status and
 *    conn_tls_thread_last_error, read right after the call (for bindings above all).
 *  - Threads: a conn_tls_ctx and a conn_tls_config may be used from any number of threads
 *    at once. A conn_tls is used by one thread at a time, but any thread: the caller's own
 *    hand-off (a mutex, a queue) is all the synchronisation needed.
 *  - fork: a child forked while other threads run conntls calls (a BGSAVE child, a
 *    worker process) can use and free every object it inherited, without deadlock: no
 *    lock, the library's or OpenSSL's, is held across a fork (a fork waits until the
 *    conn_tls_* calls in progress on other threads, a reload included, are out of
 *    OpenSSL; not for a call waiting on a blocking socket, nor for a log callback, which
 *    runs after the call's work). Only a conn_tls_pool is the parent's: its threads are
 *    not in the child, so there submit and collect give CONN_TLS_EINVAL,
 *    conn_tls_pool_fd -1, and conn_tls_pool_free returns without joining; a connection
 *    that was inside the pool at the fork stays with it (its conn_tls_free is accepted
 *    and frees nothing in the child).
 *  - The calling thread's OpenSSL error queue: no call leaves an error of its own there,
 *    and none lets an error queued before it change its result (errors never leak from
 *    one connection to another). Every call but the data path's (read, write, writev,
 *    flush, pending_read, pending_write) also leaves it empty; those, for speed, empty
 *    it only before an OpenSSL call whose result depends on it, so an error the caller
 *    queued itself may still be there after them.
 *  - No call aborts, prints, installs signal handlers, raises SIGPIPE, blocks on a
 *    non-blocking fd or closes the caller's fd.
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

#define CONN_TLS_VERSION "0.2.0"
#define CONN_TLS_VERSION_MAJOR 0
#define CONN_TLS_VERSION_MINOR 2
#define CONN_TLS_VERSION_PATCH 0


/*
 Status codes (conn_tls_status). Functions return them as int; functions returning
 ssize_t return a count >= 0 or one of them. The values are fixed and never reused.
 (An enum, so that every binding generator sees one signed type for all of them.)
 */
typedef enum {
  /*
   Done.
   */
  CONN_TLS_OK = 0,
  /*
   Failed: fatal for the connection; conn_tls_last_error (or the err buffer, or
   conn_tls_thread_last_error) says why.
   */
  CONN_TLS_ERR = -1,
  /*
   Nothing done; call again when the fd is readable.
   */
  CONN_TLS_WANT_READ = -2,
  /*
   Nothing done; call again when the fd is writable.
   */
  CONN_TLS_WANT_WRITE = -3,
  /*
   A bad argument (NULL handle, bad iov, unknown option...); nothing changed.
   */
  CONN_TLS_EINVAL = -4,
  /*
   The handshake pool is full: nothing was taken; try again later (or close).
   */
  CONN_TLS_BUSY = -5,
} conn_tls_status;

/*
 Which certificates conn_tls_ctx_cert_info describes (conn_tls_cert_kind; passed as int).
 */
typedef enum {
  /*
   The server's own certificate (cert-file).
   */
  CONN_TLS_CERT_SERVER = 0,
  /*
   The certificate client connections present (client-cert-file, else cert-file).
   */
  CONN_TLS_CERT_CLIENT = 1,
  /*
   The trusted CA certificates (ca-cert-file and ca-cert-dir).
   */
  CONN_TLS_CERT_CA = 2,
} conn_tls_cert_kind;

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
 ciphersuites, groups (key-exchange groups in SSL_CTX_set1_groups_list's syntax, e.g.
 "X25519MLKEM768:X25519:P-256"; unset: OpenSSL's default, which on OpenSSL 3.5+ prefers
 the hybrid post-quantum X25519MLKEM768), prefer-server-ciphers, session-caching,
 session-cache-size, session-cache-timeout, auth-clients (no/yes/optional; default yes),
 verify-server-name (yes/no; default yes: client connections check the certificate
 against their server_name; no: it is only sent as SNI), tcp-user-timeout (ms,
 TCP_USER_TIMEOUT on every new connection) and tcp-keepalive (s: probes after that many
 idle seconds, then every third of it, three of them; see conn_tls_set_keepalive for how
 it and the user timeout combine), and release-buffers (yes/no; default yes: a
 connection gives its OpenSSL record buffers back whenever they are empty, about 11 KB
 less per idle client; no keeps them, about 3% fewer instructions per small request).
 An empty value unsets a file, passphrase or cipher option.

 Values are bytes: file options (cert-file, ca-cert-dir...) are paths and take any bytes
 but NUL, as Linux does, and so do passphrases; every other option is text and must be
 UTF-8.

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
 Returns NULL when `ctx` is NULL, `fd` is negative or not an open stream socket, the
 context has no cert-file/key-file, the context's tcp-user-timeout / tcp-keepalive cannot
 be set on `fd`, or memory runs out. The reason is recorded for the thread
 (conn_tls_thread_last_status: CONN_TLS_EINVAL for a bad argument, CONN_TLS_ERR
 otherwise; conn_tls_thread_last_error: the message) and logged as a warning.
 */
conn_tls *conn_tls_new_server(conn_tls_ctx *ctx, int fd);

/*
 Makes a client-side connection on `fd`, a connected (or connecting) non-blocking stream
 socket. The peer's chain is always verified against ca-cert-file / ca-cert-dir (the
 system's trust store when neither is set). `server_name` (copied) is sent as SNI and
 the certificate must match it (an IP address is matched against the certificate's IP
 entries and not sent as SNI); NULL sends no SNI and checks the chain only. With the
 context option verify-server-name no, server_name is only sent as SNI (what Valkey's
 replication and cluster links do) and the chain alone is checked.

 Resumption: the context keeps the newest session it got for each server_name (NULL
 counts as one name) and offers it here.

 Liveness defaults for client connections on TCP sockets, where the context options do
 not set them: keepalive after 15 s idle (probes every 5 s, 3 of them) and
 TCP_USER_TIMEOUT 30000 ms. The user timeout also fails a server that is alive but does
 not read for 30 s; raise it with conn_tls_set_user_timeout for peers that may
 legitimately stall longer, or set 0 to turn it off. This default user timeout follows
 keepalive the caller chooses (the tcp-keepalive option, conn_tls_set_keepalive), so
 that keepalive keeps its promise (see conn_tls_set_keepalive).

 Ownership, threads as conn_tls_new_server.
 Returns NULL when `ctx` is NULL, `fd` is negative or not an open stream socket,
 `server_name` is not UTF-8 or not a usable host name, a socket option cannot be set on
 `fd` (TCP_USER_TIMEOUT, keepalive), or memory runs out. The reason is recorded for the
 thread and logged, as for conn_tls_new_server.
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
 A server connection whose client closed its side before the server's first flight
 (a client that gave up while its connection waited to be accepted) fails at once with
 CONN_TLS_ERR, "the client closed the connection before its handshake began", without
 the key exchange or signature being computed: such a client can never finish.
 */
int conn_tls_handshake(conn_tls *c);

/*
 Reads decrypted bytes into `buf` (at most `len`; a `len` above INT_MAX reads at most
 INT_MAX bytes, as read(2) clamps). Drives the handshake first if it is not done.

 Returns the number of bytes read (> 0); 0 when the peer closed the stream (close_notify
 or EOF); CONN_TLS_WANT_READ / CONN_TLS_WANT_WRITE; CONN_TLS_ERR; CONN_TLS_EINVAL for a
 NULL handle, a NULL `buf` or `len` 0. When conn_tls_pending_read(c) > 0 afterwards,
 decrypted bytes wait: read again without waiting for the fd. A read may make the
 library send (a KeyUpdate answer): when conn_tls_pending_write(c) > 0, keep write
 interest.
 */
ssize_t conn_tls_read(conn_tls *c, void *buf, size_t len);

/*
 conn_tls_writev with one buffer. `buf` may be NULL when `len` is 0. A `len` above
 SSIZE_MAX is CONN_TLS_EINVAL, as writev(2) refuses it: nothing is read or written.
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
 what writev(2) refuses: iovcnt < 0 or > IOV_MAX, a NULL iov with iovcnt > 0, an entry
 with a NULL base and a non-zero length, an entry longer than SSIZE_MAX, or lengths
 adding up to more than SSIZE_MAX; nothing was read from the buffers, written or
 flushed.

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

 A connection inside a handshake pool (submitted, not yet collected) is not freed under
 the pool's thread: its handshake is stopped and conn_tls_pool_collect frees it, giving
 back its `user` tag with `*c` NULL; only then is its fd no longer used, and may be closed.
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
 A user timeout set here (or by the tcp-user-timeout option) is the caller's: keepalive
 set later does not change it, and on Linux it also decides when keepalive gives up
 (see conn_tls_set_keepalive).
 Returns CONN_TLS_OK, or CONN_TLS_EINVAL (NULL, a socket that is not TCP, a value the
 kernel refuses) with the reason in conn_tls_last_error.
 */
int conn_tls_set_user_timeout(conn_tls *c, unsigned int ms);

/*
 Sets TCP keepalive on the connection's socket, overriding the context's default: after
 `idle_s` idle seconds, `count` probes `interval_s` seconds apart; with none answered the
 next call returns CONN_TLS_ERR ("peer timed out"). It does not help while sent data is
 unacknowledged (that is conn_tls_set_user_timeout's job). `idle_s` 0 turns keepalive
 off.

 On Linux, once a TCP_USER_TIMEOUT is set, it and not `count` decides when keepalive
 gives up. So:
  - with the library's default user timeout (client connections), the user timeout is
    moved to match: idle_s + interval_s * (count - 1/2) seconds, which ends the
    connection at the tick of the last unanswered probe. An idle dead peer is found
    within idle_s + interval_s * count seconds (gRPC's rule: user timeout = keepalive
    timeout). Turning keepalive off restores the default 30000 ms;
  - with no user timeout (server connections by default), `count` decides, with the
    same bound;
  - with a user timeout the caller set (conn_tls_set_user_timeout, the tcp-user-timeout
    option), the caller's wins: keepalive gives up at the first probe tick at or after
    that timeout, i.e. after max(timeout, idle_s + interval_s) seconds or up to one
    interval later.

 Returns CONN_TLS_OK, or CONN_TLS_EINVAL (NULL, a non-TCP socket, a zero interval or
 count) with the reason in conn_tls_last_error.
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
 Copies entry `index` (from 0) of the peer certificate's subject alternative names of
 type `san_type` ("URI", "DNS" or "email", any case) into `buf`, like conn_tls_peer_cert_pem:
 returns its length without the NUL and writes it, NUL-terminated, only when `len` is
 larger; returns 0 and writes nothing into `buf` when there is no entry `index`. `*count`
 gets how many entries of that type there are (0 when the peer sent no certificate) unless
 `count` is NULL. The bytes are the certificate's: an embedded NUL is copied as is, so
 compare the returned length, not strlen (Valkey's tls-auth-clients-user uri refuses such
 an entry). Returns CONN_TLS_EINVAL (nothing written) for a NULL handle or san_type, an
 unknown type, or a NULL `buf` with `len` > 0.
 */
ssize_t conn_tls_peer_cert_san(conn_tls *c, const char *san_type, size_t index, size_t *count, char *buf, size_t len);

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
 The key-exchange group the handshake used, as OpenSSL names it ("X25519", "secp256r1",
 "X25519MLKEM768" for the hybrid post-quantum group on OpenSSL 3.5+); "" before the
 handshake is done, when no key exchange took place, or for NULL. Static string. Does
 not change the connection.
 */
const char *conn_tls_group(const conn_tls *c);

/*
 1 when the handshake resumed an earlier session, else 0 (also for NULL).
 */
int conn_tls_session_reused(const conn_tls *c);

/*
 Builds a context from `cfg`: reads every file the options name and checks them all.

 Ownership: `cfg` stays the caller's (it may be freed right after); the caller owns the
 result and frees it with conn_tls_ctx_free.
 Threads: a context may be used from any number of threads at once.
 Files: every file option must name a regular file (ca-cert-dir a directory, of which
 the regular files are read). Anything else (a FIFO, a device such as /dev/zero, a
 socket, a directory) is refused at once, without blocking. A file may hold at most
 8 MiB, and the files of ca-cert-dir 64 MiB together.
 Returns NULL on failure (a NULL cfg, or memory running out, too), with a message in
 `err` naming the file or option and the reason (missing, unreadable, not a regular
 file, too large, not PEM, wrong or missing passphrase, key does not match the
 certificate, a certificate outside its validity period or whose validity cannot be
 read, no CA while auth-clients is yes, no usable cipher, a group this
 OpenSSL does not know...). The same status and message are recorded for the thread
 (conn_tls_thread_last_status: CONN_TLS_EINVAL for a NULL cfg, else CONN_TLS_ERR).
 A context without cert-file/key-file makes client connections only. With
 auth-clients optional and no CA, clients without a certificate connect and a
 certificate a client presents fails its verification (as with an empty trust store:
 what Valkey and Redis do after CONFIG SET tls-auth-clients optional with no CA).
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
 The OpenSSL the library runs on, as OpenSSL names itself (e.g. "OpenSSL 3.0.19 27 Jan
 2026"): the system's libssl, or the one linked into the library. Static; never freed.
 */
const char *conn_tls_openssl_version(void);

/*
 Sends the library's log messages to `cb` (NULL: drop them; the default). Levels follow
 syslog: 3 error, 4 warning, 6 info, 7 debug. The library never prints to stdout or
 stderr.

 Threads: `cb` runs, with `ud` as given, on whichever thread the library logs from:
 any thread in a conn_tls_* call (at the end of the call that logged, once the library
 is out of OpenSSL and its locks, so `cb` may fork or wait for a thread that forks),
 and the handshake pool's own worker threads (named conntls-hs-N), so it must be
 thread-safe. `msg` is valid only during the call.
 Messages the library would log while `cb` itself is running on the same thread (`cb`
 calling into the library) are dropped, never delivered re-entrantly.

 Lifetime: once conn_tls_set_log returns, the previous callback is not running on any
 thread (the call waits for calls of it in progress to finish) and is never called
 again, so its `ud` may be freed. Called from inside the callback itself, it does not
 wait for that one call (the caller's own), only for calls on other threads.
 */
void conn_tls_set_log(conn_tls_log_callback cb, void *ud);

/*
 The name of a status code, e.g. "CONN_TLS_WANT_READ" for CONN_TLS_WANT_READ, so
 bindings and messages need not copy the table; "unknown status" for any other value.
 Static string; never NULL. Threads: any.
 */
const char *conn_tls_status_name(int status);

/*
 The status of the most recent call on the calling thread that failed: CONN_TLS_ERR,
 CONN_TLS_EINVAL or CONN_TLS_BUSY, whatever the call returned it as (a NULL from a
 constructor, a status, a negative count); CONN_TLS_OK when no call on this thread has
 failed yet. WANT_READ / WANT_WRITE are not failures and leave it alone, and so do calls
 that succeed: read it right after the call that failed.
 For bindings, which must turn a NULL from conn_tls_new_server, conn_tls_new_client,
 conn_tls_ctx_new or conn_tls_pool_new into an error with a message.
 */
int conn_tls_thread_last_status(void);

/*
 The message of that failure (as conn_tls_last_error's, or the err buffer's, for the
 calls that have those); "" when none. Never NULL. The string belongs to the calling
 thread and stays valid until the next failing call on that thread.
 */
const char *conn_tls_thread_last_error(void);

/*
 Starts a handshake pool for servers without IO threads of their own: `threads` worker
 threads drive submitted handshakes to completion, each waiting on the connections' fds
 itself. At most `max_inflight` connections are inside the pool at once (submitted and
 not yet collected); a handshake not done within `timeout_ms` fails ("handshake timed
 out"), so a peer that stalls cannot hold a slot.

 Ownership: the caller owns the pool and frees it with conn_tls_pool_free.
 Threads: submit, collect and fd may be called from any thread.
 Returns NULL when an argument is 0 (CONN_TLS_EINVAL) or a worker cannot start (its
 thread, its poller or its eventfd: CONN_TLS_ERR, and no thread is left running); the
 reason is recorded for the thread (conn_tls_thread_last_error) and logged.
 */
conn_tls_pool *conn_tls_pool_new(unsigned int threads, unsigned int max_inflight, unsigned int timeout_ms);

/*
 Hands connection `c` (made by conn_tls_new_server or conn_tls_new_client, handshake not
 done) to the pool, tagged with `user`.

 Ownership: on CONN_TLS_OK the pool owns `c` until conn_tls_pool_collect gives it back;
 do not use it meanwhile. On CONN_TLS_BUSY, or CONN_TLS_EINVAL for NULL, the caller
 still owns `c`.
 Returns CONN_TLS_OK; CONN_TLS_BUSY when max_inflight connections are inside (nothing
 taken: retry after collecting, or refuse the client); CONN_TLS_EINVAL for NULL, and
 for a connection already inside a pool (submitted again before it was collected:
 an event loop that still watches its fd), which changes nothing: the pool keeps it;
 and CONN_TLS_EINVAL for a connection whose fd is the fd of another connection inside
 this pool (nothing taken: two handshakes cannot share one socket), and in a forked
 child (nothing taken: the pool's threads are the parent's).

 While a connection is inside, every other conn_tls_* call on it is refused with
 CONN_TLS_EINVAL ("the connection is inside a handshake pool ...") and changes nothing;
 the calls that return a value rather than a status answer as for NULL (0, ""). Its
 conn_tls_free is deferred to the collection (see conn_tls_pool_collect).
 */
int conn_tls_pool_submit(conn_tls_pool *pool, conn_tls *c, void *user);

/*
 A file descriptor that is readable exactly while finished connections wait to be
 collected (an event loop woken by it always finds one; after the last is collected it
 is no longer readable):
 watch it for reading in the caller's event loop. It belongs to the pool (do not close
 or read it). Returns -1 for NULL, and in a forked child. Does not change the pool.
 */
int conn_tls_pool_fd(const conn_tls_pool *pool);

/*
 Takes one finished connection out of the pool.

 Returns 1 and writes the connection to `*c`, its `user` tag to `*user` and its
 handshake status to `*status` (CONN_TLS_OK, or CONN_TLS_ERR with the reason in
 conn_tls_last_error(*c), e.g. "handshake timed out"); the caller owns `*c` again.
 A connection given to conn_tls_free while inside comes back freed: `*c` NULL,
 `*status` CONN_TLS_EINVAL, `*user` its tag, whether its handshake had ended or not;
 the library no longer uses its fd.
 Returns 0 when none waits (outputs untouched), CONN_TLS_EINVAL for a NULL argument
 and in a forked child (the pool's threads are the parent's).
 */
int conn_tls_pool_collect(conn_tls_pool *pool, conn_tls **c, void **user, int *status);

/*
 Stops the pool's threads and frees it; NULL is accepted. Connections still inside
 (not collected) are freed; their fds stay open and remain the caller's. Blocks until
 the threads have stopped (at most one handshake step each). In a forked child it
 returns at once and frees nothing that the parent's threads held.
 */
void conn_tls_pool_free(conn_tls_pool *pool);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* CONNTLS_H */
