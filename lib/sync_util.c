/*
 * lib/sync_util.c - futex and clock helpers shared by futures, executors and
 * the GIL. Futures live in one process, so these use private futexes.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "future_internal.h"

int px__futex_wait(_Atomic uint32_t *w, uint32_t expect, int64_t timeout_ns)
{
	struct timespec ts, *tp = NULL;
	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / PX_SEC;
		ts.tv_nsec = timeout_ns % PX_SEC;
		tp = &ts;
	}
	/* Relative timeout: FUTEX_WAIT measures it on CLOCK_MONOTONIC. */
	long r = syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, expect,
			 tp, NULL, 0);
	if (r == 0)
		return 0;
	return -errno;
}

void px__futex_wake(_Atomic uint32_t *w, int n)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

void px__spin_yield(void)
{
	sched_yield();
}
