/*
 * lib/gil.c - CPython-style GIL emulation for the thread pool (thread:gil=1).
 *
 * One mutex per pool: a worker holds it while its task computes, and every
 * parex blocking call (future waits, px_wait, as-completed, px_task_sleep,
 * px_task_blocking_begin, the I/O layer's waits) lets it go, as CPython
 * releases the GIL around blocking system calls. So CPU-bound tasks run one
 * at a time while blocking ones overlap: what Python threads do.
 *
 * The same entry point carries a per-thread block hook (see
 * px__set_block_hook), since it is where every parex blocking call passes.
 */
#include <pthread.h>
#include <stdlib.h>

#include "future_internal.h" /* PX__TLS */
#include "gil.h"

struct px__gil {
	pthread_mutex_t mu;
};

/* The GIL the calling worker thread runs under, and whether it holds it. */
static PX__TLS struct px__gil *tls_gil;
static PX__TLS bool tls_held;
/* The calling thread's block hook (see px__set_block_hook). */
static PX__TLS void (*tls_hook)(void *);
static PX__TLS void *tls_hook_arg;

void px__set_block_hook(void (*fn)(void *arg), void *arg)
{
	tls_hook = fn;
	tls_hook_arg = arg;
}

struct px__gil *px__gil_create(void)
{
	struct px__gil *g = malloc(sizeof(*g));
	if (g)
		pthread_mutex_init(&g->mu, NULL);
	return g;
}

void px__gil_destroy(struct px__gil *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->mu);
	free(g);
}

void px__gil_bind_thread(struct px__gil *g)
{
	tls_gil = g;
}

void px__gil_acquire(struct px__gil *g)
{
	pthread_mutex_lock(&g->mu);
	tls_held = true;
}

void px__gil_release(struct px__gil *g)
{
	tls_held = false;
	pthread_mutex_unlock(&g->mu);
}

void *px__blocking_enter(void)
{
	if (tls_hook)
		tls_hook(tls_hook_arg);
	struct px__gil *g = tls_gil;
	if (!g || !tls_held)
		return NULL;
	px__gil_release(g);
	return g;
}

void px__blocking_leave(void *token)
{
	if (token)
		px__gil_acquire(token);
}
