/* client_bench LIBRARY-build: PORT CA CERT KEY TRANSPORT SIZE COUNT PIPELINE
 * One client of hiredis (built with -DCLIENT_HIREDIS) or libvalkey (-DCLIENT_VALKEY) on a
 * blocking context over TRANSPORT (conntls: the contrib/ transport; openssl: the library's
 * own TLS), against a TLS server on 127.0.0.1:PORT: COUNT SETs of SIZE-byte values, then
 * COUNT GETs, PIPELINE commands in flight at a time. Prints one line:
 *   set_rps get_rps client_cpu_us_per_request
 * (wall-clock requests/s of each phase; the process's user + system CPU over both phases per
 * request, from getrusage). benches/clients_side_by_side.sh runs it. */
#include <conntls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

#include "../c_tests/client_library.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* COUNT commands made by `append`, PIPELINE in flight; exits on any error reply. */
static double run(Context *c, long count, long pipeline, int get, const char *value, size_t size) {
    double start = now_s();
    long sent = 0, done = 0;
    while (done < count) {
        while (sent < count && sent - done < pipeline) {
            if (get)
                APPEND(c, "GET bench:%ld", sent % 1000);
            else
                APPEND(c, "SET bench:%ld %b", sent % 1000, value, size);
            sent++;
        }
        void *reply;
        if (GET_REPLY(c, &reply) != ST_OK) {
            fprintf(stderr, "client_bench: %s\n", c->errstr);
            exit(1);
        }
        freeReplyObject(reply);
        done++;
    }
    return count / (now_s() - start);
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: client_bench PORT CA CERT KEY conntls|openssl SIZE COUNT PIPELINE\n");
        return 2;
    }
    const char *ca = argv[2], *cert = argv[3], *key = argv[4];
    size_t size = (size_t)atol(argv[6]);
    long count = atol(argv[7]), pipeline = atol(argv[8]);
    struct timeval tv = {.tv_sec = 20};
    Context *c = CONNECT("127.0.0.1", atoi(argv[1]), tv);
    if (!c || c->err) return 2;
    int r;
    if (!strcmp(argv[5], "conntls")) {
        char err[256];
        conn_tls_config *cfg = client_config(ca, cert, key, NULL, err, sizeof err);
        conn_tls_ctx *ctx = cfg ? conn_tls_ctx_new(cfg, err, sizeof err) : NULL;
        conn_tls_config_free(cfg);
        r = ctx ? INITIATE_CONNTLS(c, ctx, "localhost") : -1;
    } else {
        r = initiate_openssl(c, ca, cert, key);
    }
    if (r != ST_OK) {
        fprintf(stderr, "client_bench: TLS: %s\n", c->errstr);
        return 2;
    }
    char *value = malloc(size);
    memset(value, 'v', size);
    double cpu = cpu_s();
    double set_rps = run(c, count, pipeline, 0, value, size);
    double get_rps = run(c, count, pipeline, 1, value, size);
    printf("%.0f %.0f %.2f\n", set_rps, get_rps, (cpu_s() - cpu) * 1e6 / (2.0 * count));
    free(value);
    return 0;
}
