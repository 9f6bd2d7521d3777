/* libFuzzer harness: configuration strings and files, contexts and reloads.
 *
 * Input: up to five parts separated by NUL bytes. Part 0 is a script, one command per
 * line: `name=value` sets an option; `!new` builds a context (again: frees the old one);
 * `!reload` / `!changed` reload it (conn_tls_ctx_reload / _if_changed); `!swap` rewrites
 * file $1 with the contents of $2; `!conn` makes a server and a client connection from
 * the context. Parts 1-4 are the contents of files $1..$4 (truncated PEM, garbage...).
 * Values of file options are mapped into a scratch directory, so the fuzzer can use any
 * bytes without reaching the rest of the system: $1..$4, @dir (a directory holding $1
 * and $2), @fifo, @zero (/dev/zero), @null (/dev/null), @cert:NAME (a real certificate or
 * key from CONNTLS_CERTS), or anything else, which becomes a file name in the scratch
 * directory (usually missing).
 *
 * Checked: every return value is a documented one; err buffers are NUL-terminated inside
 * errlen and never written past it; failures are recorded for the thread with the same
 * message; generations grow by exactly one per successful reload; nothing blocks (the
 * FIFO and /dev/zero are refused at once); the error queue stays empty. */
#include <sys/stat.h>

#include "fuzz.h"

static char scratch[256];
static const char *file_options[] = {"cert-file", "key-file", "client-cert-file", "client-key-file",
                                     "ca-cert-file", "ca-cert-dir", "dh-params-file", NULL};

static void write_file(const char *path, const uint8_t *data, size_t len) {
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    EXPECT(fd >= 0);
    EXPECT(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

static void setup(void) {
    if (scratch[0]) return;
    snprintf(scratch, sizeof scratch, "/tmp/conntls-fuzz-config.%d", (int)getpid());
    mkdir(scratch, 0700);
    char p[512];
    snprintf(p, sizeof p, "%s/dir", scratch);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/fifo", scratch);
    unlink(p);
    EXPECT(mkfifo(p, 0600) == 0);
}

static int is_file_option(const char *name) {
    for (const char *const *o = file_options; *o; o++)
        if (strcmp(name, *o) == 0) return 1;
    return 0;
}

/* Where a file option's value points, inside the scratch directory. */
static void map_path(const char *value, char *out, size_t len) {
    if (value[0] == '$' && value[1] >= '1' && value[1] <= '4' && value[2] == 0)
        snprintf(out, len, "%s/f%c", scratch, value[1]);
    else if (strcmp(value, "@dir") == 0)
        snprintf(out, len, "%s/dir", scratch);
    else if (strcmp(value, "@fifo") == 0)
        snprintf(out, len, "%s/fifo", scratch);
    else if (strcmp(value, "@zero") == 0)
        snprintf(out, len, "/dev/zero");
    else if (strcmp(value, "@null") == 0)
        snprintf(out, len, "/dev/null");
    else if (strncmp(value, "@cert:", 6) == 0 && !strchr(value + 6, '/'))
        snprintf(out, len, "%s", cert_path(value + 6));
    else if (value[0] == 0)
        out[0] = 0;
    else {
        size_t n = (size_t)snprintf(out, len, "%s/n-", scratch);
        for (const char *v = value; *v && n + 1 < len; v++) out[n++] = *v == '/' ? '_' : *v;
        out[n] = 0;
    }
}

static void check_failure(int status, const errbuf *e) {
    errbuf_check(e);
    EXPECT(conn_tls_thread_last_status() == status);
    const char *msg = conn_tls_thread_last_error();
    EXPECT(msg && msg[0]);
    /* The err buffer holds the start of the thread's message. */
    if (e->len > 0) EXPECT(strncmp(e->bytes, msg, strlen(e->bytes)) == 0);
}

static void check_context(conn_tls_ctx *ctx) {
    for (int kind = CONN_TLS_CERT_SERVER; kind <= CONN_TLS_CERT_CA; kind++) {
        int64_t not_after = -7;
        size_t count = 99999;
        char serial[80];
        ssize_t n = conn_tls_ctx_cert_info(ctx, kind, &not_after, &count, serial, sizeof serial);
        EXPECT(n >= 0 && (size_t)n < sizeof serial && serial[n] == 0);
        EXPECT(count < 10000 && (count == 0) == (not_after == 0));
    }
    int64_t t;
    size_t c;
    EXPECT(conn_tls_ctx_cert_info(ctx, 3, &t, &c, NULL, 0) == CONN_TLS_EINVAL);
}

static void connections(conn_tls_ctx *ctx) {
    int sv[2];
    nonblocking_pair(sv);
    conn_tls *s = conn_tls_new_server(ctx, sv[0]);
    conn_tls *c = conn_tls_new_client(ctx, sv[1], "localhost");
    if (!s) EXPECT(conn_tls_thread_last_status() == CONN_TLS_EINVAL || conn_tls_thread_last_status() == CONN_TLS_ERR);
    if (s && c) {
        int r = handshake_pair(s, c);
        EXPECT(r == 0 || r == -1);
        EXPECT(conn_tls_generation(s) == conn_tls_ctx_generation(ctx) || conn_tls_generation(s) < conn_tls_ctx_generation(ctx));
    }
    conn_tls_free(s);
    conn_tls_free(c);
    close(sv[0]);
    close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    /* Split into parts at NUL bytes. */
    const uint8_t *part[5] = {data, NULL, NULL, NULL, NULL};
    size_t plen[5] = {size, 0, 0, 0, 0};
    for (int i = 0, k = 0; i < 4; i++) {
        const uint8_t *z = memchr(part[k], 0, plen[k]);
        if (!z) break;
        size_t used = (size_t)(z - part[k]);
        part[k + 1] = z + 1;
        plen[k + 1] = plen[k] - used - 1;
        plen[k] = used;
        k++;
    }
    char path[512];
    for (int i = 1; i <= 4; i++) {
        snprintf(path, sizeof path, "%s/f%d", scratch, i);
        write_file(path, part[i] ? part[i] : (const uint8_t *)"", part[i] ? plen[i] : 0);
    }
    for (int i = 1; i <= 2; i++) {
        snprintf(path, sizeof path, "%s/dir/ca%d.pem", scratch, i);
        write_file(path, part[i] ? part[i] : (const uint8_t *)"", part[i] ? plen[i] : 0);
    }

    char *script = malloc(plen[0] + 1);
    EXPECT(script);
    memcpy(script, part[0], plen[0]);
    script[plen[0]] = 0;
    size_t errlen = size % 300;
    conn_tls_config *cfg = conn_tls_config_new();
    EXPECT(cfg);
    conn_tls_ctx *ctx = NULL;
    uint64_t generation = 0;
    char *save = NULL;
    for (char *line = strtok_r(script, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        errbuf e;
        errbuf_init(&e, errlen);
        char *eq = strchr(line, '=');
        if (line[0] != '!' && eq) {
            *eq = 0;
            const char *name = line, *value = eq + 1;
            char mapped[512];
            if (is_file_option(name)) {
                map_path(value, mapped, sizeof mapped);
                value = mapped;
            }
            int r = conn_tls_config_set(cfg, name, value, e.len ? e.bytes : NULL, e.len);
            EXPECT(r == CONN_TLS_OK || r == CONN_TLS_EINVAL);
            if (r == CONN_TLS_EINVAL) check_failure(r, &e);
            else errbuf_check(&e);
        } else if (strcmp(line, "!new") == 0) {
            conn_tls_ctx_free(ctx);
            ctx = conn_tls_ctx_new(cfg, e.len ? e.bytes : NULL, e.len);
            if (ctx) {
                errbuf_check(&e);
                EXPECT(conn_tls_ctx_generation(ctx) == 1);
                generation = 1;
                check_context(ctx);
            } else {
                check_failure(CONN_TLS_ERR, &e);
            }
        } else if (ctx && (strcmp(line, "!reload") == 0 || strcmp(line, "!changed") == 0)) {
            int changed = line[1] == 'c';
            int r = changed ? conn_tls_ctx_reload_if_changed(ctx, cfg, e.len ? e.bytes : NULL, e.len)
                            : conn_tls_ctx_reload(ctx, cfg, e.len ? e.bytes : NULL, e.len);
            if (changed) EXPECT(r == 0 || r == 1 || r == CONN_TLS_ERR);
            else EXPECT(r == CONN_TLS_OK || r == CONN_TLS_ERR);
            if (r == CONN_TLS_ERR) check_failure(r, &e);
            else errbuf_check(&e);
            if (r == 1 || (!changed && r == CONN_TLS_OK)) generation++;
            EXPECT(conn_tls_ctx_generation(ctx) == generation);
            check_context(ctx);
        } else if (strcmp(line, "!swap") == 0 && part[2]) {
            snprintf(path, sizeof path, "%s/f1", scratch);
            write_file(path, part[2], plen[2]);
        } else if (ctx && strcmp(line, "!conn") == 0) {
            connections(ctx);
        }
        EXPECT_QUEUE_EMPTY();
    }
    conn_tls_ctx_free(ctx);
    conn_tls_config_free(cfg);
    free(script);
    return 0;
}
