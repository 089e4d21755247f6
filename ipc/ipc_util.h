/*
 * ipc/ipc_util.h - what the ipc/ sources share: the parking protocol of
 * sleepers and wakers on shared futex words. Private: never installed.
 *
 * Clock, deadlines and futex calls come from lib/px_clock.h and
 * lib/px_futex.h. Every futex word in ipc/ is a shared one
 * (px__futex_wait_shared / px__futex_wake_shared): the words live in memory
 * that other processes may map, and a private futex is keyed by (mm,
 * address), so a waiter in one process would never see a wake from another.
 */
#ifndef PX_IPC_UTIL_H
#define PX_IPC_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <parex/common.h>

#include "px_clock.h"
#include "px_futex.h"

#define PX__CACHELINE 64

/*
 * The two halves of the parking protocol (a Dekker pair, see ring.c):
 *
 *   sleeper: bounded = !px__waiter_register(&waiters); re-check; sleep
 *   waker:   publish progress; if (px__waiters_seen(&waiters)) wake
 *
 * The waker's store (progress) must be ordered before its load (waiters),
 * and the sleeper's store (waiters) before its load (the ring): a StoreLoad
 * barrier on each side. A seq_cst fence on the waker's side would cost a
 * store-buffer drain on every push, which on a ring the consumer keeps
 * polling means waiting for a cross-core cache-line transfer per item. So
 * the barrier is made asymmetric, as liburcu does: every process that
 * wakes registers once for MEMBARRIER_CMD_GLOBAL_EXPEDITED and then needs
 * only a compiler barrier, and the sleeper, which is about to make a system
 * call anyway, calls membarrier(), which runs a full barrier on every CPU
 * currently running a registered process (a CPU that is not running one
 * passes a barrier when it switches to it). Either the waker's load comes
 * after that barrier and sees the sleeper, or its store came before it and
 * the sleeper's re-check sees the progress.
 *
 * Fallbacks: a process that cannot register uses a seq_cst fence as waker;
 * a sleeper that cannot call membarrier() uses a fence and returns false,
 * and must then bound each sleep (PX__SLEEP_POLL_NS), because registered
 * wakers do not fence. Under the thread sanitizer, which models neither
 * fences (GCC refuses them) nor membarrier, the waker reads the count with
 * a seq_cst read-modify-write instead: an RMW reads the latest value in the
 * count's modification order and synchronises with the sleeper's
 * registration RMW.
 */
#if defined(__SANITIZE_THREAD__)
#define PX__NO_FENCES 1
#endif

/* A sleep bound for sleepers whose barrier is only a local fence. */
#define PX__SLEEP_POLL_NS (1 * PX_MSEC)

/* 1: this process is registered for global expedited membarrier; 0: not
 * tried yet (or forked since); -1: unavailable. */
extern _Atomic int px__ipc_mb_state;

/* Slow path of px__waiters_seen(): registers or fences. */
void px__ipc_waker_barrier_slow(void);

/* The sleeper's barrier; true when it was membarrier(). */
bool px__ipc_sleeper_barrier(void);

/* Registers this process as a waker ahead of time (ring/queue init and
 * attach call it, so the first push does not pay for it). */
void px__ipc_waker_prepare(void);

/* Returns true when the sleeper may sleep without a bound. */
static inline bool px__waiter_register(_Atomic uint32_t *waiters)
{
	/* Seq_cst RMW, then the sleeper's barrier: pairs with the waker's
	 * barrier in px__waiters_seen(). */
	atomic_fetch_add_explicit(waiters, 1, memory_order_seq_cst);
#ifdef PX__NO_FENCES
	return true;
#else
	return px__ipc_sleeper_barrier();
#endif
}

static inline void px__waiter_unregister(_Atomic uint32_t *waiters)
{
	/* Relaxed: a stale non-zero count only costs a waker a syscall. */
	atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
}

static inline uint32_t px__waiters_seen(_Atomic uint32_t *waiters)
{
#ifndef PX__NO_FENCES
	if (__builtin_expect(atomic_load_explicit(&px__ipc_mb_state,
						  memory_order_relaxed) == 1, 1))
		/* Compiler barrier only: the sleeper's membarrier() supplies
		 * the CPU barrier (see above). */
		atomic_signal_fence(memory_order_seq_cst);
	else
		px__ipc_waker_barrier_slow();
	return atomic_load_explicit(waiters, memory_order_relaxed);
#else
	return atomic_fetch_add_explicit(waiters, 0, memory_order_seq_cst);
#endif
}

/* The deadline for one sleep: the caller's (PX__NO_DEADLINE: none), or
 * PX__SLEEP_POLL_NS from now if that is sooner and the sleeper's barrier
 * was only a local fence. */
static inline int64_t px__sleep_deadline(int64_t deadline, bool unbounded)
{
	if (unbounded)
		return deadline;
	return px__deadline_min(deadline, px__deadline_after(PX__SLEEP_POLL_NS));
}

#endif /* PX_IPC_UTIL_H */
