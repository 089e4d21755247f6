/*
 * lib/px_futex.h - the one set of futex helpers lib/, ipc/, threadpool/,
 * procpool/ and io/ share. Private: never installed.
 *
 * Two kinds of word, told apart by name, because confusing them compiles and
 * then loses wake-ups:
 *  - private: a word only this process's threads touch (futures, the thread
 *    pool). FUTEX_PRIVATE_FLAG lets the kernel key it by (mm, address).
 *  - shared: a word in memory other processes map (ipc/ rings, queues and
 *    locks, the process pool's shared header). A private wait there would
 *    never see a wake from another process.
 *
 * Every wait takes an absolute CLOCK_MONOTONIC deadline (px_clock.h;
 * PX__NO_DEADLINE: none) and returns 0 when woken or when the word no longer
 * held `expect` (the caller re-checks its condition either way), -ETIMEDOUT
 * once the deadline has passed, or -EINTR for a signal. errno is left as
 * it was: parex never sets it.
 */
#ifndef PX_FUTEX_H
#define PX_FUTEX_H

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "px_clock.h"

static inline int px__futex_wait_op(_Atomic uint32_t *w, int op,
				    uint32_t expect, int64_t deadline)
{
	struct timespec ts, *tsp = NULL;

	if (deadline != PX__NO_DEADLINE) {
		if (deadline < 0)
			deadline = 0;
		ts.tv_sec = deadline / PX_SEC;
		ts.tv_nsec = deadline % PX_SEC;
		tsp = &ts;
	}
	/* FUTEX_WAIT_BITSET takes an absolute timeout, on CLOCK_MONOTONIC
	 * unless FUTEX_CLOCK_REALTIME is given. */
	int saved = errno;
	long r = syscall(SYS_futex, (uint32_t *)w, op, expect, tsp, NULL,
			 FUTEX_BITSET_MATCH_ANY);
	int e = r == 0 ? 0 : errno;

	errno = saved;
	if (e == ETIMEDOUT || e == EINTR)
		return -e;
	return 0; /* woken, or EAGAIN: the value changed before we slept */
}

/* Sleeps while the process-private word *w == expect, until deadline. */
static inline int px__futex_wait_private(_Atomic uint32_t *w, uint32_t expect,
					 int64_t deadline)
{
	return px__futex_wait_op(w, FUTEX_WAIT_BITSET_PRIVATE, expect, deadline);
}

/* Wakes up to n sleepers on the process-private word w. */
static inline void px__futex_wake_private(_Atomic uint32_t *w, int n)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* Sleeps while the shared-memory word *w == expect, until deadline. */
static inline int px__futex_wait_shared(_Atomic uint32_t *w, uint32_t expect,
					int64_t deadline)
{
	return px__futex_wait_op(w, FUTEX_WAIT_BITSET, expect, deadline);
}

/* Wakes up to n sleepers, in any process, on the shared-memory word w.
 * Returns how many it woke (0 on an error). */
static inline int px__futex_wake_shared(_Atomic uint32_t *w, int n)
{
	long r = syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, n, NULL, NULL, 0);
	return r > 0 ? (int)r : 0;
}

#endif /* PX_FUTEX_H */
