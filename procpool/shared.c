/*
 * procpool/shared.c - code over the shared mapping's header that every
 * process of a pool runs: ringing the collector's doorbell (shared.h).
 *
 * Out of line on purpose: gcc rejects (-Wtsan) an atomic_thread_fence
 * inlined into another function under -fsanitize=thread.
 */
#include "px_futex.h"
#include "shared.h"

void px__pp_bell_ring(struct pp_hdr *hdr)
{
	/* Dekker pair with the collector's park() (collector.c): our
	 * publication (a ring push, a socket message) before this fence, its
	 * `bell_sleeping` store before its fence; one of us sees the other. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&hdr->bell_sleeping, memory_order_relaxed)) {
		/* Release: pairs with the collector's acquire load of the bell. */
		atomic_fetch_add_explicit(&hdr->bell, 1, memory_order_release);
		px__futex_wake_shared(&hdr->bell, 1);
	}
}
