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
 *   sleeper: px__waiter_register(&waiters); re-check the condition; sleep
 *   waker:   publish progress; if (px__waiters_seen(&waiters)) wake
 *
 * Normally both sides issue a seq_cst fence between their store and their
 * load, and the fences' total order guarantees that the waker sees the
 * sleeper or the sleeper sees the progress. The thread sanitizer does not
 * model fences (GCC refuses them under -fsanitize=thread), so there the
 * waker reads the count with a read-modify-write instead: an RMW always
 * reads the latest value in the count's modification order, and its release
 * half synchronises with the sleeper's registration RMW, which gives the same
 * guarantee at the price of a locked write on the waker's path.
 */
#if defined(__SANITIZE_THREAD__)
#define PX__NO_FENCES 1
#endif

static inline void px__waiter_register(_Atomic uint32_t *waiters)
{
	/* Seq_cst RMW; with fences, followed by one: pairs with the fence
	 * (or the RMW) in px__waiters_seen(). */
	atomic_fetch_add_explicit(waiters, 1, memory_order_seq_cst);
#ifndef PX__NO_FENCES
	atomic_thread_fence(memory_order_seq_cst);
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
	/* Pairs with the fence in px__waiter_register(). */
	atomic_thread_fence(memory_order_seq_cst);
	return atomic_load_explicit(waiters, memory_order_relaxed);
#else
	return atomic_fetch_add_explicit(waiters, 0, memory_order_seq_cst);
#endif
}

/* The remaining time before an absolute deadline, for timed-out checks. */
static inline bool px__deadline_passed(int64_t deadline)
{
	return deadline >= 0 && px__now_ns() >= deadline;
}

#endif /* PX_IPC_UTIL_H */
