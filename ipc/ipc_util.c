/*
 * ipc/ipc_util.c - the process-wide half of the parking protocol: global
 * expedited membarrier registration and the sleeper's barrier (see
 * ipc_util.h for why), and the CPU count the spin budgets read.
 */
#include <linux/membarrier.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ipc_util.h"

_Atomic int px__ipc_mb_state;
_Atomic uint64_t px__ipc_park_barriers;
_Atomic uint64_t px__ipc_park_late;

#ifndef PX__NO_FENCES

static pthread_once_t px__mb_once = PTHREAD_ONCE_INIT;
static bool px__mb_supported;

/* A forked child re-registers on its first wake (registration is per
 * process; re-registering is cheap if the kernel already inherited it). */
static void px__mb_atfork_child(void)
{
	if (atomic_load_explicit(&px__ipc_mb_state, memory_order_relaxed) == 1)
		atomic_store_explicit(&px__ipc_mb_state, 0, memory_order_relaxed);
}

static void px__mb_query(void)
{
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	px__mb_supported = cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
			   (cmds & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
	/* PX_IPC_NO_MEMBARRIER=1 forces the fence fallbacks, so the tests
	 * can cover them on kernels that have membarrier. */
	const char *off = getenv("PX_IPC_NO_MEMBARRIER");
	if (off && *off && *off != '0')
		px__mb_supported = false;
	pthread_atfork(NULL, NULL, px__mb_atfork_child);
}

static int px__mb_register(void)
{
	pthread_once(&px__mb_once, px__mb_query);
	int st = -1;
	if (px__mb_supported &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0)
		st = 1;
	/* Relaxed: only this process reads it, to pick its barrier. */
	atomic_store_explicit(&px__ipc_mb_state, st, memory_order_relaxed);
	return st;
}

#endif /* !PX__NO_FENCES */

void px__ipc_waker_prepare(void)
{
#ifndef PX__NO_FENCES
	if (atomic_load_explicit(&px__ipc_mb_state, memory_order_relaxed) == 0)
		px__mb_register();
#endif
}

void px__ipc_waker_barrier_slow(void)
{
#ifndef PX__NO_FENCES
	/* Fence in any case on this call: the registration may complete
	 * after a sleeper's membarrier() has already passed us by. */
	if (atomic_load_explicit(&px__ipc_mb_state, memory_order_relaxed) == 0)
		px__mb_register();
	atomic_thread_fence(memory_order_seq_cst);
#endif
}

bool px__ipc_sleeper_mb_ok(void)
{
#ifndef PX__NO_FENCES
	pthread_once(&px__mb_once, px__mb_query);
	return px__mb_supported;
#else
	return false;
#endif
}

_Atomic int px__ipc_ncpus_cache;

int px__ipc_ncpus(void)
{
	/* Relaxed: every thread computes the same value. */
	int v = atomic_load_explicit(&px__ipc_ncpus_cache, memory_order_relaxed);
	if (v == 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		v = c > 0 && c < INT_MAX ? (int)c : 1;
		atomic_store_explicit(&px__ipc_ncpus_cache, v, memory_order_relaxed);
	}
	return v;
}

bool px__ipc_sleeper_barrier(void)
{
#ifndef PX__NO_FENCES
	pthread_once(&px__mb_once, px__mb_query);
	if (px__mb_supported &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0)
		return true;
	atomic_thread_fence(memory_order_seq_cst);
	return false;
#else
	return true;
#endif
}
