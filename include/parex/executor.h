/*
 * parex/executor.h - one interface over threads and processes.
 *
 * An executor runs tasks on a backend picked by configuration:
 *   inline   runs each task in the submitting thread (debugging; the
 *            sequential baseline);
 *   thread   a pool of threads in this process;
 *   process  a pool of forked worker processes over shared memory.
 * The same task code runs unchanged on each, because arguments and results
 * pass by value (copied) on every backend. Large data goes through
 * px_executor_alloc(), which both kinds of worker can read and write.
 *
 * Configuration, lowest precedence first:
 *   1. built-in defaults;
 *   2. the INI file named by $PAREX_CONFIG, else the program's default file
 *      if it set one with px_config_set_default_file() and it exists
 *      (section [executor], keys as below); parex reads no file on its own;
 *   3. the spec in $PAREX_EXECUTOR;
 *   4. the spec the program passes to px_executor_open().
 * A spec is "BACKEND" or "BACKEND:key=value,key=value", or ":key=value" to
 * change keys only. Keys (see README.md for the full table): workers, queue,
 * block, max_arg, max_result, spin_us, gil (thread), task_timeout_ms,
 * max_tasks_per_worker, max_worker_rss, cancel_grace_ms, shm_size
 * (process), trace (all).
 *
 * trace=PATH (or $PAREX_TRACE=PATH) records a task timeline: per task its
 * submit, start and end times, worker (thread index, or process slot and
 * pid) and outcome, written to PATH as Chrome trace-event JSON (Perfetto,
 * chrome://tracing) when the executor is destroyed, one track per worker.
 * The file is created by px_executor_create(), which fails with its errno
 * if it cannot be. Off, it costs one predictable branch per task.
 */
#ifndef PAREX_EXECUTOR_H
#define PAREX_EXECUTOR_H

#include <parex/future.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct px_executor px_executor;
typedef struct px_config px_config;

/* What a running task sees of its worker; valid only during the call. */
typedef struct px_task px_task;

/*
 * A task: fn(task, arg, arg_len) with a private copy of the submitted argument
 * bytes. Return 0 for success (with the result set by px_task_return(), or no
 * bytes), or a negative error code that becomes the future's error.
 */
typedef int (*px_task_fn)(px_task *t, const void *arg, size_t arg_len);

/*
 * Sets the task's result to a copy of len bytes at data (a later call
 * replaces it). Returns 0, or -EMSGSIZE when len exceeds the executor's
 * max_result (the task should then return that code).
 */
PX_API int px_task_return(px_task *t, const void *data, size_t len);

/*
 * Sets a message for the error the task is about to return, printf-style,
 * and returns err so a task can `return px_task_fail(t, -EIO, "...", ...)`.
 */
PX_API int px_task_fail(px_task *t, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * The worker's index, 0 .. workers-1 (0 on the inline backend).
 *
 * Helping waiters (thread pool, key `help`, on by default): a thread that
 * waits with no timeout for one task (px_future_wait, px_future_get_i64, or
 * px_wait(PX_ALL_COMPLETED) with PX_FOREVER) that no worker has started,
 * and that has no done callback, runs that task itself, in place of a
 * worker that is asleep, as OpenMP's taskwait and oneTBB's wait do; the
 * task then sees that worker's index. So ids stay 0 ..
 * workers-1, no two tasks running at once share one, and no more than
 * `workers` tasks of the pool run at once (a one-worker pool still runs one
 * at a time). Only the awaited task runs there, never another queued one.
 * Such a task runs on the waiting thread's stack, with its thread-local
 * storage (a done callback added meanwhile runs there too). A worker whose task
 * waits for another task of its pool that no worker has started runs that
 * one nested, as itself, as does a waiter whose helped task waits: at most
 * 8 deep, then it waits. No helping with gil=1, in a timed wait, or, when a
 * worker initializer is set, in a thread other than the pool's workers;
 * help=0 turns it off.
 */
PX_API int px_task_worker_id(const px_task *t);

/*
 * Brackets a blocking section in a task (I/O, sleep). Under GIL emulation it
 * releases the GIL, as CPython does around blocking calls; otherwise it does
 * nothing. Calls must pair, in the same task.
 */
PX_API void px_task_blocking_begin(px_task *t);
PX_API void px_task_blocking_end(px_task *t);

/* Sleeps ns nanoseconds as a blocking section. Returns 0. */
PX_API int px_task_sleep(px_task *t, int64_t ns);

/*
 * Whether the task's future was cancelled with PX_CANCEL_RUNNING while the
 * task runs: the cooperative way to stop it. A task that can take long polls
 * it now and then and returns early; the future then completes as cancelled
 * (-ECANCELED) whatever the task returns, on every backend. On the thread and
 * inline backends this is the only way a running task stops; on the process
 * backend the task sees the cancel at once and its worker is killed (and
 * replaced) only if the task is still running cancel_grace_ms later. Cheap:
 * one load (a shared-memory load in a process worker). Returns false for
 * NULL.
 *
 *     static int crunch(px_task *t, const void *arg, size_t len)
 *     {
 *             for (long i = 0; i < 1000000000; i++) {
 *                     if ((i & 0xffff) == 0 && px_task_cancelled(t))
 *                             return -ECANCELED;
 *                     step(i);
 *             }
 *             return 0;
 *     }
 *     ...
 *     px_future_cancel(f, PX_CANCEL_RUNNING); // crunch returns soon
 */
PX_API bool px_task_cancelled(const px_task *t);

/*
 * A per-worker initializer, run once in each worker (thread or process)
 * before its first task, and again in every replacement worker. A non-zero
 * return fails the executor's creation (or, for a replacement, retires it).
 */
typedef int (*px_worker_init_fn)(int worker_id, void *arg);

/* Configuration --------------------------------------------------------- */

/* Creates a configuration holding the built-in defaults. 0 or -ENOMEM. */
PX_API int px_config_create(px_config **out);

/* Frees a configuration. Accepts NULL. */
PX_API void px_config_destroy(px_config *cfg);

/*
 * Applies a spec ("thread:workers=4"). source names where it came from for
 * error messages ("PAREX_EXECUTOR", "argument", ...; NULL: "spec"). Returns
 * 0, or -EINVAL for an unknown backend or key or a bad value, with a message
 * naming the key and the source in px_config_error().
 */
PX_API int px_config_apply(px_config *cfg, const char *spec, const char *source);

/* Sets one key ("backend" included), as px_config_apply() does. */
PX_API int px_config_set(px_config *cfg, const char *key, const char *value,
			 const char *source);

/*
 * Applies an INI file's [executor] section (other sections are left to other
 * components). Lines may be of any length, but a key's line may have at most
 * 198 bytes without its comment and trailing space. Returns 0; -ENOENT, -EACCES, -EISDIR (a directory)
 * or another open or read error, -EINVAL for a file that is not regular (or a
 * character device such as /dev/null), -EFBIG past 1 MiB; or -EINVAL for a
 * bad line, key or value. px_config_error() then names the file, the line and
 * the key. On error cfg is unchanged.
 */
PX_API int px_config_load_file(px_config *cfg, const char *path);

/*
 * Sets the process's default configuration file: the INI file that
 * px_config_load_env() (and so px_executor_open()) reads when $PAREX_CONFIG
 * is not set, if it exists. parex reads no file unless the program calls
 * this (or the user sets $PAREX_CONFIG); a program that wants "./parex.conf"
 * says so with px_config_set_default_file("parex.conf"). A relative path is
 * resolved against the working directory when the file is read. NULL (the
 * initial state) sets none. The path is copied. Thread-safe, but a call
 * racing with px_executor_open() in another thread may or may not apply to
 * it. Returns 0, -EINVAL for "", -ENAMETOOLONG, -ENOMEM.
 */
PX_API int px_config_set_default_file(const char *path);

/*
 * Applies the environment's layers: the file named by $PAREX_CONFIG (which
 * must exist and be readable, and not be a directory) or else the default
 * file set by px_config_set_default_file() (skipped if it does not exist),
 * then $PAREX_EXECUTOR. Returns 0 or the first error as above.
 */
PX_API int px_config_load_env(px_config *cfg);

/*
 * The number of CPUs this process may run on: its CPU affinity mask
 * (sched_getaffinity, as `taskset` sets it), capped by the CPU quota of its
 * cgroup v2 and the cgroups above it (cpu.max "QUOTA PERIOD" allows
 * ceil(QUOTA/PERIOD) CPUs, at least 1; "max" sets no cap). The default
 * worker count (workers=auto). Always at least 1; falls back to the online
 * CPUs when the mask cannot be read.
 */
PX_API int px_available_parallelism(void);

/* Sets the per-worker initializer (NULL: none). */
PX_API void px_config_set_initializer(px_config *cfg, px_worker_init_fn fn,
				      void *arg);

/* The message of the last failed call on cfg, or "" if none. */
PX_API const char *px_config_error(const px_config *cfg);

/*
 * Writes the effective configuration as a spec ("thread:workers=2,...",
 * every key in README.md's table order, workers=auto resolved) into buf
 * (always NUL-terminated when len > 0; buf may be NULL when len is 0).
 * Returns the length it needs, as snprintf does, or -EINVAL for a NULL cfg.
 */
PX_API int px_config_format(const px_config *cfg, char *buf, size_t len);

/* Executors -------------------------------------------------------------- */

/*
 * Creates an executor from cfg (which the caller keeps). Workers start now.
 * Returns 0, -EINVAL for an inconsistent configuration (gil=1 on a backend
 * other than thread), a worker initializer's failure, or a system error
 * (-ENOMEM, -EAGAIN).
 */
PX_API int px_executor_create(px_executor **out, const px_config *cfg);

/*
 * Creates an executor from defaults, the environment's layers (see
 * px_config_load_env) and then spec (may be NULL). On failure, if errbuf is
 * not NULL, writes a one-line message naming the key and its source.
 */
PX_API int px_executor_open(px_executor **out, const char *spec, char *errbuf,
			    size_t errlen);

/*
 * Flags for px_submit_opts.flags. Priorities: three levels, high, normal (no
 * flag) and low, because three already say "urgent", "ordinary" and
 * "background", and each level is one more queue a worker looks at. The
 * thread and process pools start queued tasks by level, FIFO within a level;
 * so that no level waits forever, every 8th take of a worker starts from the
 * lowest level (alternately low first and normal first), the others from
 * high. A task a worker already holds is not overtaken (the process pool's
 * windows). The inline backend runs every task at once and ignores them.
 * HIGH and LOW together are -EINVAL.
 */
enum {
	PX_SUBMIT_NOWAIT = 1u << 0, /* full queue: fail with -EAGAIN, don't block */
	PX_SUBMIT_HIGH = 1u << 1,   /* priority high: ahead of normal and low */
	PX_SUBMIT_LOW = 1u << 2,    /* priority low: after high and normal */
};

typedef struct px_submit_opts {
	unsigned flags;     /* PX_SUBMIT_* */
	int64_t timeout_ns; /* process backend: kill the task past this; 0 = pool
			       default (task_timeout_ms); PX_FOREVER = none */
} px_submit_opts;

/*
 * Submits fn with a copy of arg_len bytes at arg (arg may be NULL when
 * arg_len is 0). On success stores a new future (one reference, yours)
 * through out and returns 0. The bounded queue makes a full submit block
 * (config block=1, the default) or fail with -EAGAIN (block=0 or
 * PX_SUBMIT_NOWAIT). Returns -EINVAL for NULL arguments, -EMSGSIZE when
 * arg_len exceeds max_arg, PX_ESHUTDOWN after shutdown, -ENOMEM. opts may be
 * NULL.
 */
PX_API int px_executor_submit(px_executor *ex, px_task_fn fn, const void *arg,
			      size_t arg_len, const px_submit_opts *opts,
			      px_future **out);

/* Called by px_executor_map() as records finish: done of total. */
typedef void (*px_progress_fn)(size_t done, size_t total, void *arg);

typedef struct px_map_opts {
	size_t chunk;        /* records per task; 0 = pick one */
	int64_t timeout_ns;  /* for the whole map; 0 or PX_FOREVER = none */
	int *errors;         /* optional: per-record result code, n entries */
	px_progress_fn progress; /* optional, called in the mapping thread */
	void *progress_arg;
} px_map_opts;

/*
 * Runs fn over n argument records of arg_size bytes each (args is an array),
 * like Executor.map: records are grouped into tasks of opts->chunk records,
 * and each record's result (at most result_size bytes; shorter ones are zero
 * padded) lands in results[i] in input order. results may be NULL when
 * result_size is 0. Returns 0 when every record succeeded; otherwise the
 * error of the first failed record in input order (per-record codes in
 * opts->errors), -ETIMEDOUT (unfinished records are cancelled), or the
 * errors of px_executor_submit().
 */
PX_API int px_executor_map(px_executor *ex, px_task_fn fn, const void *args,
			   size_t arg_size, size_t n, void *results,
			   size_t result_size, const px_map_opts *opts);

/*
 * The source of px_executor_map_stream(): writes up to max records of the
 * map's arg_size bytes each at recs and returns how many it wrote, 0 at the
 * end of the input, or a negative errno to stop the map with that error.
 * Called in the mapping thread; recs is valid only during the call.
 */
typedef int64_t (*px_map_source_fn)(void *recs, size_t max, void *arg);

/*
 * The sink of px_executor_map_stream(): receives records first ..
 * first+count-1 (input order, each record exactly once): results holds count
 * results of result_size bytes each (zero padded; all zero where the code is
 * not 0) and codes the per-record result codes. Both are valid only during
 * the call. Returns 0 to go on, or a negative errno to stop the map: records
 * in flight are cancelled and the map returns that error. Called in the
 * mapping thread.
 */
typedef int (*px_map_sink_fn)(size_t first, size_t count, const void *results,
			      const int *codes, void *arg);

typedef struct px_map_stream_opts {
	size_t chunk;         /* records per task; 0 = pick one (small at
				 first, growing to what max_arg and
				 max_result allow) */
	size_t max_in_flight; /* records read from the source and not yet
				 delivered, at most; 0 = pick one (about a
				 megabyte of chunks, at least two per worker) */
	int64_t timeout_ns;   /* for the whole map; 0 or PX_FOREVER = none */
} px_map_stream_opts;

/*
 * Runs fn over records read from source, like px_executor_map() but without
 * an input or output array, so memory stays bounded however many records
 * pass: at most opts->max_in_flight records are read and not yet delivered.
 * Results reach sink in input order, chunk by chunk. arg is passed to both
 * callbacks. opts may be NULL. Every record the source supplied is
 * delivered once, unless the sink stops the map; on a timeout the records
 * not finished are cancelled and delivered with -ETIMEDOUT. Returns 0 when
 * every record succeeded; else, in this order of precedence, the sink's
 * error, -ETIMEDOUT, a submit error (px_executor_submit()'s; its records
 * are delivered with it), the source's error (after every record read
 * before it was delivered), the error of the first failed record, or
 * -EINVAL for NULL ex, fn, source or sink or a source returning more than
 * asked, -EMSGSIZE when one record does not fit max_arg/max_result, -ENOMEM.
 */
PX_API int px_executor_map_stream(px_executor *ex, px_task_fn fn,
				  size_t arg_size, px_map_source_fn source,
				  size_t result_size, px_map_sink_fn sink,
				  void *arg, const px_map_stream_opts *opts);

/*
 * Stops taking work, as Executor.shutdown(wait, cancel_futures): queued
 * tasks are cancelled if cancel_pending, else they still run; with wait the
 * call returns once every task has finished and the workers have exited.
 * Later submits return PX_ESHUTDOWN. Safe to call more than once. Returns 0.
 */
PX_API int px_executor_shutdown(px_executor *ex, bool wait, bool cancel_pending);

/*
 * Shuts down (wait, no cancel) if not done yet, and frees the executor.
 * Futures it handed out stay valid. Accepts NULL. Must not be called from one
 * of its own tasks.
 */
PX_API void px_executor_destroy(px_executor *ex);

/*
 * Grows or shrinks a live thread or process pool to `workers` workers
 * (1..4096). Growing starts workers at once (running the initializer in
 * each, as at creation); shrinking retires the highest-numbered workers once
 * they have finished the tasks they already took (a running task is never
 * stopped; no new task goes to them). Tasks queued meanwhile run exactly
 * once, and a shrink taken back by a grow keeps those workers. Safe from any thread, tasks included, and concurrently
 * with submits. stats.workers shows the new count. Worker ids stay below the
 * largest count the pool has had. A process pool can hold at most
 * max(4 x its starting workers, 16) workers (its shared memory is laid out
 * at creation): more is -ENOSPC. Returns 0; -EINVAL for NULL or a count out
 * of range; -ENOTSUP on the inline backend (and any backend that cannot);
 * PX_ESHUTDOWN after shutdown; a system error (-EAGAIN, -ENOMEM), or on the
 * thread pool a new worker's initializer failure, with the workers that did
 * start kept (on the process pool such a worker's slot is retired, as for a
 * replacement).
 */
PX_API int px_executor_resize(px_executor *ex, int workers);

typedef struct px_executor_stats {
	uint64_t submitted; /* accepted by submit */
	uint64_t completed; /* finished with a result */
	uint64_t failed;    /* finished with an error (crashes, timeouts too) */
	uint64_t cancelled; /* cancelled before or while running */
	uint64_t queued;    /* accepted, not yet started */
	uint64_t running;   /* running now */
	uint64_t workers;   /* live workers (px_executor_resize changes it) */
	uint64_t busy_ns;   /* total time workers spent running tasks */
	uint64_t respawns;  /* process backend: workers replaced (crash,
			       timeout, cancel, max_tasks_per_worker,
			       max_worker_rss) */
} px_executor_stats;

/* Fills *out with a consistent-enough snapshot. 0 or -EINVAL. */
PX_API int px_executor_stats_get(px_executor *ex, px_executor_stats *out);

/* The backend's name ("inline", "thread", "process"); NULL for NULL. */
PX_API const char *px_executor_backend(const px_executor *ex);

/* The number of workers the executor was created with (workers=auto:
 * px_available_parallelism() at creation), or the latest count given to
 * px_executor_resize(). -EINVAL for NULL. */
PX_API int px_executor_workers(const px_executor *ex);

/*
 * Allocates size bytes that tasks on this executor can read and write in
 * place, on any backend (plain memory for threads, the executor's shared
 * memory arena for processes), so large data passes by pointer instead of by
 * copy. Stores the pointer through out. Returns 0, -EINVAL, -ENOMEM (arena
 * full: raise shm_size). Memory is 64-byte aligned and zeroed.
 */
PX_API int px_executor_alloc(px_executor *ex, size_t size, void **out);

/* Frees memory from px_executor_alloc() on ex. Accepts NULL. Any other
 * pointer (another executor's, interior, freed already) is ignored, on
 * every backend. */
PX_API void px_executor_free(px_executor *ex, void *p);

#ifdef __cplusplus
}
#endif

#endif /* PAREX_EXECUTOR_H */
