/*
 * parex/future.h - the result of work that finishes later.
 *
 * A future completes exactly once, in one of three ways: with a result (bytes
 * the future owns and frees), with an error (a negative code plus an optional
 * message), or cancelled. Executors (thread and process pools) and the async
 * I/O layer all complete the same px_future, so a program can wait on a mix of
 * them with one px_wait() call.
 *
 * Ownership: every px_future is reference counted. The function that hands
 * you a future hands you one reference; drop it with px_future_release().
 * A future stays valid as long as you hold a reference, even after its
 * executor is destroyed.
 *
 * Blocking waits sleep on a futex on the future's state word: no spinning
 * forever and no mutex or condition variable per future, so a pending future
 * costs only its memory.
 */
#ifndef PAREX_FUTURE_H
#define PAREX_FUTURE_H

#include <parex/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct px_future px_future;

typedef enum px_future_state {
	PX_FUTURE_PENDING = 0,   /* created or queued, not started */
	PX_FUTURE_RUNNING = 1,   /* started; can no longer be cancelled plainly */
	PX_FUTURE_DONE = 2,      /* finished with a result or an error */
	PX_FUTURE_CANCELLED = 3, /* cancelled before it started */
} px_future_state;

/* Takes one more reference. Returns f. */
PX_API px_future *px_future_retain(px_future *f);

/* Drops one reference; the last one frees the future. Accepts NULL. */
PX_API void px_future_release(px_future *f);

/* The current state. A state read as DONE or CANCELLED never changes again. */
PX_API px_future_state px_future_state_get(const px_future *f);

/* True once the future is DONE or CANCELLED. */
PX_API bool px_future_is_done(const px_future *f);

/*
 * Waits until the future is done or cancelled, at most timeout_ns
 * (PX_FOREVER: no limit; 0: just poll). Returns 0 when it is, -ETIMEDOUT when
 * the time ran out, -EINVAL for NULL. A thread pool with GIL emulation
 * releases the GIL while its task waits here.
 */
PX_API int px_future_wait(px_future *f, int64_t timeout_ns);

/*
 * The outcome of a finished future: 0 for a result, the task's negative error
 * code, -ECANCELED if cancelled, or -EAGAIN while it is still pending or
 * running (this call never waits).
 */
PX_API int px_future_error(const px_future *f);

/*
 * The error message that came with the error, or NULL. The string belongs to
 * the future and lives as long as your reference.
 */
PX_API const char *px_future_message(const px_future *f);

/*
 * The result bytes of a future that finished successfully, and their length
 * through len (may be NULL). The bytes belong to the future and live as long
 * as your reference; they are aligned for any scalar type. Returns NULL (and
 * *len = 0) when the future is not done, failed, was cancelled, or returned
 * zero bytes.
 */
PX_API const void *px_future_result(const px_future *f, size_t *len);

/*
 * Convenience for results that are one int64_t (the I/O layer's byte counts
 * and file descriptors; many tasks). Waits like px_future_wait(), then stores
 * the value through out. Returns 0, the future's error, -ETIMEDOUT, or
 * -EMSGSIZE when the result is not exactly 8 bytes.
 */
PX_API int px_future_get_i64(px_future *f, int64_t timeout_ns, int64_t *out);

/* Flags for px_future_cancel(). */
enum {
	/*
	 * Also stop the work if it already runs, where the producer can: an
	 * executor's task sees it through px_task_cancelled() and may return
	 * early (on threads and inline that is the only way it stops; the
	 * process pool kills and replaces the worker if the task still runs
	 * cancel_grace_ms later); the I/O layer cancels the operation in the
	 * kernel. A future with no such producer answers -EBUSY.
	 */
	PX_CANCEL_RUNNING = 1u << 0,
};

/*
 * Cancels the future. Without flags it succeeds only before the work starts,
 * as in Python: returns 0 if the future is (now or already) cancelled,
 * -EBUSY if it runs or finished. With PX_CANCEL_RUNNING see above; the
 * future then completes as cancelled once the work is stopped, which may be a
 * little later than the call returns (wait on it).
 */
PX_API int px_future_cancel(px_future *f, unsigned flags);

/*
 * A done callback. It runs exactly once, in the thread that completes the
 * future (a pool worker, the process pool's collector thread, the I/O reaper
 * thread, or a thread waiting on a future of the same executor that took
 * the outcome itself: the process pool's waiters complete the replies they
 * take, theirs and others'; a thread-pool waiter that runs its own task runs
 * the callbacks added meanwhile; on the mpi backend, rank 0's waiting and
 * submitting threads complete what they receive while they drive MPI), or
 * at once in the calling thread if the future is already done. So a
 * callback must not wait for something the thread that registered it, or
 * any thread waiting on that executor, holds.
 * It runs just after the outcome is published, so a thread waiting on the
 * future may wake before the callback has run (as in Python).
 * It must not block for long; it may call any px_future function, including
 * px_future_release() on this future if it owns a reference.
 */
typedef void (*px_done_fn)(px_future *f, void *arg);

/*
 * Adds a done callback (see px_done_fn). Callbacks run in the order added.
 * Returns 0, -EINVAL for NULL, -ENOMEM.
 */
PX_API int px_future_on_done(px_future *f, px_done_fn fn, void *arg);

/* Conditions for px_wait(), as in concurrent.futures.wait. */
typedef enum px_wait_mode {
	PX_FIRST_COMPLETED = 0, /* any one done or cancelled */
	PX_FIRST_EXCEPTION = 1, /* any one failed or cancelled, else all done */
	PX_ALL_COMPLETED = 2,   /* every one done or cancelled */
} px_wait_mode;

/*
 * Waits on n futures until the condition of mode holds, at most timeout_ns.
 * If done is not NULL, done[i] is set to whether fs[i] is finished, on every
 * return but -EINVAL. Returns the number of finished futures when the
 * condition holds, -ETIMEDOUT when it does not by the deadline, -EINVAL for
 * a NULL array or entry or a bad mode, -ENOMEM. NULL entries are not allowed;
 * the same future may appear twice.
 */
PX_API int px_wait(px_future *const *fs, size_t n, px_wait_mode mode,
		   int64_t timeout_ns, bool *done);

/*
 * An as-completed set: yields each future added to it once, in the order
 * they finish (those already finished when added first). It can grow while
 * it is iterated (px_as_completed_add), and with PX_AS_COMPLETED_TAKE it
 * lets go of each future as it yields it, so memory stays flat however many
 * futures pass through. One thread iterates (next, close); any thread adds.
 */
typedef struct px_as_completed px_as_completed;

/* Flags for px_as_completed_create(). */
enum {
	/* next() passes the set's reference to the caller, who releases it;
	 * without it the set keeps every reference until closed. */
	PX_AS_COMPLETED_TAKE = 1u << 0,
	/* An empty set is not the end: next() waits for an add until
	 * px_as_completed_seal(); without it, next() returns PX_EEOF whenever
	 * every future added so far has been yielded. */
	PX_AS_COMPLETED_OPEN = 1u << 1,
};

/*
 * Creates an empty set with flags PX_AS_COMPLETED_*. The caller owns it and
 * closes it with px_as_completed_close(). Returns 0, -EINVAL for NULL out or
 * an unknown flag, -ENOMEM.
 */
PX_API int px_as_completed_create(px_as_completed **out, unsigned flags);

/*
 * Adds f to the set, which takes a reference of its own (the caller keeps
 * theirs). Callable from any thread while another iterates, from the
 * iterating thread between next() calls, and from done callbacks (of this
 * set's futures too), but not after or during px_as_completed_close(). The
 * same future may be added twice and is then yielded twice. Returns 0,
 * -EINVAL for NULL, -EPIPE once the set is sealed, -ENOMEM.
 */
PX_API int px_as_completed_add(px_as_completed *it, px_future *f);

/*
 * Declares that nothing more will be added: once every member has been
 * yielded, next() returns PX_EEOF (and wakes to say so). Any thread. Later
 * adds fail with -EPIPE. Returns 0, or -EINVAL for NULL.
 */
PX_API int px_as_completed_seal(px_as_completed *it);

/*
 * Opens a sealed set over fs[0..n), without flags: it holds a reference to
 * each future until closed. Returns 0, -EINVAL for a NULL array, entry or
 * out, -ENOMEM.
 */
PX_API int px_as_completed_open(px_as_completed **out, px_future *const *fs,
				size_t n);

/*
 * The next finished future, through out. Without PX_AS_COMPLETED_TAKE it is
 * borrowed (valid while the set is open; retain it to keep it longer); with
 * it, the reference is the caller's to release. Waits at most timeout_ns.
 * Returns 0, -ETIMEDOUT, PX_EEOF when every member has been yielded and the
 * set is sealed or was created without PX_AS_COMPLETED_OPEN (adding more
 * later and calling next() again then goes on), or -EINVAL for NULL.
 */
PX_API int px_as_completed_next(px_as_completed *it, int64_t timeout_ns,
				px_future **out);

/*
 * Closes the set and drops its references (futures not yet yielded, and
 * without PX_AS_COMPLETED_TAKE those yielded). Waits for a completion that
 * is firing on one of its futures in another thread. Accepts NULL.
 */
PX_API void px_as_completed_close(px_as_completed *it);

/*
 * The producer side ("promise"): code that is not an executor, such as the
 * I/O layer, creates a pending future and completes it. Exactly one of the
 * px_promise_set_* completions takes effect; a later one returns -EALREADY.
 */

/* Creates a pending future; the caller holds one reference. 0 or -ENOMEM. */
PX_API int px_promise_create(px_future **out);

/*
 * Marks the work as started (PENDING -> RUNNING), after which a plain
 * px_future_cancel() fails. Returns 0, or -ECANCELED if the future was
 * cancelled first (the producer should then drop the work).
 */
PX_API int px_promise_start(px_future *f);

/*
 * Completes the future with a copy of len bytes at data. Returns 0, -ENOMEM
 * (the future then completes with -ENOMEM instead), -EMSGSIZE (over 4 GiB),
 * or -EALREADY (then nothing of this call is kept).
 */
PX_API int px_promise_set_result(px_future *f, const void *data, size_t len);

/* Completes with an 8-byte int64_t result. 0 or -EALREADY. */
PX_API int px_promise_set_i64(px_future *f, int64_t value);

/*
 * Completes the future with a negative error code (a positive one is
 * negated; 0 becomes -EIO) and an optional message, copied. Returns 0 or
 * -EALREADY.
 */
PX_API int px_promise_set_error(px_future *f, int err, const char *message);

/*
 * Completes the future as cancelled, whatever its state (used by producers
 * that stopped running work). Returns 0 or -EALREADY.
 */
PX_API int px_promise_set_cancelled(px_future *f);

/*
 * Lets the producer stop running work on px_future_cancel(f,
 * PX_CANCEL_RUNNING): fn(f, arg) is called (in the cancelling thread) while
 * the future is RUNNING and must start the stop, returning 0, or a negative
 * code that px_future_cancel() passes on. Set it before px_promise_start().
 * A cancel may call fn just as the producer finishes the future, so arg must
 * stay valid until no px_future_cancel() on it can be in progress (the I/O
 * layer counts cancels in flight before it frees its context).
 */
typedef int (*px_cancel_fn)(px_future *f, void *arg);
PX_API void px_promise_on_cancel(px_future *f, px_cancel_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* PAREX_FUTURE_H */
