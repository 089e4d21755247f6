/*
 * lib/future_internal.h - the future's layout and the hooks executors and
 * the I/O layer use. Private: never installed.
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
#include <stdatomic.h>

#include "px_clock.h" /* px__now_ns, px__cpu_relax, px__spin_* */

/* sched_yield(), out of line (io/ calls it). */
void px__spin_yield(void);

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

struct px_future {
	_Atomic uint32_t state;  /* futex word: PX_FUTURE_* | PX__F_* bits */
	_Atomic uint32_t refs;
	int32_t err;             /* outcome once DONE/CANCELLED */
	uint32_t result_len;
	uint32_t arg_len;
	void *result;            /* res_inline or malloc'd */
	char *msg;               /* malloc'd or NULL */
	struct px__node *head, *tail;
	px_cancel_fn cancel_fn;
	void *cancel_arg;

	/* The task record, used by executors. */
	px_task_fn fn;
	px_executor *ex;
	void *arg;               /* arg_inline or malloc'd */
	px_future *qnext;        /* intrusive link for backend queues */
	uint64_t backend_data;   /* free for the backend (procpool: slot id) */
	int64_t timeout_ns;      /* per-task timeout, 0 = none */

	alignas(16) unsigned char res_inline[PX__RES_INLINE];
	alignas(16) unsigned char arg_inline[PX__ARG_INLINE];
};

/* A pending future with one reference, from the free list. NULL on ENOMEM. */
px_future *px__future_new(void);

/*
 * Copies len bytes into f's result storage, before completion. Returns 0 or
 * -ENOMEM. Only the producer calls it, and only before px__future_complete.
 */
int px__future_store_result(px_future *f, const void *data, size_t len);

/* Replaces f's message with a copy of msg (NULL clears). Before completion. */
void px__future_store_message(px_future *f, const char *msg);

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
int px__future_complete(px_future *f, int err);

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

/* futex helpers on a private 32-bit word; timeout_ns < 0: forever. Return 0,
 * -ETIMEDOUT, -EAGAIN (value changed), -EINTR. */
int px__futex_wait(_Atomic uint32_t *w, uint32_t expect, int64_t timeout_ns);
void px__futex_wake(_Atomic uint32_t *w, int n);

/* The deadline of a relative timeout; none (INT64_MAX) for PX_FOREVER. */
static inline int64_t px__deadline(int64_t timeout_ns)
{
	return timeout_ns < 0 ? INT64_MAX : px__now_ns() + timeout_ns;
}

/* Nanoseconds left until deadline: -1 if there is none, 0 once passed. */
static inline int64_t px__time_left(int64_t deadline)
{
	if (deadline == INT64_MAX)
		return -1;
	int64_t left = deadline - px__now_ns();
	return left > 0 ? left : 0;
}

/*
 * Blocking sections for GIL emulation: px__blocking_enter() releases the GIL
 * if the calling thread holds one (a GIL-mode pool worker), and returns a
 * token px__blocking_leave() uses to take it back. Every parex wait calls
 * them; the I/O layer's blocking calls should too.
 */
void *px__blocking_enter(void);

/*
 * A per-thread hook px__blocking_enter() runs first, before releasing
 * anything: the thread pool uses it so that a worker about to block runs the
 * tasks it has claimed but not started, which would otherwise wait behind
 * it (and could be what it waits for). NULL clears it.
 */
void px__set_block_hook(void (*fn)(void *arg), void *arg);
void px__blocking_leave(void *token);

/* Set by a GIL-mode worker thread: the GIL it holds while running tasks. */
struct px__gil;
void px__gil_bind_thread(struct px__gil *g);
struct px__gil *px__gil_create(void);
void px__gil_destroy(struct px__gil *g);
void px__gil_acquire(struct px__gil *g);
void px__gil_release(struct px__gil *g);

#endif /* PX_FUTURE_INTERNAL_H */
