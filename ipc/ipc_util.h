/*
 * ipc/ipc_util.h - what the ipc/ sources share: shared futexes, deadlines,
 * a CPU pause. Private: never installed.
 *
 * Every futex here is a shared one (no FUTEX_PRIVATE_FLAG): the words live in
 * memory that other processes may map, and a private futex is keyed by
 * (mm, address), so a waiter in one process would never see a wake from
 * another.
 */
#ifndef PX_IPC_UTIL_H
#define PX_IPC_UTIL_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <parex/common.h>

#define PX__CACHELINE 64

#if defined(__x86_64__) || defined(__i386__)
#define px__cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define px__cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define px__cpu_relax() atomic_signal_fence(memory_order_seq_cst)
#endif

static inline int64_t px__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * PX_SEC + ts.tv_nsec;
}

/* An absolute CLOCK_MONOTONIC deadline for a relative timeout; -1: none. */
static inline int64_t px__deadline(int64_t timeout_ns)
{
	if (timeout_ns < 0)
		return -1;
	int64_t now = px__now_ns();

	if (timeout_ns > INT64_MAX - now)
		return -1;
	return now + timeout_ns;
}

/*
 * Sleeps while *addr == val, until woken or the absolute monotonic deadline
 * (-1: none). Returns 0 (woken, or the value had changed: the caller
 * re-checks its condition either way), -ETIMEDOUT, or -EINTR for a signal.
 */
static inline int px__futex_wait(_Atomic uint32_t *addr, uint32_t val,
				 int64_t deadline)
{
	struct timespec ts, *tsp = NULL;

	if (deadline >= 0) {
		ts.tv_sec = deadline / PX_SEC;
		ts.tv_nsec = deadline % PX_SEC;
		tsp = &ts;
	}
	/* FUTEX_WAIT_BITSET takes an absolute timeout, on CLOCK_MONOTONIC
	 * unless FUTEX_CLOCK_REALTIME is given. */
	long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_BITSET, val,
			 tsp, NULL, FUTEX_BITSET_MATCH_ANY);
	if (r == 0)
		return 0;
	if (errno == ETIMEDOUT)
		return -ETIMEDOUT;
	if (errno == EINTR)
		return -EINTR;
	return 0; /* EAGAIN: the value changed before we slept */
}

/* Wakes up to n sleepers on addr. */
static inline void px__futex_wake(_Atomic uint32_t *addr, int n)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

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

/* The deadline for one sleep: the caller's, or sooner when bounded. */
static inline int64_t px__sleep_deadline(int64_t deadline, bool unbounded)
{
	if (unbounded)
		return deadline;
	int64_t poll = px__now_ns() + PX__SLEEP_POLL_NS;
	return deadline >= 0 && deadline < poll ? deadline : poll;
}

/* The remaining time before an absolute deadline, for timed-out checks. */
static inline bool px__deadline_passed(int64_t deadline)
{
	return deadline >= 0 && px__now_ns() >= deadline;
}

#endif /* PX_IPC_UTIL_H */
