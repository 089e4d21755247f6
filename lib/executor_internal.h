/*
 * lib/executor_internal.h - the contract between the executor interface
 * (lib/executor.c) and its backends (lib/inline.c, threadpool/, procpool/).
 * Private: never installed.
 *
 * A backend allocates its own struct with `struct px_executor` as the first
 * member. lib/executor.c validates arguments, allocates the future (which is
 * also the task record, see future_internal.h), copies the argument bytes into
 * it, counts `submitted`, and hands it to ops->submit. The backend owns the
 * future's task reference from then on and must complete it exactly once:
 * px__task_run() runs and completes it in-process; a backend that runs it
 * elsewhere completes it with px__future_store_result()/px__future_complete(),
 * counts it with px__counts_record() and drops the reference; a queued task
 * dropped at shutdown goes through px__future_cancel_queued(). Counters
 * `completed`, `failed`, `cancelled` are kept in struct px__counts (per worker, or per completing
 * thread), so every backend counts the same way; ops->stats adds them up.
 */
#ifndef PX_EXECUTOR_INTERNAL_H
#define PX_EXECUTOR_INTERNAL_H

#include <parex/executor.h>
#include <stdatomic.h>
#include <stdio.h>

#include "future_internal.h"

#define PX__BACKEND_NAME_MAX 16
#define PX__TRACE_PATH_MAX 4096 /* bytes of the trace key's path, NUL included */

/*
 * The effective configuration, after every layer is applied. Each field but
 * backend, init and init_arg is the storage of one row of the key table in
 * lib/config.c, which holds its name, default, parser and help text.
 */
struct px__config {
	char backend[PX__BACKEND_NAME_MAX];
	int workers;                   /* 0 = px_available_parallelism() */
	uint32_t queue;                /* submission queue capacity, tasks */
	bool block;                    /* full queue: block (1) or -EAGAIN (0) */
	uint32_t max_arg;              /* bytes */
	uint32_t max_result;           /* bytes */
	uint32_t spin_us;              /* spin this long before parking */
	bool gil;                      /* thread: CPython-style GIL emulation */
	bool help;                     /* thread: waiters run queued tasks */
	int64_t task_timeout_ms;       /* process: 0 = none */
	uint64_t max_tasks_per_worker; /* process: recycle after N; 0 = never */
	uint64_t max_worker_rss;       /* process: recycle past it; 0 = never */
	int64_t cancel_grace_ms;       /* process: cancel kills after this */
	uint64_t shm_size;             /* process: shared arena bytes */
	int workers_per_rank;          /* mpi: 0 = px_available_parallelism() */
	char local[PX__BACKEND_NAME_MAX]; /* mpi: the serving ranks' pool */
	px_worker_init_fn init;
	void *init_arg;
	char trace[PX__TRACE_PATH_MAX]; /* task timeline file; "": $PAREX_TRACE */
};

struct px_config {
	struct px__config c;
	char err[256];
};

struct px__backend_ops {
	/* The backend reports stats.submitted itself (the thread pool's tail
	 * is the count), sparing lib/executor.c an atomic add per submit. */
	bool counts_submitted;
	/* Allocates and starts a backend executor for cfg; *out is its
	 * struct px_executor (first member). Workers run on return. */
	int (*create)(px_executor **out, const struct px__config *cfg);
	/* Queues the task in f (state PENDING). flags: PX_SUBMIT_*; timeout_ns
	 * as in px_submit_opts, already defaulted. Returns 0, -EAGAIN when full
	 * and not blocking, PX_ESHUTDOWN. On failure f is untouched. */
	int (*submit)(px_executor *ex, px_future *f, unsigned flags,
		      int64_t timeout_ns);
	/* See px_executor_shutdown(); called at most once with wait=false and
	 * possibly again with wait=true. */
	void (*shutdown)(px_executor *ex, bool wait, bool cancel_pending);
	/* Frees the backend after a waited shutdown. */
	void (*destroy)(px_executor *ex);
	/* Fills every field but submitted: queued, running, workers,
	 * respawns, and the px__counts sums completed/failed/cancelled/
	 * busy_ns. */
	void (*stats)(px_executor *ex, px_executor_stats *out);
	int (*alloc)(px_executor *ex, size_t size, void **out);
	void (*free)(px_executor *ex, void *p);
	/* Optional (NULL: -ENOTSUP): px_executor_resize(), workers already
	 * checked to be 1..4096. */
	int (*resize)(px_executor *ex, int workers);
	/*
	 * Optional (NULL: waiters only spin and sleep): called by a thread
	 * about to wait for f, a future of this executor that was not yet
	 * finished, through px__future_help(), which keeps ex alive for the
	 * call (ex->helping). The backend may use the waiting thread: run
	 * queued tasks on it, or complete finished tasks' futures itself
	 * instead of waking a third party. Returns > 0 when it made progress
	 * (the waiter checks f and calls again), 0 when there is nothing to do
	 * (the waiter spins and sleeps as before). Never blocks past deadline
	 * (an absolute CLOCK_MONOTONIC time, PX__NO_DEADLINE for none) except
	 * inside a task it chose to run.
	 */
	int (*wait_help)(px_executor *ex, px_future *f, int64_t deadline);
};

struct px_executor {
	const struct px__backend_ops *ops;
	/* Task timelines (lib/trace.h): NULL when off. Set by
	 * px_executor_create() after ops->create, before the executor is
	 * returned (so before any submit); finished by px__executor_fini(). */
	struct px__trace *trace;
	struct px__config cfg;
	atomic_int shut;                /* 1 once shutdown began */
	/* Waiting threads inside ops->wait_help (px__future_help); destroy
	 * waits for none before freeing. */
	atomic_int helping;
	/* Written on every submit: padded off the lines workers read (by
	 * padding, not alignas, so backends may allocate with malloc). */
	char pad_before_[64];
	_Atomic uint64_t submitted;
	char pad_after_[56];
};

/*
 * What a running task sees. Each backend embeds it in its own per-worker
 * context and fills the hooks; px_task_* in lib/task.c dispatch through them.
 */
struct px__task_ops {
	/* Store a copy of the result; -EMSGSIZE past max_result. */
	int (*set_result)(px_task *t, const void *data, size_t len);
	/* Store a copy of the error message (NUL-terminated). */
	void (*set_message)(px_task *t, const char *msg);
	void (*blocking_begin)(px_task *t);
	void (*blocking_end)(px_task *t);
	/*
	 * Optional: writable storage for a result of len bytes (at most
	 * max_result), which becomes the task's result if the task then
	 * returns 0 without another set_result. Lets map's chunk task build
	 * its output in place instead of copying it over. NULL when the
	 * backend has none (the caller falls back to set_result).
	 */
	void *(*result_buffer)(px_task *t, size_t len);
	/* Optional: px_task_cancelled() for a task that has no in-process
	 * future (t->f NULL), such as a process worker's. */
	bool (*cancelled)(const px_task *t);
};

struct px_task {
	const struct px__task_ops *ops;
	int worker_id;
	uint32_t max_result;
	px_future *f;   /* the in-process future (threads, inline); NULL in a
			   process worker */
	void *blocking; /* token of the open blocking section */
	unsigned blocking_depth; /* nested blocking_begin calls */
	void *backend;  /* free for the backend's ops */
	/* A map record's result slot: when set, px_task_return() copies the
	 * result straight there and stores its length in res_len, without
	 * the ops (lib/executor.c, chunk_task). */
	unsigned char *res_slot;
	size_t res_len;
};

/*
 * Outcome counters of one worker (or one completing thread), written only by
 * it with relaxed atomics and summed by stats, so counting costs no shared
 * cache line per task.
 */
struct px__counts {
	_Atomic uint64_t completed;
	_Atomic uint64_t failed;
	_Atomic uint64_t cancelled;
	_Atomic uint64_t busy_ns;
};

/*
 * The outcome of in-process task f whose fn returned err: -ECANCELED if a
 * PX_CANCEL_RUNNING cancel was accepted while it ran (px_task_cancelled()),
 * else err; from now on such a cancel fails with -EBUSY. px__task_run calls
 * it just before completing f (lib/executor.c).
 */
int px__task_coop_finish(px_future *f, int err);

/* Adds c's counters into out's completed/failed/cancelled/busy_ns. */
PX_API void px__counts_add(px_executor_stats *out, const struct px__counts *c);

/* Counts one outcome (err 0: completed; -ECANCELED: cancelled; else failed)
 * into c, from its single writer. */
PX_API void px__counts_record(struct px__counts *c, int err);

/*
 * Storage for len bytes of f's result, for its producer to fill before
 * completing it (the in-process result_buffer op, procpool's collector).
 * Reuses the buffer f already holds when it is big enough: map() attaches a
 * recycled chunk buffer to its futures before submitting them, with its
 * capacity in result_len while pending. Otherwise res_inline or a fresh
 * malloc (freed with the future). NULL on ENOMEM or past UINT32_MAX.
 */
PX_API void *px__future_result_buffer(px_future *f, size_t len);

/* Task ops for backends that run tasks in-process on a px_future. */
extern const struct px__task_ops px__future_task_ops;

/*
 * Runs the task stored in f on the calling thread, as worker worker_id:
 * PENDING -> RUNNING (skips it and returns false if cancelled meanwhile),
 * calls fn, completes the future with the outcome, counts it into c (and,
 * if timed, its run time into c->busy_ns), and drops the task's reference.
 * Returns true if it ran. The thread pool and the inline backend use it.
 */
bool px__task_run(px_executor *ex, px_future *f, int worker_id,
		  const struct px__task_ops *ops, struct px__counts *c, bool timed);

/*
 * Initialises the common part of a backend's executor; backends call it first
 * in ops->create, before starting workers.
 */
PX_API void px__executor_init(px_executor *ex, const struct px__backend_ops *ops,
			      const struct px__config *cfg);

/*
 * Ends the common part of a backend's executor: writes its task timeline
 * (lib/trace.h), if any. Backends call it as they free the executor, once
 * no worker can run a task of it any more (joined, or the last one out).
 */
PX_API void px__executor_fini(px_executor *ex);

/*
 * Completes a queued (never started) task as cancelled if it still can be,
 * counts it into c, and drops the task's reference. For
 * shutdown(cancel_pending). c's single-writer rule applies.
 */
void px__future_cancel_queued(struct px__counts *c, px_future *f);

/*
 * One row of the backend table (lib/config.c): a backend's name, its
 * constructor and the config keys it uses. The table is the only place that
 * names a backend; configuration, error messages, px_config_format() and the
 * README's key table all follow from it and from the key table.
 */
struct px__backend {
	const char *name;   /* [a-z0-9_], 1..PX__BACKEND_NAME_MAX-1 bytes */
	const struct px__backend_ops *ops;
	/* The keys this backend uses, separated by spaces. Others are
	 * accepted and ignored, except that a key marked strict in the key
	 * table fails px_executor_create() when set to other than its
	 * default. */
	const char *keys;
};

/*
 * Adds a backend from outside lib/config.c's table, for backends built in
 * other libraries (libparex-mpi): its entry (which must outlive the process's
 * use of parex) is then found by name like a built-in one. Exported, but not
 * public API: a backend library calls it from a constructor, so that linking
 * (or dlopen-ing) the library is what makes the backend available:
 *
 *     static const struct px__backend mpi = { "mpi", &mpi_ops, "workers ..." };
 *     __attribute__((constructor)) static void mpi_register(void)
 *     {
 *             px__backend_register(&mpi);
 *     }
 *
 * Such a library also calls the px__ functions its backend needs
 * (px__executor_init(), px__future_*), which are hidden in libparex.so: it
 * links parex_static, or those get PX_API the same way.
 *
 * Thread-safe. Returns 0, -EINVAL for a bad name, missing ops or an unknown
 * key, -EEXIST if the name is taken, -ENOSPC past PX__BACKENDS_EXTRA.
 */
#define PX__BACKENDS_EXTRA 8
PX_API int px__backend_register(const struct px__backend *b);

/*
 * map()'s chunk task (lib/executor.c). Its argument begins with the record
 * function, a px_task_fn, which a backend running tasks in another address
 * space (libparex-mpi) must translate. Exported (PAREX_PRIVATE) for backend
 * libraries only, like the px__ functions above marked PX_API.
 */
PX_API px_task_fn px__map_chunk_task(void);

/* The backend called name, built in or registered; NULL if unknown. */
const struct px__backend *px__backend_find(const char *name);

/* Sets one key, as px_config_set() (source NULL: "spec"), in lib/config.c. */
int px__config_set_key(px_config *cfg, const char *key, const char *value,
		       const char *source);

/*
 * Copies s into buf (cap bytes), control characters as '?'. A longer s keeps
 * its head (or, with tail, its end) and gets "..." where it was cut, so that
 * a message always has room for the key and the source. Returns buf.
 */
const char *px__clip(char *buf, size_t cap, const char *s, bool tail);

/* Sizes of the clipped parts: a message stays within 256 bytes. */
#define PX__CLIP_SOURCE 72
#define PX__CLIP_KEY 32
#define PX__CLIP_VALUE 32

/*
 * Checks that cfg suits its backend b: every strict key (gil) that b does not
 * use has its default value. Returns 0, or -EINVAL with a message such as
 * "gil=1 needs the thread backend" in msg (len bytes, may be 0).
 */
int px__config_check(const struct px__config *cfg, const struct px__backend *b,
		     char *msg, size_t len);

/*
 * Writes the key table as the markdown table README.md shows (header, one
 * row per key, built-in and registered backends). For the README's check.
 */
void px__config_markdown(FILE *out);

/*
 * Parses a cgroup v2 cpu.max ("QUOTA PERIOD", or "max PERIOD"): stores
 * ceil(QUOTA/PERIOD), at least 1, or 0 for "max" (no cap). Returns 0, or
 * -EINVAL for anything else.
 */
int px__cpu_max_parse(const char *text, int *cpus);

/* The built-in backends' ops, listed in lib/config.c's backend table. */
extern const struct px__backend_ops px__inline_backend;
extern const struct px__backend_ops px__thread_backend;
extern const struct px__backend_ops px__process_backend;

/*
 * px_executor_submit() with the argument given in two parts, a then b,
 * copied straight into the future: map() builds a chunk's argument (header,
 * then records) there without staging it first. res_buf, if not NULL, is a
 * malloc'd buffer of res_cap bytes attached to the future for its result
 * (see px__future_result_buffer()); on failure the caller keeps it.
 * Returns as px_executor_submit() (lib/executor.c).
 */
int px__submit_parts(px_executor *ex, px_task_fn fn, const void *a,
		     size_t alen, const void *b, size_t blen, void *res_buf,
		     uint32_t res_cap, const px_submit_opts *opts,
		     px_future **out);

/* Plain-memory px_executor_alloc/free for the in-process backends (heap.c). */
int px__heap_alloc(px_executor *ex, size_t size, void **out);
void px__heap_free(px_executor *ex, void *p);


/*
 * Lends the calling thread, about to wait for f, to f's executor through its
 * ops->wait_help. Returns what wait_help returned, or 0 when f has no
 * executor, its executor has no wait_help, or f is already finished. Pins
 * the executor first: ex->helping is raised under f's lock bit while f is
 * unfinished, so it is raised before f completes, and so before any
 * shutdown that waited for f returns; px_executor_destroy() waits for
 * helping to drop to zero before freeing.
 */
int px__future_help(px_future *f, int64_t deadline);

/*
 * For px_executor_destroy(): true if this thread is inside a wait_help call
 * of ex (a done callback it runs destroys ex). The outermost such frame is
 * then marked to destroy ex once it returns, and the caller only shuts ex
 * down. False otherwise.
 */
bool px__help_defer_destroy(px_executor *ex);

#endif /* PX_EXECUTOR_INTERNAL_H */
