/*
 * lib/inline.c - the inline backend: each task runs in the submitting
 * thread, inside px_executor_submit(). For debugging (a plain stack trace,
 * no concurrency) and as the sequential baseline the demos measure against.
 */
#include <errno.h>
#include <stdlib.h>

#include "executor_internal.h"

struct inline_exec {
	struct px_executor ex;
	struct px__counts counts;
	_Atomic uint64_t running;
};

static int inline_create(px_executor **out, const struct px__config *cfg)
{
	struct inline_exec *ie = calloc(1, sizeof(*ie));
	if (!ie)
		return -ENOMEM;
	px__executor_init(&ie->ex, &px__inline_backend, cfg);
	ie->ex.cfg.workers = 1;
	if (cfg->init) {
		int r = cfg->init(0, cfg->init_arg);
		if (r) {
			free(ie);
			return r < 0 ? r : -ECANCELED;
		}
	}
	*out = &ie->ex;
	return 0;
}

static int inline_submit(px_executor *ex, px_future *f, unsigned flags,
			 int64_t timeout_ns)
{
	(void)flags;
	(void)timeout_ns;
	struct inline_exec *ie = (struct inline_exec *)ex;
	/* Several threads may submit at once, so outcomes are counted into a
	 * local px__counts (single writer) and added with atomic RMWs. */
	struct px__counts c = { 0 };
	atomic_fetch_add(&ie->running, 1);
	px__task_run(ex, f, 0, &px__future_task_ops, &c, true);
	atomic_fetch_sub(&ie->running, 1);
	atomic_fetch_add(&ie->counts.completed, atomic_load(&c.completed));
	atomic_fetch_add(&ie->counts.failed, atomic_load(&c.failed));
	atomic_fetch_add(&ie->counts.cancelled, atomic_load(&c.cancelled));
	atomic_fetch_add(&ie->counts.busy_ns, atomic_load(&c.busy_ns));
	return 0;
}

static void inline_shutdown(px_executor *ex, bool wait, bool cancel_pending)
{
	(void)ex;
	(void)wait;
	(void)cancel_pending; /* nothing is ever queued */
}

static void inline_destroy(px_executor *ex)
{
	px__executor_fini(ex);
	free(ex);
}

static void inline_stats(px_executor *ex, px_executor_stats *out)
{
	struct inline_exec *ie = (struct inline_exec *)ex;
	px__counts_add(out, &ie->counts);
	out->running = atomic_load(&ie->running);
	out->workers = 1;
}

const struct px__backend_ops px__inline_backend = {
	.create = inline_create,
	.submit = inline_submit,
	.shutdown = inline_shutdown,
	.destroy = inline_destroy,
	.stats = inline_stats,
	.alloc = px__heap_alloc,
	.free = px__heap_free,
};
