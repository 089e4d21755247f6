/*
 * lib/executor.c - the executor interface: opening, argument checks, future
 * allocation and submission, and dispatch to the backend ops. map() and
 * map_stream() on top of submit() are in map.c; the in-process backends'
 * allocator in heap.c.
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor_internal.h"
#include "trace.h"

void px__executor_init(px_executor *ex, const struct px__backend_ops *ops,
		       const struct px__config *cfg)
{
	ex->ops = ops;
	ex->trace = NULL;
	ex->cfg = *cfg;
	if (ex->cfg.workers <= 0)
		ex->cfg.workers = px_available_parallelism();
	atomic_init(&ex->shut, 0);
	atomic_init(&ex->helping, 0);
	atomic_init(&ex->submitted, 0);
}

PX_API int px_executor_create(px_executor **out, const px_config *cfg)
{
	if (!out || !cfg)
		return -EINVAL;
	*out = NULL;
	/* config.c lets only registered names into cfg->c.backend. */
	const struct px__backend *b = px__backend_find(cfg->c.backend);
	if (!b || px__config_check(&cfg->c, b, NULL, 0))
		return -EINVAL;
	int r = b->ops->create(out, &cfg->c);
	if (r)
		return r;
	/* Task timelines: opened once the backend stands, and set before the
	 * caller can submit, so every reader of ex->trace is ordered after
	 * this store by the submit that hands it a task. */
	char label[48];
	snprintf(label, sizeof(label), "parex %s executor", b->name);
	struct px__trace *t;
	r = px__trace_open(&t, cfg->c.trace, label,
			   strcmp(b->name, "process") ? "px-worker-" : "px-proc-");
	if (r) {
		px_executor_destroy(*out);
		*out = NULL;
		return r;
	}
	(*out)->trace = t;
	return 0;
}

void px__executor_fini(px_executor *ex)
{
	/* The file cannot be reported on from here (destroy returns void):
	 * px__trace_open created it already, so a failure now is a full
	 * disk or the like. */
	(void)px__trace_finish(ex->trace);
	ex->trace = NULL;
}

PX_API int px_executor_open(px_executor **out, const char *spec, char *errbuf,
			    size_t errlen)
{
	if (errbuf && errlen)
		errbuf[0] = 0;
	if (!out)
		return -EINVAL;
	*out = NULL;
	px_config *cfg;
	int r = px_config_create(&cfg);
	if (r)
		return r;
	r = px_config_load_env(cfg);
	if (!r && spec)
		r = px_config_apply(cfg, spec, "argument");
	if (!r) {
		r = px_executor_create(out, cfg);
		if (r) {
			char why[128];
			const struct px__backend *b = px__backend_find(cfg->c.backend);
			if (r != -EINVAL || !b ||
			    !px__config_check(&cfg->c, b, why, sizeof(why)))
				snprintf(why, sizeof(why), "%s", px_strerror(r));
			snprintf(cfg->err, sizeof(cfg->err),
				 "cannot create the '%s' executor: %s",
				 cfg->c.backend, why);
		}
	}
	if (r && errbuf && errlen)
		snprintf(errbuf, errlen, "%s", cfg->err);
	px_config_destroy(cfg);
	return r;
}

/*
 * Cooperative cancel of an in-process task. f->backend_data, unused by the
 * inline and thread backends, is its word: 0 while it runs, COOP_REQ once a
 * PX_CANCEL_RUNNING cancel was accepted, COOP_DONE once the task returned.
 * The two CAS/exchange on it decide the race between a late cancel and the
 * task's end (acq_rel both ways): a cancel that returned 0 always makes the
 * future end cancelled.
 */
#define COOP_REQ 1u
#define COOP_DONE 2u

static int coop_cancel(px_future *f, void *arg)
{
	(void)arg;
	uint64_t old = 0;
	if (__atomic_compare_exchange_n(&f->backend_data, &old, COOP_REQ, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return 0;
	return old == COOP_REQ ? 0 : -EBUSY;
}

int px__task_coop_finish(px_future *f, int err)
{
	if (f->cancel_fn != coop_cancel)
		return err; /* not a task of ours (a promise, another backend) */
	uint64_t old = __atomic_exchange_n(&f->backend_data, COOP_DONE,
					   __ATOMIC_ACQ_REL);
	return old == COOP_REQ ? -ECANCELED : err;
}

PX_API bool px_task_cancelled(const px_task *t)
{
	if (!t)
		return false;
	if (t->ops && t->ops->cancelled)
		return t->ops->cancelled(t);
	if (!t->f || t->f->cancel_fn != coop_cancel)
		return false;
	/* Acquire: pairs with coop_cancel's CAS. */
	return __atomic_load_n(&t->f->backend_data, __ATOMIC_ACQUIRE) == COOP_REQ;
}

/* See executor_internal.h. */
int px__submit_parts(px_executor *ex, px_task_fn fn, const void *a,
		     size_t alen, const void *b, size_t blen, void *res_buf,
		     uint32_t res_cap, const px_submit_opts *opts,
		     px_future **out)
{
	size_t arg_len = alen + blen;
	*out = NULL;
	if (arg_len > ex->cfg.max_arg)
		return -EMSGSIZE;
	if (atomic_load_explicit(&ex->shut, memory_order_relaxed))
		return PX_ESHUTDOWN;
	unsigned flags = opts ? opts->flags : 0;
	if (flags & ~(unsigned)(PX_SUBMIT_NOWAIT | PX_SUBMIT_HIGH | PX_SUBMIT_LOW))
		return -EINVAL;
	if ((flags & PX_SUBMIT_HIGH) && (flags & PX_SUBMIT_LOW))
		return -EINVAL;
	if (!ex->cfg.block)
		flags |= PX_SUBMIT_NOWAIT;
	int64_t timeout = opts ? opts->timeout_ns : 0;
	if (timeout == 0)
		timeout = ex->cfg.task_timeout_ms * PX_MSEC;
	/* A timeout too large to add to the clock is none, as everywhere. */
	if (px__timeout_unbounded(timeout))
		timeout = 0;

	px_future *f = px__future_new();
	if (!f)
		return -ENOMEM;
	int r = px__future_store_arg(f, a, alen, b, blen);
	if (r) {
		px_future_release(f);
		return r;
	}
	f->fn = fn;
	f->ex = ex;
	f->timeout_ns = timeout;
	/* PX_CANCEL_RUNNING on an in-process task: a request the task sees
	 * through px_task_cancelled() (a backend that runs tasks elsewhere
	 * installs its own hook and uses backend_data its own way). */
	f->backend_data = 0;
	f->cancel_fn = coop_cancel;
	f->cancel_arg = NULL;
	if (__builtin_expect(ex->trace != NULL, 0)) {
		f->trace_submit_ns = px__now_ns();
		f->trace_task = px__trace_task_id(ex->trace);
	}
	if (res_buf) {
		f->result = res_buf;
		f->result_len = res_cap;
	}
	/* One reference for the caller, one for the task. */
	atomic_store_explicit(&f->refs, 2, memory_order_relaxed);
	r = ex->ops->submit(ex, f, flags, timeout);
	if (r) {
		f->result = f->res_inline; /* res_buf stays the caller's */
		f->result_len = 0;
		atomic_store_explicit(&f->refs, 1, memory_order_relaxed);
		px_future_release(f);
		return r;
	}
	if (!ex->ops->counts_submitted)
		atomic_fetch_add_explicit(&ex->submitted, 1, memory_order_relaxed);
	*out = f;
	return 0;
}

PX_API int px_executor_submit(px_executor *ex, px_task_fn fn, const void *arg,
			      size_t arg_len, const px_submit_opts *opts,
			      px_future **out)
{
	if (!ex || !fn || !out || (!arg && arg_len))
		return -EINVAL;
	return px__submit_parts(ex, fn, arg, arg_len, NULL, 0, NULL, 0, opts, out);
}

PX_API int px_executor_shutdown(px_executor *ex, bool wait, bool cancel_pending)
{
	if (!ex)
		return -EINVAL;
	atomic_store(&ex->shut, 1);
	ex->ops->shutdown(ex, wait, cancel_pending);
	return 0;
}

PX_API void px_executor_destroy(px_executor *ex)
{
	if (!ex)
		return;
	atomic_store(&ex->shut, 1);
	if (px__help_defer_destroy(ex)) {
		/* Called from a done callback that ex's wait_help runs on this
		 * thread: the frame still uses ex. Stop taking tasks now; the
		 * frame destroys ex when it returns (px__future_help). */
		ex->ops->shutdown(ex, false, false);
		return;
	}
	ex->ops->shutdown(ex, true, false);
	/* Every future this shutdown waited for is finished, so no waiter
	 * can pin ex for them (px__future_help); wait for those still inside
	 * wait_help. */
	while (atomic_load_explicit(&ex->helping, memory_order_acquire))
		sched_yield();
	ex->ops->destroy(ex);
}

PX_API int px_executor_stats_get(px_executor *ex, px_executor_stats *out)
{
	if (!ex || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	ex->ops->stats(ex, out);
	if (!ex->ops->counts_submitted)
		out->submitted = atomic_load_explicit(&ex->submitted,
						      memory_order_relaxed);
	return 0;
}

PX_API const char *px_executor_backend(const px_executor *ex)
{
	return ex ? ex->cfg.backend : NULL;
}

PX_API int px_executor_workers(const px_executor *ex)
{
	/* Atomic: px_executor_resize() may change it meanwhile. */
	return ex ? __atomic_load_n(&ex->cfg.workers, __ATOMIC_RELAXED) : -EINVAL;
}

PX_API int px_executor_resize(px_executor *ex, int workers)
{
	if (!ex || workers < 1 || workers > 4096)
		return -EINVAL;
	if (!ex->ops->resize)
		return -ENOTSUP;
	if (atomic_load_explicit(&ex->shut, memory_order_relaxed))
		return PX_ESHUTDOWN;
	return ex->ops->resize(ex, workers);
}

PX_API int px_executor_alloc(px_executor *ex, size_t size, void **out)
{
	if (!ex || !out || size == 0)
		return -EINVAL;
	*out = NULL;
	return ex->ops->alloc(ex, size, out);
}

PX_API void px_executor_free(px_executor *ex, void *p)
{
	if (ex && p)
		ex->ops->free(ex, p);
}
