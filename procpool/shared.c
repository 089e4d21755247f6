/*
 * procpool/shared.c - code over the shared mapping's header that every
 * process of a pool runs: ringing the collector's doorbell (shared.h), or
 * leaving it alone after a reply that a waiting thread watches for; waking
 * a parked worker.
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

bool px__pp_reply_bell(struct pp_hdr *hdr, struct pp_wshared *sh, bool defer)
{
	/* Dekker pair with the helper's clear of sh->helper (reply.c): our
	 * reply's push before this fence, its clear before its fence. The
	 * same fence serves px__pp_bell_ring()'s pairing with park(). */
	atomic_thread_fence(memory_order_seq_cst);
	uint32_t h = atomic_load_explicit(&sh->helper, memory_order_relaxed);
	if (h == HELP_ASLEEP) {
		/* Release: pairs with the watcher's acquire load of hseq. */
		atomic_fetch_add_explicit(&sh->hseq, 1, memory_order_release);
		px__futex_wake_shared(&sh->hseq, 1);
	}
	if (h != HELP_NONE)
		return false; /* a waiting thread watches the ring: it takes the reply */
	if (!atomic_load_explicit(&hdr->bell_sleeping, memory_order_relaxed))
		return false;
	if (defer)
		return true;
	atomic_fetch_add_explicit(&hdr->bell, 1, memory_order_release);
	px__futex_wake_shared(&hdr->bell, 1);
	return false;
}

bool px__pp_worker_wake(struct pp_wshared *sh)
{
	/* Dekker pair with the worker's park (worker.c), see shared.h. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(&sh->wsleep, memory_order_relaxed))
		return false;
	/* Release: pairs with the worker's acquire load of wseq. */
	atomic_fetch_add_explicit(&sh->wseq, 1, memory_order_release);
	return px__futex_wake_shared(&sh->wseq, 1) > 0;
}
