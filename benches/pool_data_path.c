/* The data path's cost while a handshake pool holds connections: the instructions of small
 * round trips (a 32-byte conn_tls_write, conn_tls_read, conn_tls_pending_read and
 * conn_tls_pending_write on each side) on a connected pair, with no pool at all and with
 * INSIDE connections parked in a pool (their peers never say hello): what every request of
 * a server pays during a handshake storm. Under callgrind (benches/pool_instructions.sh)
 * the count is exact; `run_round_trips` is the function it counts.
 *
 *   pool_data_path INSIDE ROUNDS        prints what it did */
#include "../c_tests/testutil.h"

__attribute__((noinline)) void run_round_trips(pair *p, int rounds) {
    char buf[64];
    for (int i = 0; i < rounds; i++) {
        CHECK_EQ(conn_tls_write(p->c, "0123456789abcdef0123456789abcdef", 32), 32);
        CHECK_EQ(conn_tls_pending_write(p->c), 0);
        CHECK_EQ(conn_tls_read(p->s, buf, sizeof buf), 32);
        CHECK_EQ(conn_tls_pending_read(p->s), 0);
        CHECK_EQ(conn_tls_write(p->s, buf, 32), 32);
        CHECK_EQ(conn_tls_pending_write(p->s), 0);
        CHECK_EQ(conn_tls_read(p->c, buf, sizeof buf), 32);
        CHECK_EQ(conn_tls_pending_read(p->c), 0);
    }
}

int main(int argc, char **argv) {
    int inside = argc > 1 ? atoi(argv[1]) : 0, rounds = argc > 2 ? atoi(argv[2]) : 1000;
    conn_tls_ctx *srv = server_ctx(), *cli = client_ctx();
    pair p = connect_pair(srv, cli, "localhost", 0);
    CHECK_EQ(handshake_both(p.c, p.s), CONN_TLS_OK);
    conn_tls_pool *pool = inside ? conn_tls_pool_new(2, (unsigned)inside, 600000) : NULL;
    int (*parked)[2] = calloc((size_t)inside + 1, sizeof *parked);
    for (int i = 0; i < inside; i++) {
        socket_pair(parked[i]);
        CHECK_EQ(conn_tls_pool_submit(pool, conn_tls_new_server(srv, parked[i][0]), NULL), CONN_TLS_OK);
    }
    run_round_trips(&p, rounds);
    printf("pool_data_path: %d round trips of 32 B with %d connections inside a pool\n", rounds, inside);
    conn_tls_pool_free(pool);
    for (int i = 0; i < inside; i++) {
        close(parked[i][0]);
        close(parked[i][1]);
    }
    free(parked);
    close_pair(&p);
    conn_tls_ctx_free(srv);
    conn_tls_ctx_free(cli);
    return 0;
}
