/* LD_PRELOAD shim for benchmarks: every context a conntls server builds or reloads gets
 * release-buffers no (connections keep their OpenSSL record buffers), for servers whose
 * adapter has no option for it. Benchmarks only: it changes the caller's config. */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "conntls.h"

static void keep_buffers(const conn_tls_config *cfg) {
    if (cfg) conn_tls_config_set((conn_tls_config *)cfg, "release-buffers", "no", NULL, 0);
}

conn_tls_ctx *conn_tls_ctx_new(const conn_tls_config *cfg, char *err, size_t errlen) {
    static conn_tls_ctx *(*real)(const conn_tls_config *, char *, size_t);
    if (!real) real = (conn_tls_ctx * (*)(const conn_tls_config *, char *, size_t)) dlsym(RTLD_NEXT, "conn_tls_ctx_new");
    keep_buffers(cfg);
    return real(cfg, err, errlen);
}

int conn_tls_ctx_reload(conn_tls_ctx *ctx, const conn_tls_config *cfg, char *err, size_t errlen) {
    static int (*real)(conn_tls_ctx *, const conn_tls_config *, char *, size_t);
    if (!real) real = (int (*)(conn_tls_ctx *, const conn_tls_config *, char *, size_t))dlsym(RTLD_NEXT, "conn_tls_ctx_reload");
    keep_buffers(cfg);
    return real(ctx, cfg, err, errlen);
}

int conn_tls_ctx_reload_if_changed(conn_tls_ctx *ctx, const conn_tls_config *cfg, char *err, size_t errlen) {
    static int (*real)(conn_tls_ctx *, const conn_tls_config *, char *, size_t);
    if (!real)
        real = (int (*)(conn_tls_ctx *, const conn_tls_config *, char *, size_t))dlsym(RTLD_NEXT, "conn_tls_ctx_reload_if_changed");
    keep_buffers(cfg);
    return real(ctx, cfg, err, errlen);
}
