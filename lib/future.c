/*
 * lib/future.c - the future's state machine, its completion list, the promise
 * side, and the per-thread free list futures come from.
 *
 * State word (f->state, also the futex word):
 *   bits 0-1  PENDING -> RUNNING -> DONE, or PENDING/RUNNING -> CANCELLED
 *   bit 2     PX__F_WAITERS: a thread sleeps in px_future_wait on the word
 *   bit 3     PX__F_LOCK: a spinlock guarding the completion list and the
 *             outcome fields
 * Nobody changes the word while another holds the lock bit: starting
 * (PENDING -> RUNNING), announcing a sleeper (WAITERS) and locking are CASes
 * that wait for the bit to clear. So a finisher needs one CAS to take the
 * lock, writes err/msg and detaches the list, then publishes the final state
 * and drops the lock with one release store; readers load the state with
 * acquire before reading the outcome. Completion callbacks fire after that,
 * outside the lock.
 *
 * Lock order: the lock bit is a leaf; nothing is taken while holding it, and
 * no callback runs under it.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "executor_internal.h"
#include "future_internal.h"
#include "gil.h"

static inline uint32_t st(uint32_t w)
{
	return w & PX__F_STATE_MASK;
}

static inline bool final_state(uint32_t s)
{
	return s == PX_FUTURE_DONE || s == PX_FUTURE_CANCELLED;
}

/* What lock_state() requires of the state it locks. */
enum { NEED_ANY, NEED_UNFINISHED, NEED_PENDING };

/*
 * Takes the lock bit, unless `need` is not met: -EALREADY if the future is
 * finished (NEED_UNFINISHED, NEED_PENDING), -EBUSY if it started
 * (NEED_PENDING). Stores the word as it was before locking through *was.
 * The acquire pairs with the release store that drops the bit.
 */
static int lock_state(px_future *f, int need, uint32_t *was)
{
	uint32_t w = atomic_load_explicit(&f->state, memory_order_relaxed);
	for (;;) {
		if (need != NEED_ANY && final_state(st(w)))
			return -EALREADY;
		if (need == NEED_PENDING && st(w) != PX_FUTURE_PENDING)
			return -EBUSY;
		if (w & PX__F_LOCK) {
			px__cpu_relax();
			w = atomic_load_explicit(&f->state, memory_order_relaxed);
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(&f->state, &w,
							  w | PX__F_LOCK,
							  memory_order_acquire,
							  memory_order_relaxed)) {
			*was = w;
			return 0;
		}
	}
}

/* Takes the lock bit whatever the state; returns the word as locked. */
static uint32_t lock_future(px_future *f)
{
	uint32_t w;
	lock_state(f, NEED_ANY, &w);
	return w | PX__F_LOCK;
}

/* Drops the lock bit, publishing w (the word without the bit). Nobody else
 * changed the word while we held the bit, so a plain store does. */
static void unlock_future(px_future *f, uint32_t w)
{
	atomic_store_explicit(&f->state, w & ~PX__F_LOCK, memory_order_release);
}

/* Free list ------------------------------------------------------------- */

/*
 * Futures are recycled through a per-thread cache, refilled from and spilled
 * to a global list in batches under a mutex, so the common submit/release
 * pair touches no shared cache line. They are carved from slabs of
 * SLAB_FUTURES at their own size (three cache lines, 64-byte aligned), not
 * one aligned_alloc each (which spends 320-384 bytes on one), so a burst of
 * futures walks half the memory. A slab is never returned to malloc: idle
 * futures stay for reuse, as many as were ever live at once, reachable from
 * the slab list. Under AddressSanitizer every future is a fresh malloc, so
 * use-after-release is caught.
 */
#if defined(__SANITIZE_ADDRESS__)
#define PX__NO_FUTURE_CACHE 1
#endif

#define CACHE_MAX 256   /* futures kept per thread */
#define CACHE_BATCH 128 /* moved to/from the global list at a time */
#define SLAB_FUTURES 64 /* futures carved from one allocation */
#define CB_CACHE_MAX 64 /* done-callback nodes kept per thread */

struct cb_node {
	struct px__node node;
	px_done_fn fn;
	void *arg;
	struct cb_node *free_next; /* in a thread's node cache */
};

#ifndef PX__NO_FUTURE_CACHE
struct fcache {
	px_future *head;
	unsigned n;
	bool registered;
	unsigned ncb;
	struct cb_node *cb; /* spare done-callback nodes */
};

/* A slab: its link in the slab list, then the futures, 64-byte aligned. */
struct slab {
	alignas(64) struct slab *next;
	px_future f[SLAB_FUTURES];
};

/*
 * The global list is a stack of batches ("magazines"): each batch is a
 * qnext-linked list whose first future carries the link to the next batch
 * (in `arg`, unused while free) and its length (in `arg_len`), so a refill
 * or a spill moves a whole batch in O(1) under the mutex.
 */
static PX__TLS struct fcache tcache;
static pthread_mutex_t glock = PTHREAD_MUTEX_INITIALIZER;
static px_future *gbatches;
static struct slab *gslabs; /* every slab, for good (under glock) */
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

/* Moves the first n futures of c to the global stack as one batch. */
static void spill(struct fcache *c, unsigned n)
{
	px_future *first = c->head, *last = first;
	for (unsigned i = 1; i < n; i++)
		last = last->qnext;
	c->head = last->qnext;
	c->n -= n;
	last->qnext = NULL;
	pthread_mutex_lock(&glock);
	first->arg = gbatches;
	first->arg_len = n;
	gbatches = first;
	pthread_mutex_unlock(&glock);
}

static void cache_thread_exit(void *p)
{
	struct fcache *c = p;
	if (c->n)
		spill(c, c->n);
	while (c->cb) {
		struct cb_node *nx = c->cb->free_next;
		free(c->cb);
		c->cb = nx;
	}
	c->ncb = 0;
	/* A destructor that runs after this one may still release futures
	 * or fire callbacks here: they register again, and glibc calls this
	 * once more (up to PTHREAD_DESTRUCTOR_ITERATIONS). */
	c->registered = false;
}

/* fork() from a threaded process must not leave the child with glock held
 * by a thread that does not exist there (a process-pool worker may use
 * futures): hold it across the fork, as malloc does with its arenas. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&glock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&glock);
}

static void fork_child(void)
{
	pthread_mutex_unlock(&glock);
}

static void cache_key_init(void)
{
	pthread_key_create(&cache_key, cache_thread_exit);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Makes sure the thread's cache is spilled when the thread exits. */
static void cache_register(struct fcache *c)
{
	if (c->registered)
		return;
	pthread_once(&cache_once, cache_key_init);
	pthread_setspecific(cache_key, c);
	c->registered = true;
}

/* Fills the empty cache c with a new slab's futures. false on ENOMEM. */
static __attribute__((noinline)) bool cache_fill_slab(struct fcache *c)
{
	struct slab *s = aligned_alloc(alignof(struct slab), sizeof(*s));
	if (!s)
		return false;
	for (unsigned i = 0; i + 1 < SLAB_FUTURES; i++)
		s->f[i].qnext = &s->f[i + 1];
	s->f[SLAB_FUTURES - 1].qnext = NULL;
	pthread_mutex_lock(&glock);
	s->next = gslabs;
	gslabs = s;
	pthread_mutex_unlock(&glock);
	c->head = &s->f[0];
	c->n = SLAB_FUTURES;
	return true;
}

static px_future *cache_get(void)
{
	struct fcache *c = &tcache;
	if (__builtin_expect(!c->head, 0)) {
		cache_register(c);
		pthread_mutex_lock(&glock);
		px_future *b = gbatches;
		if (b)
			gbatches = b->arg;
		pthread_mutex_unlock(&glock);
		if (b) {
			c->head = b;
			c->n = b->arg_len;
		} else if (!cache_fill_slab(c)) {
			return NULL;
		}
	}
	px_future *f = c->head;
	c->head = f->qnext;
	c->n--;
	if (c->head)
		__builtin_prefetch(c->head, 1);
	return f;
}

static void cache_put(px_future *f)
{
	struct fcache *c = &tcache;
	cache_register(c);
	f->qnext = c->head;
	c->head = f;
	if (++c->n > CACHE_MAX)
		spill(c, CACHE_BATCH);
}

static struct cb_node *cb_alloc(void)
{
	struct fcache *c = &tcache;
	struct cb_node *n = c->cb;
	if (n) {
		c->cb = n->free_next;
		c->ncb--;
		return n;
	}
	return malloc(sizeof(*n));
}

static void cb_free(struct cb_node *n)
{
	struct fcache *c = &tcache;
	if (c->ncb >= CB_CACHE_MAX) {
		free(n);
		return;
	}
	cache_register(c); /* frees the spare nodes at thread exit */
	n->free_next = c->cb;
	c->cb = n;
	c->ncb++;
}
#else
static struct cb_node *cb_alloc(void)
{
	return malloc(sizeof(struct cb_node));
}

static void cb_free(struct cb_node *n)
{
	free(n);
}
#endif

px_future *px__future_new(void)
{
	px_future *f;
#ifndef PX__NO_FUTURE_CACHE
	f = cache_get();
#else
	f = aligned_alloc(64, sizeof(*f));
#endif
	if (!f)
		return NULL;
	/* Everything but the trace fields (set when tracing, before use) and
	 * the inline buffers, field by field: a memset of the two lines
	 * becomes a `rep stos`, slow to start for 112 bytes. */
	atomic_init(&f->state, PX_FUTURE_PENDING);
	atomic_init(&f->refs, 1);
	f->err = 0;
	f->result_len = 0;
	f->arg_len = 0;
	f->result = f->res_inline;
	f->arg = NULL;
	f->head = NULL;
	f->msg = NULL;
	f->qnext = NULL;
	f->fn = NULL;
	f->ex = NULL;
	f->cancel_fn = NULL;
	f->cancel_arg = NULL;
	f->backend_data = 0;
	f->timeout_ns = 0;
	return f;
}

static void future_free(px_future *f)
{
	if (f->result != f->res_inline)
		free(f->result);
	if (f->arg && f->arg != f->arg_inline)
		free(f->arg);
	free(f->msg);
	/* Callbacks of a future that never completed are dropped unrun. */
	for (struct px__node *n = f->head, *nx; n; n = nx) {
		nx = n->next;
		cb_free((struct cb_node *)n);
	}
#ifndef PX__NO_FUTURE_CACHE
	cache_put(f);
#else
	free(f);
#endif
}

PX_API px_future *px_future_retain(px_future *f)
{
	if (f)
		atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	return f;
}

PX_API void px_future_release(px_future *f)
{
	if (!f)
		return;
	/* A holder that sees the count at 1 is the only one left: nobody can
	 * retain without a reference, so it frees without a read-modify-write
	 * (the acquire pairs with the other holders' releasing decrements).
	 * Otherwise acq_rel: the last release must see every other holder's
	 * writes. */
	if (atomic_load_explicit(&f->refs, memory_order_acquire) == 1 ||
	    atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
		future_free(f);
}

/* Storing the outcome (producer side, before completion) ---------------- */

int px__future_store_result(px_future *f, const void *data, size_t len)
{
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	if (len <= PX__RES_INLINE) {
		if (f->result != f->res_inline) {
			free(f->result);
			f->result = f->res_inline;
		}
	} else {
		void *p = malloc(len);
		if (!p)
			return -ENOMEM;
		if (f->result != f->res_inline)
			free(f->result);
		f->result = p;
	}
	if (len)
		memcpy(f->result, data, len);
	f->result_len = (uint32_t)len;
	return 0;
}

void px__future_store_message(px_future *f, const char *msg)
{
	free(f->msg);
	f->msg = msg ? strdup(msg) : NULL;
}

int px__future_store_arg(px_future *f, const void *a, size_t alen,
			 const void *b, size_t blen)
{
	size_t len = alen + blen;
	if (len <= PX__ARG_INLINE) {
		f->arg = f->arg_inline;
	} else {
		f->arg = malloc(len);
		if (!f->arg)
			return -ENOMEM;
	}
	if (alen)
		memcpy(f->arg, a, alen);
	if (blen)
		memcpy((unsigned char *)f->arg + alen, b, blen);
	f->arg_len = (uint32_t)len;
	return 0;
}

/* Transitions ------------------------------------------------------------ */

bool px__future_try_start(px_future *f)
{
	uint32_t w = atomic_load_explicit(&f->state, memory_order_relaxed);
	while (st(w) == PX_FUTURE_PENDING) {
		if (w & PX__F_LOCK) { /* a cancel may be in progress */
			px__cpu_relax();
			w = atomic_load_explicit(&f->state, memory_order_relaxed);
			continue;
		}
		/* acquire: the starter then reads the task record written before
		 * the submit's release (the queue's publication). release: a
		 * canceller that sees RUNNING (acquire) then reads the cancel
		 * hook the producer set before starting. */
		if (atomic_compare_exchange_weak_explicit(
			    &f->state, &w, (w & ~PX__F_STATE_MASK) | PX_FUTURE_RUNNING,
			    memory_order_acq_rel, memory_order_relaxed))
			return true;
	}
	return false;
}

/*
 * The detached completion lists this thread is firing, innermost first (a
 * callback may complete another future). px__future_unlink() called from
 * a callback for a node still ahead in one of them splices it out here:
 * waiting for it to fire would wait for this very thread.
 */
struct firing {
	px_future *f;
	struct px__node *next; /* the next node to fire */
	struct firing *outer;
};

static PX__TLS struct firing *tls_firing;

static void fire_list(px_future *f, struct px__node *n)
{
	struct firing fr = { f, NULL, tls_firing };
	tls_firing = &fr;
	while (n) {
		/* Read next before fire(): the node may be freed by it or by
		 * its owner as soon as `fired` is set. */
		fr.next = n->next;
		n->fire(n, f);
		n = fr.next;
	}
	tls_firing = fr.outer;
}

/* If n is still ahead in a list this thread is firing for f, takes it out
 * and returns true. */
static bool splice_from_firing(px_future *f, struct px__node *n)
{
	for (struct firing *fr = tls_firing; fr; fr = fr->outer) {
		if (fr->f != f)
			continue;
		for (struct px__node **pp = &fr->next; *pp; pp = &(*pp)->next) {
			if (*pp == n) {
				*pp = n->next;
				return true;
			}
		}
	}
	return false;
}

/*
 * What finish() installs: the final state, the error, and optionally a
 * message (owned, may be NULL) and a result (a malloc'd buffer to adopt, or
 * up to PX__RES_INLINE bytes to copy). Installing them under the lock bit
 * lets two producers race to complete a promise: the loser's outcome is
 * dropped whole.
 */
struct outcome {
	uint32_t state;
	int err;
	bool only_pending; /* a plain cancel: only from PENDING */
	char *msg;
	bool has_result;
	void *heap;
	const void *bytes;
	size_t len;
};

static void drop_outcome(struct outcome *o)
{
	free(o->msg);
	free(o->heap);
}

/*
 * Moves f to its final state, if not already final (and, with
 * only_pending, if not started). Taking the lock bit serialises finishers
 * against each other and against a start; the release store that drops it
 * publishes err/result/msg. Returns 0, -EALREADY, or -EBUSY.
 */
static int finish(px_future *f, struct outcome *o)
{
	uint32_t w;
	int busy = lock_state(f, o->only_pending ? NEED_PENDING : NEED_UNFINISHED, &w);
	if (busy) {
		drop_outcome(o);
		return busy;
	}
	f->err = o->err;
	if (o->msg) {
		free(f->msg);
		f->msg = o->msg;
	}
	if (o->has_result) {
		if (f->result != f->res_inline)
			free(f->result);
		if (o->heap) {
			f->result = o->heap;
		} else {
			f->result = f->res_inline;
			if (o->len)
				memcpy(f->res_inline, o->bytes, o->len);
		}
		f->result_len = (uint32_t)o->len;
	}
	struct px__node *list = f->head;
	f->head = NULL;
	for (struct px__node *n = list; n; n = n->next)
		n->linked = false;
	/* Publish the outcome, drop the lock and the WAITERS bit at once:
	 * every sleeper is woken just below. */
	atomic_store_explicit(&f->state, o->state, memory_order_release);
	if (w & PX__F_WAITERS)
		px__futex_wake_private(&f->state, INT_MAX);
	fire_list(f, list);
	return 0;
}

static int finish_with(px_future *f, uint32_t state, int err)
{
	struct outcome o = { .state = state, .err = err };
	return finish(f, &o);
}

int px__future_complete(px_future *f, int err)
{
	if (err > 0)
		err = -err;
	return finish_with(f, err == -ECANCELED ? PX_FUTURE_CANCELLED
						: PX_FUTURE_DONE, err);
}

bool px__future_pending_alone(px_future *f)
{
	uint32_t w;
	if (lock_state(f, NEED_PENDING, &w))
		return false;
	bool alone = f->head == NULL;
	unlock_future(f, w);
	return alone;
}

bool px__future_cancel_pending(px_future *f)
{
	struct outcome o = { .state = PX_FUTURE_CANCELLED, .err = -ECANCELED,
			     .only_pending = true };
	return finish(f, &o) == 0;
}

/* Completion list --------------------------------------------------------- */

bool px__future_link(px_future *f, struct px__node *n)
{
	atomic_store_explicit(&n->fired, 0, memory_order_relaxed);
	uint32_t w = lock_future(f);
	if (final_state(st(w))) {
		unlock_future(f, w);
		return false;
	}
	n->next = NULL;
	struct px__node *h = f->head;
	if (h) { /* circular backwards: h->prev is the tail */
		n->prev = h->prev;
		h->prev->next = n;
		h->prev = n;
	} else {
		n->prev = n;
		f->head = n;
	}
	n->linked = true;
	unlock_future(f, w);
	return true;
}

void px__future_unlink(px_future *f, struct px__node *n)
{
	uint32_t w = lock_future(f);
	if (n->linked) {
		struct px__node *h = f->head;
		if (n == h) {
			f->head = n->next;
			if (n->next)
				n->next->prev = n->prev; /* the tail */
		} else {
			n->prev->next = n->next;
			/* The tail's successor is the head's prev link. */
			(n->next ? n->next : h)->prev = n->prev;
		}
		n->linked = false;
		unlock_future(f, w);
		return;
	}
	unlock_future(f, w);
	if (atomic_load_explicit(&n->fired, memory_order_acquire) ||
	    splice_from_firing(f, n))
		return;
	/* Taken by a finisher in another thread: wait until its fire() is
	 * done with the node. Pairs with the release store of `fired` in the
	 * fire functions. */
	struct px__spin spin;
	px__spin_init(&spin, PX__NO_DEADLINE);
	while (!atomic_load_explicit(&n->fired, memory_order_acquire))
		px__spin_step(&spin);
}

static void cb_fire(struct px__node *n, px_future *f)
{
	struct cb_node *c = (struct cb_node *)n;
	c->fn(f, c->arg);
	cb_free(c);
}

PX_API int px_future_on_done(px_future *f, px_done_fn fn, void *arg)
{
	if (!f || !fn)
		return -EINVAL;
	struct cb_node *c = cb_alloc();
	if (!c)
		return -ENOMEM;
	c->node.fire = cb_fire;
	c->fn = fn;
	c->arg = arg;
	if (!px__future_link(f, &c->node))
		cb_fire(&c->node, f); /* already done: run here, now */
	return 0;
}

/* Queries ------------------------------------------------------------------- */

PX_API px_future_state px_future_state_get(const px_future *f)
{
	if (!f)
		return PX_FUTURE_PENDING;
	return (px_future_state)st(atomic_load_explicit(
		&((px_future *)f)->state, memory_order_acquire));
}

PX_API bool px_future_is_done(const px_future *f)
{
	return f && final_state(px_future_state_get(f));
}

PX_API int px_future_error(const px_future *f)
{
	if (!f)
		return -EINVAL;
	if (!px_future_is_done(f))
		return -EAGAIN;
	return f->err;
}

PX_API const char *px_future_message(const px_future *f)
{
	if (!f || !px_future_is_done(f))
		return NULL;
	return f->msg;
}

PX_API const void *px_future_result(const px_future *f, size_t *len)
{
	if (len)
		*len = 0;
	if (!f || px_future_state_get(f) != PX_FUTURE_DONE || f->err != 0)
		return NULL;
	if (len)
		*len = f->result_len;
	return f->result_len ? f->result : NULL;
}

/* Waiting ------------------------------------------------------------------ */

/*
 * The wait_help calls this thread is inside, innermost first. A done
 * callback that runs in one of them (the backend completed a future on this
 * thread) may destroy that very executor; px_executor_destroy() then only
 * shuts it down and leaves the rest to the outermost frame of that
 * executor, which destroys it on the way out (px__help_defer_destroy).
 */
struct help_frame {
	px_executor *ex;
	bool destroy;
	struct help_frame *outer;
};
static PX__TLS struct help_frame *tl_help;

bool px__help_defer_destroy(px_executor *ex)
{
	struct help_frame *outermost = NULL;
	for (struct help_frame *h = tl_help; h; h = h->outer)
		if (h->ex == ex)
			outermost = h;
	if (!outermost)
		return false;
	outermost->destroy = true;
	return true;
}

int px__future_help(px_future *f, int64_t deadline)
{
	/* ex is written before the future is published and never after, but
	 * only a pinned executor may be touched: pin under the lock bit, which
	 * completion also takes, so the pin precedes f's completion. */
	uint32_t w;
	if (lock_state(f, NEED_UNFINISHED, &w))
		return 0;
	px_executor *ex = f->ex;
	if (!ex || !ex->ops->wait_help) {
		unlock_future(f, w);
		return 0;
	}
	atomic_fetch_add_explicit(&ex->helping, 1, memory_order_relaxed);
	unlock_future(f, w);
	struct help_frame frame = { .ex = ex, .outer = tl_help };
	tl_help = &frame;
	int r = ex->ops->wait_help(ex, f, deadline);
	tl_help = frame.outer;
	/* release: the backend's accesses during the call happen before
	 * destroy's acquire load sees the count drop. */
	atomic_fetch_sub_explicit(&ex->helping, 1, memory_order_release);
	if (frame.destroy) {
		/* A callback in this frame destroyed ex: it was only shut
		 * down then; finish now, outside every frame of ex. */
		px_executor_destroy(ex);
		return 1; /* the waiter looks at f again: it is finished */
	}
	return r;
}

/* How long a waiter spins before it sleeps: long enough to catch a task that
 * finishes within a few cache-line round trips, short against a futex wake
 * (about 22 us on the reference VM). */
#define WAIT_SPIN_NS 20000

PX_API int px_future_wait(px_future *f, int64_t timeout_ns)
{
	if (!f)
		return -EINVAL;
	uint32_t w = atomic_load_explicit(&f->state, memory_order_acquire);
	if (final_state(st(w)))
		return 0;
	if (timeout_ns == 0)
		return -ETIMEDOUT;

	void *tok = px__blocking_enter();
	int64_t deadline = px__deadline_after(timeout_ns);
	int r = 0;
	/* Lend this thread to f's executor while it has something to do. */
	while (px__future_help(f, deadline) > 0) {
		w = atomic_load_explicit(&f->state, memory_order_acquire);
		if (final_state(st(w)))
			goto out;
		if (px__deadline_passed(deadline)) {
			r = -ETIMEDOUT;
			goto out;
		}
	}
	struct px__spin spin;
	px__spin_init(&spin, timeout_ns >= 0 && timeout_ns < WAIT_SPIN_NS
				     ? timeout_ns : WAIT_SPIN_NS);
	do {
		w = atomic_load_explicit(&f->state, memory_order_acquire);
		if (final_state(st(w)))
			goto out;
	} while (px__spin_step(&spin));
	for (;;) {
		w = atomic_load_explicit(&f->state, memory_order_acquire);
		if (final_state(st(w)))
			break;
		if (px__deadline_passed(deadline)) {
			r = -ETIMEDOUT;
			break;
		}
		if (w & PX__F_LOCK) {
			/* Locked for a moment: the bit may not be set now. */
			px__cpu_relax();
			continue;
		}
		if (!(w & PX__F_WAITERS)) {
			/* Announce the sleeper; the finisher's CAS sees the bit
			 * and wakes. Retry if the word changed meanwhile. */
			if (!atomic_compare_exchange_weak_explicit(
				    &f->state, &w, w | PX__F_WAITERS,
				    memory_order_acquire, memory_order_acquire))
				continue;
			w |= PX__F_WAITERS;
		}
		px__futex_wait_private(&f->state, w, deadline);
	}
out:
	px__blocking_leave(tok);
	return r;
}

PX_API int px_future_get_i64(px_future *f, int64_t timeout_ns, int64_t *out)
{
	if (!f || !out)
		return -EINVAL;
	int r = px_future_wait(f, timeout_ns);
	if (r)
		return r;
	if (f->err)
		return f->err;
	if (f->result_len != sizeof(int64_t))
		return -EMSGSIZE;
	memcpy(out, f->result, sizeof(int64_t));
	return 0;
}

/* Cancel ---------------------------------------------------------------------- */

PX_API int px_future_cancel(px_future *f, unsigned flags)
{
	if (!f || (flags & ~(unsigned)PX_CANCEL_RUNNING))
		return -EINVAL;
	uint32_t w = atomic_load_explicit(&f->state, memory_order_acquire);
	for (;;) {
		switch (st(w)) {
		case PX_FUTURE_CANCELLED:
			return 0;
		case PX_FUTURE_DONE:
			return -EBUSY;
		case PX_FUTURE_PENDING:
			if (px__future_cancel_pending(f))
				return 0;
			/* Started or finished meanwhile: look again. */
			w = atomic_load_explicit(&f->state, memory_order_acquire);
			continue;
		case PX_FUTURE_RUNNING:
			if ((flags & PX_CANCEL_RUNNING) && f->cancel_fn)
				return f->cancel_fn(f, f->cancel_arg);
			return -EBUSY;
		}
	}
}

/* Promise side ------------------------------------------------------------------ */

PX_API int px_promise_create(px_future **out)
{
	if (!out)
		return -EINVAL;
	*out = px__future_new();
	return *out ? 0 : -ENOMEM;
}

PX_API int px_promise_start(px_future *f)
{
	if (!f)
		return -EINVAL;
	if (px__future_try_start(f))
		return 0;
	uint32_t s = st(atomic_load_explicit(&f->state, memory_order_acquire));
	if (s == PX_FUTURE_CANCELLED)
		return -ECANCELED;
	return s == PX_FUTURE_RUNNING ? 0 : -EALREADY;
}

PX_API int px_promise_set_result(px_future *f, const void *data, size_t len)
{
	if (!f || (!data && len))
		return -EINVAL;
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	if (px_future_is_done(f))
		return -EALREADY;
	struct outcome o = { .state = PX_FUTURE_DONE, .has_result = true,
			     .bytes = data, .len = len };
	if (len > PX__RES_INLINE) {
		/* Copied before locking: the lock bit is held for a moment. */
		if (!(o.heap = malloc(len))) {
			finish_with(f, PX_FUTURE_DONE, -ENOMEM);
			return -ENOMEM;
		}
		memcpy(o.heap, data, len);
	}
	return finish(f, &o);
}

PX_API int px_promise_set_i64(px_future *f, int64_t value)
{
	return px_promise_set_result(f, &value, sizeof(value));
}

PX_API int px_promise_set_error(px_future *f, int err, const char *message)
{
	if (!f)
		return -EINVAL;
	if (err > 0)
		err = -err;
	if (err == 0)
		err = -EIO;
	struct outcome o = { .state = err == -ECANCELED ? PX_FUTURE_CANCELLED
							: PX_FUTURE_DONE,
			     .err = err };
	if (message && !(o.msg = strdup(message)))
		o.err = -ENOMEM;
	return finish(f, &o);
}

PX_API int px_promise_set_cancelled(px_future *f)
{
	if (!f)
		return -EINVAL;
	return finish_with(f, PX_FUTURE_CANCELLED, -ECANCELED);
}

PX_API void px_promise_on_cancel(px_future *f, px_cancel_fn fn, void *arg)
{
	if (!f)
		return;
	f->cancel_fn = fn;
	f->cancel_arg = arg;
}
