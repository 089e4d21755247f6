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
 *   sleeper: px__park_begin(&pk, &waiters);
 *            loop { v = word; re-check; px__park_sleep(&pk, &word, v, dl); }
 *            px__waiter_unregister(&waiters);
 *   waker:   publish progress; if (px__waiters_seen(&waiters)) wake
 *
 * The waker's store (progress) must be ordered before its load (waiters),
 * and the sleeper's store (waiters) before its load (the ring): a StoreLoad
 * barrier on each side. A seq_cst fence on the waker's side would cost a
 * store-buffer drain on every push, which on a ring the consumer keeps
 * polling means waiting for a cross-core cache-line transfer per item. So
 * the barrier is made asymmetric, as liburcu does: every process that
 * wakes registers once for MEMBARRIER_CMD_GLOBAL_EXPEDITED and then needs
 * only a compiler barrier, and the sleeper calls membarrier(), which runs a
 * full barrier on every CPU currently running a registered process (a CPU
 * that is not running one passes a barrier when it switches to it). Either
 * the waker's load comes after that barrier and sees the sleeper, or its
 * store came before it and the sleeper's re-check after the call sees the
 * progress.
 *
 * The sleeper's barrier is deferred. membarrier() interrupts every CPU
 * running a registered process and waits for each; in a virtual machine an
 * interrupt to another vCPU is a trip through the hypervisor (12 us on the
 * 2-vCPU test machine with the peer running, 40 us on average inside a
 * parked ping-pong), and a sleeper typically parks just as its peer starts
 * on the request it sent, so it paid that twice per parked round trip and
 * interrupted the peer as well. What the barrier buys is narrow: it
 * catches a waker whose store was still in its CPU's store buffer when it
 * loaded the count (before our increment), and still there when we
 * re-checked. A store leaves the store buffer within about one cache-line
 * transfer, and at once on an interrupt, VM exit or context switch of the
 * waker's CPU. So px__park_sleep():
 *
 *   1. sleeps, but only until PX__PARK_BARRIER_NS after the increment (a
 *      locked RMW: a full barrier on our side); a wake ends a sleep early
 *      as usual;
 *   2. then calls membarrier() and returns for one more re-check, and only
 *      after that sleeps without a bound.
 *
 * A wake-up is never lost: a waker whose count load missed our increment
 * has its store visible to the re-check after step 2 (the argument above),
 * and before step 2 we never sleep past PX__PARK_BARRIER_NS. It can be
 * late only in that race, by at most PX__PARK_BARRIER_NS, and only if no
 * other waker comes meanwhile (any later one sees the count). The race
 * needs the push to land within the store's time in the buffer: the
 * racing cycles of tests/test_ring_park.c (some 160,000 parks a run, each
 * met by a push or pop timed within a few microseconds of it) found one
 * item late in one run of several here, under load (which can also make
 * an item late: a waker preempted between its publication and its
 * FUTEX_WAKE), and a separate 300,000 found none. A
 * sleeper woken within PX__PARK_BARRIER_NS, the common case of a parked
 * ping-pong or a worker between tasks, never calls membarrier(); one that
 * stays parked longer calls it once, when its peers are likely idle (then
 * no CPU is interrupted: only those running a registered process are).
 * The bound sits above a 250 Hz kernel's tick: a futex timeout sooner than
 * the next tick reprograms the timer at each sleep and wake (a VM exit
 * each, with a TSC-deadline timer), which made a parked ping-pong 1.2x
 * (1 ms bound) to 1.35x (200 us) slower here; 5 ms and more cost nothing
 * measurable.
 *
 * Fallbacks: a process that cannot register uses a seq_cst fence as waker;
 * a sleeper that cannot call membarrier() uses a fence at once (no
 * deferral) and bounds each sleep (PX__SLEEP_POLL_NS), because registered
 * wakers do not fence. Under the thread sanitizer, which models neither
 * fences (GCC refuses them) nor membarrier, the waker reads the count with
 * a seq_cst read-modify-write instead: an RMW reads the latest value in the
 * count's modification order and synchronises with the sleeper's
 * registration RMW, so the sleeper needs no barrier, deferred or not.
 */
#if defined(__SANITIZE_THREAD__)
#define PX__NO_FENCES 1
#endif

/* A sleep bound for sleepers whose barrier is only a local fence. */
#define PX__SLEEP_POLL_NS (1 * PX_MSEC)
/* How long a sleeper may sleep before its barrier (step 1 above). */
#define PX__PARK_BARRIER_NS (10 * PX_MSEC)

/* 1: this process is registered for global expedited membarrier; 0: not
 * tried yet (or forked since); -1: unavailable. */
extern _Atomic int px__ipc_mb_state;

/* Slow path of px__waiters_seen(): registers or fences. */
void px__ipc_waker_barrier_slow(void);

/* The sleeper's barrier; true when it was membarrier(). */
bool px__ipc_sleeper_barrier(void);

/* True when this process's sleepers may use membarrier() (queried once;
 * false with PX_IPC_NO_MEMBARRIER=1 or under the thread sanitizer). */
bool px__ipc_sleeper_mb_ok(void);

/* Registers this process as a waker ahead of time (ring/queue init and
 * attach call it, so the first push does not pay for it). */
void px__ipc_waker_prepare(void);

/* The online CPU count, read once (1 when it cannot be read), and its
 * cache (0: not read yet; a test may set it to pretend). Online, not this
 * process's affinity: a process pinned to one CPU still gains by spinning
 * while its peer runs on another. */
int px__ipc_ncpus(void);
extern _Atomic int px__ipc_ncpus_cache;

/* Where a sleeper is in the protocol above. */
enum px__park_state {
	PX__PARK_DEFERRED, /* step 1: sleeping until t at the latest */
	PX__PARK_BARRIER,  /* after membarrier() (or an RMW waker): unbounded */
	PX__PARK_POLL,     /* after a local fence only: bounded sleeps */
};

struct px__park {
	int64_t t; /* DEFERRED: when the barrier is due */
	enum px__park_state state;
};

/* Raises the waiter count and starts the protocol. The caller then loops:
 * read the futex word, re-check its condition, px__park_sleep(). */
static inline void px__park_begin(struct px__park *p, _Atomic uint32_t *waiters)
{
	/* Seq_cst RMW (a locked instruction, a full barrier): pairs with
	 * the waker's barrier in px__waiters_seen(). */
	atomic_fetch_add_explicit(waiters, 1, memory_order_seq_cst);
#ifdef PX__NO_FENCES
	p->state = PX__PARK_BARRIER;
	p->t = 0;
#else
	if (__builtin_expect(!px__ipc_sleeper_mb_ok(), 0)) {
		/* Fence now and poll (see above). */
		px__ipc_sleeper_barrier();
		p->state = PX__PARK_POLL;
		p->t = 0;
		return;
	}
	p->t = px__deadline_after(PX__PARK_BARRIER_NS);
	p->state = PX__PARK_DEFERRED;
#endif
}

/*
 * Process-wide counts of the deferred barrier's use, for the tests (relaxed
 * increments on the cold path only): barriers passed, that is sleeps of
 * PX__PARK_BARRIER_NS that no wake ended, and how many of those the
 * re-check right after found progress (ring.c counts these: see
 * px__ring_block()). A late find is the race above, or progress made just
 * as the sleep ended; a waker that never woke anyone would make every
 * find late.
 */
extern _Atomic uint64_t px__ipc_park_barriers;
extern _Atomic uint64_t px__ipc_park_late;

/* One step of waiting for *word to leave expect (the caller read it before
 * its re-check): sleeps, or passes the barrier without sleeping; returns
 * for the caller to re-check in either case: true when it passed the
 * barrier. deadline is the caller's. */
static inline bool px__park_sleep(struct px__park *p, _Atomic uint32_t *word,
				  uint32_t expect, int64_t deadline)
{
	switch (p->state) {
	case PX__PARK_DEFERRED:
		if (px__now_ns() < p->t &&
		    (px__futex_wait_shared(word, expect, px__deadline_min(deadline, p->t)) !=
			     -ETIMEDOUT ||
		     px__now_ns() < p->t))
			return false; /* woken, a signal, or the caller's deadline */
		/* Due: pass the barrier now, so that the caller's next
		 * re-check comes after it; only then sleep unbounded. */
		p->state = px__ipc_sleeper_barrier() ? PX__PARK_BARRIER : PX__PARK_POLL;
		atomic_fetch_add_explicit(&px__ipc_park_barriers, 1, memory_order_relaxed);
		return true;
	case PX__PARK_BARRIER:
		px__futex_wait_shared(word, expect, deadline);
		return false;
	case PX__PARK_POLL:
	default:
		px__futex_wait_shared(word, expect,
				      px__deadline_min(deadline,
						       px__deadline_after(PX__SLEEP_POLL_NS)));
		return false;
	}
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

#endif /* PX_IPC_UTIL_H */
