/* Forced into the servers' ThreadSanitizer builds (scripts/servers.sh's +tsan flavours,
 * with -include). Valkey's IO threads hand clients to and from the main thread through
 * lock-free queues whose ordering comes from fences around relaxed atomics (io_threads.c,
 * queues.c: a relaxed load of a queue slot, then atomic_thread_fence). ThreadSanitizer
 * models neither standalone fences (GCC says so with -Wtsan) nor the ordering a fence
 * gives a relaxed access, so it reports the accesses on both sides of every hand-off as
 * races, the TLS connection's among them (a seed-001 run gave 344 reports). Here every
 * atomic access the server orders explicitly is sequentially consistent, which TSan
 * models, and every fence is an acq_rel read-modify-write of one shared variable (a
 * release fence then happens-before every later acquire fence, in any thread). That is
 * stronger than the server's own ordering, so a hand-off whose ordering is wrong would go
 * unseen; every plain access is checked as before. */
#include <stdatomic.h>

#define memory_order_relaxed memory_order_seq_cst
#define memory_order_consume memory_order_seq_cst
#define memory_order_acquire memory_order_seq_cst
#define memory_order_release memory_order_seq_cst
#define memory_order_acq_rel memory_order_seq_cst

__attribute__((weak)) _Atomic unsigned long tsan_fence_order;

#undef atomic_thread_fence
#define atomic_thread_fence(order) ((void)(order), (void)atomic_fetch_add_explicit(&tsan_fence_order, 0, memory_order_seq_cst))
