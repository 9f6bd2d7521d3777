#ifndef TLS_H
#define TLS_H

/* memcached's TLS interface on libconntls (contrib/memcached): memcached 1.6.38's tls.h,
 * which memcached-1.6.18.patch gives 1.6.18 too, plus ssl_pending and ssl_attach. */

/* What a listener asks of its clients' certificates (conn->ssl_enabled). 1.6.18 has only
 * DISABLED and DEFAULT (its ssl_enabled is a bool); 1.6.38's btls: and mtls: listeners
 * add NOPEER and PEER. */
#define MC_SSL_DISABLED 0
#define MC_SSL_ENABLED_DEFAULT 1
#define MC_SSL_ENABLED_NOPEER 2
#define MC_SSL_ENABLED_PEER 3

/* What ssl_accept returns for a connection whose handshake runs on conntls's pool: the
 * acceptor does not dispatch it; ssl_attach's event does once the handshake is done. */
#define SSL_HANDSHAKE_POOLED ((void *)1)

#ifdef TLS
void *ssl_accept(conn *c, int sfd, bool *fail);
int ssl_init(void);
/* Starts the handshake pool and collects its finished handshakes on `base`, the main
 * thread's event loop (after ssl_init, before the loop runs). */
void ssl_attach(struct event_base *base);
void ssl_init_conn(conn *c, void *ssl);
void ssl_conn_close(void *ssl_in);
/* True while decrypted bytes wait in the connection: read them before waiting on the fd,
 * which will not become readable for them. */
bool ssl_pending(conn *c);
bool refresh_certs(char **errmsg);
const char *ssl_proto_text(int version);
#if CONNTLS_MEMCACHED_VERSION >= 10638
const unsigned char *ssl_get_peer_cn(conn *c, int *len);
void ssl_init_settings(void);
void ssl_help(void);
bool ssl_set_verify_mode(int verify);
bool ssl_set_min_version(int version);
#endif
#else
#define ssl_init(void)
#define ssl_init_conn(c, ssl)
#define ssl_init_settings(void)
#define ssl_conn_close(ssl)
#define ssl_accept(c, sfd, fail) NULL
#define ssl_attach(base)
#define ssl_pending(c) false
#define ssl_help()
#endif

#endif
