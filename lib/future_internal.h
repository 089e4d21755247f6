/*
 * lib/future_internal.h - the future's layout, who owns which field, and
 * the hooks executors and the I/O layer use. Private: never installed.
 * Clock, deadlines and futexes come from px_clock.h and px_futex.h; the GIL
 * and blocking sections from gil.h.
 *
 * A future is also the task record of the in-process executors: fn, the
 * copied argument and the owning executor live in it, so a submit costs one
 * allocation from a per-thread free list and no malloc for small arguments
 * (PX__ARG_INLINE bytes) and results (PX__RES_INLINE bytes).
 */
#ifndef PX_FUTURE_INTERNAL_H
#define PX_FUTURE_INTERNAL_H

#include <parex/executor.h>
#include <parex/future.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdatomic.h>

#include "px_clock.h"
#include "px_futex.h"

/*
 * Thread-locals on hot paths use the initial-exec model: a plain %fs
 * access instead of a __tls_get_addr call per use. libparex is linked at
 * start-up (or dlopen'ed early enough to find the few bytes of static TLS
 * glibc keeps in reserve).
 */
#define PX__TLS __thread __attribute__((tls_model("initial-exec")))

#define PX__ARG_INLINE 48
#define PX__RES_INLINE 16

/* Bits of the state word above the px_future_state value (bits 0-1). */
#define PX__F_STATE_MASK 3u
#define PX__F_WAITERS 4u /* a thread sleeps in futex_wait on the word */
#define PX__F_LOCK 8u    /* spinlock: completion list and outcome */

/*
 * A node on a future's completion list: a done callback or a px_wait /
 * as-completed registration. fire() runs once, in the completing thread, after
 * the node has been unlinked; it must set `fired` (release) as its last touch
 * of anything the node's owner may free (see px__future_unlink).
 */
struct px__node {
	struct px__node *next, *prev;
	void (*fire)(struct px__node *n, px_future *f);
	atomic_int fired;
	bool linked;
};

/*
 * Who owns which field. "Owns" means: may write it, at the time given, and
 * nobody else writes it then; readers are ordered by the state word
 * (submission through a queue's release/acquire, completion through the
 * final state's release store and the waiter's acquire load).
 *
 *  - state, head, err: the future core (lib/future.c) only, through its
 *    functions; head/err/msg-at-completion under the LOCK bit.
 *  - refs: every holder, atomically (px_future_retain/release).
 *  - qnext: while the future is free, the free list (lib/future.c: the
 *    link inside a batch). While live, the backend whose queue holds it
 *    (procpool/: its FIFO and failure list, under the pool's lock; the
 *    thread pool with help on: the claim word, NULL from px__future_new,
 *    swapped atomically, threadpool/pool.h). lib/inline.c and io/ do not
 *    use it.
 *  - fn, ex, timeout_ns: written once by px_executor_submit (lib/executor.c)
 *    before ops->submit publishes the future; read-only afterwards
 *    (px__task_run reads fn, procpool/ reads fn and timeout_ns). timeout_ns
 *    is the task timeout, 0 = none (only procpool/ enforces it). An I/O
 *    future (a promise) has no task, but io/uring.c sets ex, once, before
 *    the future reaches its caller, to its context's helper: a stand-in
 *    executor whose only op is wait_help (px__future_help).
 *  - arg, arg_len, arg_inline: for a task, written by px_executor_submit
 *    (px__future_store_arg) and read-only afterwards. For a promise, the
 *    producer that created it (io/: the operation record, or timespec and
 *    copied payload in arg_inline). While free, the free list's link to the
 *    next batch and its length. future_free() frees arg unless it is
 *    arg_inline, whoever set it.
 *  - backend_data: the backend, from ops->submit (or io/'s start) until
 *    completion: procpool/ (started flag, worker and slot, under the pool's
 *    lock); io/ (the operation kind and flags, set at start; any thread ORs
 *    flags in with atomic builtins). lib/inline.c and the thread pool leave
 *    it alone; the core never reads it.
 *  - trace_submit_ns, trace_task: only when the executor or I/O context
 *    traces (lib/trace.h): written once by px_executor_submit (lib/
 *    executor.c) or io/'s start before the future is published, read-only
 *    afterwards by whoever records its event (px__task_run, procpool/'s
 *    collector and submitters, io/core.c). Stale (from an earlier use of
 *    the memory) when not tracing; nobody reads them then.
 *  - cancel_fn, cancel_arg: the producer, before the future becomes RUNNING
 *    (px_promise_on_cancel() before px_promise_start(), or procpool/'s
 *    submit before the collector starts it); px_future_cancel() reads them
 *    only after it saw RUNNING (acquire, pairs with the start's release).
 *  - result, result_len, res_inline, msg: the producer until completion,
 *    then the readers (read-only) and the last holder (future_free):
 *    executor.c may attach a result buffer before submit (map); the running
 *    task writes through px__future_store_result/_message and
 *    px__future_result_buffer between px__future_try_start and
 *    px__future_complete (thread pool: the worker; inline: the submitting
 *    thread; procpool/: the collector, copying the reply); promises install
 *    theirs in px_promise_set_* under the LOCK bit, so racing producers
 *    cannot both write. After completion map() may take the result buffer
 *    back, as the future's only holder.
 */
struct px_future {
	/* Line 0: what start, complete, wait and release touch. */
	_Atomic uint32_t state;  /* futex word: PX_FUTURE_* | PX__F_* bits */
	_Atomic uint32_t refs;
	int32_t err;             /* outcome once DONE/CANCELLED */
	uint32_t result_len;
	uint32_t arg_len;
	void *result;            /* res_inline or malloc'd */
	void *arg;               /* arg_inline or malloc'd */
	/* The completion list, circular backwards: head->prev is the tail. */
	struct px__node *head;
	char *msg;               /* malloc'd or NULL */
	px_future *qnext;        /* intrusive link for backend queues */

	/* Line 1: the rest of the task record. */
	px_task_fn fn;
	px_executor *ex;
	px_cancel_fn cancel_fn;
	void *cancel_arg;
	uint64_t backend_data;   /* free for the backend (procpool: slot id) */
	int64_t timeout_ns;      /* per-task timeout, 0 = none */
	/* Not initialised by px__future_new (stale unless tracing). */
	int64_t trace_submit_ns; /* tracing: submit time (CLOCK_MONOTONIC) */
	uint64_t trace_task;     /* tracing: the task's number */

	/* Line 2. */
	alignas(16) unsigned char res_inline[PX__RES_INLINE];
	alignas(16) unsigned char arg_inline[PX__ARG_INLINE];
};

/* Three cache lines: futures are carved from slabs at this stride. */
_Static_assert(sizeof(struct px_future) == 192, "px_future grew past 3 lines");
_Static_assert(offsetof(struct px_future, qnext) < 64 &&
		       offsetof(struct px_future, fn) == 64,
	       "px_future_release and the free list touch line 0 only");

/* A pending future with one reference, from the free list. NULL on ENOMEM. */
px_future *px__future_new(void);

/*
 * Copies len bytes into f's result storage, before completion. Returns 0 or
 * -ENOMEM. Only the producer calls it, and only before px__future_complete.
 */
int px__future_store_result(px_future *f, const void *data, size_t len);

/* Replaces f's message with a copy of msg (NULL clears). Before completion. */
PX_API void px__future_store_message(px_future *f, const char *msg);

/* Copies the task argument, the alen bytes at a then the blen bytes at b
 * (map() builds a chunk from a header and records this way), into f:
 * inline or malloc'd. 0 or -ENOMEM. */
int px__future_store_arg(px_future *f, const void *a, size_t alen,
			 const void *b, size_t blen);

/* PENDING -> RUNNING. Returns true if this call started it. */
bool px__future_try_start(px_future *f);

/*
 * Completes f: err 0 keeps the stored result; err < 0 drops it and records
 * err; -ECANCELED completes as CANCELLED. Wakes waiters, then runs the node
 * list in order, in this thread. Returns 0 or -EALREADY.
 */
PX_API int px__future_complete(px_future *f, int err);

/*
 * Whether f is still pending with nothing on its completion list: no done
 * callback and no px_wait(FIRST_COMPLETED / FIRST_EXCEPTION), as-completed
 * or channel registration. A backend's wait_help uses it to tell a thread
 * that waits for f alone from one that waits for any of several futures (or
 * a future whose callbacks could count on running elsewhere). Reads the list
 * under the lock bit; the answer may be stale as soon as it returns.
 */
bool px__future_pending_alone(px_future *f);

/* PENDING -> CANCELLED (a plain cancel). True if this call cancelled it. */
bool px__future_cancel_pending(px_future *f);

/*
 * Registers n on f's completion list, or, if f is already finished, returns
 * false without linking (the caller handles "already done").
 */
bool px__future_link(px_future *f, struct px__node *n);

/*
 * Removes n from f's list if it is still linked; if completion already took
 * it, waits until its fire() has set `fired`. After this returns the node's
 * memory may be reused.
 */
void px__future_unlink(px_future *f, struct px__node *n);

#endif /* PX_FUTURE_INTERNAL_H */
