/* libFuzzer harness: iov shapes through conn_tls_writev on an established connection.
 *
 * Input: byte 0 picks iovcnt (0..63 mostly; sometimes -1, -5, 1024, 1025, 2000 or
 * INT_MIN), byte 1's top bit passes a NULL iov; then 3 bytes per entry choose its base
 * (NULL, or an offset into a 64 KiB buffer) and its length (0, small, a record or more,
 * SIZE_MAX, SSIZE_MAX, SSIZE_MAX + 1, two halves past SSIZE_MAX...). Lengths that writev(2)
 * would accept stay inside the buffer; the others must be refused before any byte is read.
 * The connection's send buffer is small, so commits are partial and WANT_WRITE comes up.
 *
 * Checked, against an independent reading of the rules: a call writev(2) would refuse
 * gives CONN_TLS_EINVAL and changes nothing (pending_write, the stream); any other call
 * returns a count no larger than what was offered, or WANT_*; every committed byte
 * reaches the peer, in order, and nothing else does. */
#include <limits.h>

#include "fuzz.h"

enum { BUFSZ = 65536 };
static unsigned char buffer[BUFSZ];
static conn_tls *writer, *reader;
static int fds[2];
/* Bytes committed and not yet seen by the reader. */
static unsigned char *expected;
static size_t expected_len, expected_cap;

static void setup(void) {
    if (writer) return;
    for (size_t i = 0; i < BUFSZ; i++) buffer[i] = (unsigned char)(i * 2654435761u >> 13);
    const char *srv[] = {"cert-file", cert_path("server.crt"), "key-file", cert_path("server.key"), "auth-clients", "no", NULL};
    const char *cli[] = {"ca-cert-file", cert_path("ca.crt"), NULL};
    conn_tls_ctx *s = ctx_of(srv), *c = ctx_of(cli);
    nonblocking_pair(fds);
    int small = 4096;
    EXPECT(setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    reader = conn_tls_new_server(s, fds[0]);
    writer = conn_tls_new_client(c, fds[1], "localhost");
    EXPECT(reader && writer && handshake_pair(reader, writer) == 0);
    conn_tls_ctx_free(s);
    conn_tls_ctx_free(c);
}

static void expect_bytes(const void *data, size_t len) {
    if (expected_len + len > expected_cap) {
        expected_cap = (expected_len + len) * 2;
        expected = realloc(expected, expected_cap);
        EXPECT(expected);
    }
    memcpy(expected + expected_len, data, len);
    expected_len += len;
}

/* Flushes the writer and reads everything; what arrives must be what was committed. */
static void drain(void) {
    char buf[16384];
    for (int round = 0; round < 10000 && (conn_tls_pending_write(writer) > 0 || expected_len > 0); round++) {
        int f = conn_tls_flush(writer);
        EXPECT(f == CONN_TLS_OK || f == CONN_TLS_WANT_WRITE);
        ssize_t r;
        while ((r = conn_tls_read(reader, buf, sizeof buf)) > 0) {
            EXPECT((size_t)r <= expected_len);
            EXPECT(memcmp(buf, expected, (size_t)r) == 0);
            memmove(expected, expected + r, expected_len - (size_t)r);
            expected_len -= (size_t)r;
        }
        EXPECT(r == CONN_TLS_WANT_READ);
    }
    EXPECT(conn_tls_pending_write(writer) == 0 && expected_len == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    if (size < 2) return 0;
    static const int odd_counts[] = {-1, -5, 1024, 1025, 2000, INT_MIN, 1023, 0};
    int iovcnt = data[0] < 240 ? data[0] % 64 : odd_counts[data[0] % 8];
    int null_iov = (data[1] & 0x80) != 0;
    static struct iovec iov[1024];
    int entries = iovcnt > 0 && iovcnt <= 1024 ? iovcnt : 0;
    int valid = iovcnt >= 0 && iovcnt <= 1024 && !(null_iov && iovcnt > 0);
    size_t sum = 0;
    int too_much = 0;
    for (int i = 0; i < entries; i++) {
        const uint8_t *e = data + 2 + 3 * (size_t)i;
        int have = 2 + 3 * (size_t)i + 2 < size;
        unsigned base_kind = have ? e[0] : 1, small = have ? e[1] : 0, len_kind = have ? e[2] % 16 : 0;
        size_t offset = (base_kind * 37u) % BUFSZ;
        void *base = base_kind % 8 == 0 ? NULL : buffer + offset;
        size_t len;
        switch (len_kind) {
        case 0: len = 0; break;
        case 10: len = (size_t)small * 256; break;
        case 11: len = SIZE_MAX; break;
        case 12: len = SSIZE_MAX; break;
        case 13: len = (size_t)SSIZE_MAX + 1; break;
        case 14: len = (size_t)SSIZE_MAX / 2 + 1; break;
        case 15: len = 16384 + small; break;
        default: len = small; break;
        }
        int huge = len_kind >= 11 && len_kind <= 14;
        if (!huge && base && offset + len > BUFSZ) len = BUFSZ - offset; /* honest lengths stay inside */
        if (base == NULL && len > 0) valid = 0;
        if (len > (size_t)SSIZE_MAX) valid = 0;
        if (!too_much) {
            if (sum + len < sum || sum + len > (size_t)SSIZE_MAX) too_much = 1;
            else sum += len;
        }
        iov[i] = (struct iovec){base, len};
    }
    if (too_much) valid = 0;

    size_t pending = conn_tls_pending_write(writer);
    ssize_t r = conn_tls_writev(writer, null_iov ? NULL : iov, iovcnt);
    EXPECT_QUEUE_EMPTY();
    if (!valid) {
        EXPECT(r == CONN_TLS_EINVAL);
        EXPECT(conn_tls_last_error(writer)[0] != 0);
        EXPECT(conn_tls_pending_write(writer) == pending);
    } else {
        EXPECT(r == CONN_TLS_WANT_WRITE || r == CONN_TLS_WANT_READ || (r >= 0 && (size_t)r <= sum));
        size_t left = r > 0 ? (size_t)r : 0;
        for (int i = 0; i < entries && left > 0; i++) {
            size_t take = iov[i].iov_len < left ? iov[i].iov_len : left;
            if (take) expect_bytes(iov[i].iov_base, take);
            left -= take;
        }
    }
    drain();
    return 0;
}
