/* Bad input gets its status code and a message, changes nothing, and never crashes:
 * config errors, every context file error, NULL handles for every function, bad fds and
 * bad iovecs. Run under ASan/UBSan and valgrind too, so leaks on error paths show. */
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testutil.h"

static char err[512];

static void expect_set_error(const char *name, const char *value, const char *needle) {
    conn_tls_config *cfg = conn_tls_config_new();
    err[0] = 0;
    CHECK_EQ(conn_tls_config_set(cfg, name, value, err, sizeof err), CONN_TLS_EINVAL);
    CHECK_CONTAINS(err, needle);
    CHECK_QUEUE_EMPTY();
    conn_tls_config_free(cfg);
}

/* ctx_new on the given options must fail with a message containing each needle. */
static void expect_ctx_error(const char *const *opts, const char *needle1, const char *needle2) {
    conn_tls_config *cfg = conn_tls_config_new();
    for (const char *const *o = opts; *o; o += 2)
        CHECK_EQ(conn_tls_config_set(cfg, o[0], o[1], err, sizeof err), CONN_TLS_OK);
    err[0] = 0;
    CHECK(conn_tls_ctx_new(cfg, err, sizeof err) == NULL);
    CHECK_CONTAINS(err, needle1);
    if (needle2) CHECK_CONTAINS(err, needle2);
    CHECK_QUEUE_EMPTY();
    conn_tls_config_free(cfg);
}

static void config_errors(void) {
    expect_set_error("no-such-option", "1", "no-such-option");
    expect_set_error("session-cache-size", "-5", "session-cache-size");
    expect_set_error("session-cache-size", "12abc", "session-cache-size");
    expect_set_error("tcp-user-timeout", "99999999999", "tcp-user-timeout");
    expect_set_error("prefer-server-ciphers", "maybe", "prefer-server-ciphers");
    expect_set_error("session-caching", "1", "session-caching");
    expect_set_error("auth-clients", "sometimes", "auth-clients");
    expect_set_error("protocols", "TLSv1.2 SSLv3", "SSLv3");

    conn_tls_config *cfg = conn_tls_config_new();
    CHECK_EQ(conn_tls_config_set(NULL, "protocols", "TLSv1.3", err, sizeof err), CONN_TLS_EINVAL);
    CHECK_CONTAINS(err, "NULL");
    CHECK_EQ(conn_tls_config_set(cfg, NULL, "x", err, sizeof err), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_config_set(cfg, "protocols", NULL, err, sizeof err), CONN_TLS_EINVAL);
    CHECK_CONTAINS(err, "protocols");
    /* err may be NULL when errlen is 0; a short buffer is truncated and terminated. */
    CHECK_EQ(conn_tls_config_set(cfg, "bogus", "1", NULL, 0), CONN_TLS_EINVAL);
    char tiny[6];
    memset(tiny, 'x', sizeof tiny);
    CHECK_EQ(conn_tls_config_set(cfg, "bogus", "1", tiny, sizeof tiny), CONN_TLS_EINVAL);
    CHECK_EQ(strlen(tiny), 5);
    /* A rejected value leaves the earlier one: TLSv1.3 only stays in force. */
    CHECK_EQ(conn_tls_config_set(cfg, "protocols", "TLSv1.3", err, sizeof err), CONN_TLS_OK);
    CHECK_EQ(conn_tls_config_set(cfg, "protocols", "TLSv9", err, sizeof err), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_config_set(cfg, "auth-clients", "no", err, sizeof err), CONN_TLS_OK);
    CHECK_EQ(conn_tls_config_set(cfg, "cert-file", cert("server.crt"), err, sizeof err), CONN_TLS_OK);
    CHECK_EQ(conn_tls_config_set(cfg, "key-file", cert("server.key"), err, sizeof err), CONN_TLS_OK);
    conn_tls_ctx *ctx = conn_tls_ctx_new(cfg, err, sizeof err);
    CHECK(ctx != NULL);
    conn_tls_ctx_free(ctx);
    conn_tls_config_free(cfg);
    conn_tls_config_free(NULL);
}

static void context_errors(void) {
    const char *missing[] = {"cert-file", "/nonexistent/server.crt", "key-file", cert("server.key"),
                             "auth-clients", "no", NULL};
    expect_ctx_error(missing, "/nonexistent/server.crt", "missing");

    /* A file that is not PEM at all. */
    char garbage[256];
    snprintf(garbage, sizeof garbage, "%s/garbage.pem", getenv("CONNTLS_TMP") ? getenv("CONNTLS_TMP") : "/tmp");
    FILE *f = fopen(garbage, "w");
    CHECK(f);
    fputs("this is not a certificate\n", f);
    fclose(f);
    const char *not_pem[] = {"cert-file", garbage, "key-file", cert("server.key"), "auth-clients", "no", NULL};
    expect_ctx_error(not_pem, garbage, "not PEM");
    const char *key_not_pem[] = {"cert-file", cert("server.crt"), "key-file", garbage, "auth-clients", "no", NULL};
    expect_ctx_error(key_not_pem, "key-file", "not PEM");
    const char *ca_not_pem[] = {"ca-cert-file", garbage, NULL};
    expect_ctx_error(ca_not_pem, "ca-cert-file", "not PEM");

    /* A directory where a file is expected is refused for what it is. */
    const char *dir_as_file[] = {"cert-file", "/", "key-file", cert("server.key"), "auth-clients", "no", NULL};
    expect_ctx_error(dir_as_file, "cert-file '/'", "not a regular file (it is a directory)");

    const char *wrong_pass[] = {"cert-file", cert("server.crt"), "key-file", cert("server-enc.key"),
                                "key-file-pass", "wrong", "auth-clients", "no", NULL};
    expect_ctx_error(wrong_pass, "server-enc.key", "passphrase");
    const char *no_pass[] = {"cert-file", cert("server.crt"), "key-file", cert("server-enc.key"),
                             "auth-clients", "no", NULL};
    expect_ctx_error(no_pass, "server-enc.key", "passphrase");

    const char *mismatch[] = {"cert-file", cert("server.crt"), "key-file", cert("server2.key"),
                              "auth-clients", "no", NULL};
    expect_ctx_error(mismatch, "does not match", "server2.key");

    const char *no_ca[] = {"cert-file", cert("server.crt"), "key-file", cert("server.key"), NULL};
    expect_ctx_error(no_ca, "auth-clients", "CA");

    /* Certificates outside their validity period are refused up front. */
    const char *expired[] = {"cert-file", cert("expired.crt"), "key-file", cert("server.key"), "auth-clients", "no", NULL};
    expect_ctx_error(expired, "expired.crt", "not valid now (expired)");
    const char *notyet[] = {"cert-file", cert("notyet.crt"), "key-file", cert("server.key"), "auth-clients", "no", NULL};
    expect_ctx_error(notyet, "notyet.crt", "not valid now (not valid yet)");
    const char *expired_client[] = {"client-cert-file", cert("expired.crt"), "client-key-file", cert("server.key"), NULL};
    expect_ctx_error(expired_client, "client-cert-file", "not valid now");
    const char *expired_ca[] = {"ca-cert-file", cert("expired.crt"), NULL};
    expect_ctx_error(expired_ca, "ca-cert-file", "a CA certificate is not valid now");
    /* A validity time OpenSSL parses but cannot read (found by fuzz_config: such a CA was
     * taken, and conn_tls_ctx_cert_info then said one certificate, expiring at 0). */
    const char *badtime[] = {"cert-file", cert("badtime.crt"), "key-file", cert("server.key"), "auth-clients", "no", NULL};
    expect_ctx_error(badtime, "badtime.crt", "not valid now (its validity period cannot be read)");
    const char *badtime_ca[] = {"ca-cert-file", cert("badtime.crt"), NULL};
    expect_ctx_error(badtime_ca, "ca-cert-file", "a CA certificate is not valid now (its validity period cannot be read)");

    const char *half[] = {"cert-file", cert("server.crt"), "auth-clients", "no", NULL};
    expect_ctx_error(half, "key-file", NULL);

    const char *bad_ciphers[] = {"ciphers", "NO-SUCH-CIPHER", NULL};
    expect_ctx_error(bad_ciphers, "ciphers", "NO-SUCH-CIPHER");
    const char *bad_suites[] = {"ciphersuites", "TLS_NOPE", NULL};
    expect_ctx_error(bad_suites, "ciphersuites", "TLS_NOPE");
    const char *bad_dh[] = {"cert-file", cert("server.crt"), "key-file", cert("server.key"),
                            "auth-clients", "no", "dh-params-file", garbage, NULL};
    expect_ctx_error(bad_dh, "dh-params-file", "not PEM");

    /* The encrypted key with its passphrase works, and so do DH parameters. */
    conn_tls_ctx_free(ctx_from(config_of("cert-file", cert("server.crt"), "key-file", cert("server-enc.key"),
                                         "key-file-pass", "s3cret", "auth-clients", "no",
                                         "dh-params-file", cert("dh.pem"), NULL)));

    /* Unreadable: as root, only a process without the privilege sees it. */
    char secret[256];
    snprintf(secret, sizeof secret, "%s/unreadable.key", getenv("CONNTLS_TMP") ? getenv("CONNTLS_TMP") : "/tmp");
    f = fopen(secret, "w");
    CHECK(f);
    fputs("x", f);
    fclose(f);
    CHECK(chmod(secret, 0) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && setuid(65534) != 0) _exit(2);
        const char *unreadable[] = {"cert-file", cert("server.crt"), "key-file", secret, "auth-clients", "no", NULL};
        expect_ctx_error(unreadable, secret, "unreadable");
        _exit(0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unlink(secret);
    unlink(garbage);

    CHECK(conn_tls_ctx_new(NULL, err, sizeof err) == NULL);
    CHECK_CONTAINS(err, "NULL");
}

/* Files that are not regular files are refused at once, without blocking, and sizes are
 * capped; paths are bytes. An alarm ends the test if a call blocks. */
static void hostile_files(void) {
    const char *tmp = getenv("CONNTLS_TMP") ? getenv("CONNTLS_TMP") : "/tmp";
    alarm(20);
    const char *zero[] = {"cert-file", "/dev/zero", "key-file", cert("server.key"), "auth-clients", "no", NULL};
    expect_ctx_error(zero, "cert-file '/dev/zero'", "not a regular file (it is a character device)");
    const char *zero_ca[] = {"ca-cert-file", "/dev/zero", NULL};
    expect_ctx_error(zero_ca, "ca-cert-file", "character device");

    char fifo[256];
    snprintf(fifo, sizeof fifo, "%s/ca.fifo", tmp);
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0);
    const char *fifo_ca[] = {"ca-cert-file", fifo, NULL};
    expect_ctx_error(fifo_ca, fifo, "not a regular file (it is a FIFO)");

    /* Sparse files: a multi-GiB one and one a byte over the 8 MiB cap. */
    char huge[256], over[256];
    snprintf(huge, sizeof huge, "%s/huge.pem", tmp);
    snprintf(over, sizeof over, "%s/over.pem", tmp);
    int fd = open(huge, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)9 << 30) == 0);
    close(fd);
    fd = open(over, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    CHECK(fd >= 0 && ftruncate(fd, ((off_t)8 << 20) + 1) == 0);
    close(fd);
    const char *huge_ca[] = {"ca-cert-file", huge, NULL};
    expect_ctx_error(huge_ca, huge, "larger than the 8 MiB");
    const char *over_cert[] = {"cert-file", over, "key-file", cert("server.key"), "auth-clients", "no", NULL};
    expect_ctx_error(over_cert, "cert-file", "larger than the 8 MiB");

    /* ca-cert-dir must be a directory; in one, a FIFO is skipped, not waited on. */
    const char *file_as_dir[] = {"ca-cert-dir", cert("ca.crt"), NULL};
    expect_ctx_error(file_as_dir, "ca-cert-dir", "not a directory (it is a regular file)");
    char dir[256], cmd[2048];
    snprintf(dir, sizeof dir, "%s/cadir", tmp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir '%s' && cp '%s' '%s/' && mkfifo '%s/fifo'", dir, dir, cert("ca.crt"), dir, dir);
    CHECK(system(cmd) == 0);
    conn_tls_ctx_free(ctx_from(config_of("ca-cert-dir", dir, NULL)));

    /* A path that is not UTF-8 is still a path. */
    char odd[256];
    snprintf(odd, sizeof odd, "%s/ca-\xff\xfe.crt", tmp);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", cert("ca.crt"), odd);
    CHECK(system(cmd) == 0);
    conn_tls_ctx *ctx = ctx_from(config_of("ca-cert-file", odd, NULL));
    size_t count = 0;
    int64_t not_after = 0;
    CHECK(conn_tls_ctx_cert_info(ctx, CONN_TLS_CERT_CA, &not_after, &count, NULL, 0) >= 0);
    CHECK_EQ(count, 1);
    conn_tls_ctx_free(ctx);
    /* Text options must be UTF-8, and the message names the option. */
    expect_set_error("ciphers", "HIGH\xff", "option 'ciphers': value is not UTF-8");
    expect_set_error("protocols", "TLSv1.3\xc3", "option 'protocols'");
    alarm(0);
    unlink(fifo);
    unlink(huge);
    unlink(over);
    unlink(odd);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static int log_calls, last_level;
static void on_log(void *ud, int level, const char *msg) {
    CHECK(ud == &log_calls);
    CHECK(msg != NULL);
    log_calls++;
    last_level = level;
}

static void null_handles(void) {
    char buf[16];
    struct iovec iov = {buf, 1};
    CHECK(conn_tls_new_server(NULL, 0) == NULL);
    CHECK(conn_tls_new_client(NULL, 0, "localhost") == NULL);
    CHECK_EQ(conn_tls_handshake(NULL), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_read(NULL, buf, sizeof buf), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_write(NULL, buf, sizeof buf), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_writev(NULL, &iov, 1), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_flush(NULL), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_pending_write(NULL), 0);
    CHECK_EQ(conn_tls_pending_read(NULL), 0);
    CHECK_EQ(conn_tls_shutdown(NULL), CONN_TLS_EINVAL);
    conn_tls_free(NULL);
    CHECK(conn_tls_last_error(NULL) != NULL && conn_tls_last_error(NULL)[0] == 0);
    CHECK_EQ(conn_tls_generation(NULL), 0);
    CHECK_EQ(conn_tls_set_user_timeout(NULL, 1000), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_set_keepalive(NULL, 1, 1, 1), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_peer_cert_pem(NULL, buf, sizeof buf), CONN_TLS_EINVAL);
    CHECK(conn_tls_protocol(NULL)[0] == 0);
    CHECK(conn_tls_cipher(NULL)[0] == 0);
    CHECK_EQ(conn_tls_session_reused(NULL), 0);
    CHECK_EQ(conn_tls_ctx_reload(NULL, NULL, err, sizeof err), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_ctx_reload_if_changed(NULL, NULL, err, sizeof err), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_ctx_generation(NULL), 0);
    conn_tls_ctx_free(NULL);
    CHECK_QUEUE_EMPTY();

    conn_tls_ctx *ctx = client_ctx();
    conn_tls_config *cfg = conn_tls_config_new();
    CHECK_EQ(conn_tls_ctx_reload(ctx, NULL, err, sizeof err), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_ctx_reload(NULL, cfg, err, sizeof err), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_ctx_generation(ctx), 1);
    conn_tls_config_free(cfg);
    conn_tls_ctx_free(ctx);
}

static void bad_fds(void) {
    conn_tls_ctx *srv = server_ctx();
    conn_tls_ctx *cli = client_ctx();
    conn_tls_set_log(on_log, &log_calls);
    CHECK(conn_tls_new_server(srv, -1) == NULL);
    CHECK(log_calls >= 1 && last_level == 4);
    CHECK(conn_tls_new_client(cli, -5, "localhost") == NULL);
    CHECK(conn_tls_new_server(srv, 987654) == NULL); /* not open */
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(conn_tls_new_server(srv, p[0]) == NULL); /* not a socket */
    CHECK(fcntl(p[0], F_GETFD) >= 0);                /* and still open */
    close(p[0]);
    close(p[1]);
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(conn_tls_new_client(cli, udp, "localhost") == NULL); /* not a stream */
    close(udp);
    conn_tls_set_log(NULL, NULL);
    /* A client-only context makes no server connections. */
    int sv[2];
    socket_pair(sv);
    CHECK(conn_tls_new_server(cli, sv[0]) == NULL);
    close(sv[0]);
    close(sv[1]);
    CHECK_QUEUE_EMPTY();
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
}

static void bad_iov(void) {
    conn_tls_ctx *srv = server_ctx();
    conn_tls_ctx *cli = client_ctx();
    pair p = connect_pair(srv, cli, "localhost", 0);
    conn_tls *s = p.s, *c = p.c;
    int *sv = p.sv;
    CHECK_EQ(handshake_both(s, c), CONN_TLS_OK);
    char buf[8] = "abcdefg";
    struct iovec iov[2] = {{buf, 3}, {NULL, 4}};
    CHECK_EQ(conn_tls_writev(c, iov, -1), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(c), "iovcnt");
    CHECK_EQ(conn_tls_writev(c, iov, 1025), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_writev(c, NULL, 2), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_writev(c, iov, 2), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(c), "iov[1]");
    CHECK_EQ(conn_tls_write(c, NULL, 4), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_read(s, NULL, 4), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_read(s, buf, 0), CONN_TLS_EINVAL);
    CHECK_EQ(conn_tls_peer_cert_pem(s, NULL, 10), CONN_TLS_EINVAL);
    /* A bad entry changes nothing wherever it sits: after pieces that fill less than a
     * record, after several records' worth, after hundreds of small pieces. */
    static char big[40000];
    memset(big, 'x', sizeof big);
    struct iovec late[3] = {{big, 100}, {big, 100}, {NULL, 1}};
    CHECK_EQ(conn_tls_writev(c, late, 3), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(c), "iov[2]");
    struct iovec after_records[3] = {{big, sizeof big}, {big, 10}, {NULL, 5}};
    CHECK_EQ(conn_tls_writev(c, after_records, 3), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(c), "iov[2]");
    static struct iovec smalls[300];
    for (int i = 0; i < 300; i++) smalls[i] = (struct iovec){big, 64};
    smalls[299].iov_base = NULL;
    CHECK_EQ(conn_tls_writev(c, smalls, 300), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(c), "iov[299]");
    CHECK_EQ(conn_tls_pending_write(c), 0);
    /* Lengths writev(2) refuses are refused before any buffer is read (buf has 8 bytes):
     * one above SSIZE_MAX, or lengths adding up past it, wherever they sit. */
    CHECK_EQ(conn_tls_write(c, buf, SIZE_MAX), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(c), "SSIZE_MAX");
    CHECK_EQ(conn_tls_write(c, buf, (size_t)SSIZE_MAX + 1), CONN_TLS_EINVAL);
    struct iovec too_long[2] = {{buf, 3}, {buf, SIZE_MAX}};
    CHECK_EQ(conn_tls_writev(c, too_long, 2), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(c), "iov[1] has a length above SSIZE_MAX");
    struct iovec halves[2] = {{buf, SSIZE_MAX / 2 + 1}, {buf, SSIZE_MAX / 2 + 1}};
    CHECK_EQ(conn_tls_writev(c, halves, 2), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(c), "add up to more than SSIZE_MAX");
    /* The piece that takes the sum past SSIZE_MAX is the last one (found by fuzz_iov). */
    struct iovec last_too_much[2] = {{buf, 3}, {buf, SSIZE_MAX}};
    CHECK_EQ(conn_tls_writev(c, last_too_much, 2), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(c), "add up to more than SSIZE_MAX");
    struct iovec late_sum[3] = {{buf, 3}, {buf, SSIZE_MAX - 2}, {buf, 5}};
    CHECK_EQ(conn_tls_writev(c, late_sum, 3), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(c), "add up to more than SSIZE_MAX");
    CHECK_EQ(conn_tls_pending_write(c), 0);
    /* Nothing to write returns 0; a NULL base with length 0 is fine. */
    CHECK_EQ(conn_tls_writev(c, NULL, 0), 0);
    iov[1].iov_len = 0;
    CHECK_EQ(conn_tls_write(c, NULL, 0), 0);
    /* None of that changed the stream: the peer gets exactly what was written after. A
     * read with a huge len reads what there is (len is clamped, as read(2) does). */
    CHECK_EQ(conn_tls_writev(c, iov, 2), 3);
    char got[64];
    ssize_t n;
    double deadline = now_s() + 5;
    while ((n = conn_tls_read(s, got, SIZE_MAX)) == CONN_TLS_WANT_READ && now_s() < deadline) {
        struct pollfd pfd = {.fd = sv[0], .events = POLLIN};
        poll(&pfd, 1, 100);
    }
    CHECK_EQ(n, 3);
    CHECK(memcmp(got, "abc", 3) == 0);
    /* Socket options on a socket that is not TCP are refused, with a reason. */
    CHECK_EQ(conn_tls_set_user_timeout(c, 1000), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(c), "TCP_USER_TIMEOUT");
    CHECK_QUEUE_EMPTY();
    conn_tls_free(s);
    conn_tls_free(c);
    /* The library never closed the fds. */
    CHECK(fcntl(sv[0], F_GETFD) >= 0 && fcntl(sv[1], F_GETFD) >= 0);
    close(sv[0]);
    close(sv[1]);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
}

/* Before encrypting, a write may take a handshake step or flush waiting ciphertext; with
 * a bad iov it does neither. */
static void bad_iov_does_nothing_first(void) {
    conn_tls_ctx *srv = server_ctx(), *cli = client_ctx();
    pair p = connect_pair(srv, cli, "localhost", 0);
    char buf[16384] = {0};
    struct iovec bad[2] = {{buf, 10}, {NULL, 10}};
    /* No ClientHello went out: the handshake did not start. */
    CHECK_EQ(conn_tls_writev(p.c, bad, 2), CONN_TLS_EINVAL);
    char probe;
    CHECK(recv(p.sv[0], &probe, 1, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    CHECK_EQ(handshake_both(p.s, p.c), CONN_TLS_OK);
    /* The peer reads nothing, so ciphertext ends up waiting in the connection. */
    int tiny = 4096;
    CHECK(setsockopt(p.sv[1], SOL_SOCKET, SO_SNDBUF, &tiny, sizeof tiny) == 0);
    for (int i = 0; i < 1000 && conn_tls_pending_write(p.c) == 0; i++) CHECK(conn_tls_write(p.c, buf, sizeof buf) > 0);
    size_t waiting = conn_tls_pending_write(p.c);
    CHECK(waiting > 0);
    /* Make room on the socket (the bytes are thrown away: the stream is not read again),
     * so a flush would move what waits. The bad call does not; conn_tls_flush does. */
    while (recv(p.sv[0], buf, sizeof buf, MSG_DONTWAIT) > 0) {}
    CHECK_EQ(conn_tls_writev(p.c, bad, 2), CONN_TLS_EINVAL);
    CHECK_CONTAINS(conn_tls_last_error(p.c), "iov[1]");
    CHECK_EQ(conn_tls_pending_write(p.c), waiting);
    conn_tls_flush(p.c);
    CHECK(conn_tls_pending_write(p.c) < waiting);
    CHECK_QUEUE_EMPTY();
    close_pair(&p);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
}

int main(void) {
    CHECK(strcmp(conn_tls_version(), CONN_TLS_VERSION) == 0);
    config_errors();
    context_errors();
    hostile_files();
    null_handles();
    bad_fds();
    bad_iov();
    bad_iov_does_nothing_first();
    printf("bad_input: ok\n");
    return 0;
}
