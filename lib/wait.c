/*
 * lib/wait.c - waiting on many futures: px_wait() and the as-completed
 * iterator.
 *
 * ALL_COMPLETED waits on each future in turn, the last first: futures
 * mostly finish in submission order, so this usually sleeps once, and costs
 * no registration at all. FIRST_COMPLETED and
 * FIRST_EXCEPTION register a node on every pending future; the node's fire()
 * bumps one futex word the waiter sleeps on, so n futures cost n nodes and
 * one sleeping thread, never a thread or a condvar per future.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

#include "executor_internal.h"
#include "future_internal.h"
#include "gil.h"

static bool is_failure(const px_future *f)
{
	return px_future_state_get(f) == PX_FUTURE_CANCELLED ||
	       (px_future_state_get(f) == PX_FUTURE_DONE && px_future_error(f) != 0);
}

/*
 * Whether the condition holds now, from one pass over the states: counts
 * finished futures into *ndone and, if done is not NULL, marks them there,
 * so the count and the flags always agree.
 */
static bool condition(px_future *const *fs, size_t n, px_wait_mode mode,
		      size_t *ndone, bool *done)
{
	size_t count = 0;
	bool failed = false;
	for (size_t i = 0; i < n; i++) {
		bool d = px_future_is_done(fs[i]);
		if (done)
			done[i] = d;
		if (d) {
			count++;
			if (is_failure(fs[i]))
				failed = true;
		}
	}
	*ndone = count;
	switch (mode) {
	case PX_FIRST_COMPLETED:
		return count > 0 || n == 0;
	case PX_FIRST_EXCEPTION:
		return failed || count == n;
	case PX_ALL_COMPLETED:
		return count == n;
	}
	return false;
}

/*
 * The word one waiter sleeps on while many futures may complete: fire()
 * bumps seq and wakes only if the waiter said it sleeps. seq_cst on both
 * sides (Dekker): the waiter stores `sleeping` then reloads seq; the firer
 * bumps seq then loads `sleeping`; one of them sees the other.
 */
struct waitset {
	_Atomic uint32_t seq;
	_Atomic uint32_t sleeping;
};

static void waitset_signal(struct waitset *ws)
{
	atomic_fetch_add(&ws->seq, 1);
	if (atomic_load(&ws->sleeping))
		px__futex_wake_private(&ws->seq, 1);
}

/* Sleeps until seq moves past `seen` or the deadline (PX__NO_DEADLINE:
 * none) passes; the caller re-checks either way. */
static void waitset_sleep(struct waitset *ws, uint32_t seen, int64_t deadline)
{
	atomic_store(&ws->sleeping, 1);
	if (atomic_load(&ws->seq) == seen)
		px__futex_wait_private(&ws->seq, seen, deadline);
	atomic_store(&ws->sleeping, 0);
}

struct wait_node {
	struct px__node node;
	struct waitset *ws;
};

static void wait_fire(struct px__node *n, px_future *f)
{
	(void)f;
	waitset_signal(((struct wait_node *)n)->ws);
	/* Last touch of the node and the waitset: after this the waiter may
	 * return and free both (px__future_unlink waits for it). */
	atomic_store_explicit(&n->fired, 1, memory_order_release);
}

/* Lends the waiting thread to the executor of the unfinished futures
 * (px__future_help), if they all belong to one: a backend's wait_help
 * watches its own executor, and would not see another's future finish.
 * True if it made progress. */
static bool help_one(px_future *const *fs, size_t n, int64_t deadline)
{
	px_future *first = NULL;
	for (size_t i = 0; i < n; i++) {
		if (px_future_is_done(fs[i]))
			continue;
		/* ex is written before the future is published; comparing the
		 * pointers touches no executor. */
		if (!first)
			first = fs[i];
		else if (fs[i]->ex != first->ex)
			return false;
	}
	return first && px__future_help(first, deadline) > 0;
}

/* How many futures ahead wait_all() prefetches. */
#define WAIT_PREFETCH 8

static int wait_all(px_future *const *fs, size_t n, int64_t timeout_ns,
		    bool *done)
{
	int64_t deadline = px__deadline_after(timeout_ns);
	int r = 0;
	/* Last first: futures mostly finish in submission order, so once the
	 * last is done the rest usually are, and the waiter sleeps once
	 * instead of catching up with the producer and sleeping again and
	 * again. */
	for (size_t i = n; i-- > 0 && r == 0;) {
		/* A long array is out of cache: ask for the state words a few
		 * futures ahead of this one. */
		if (i >= WAIT_PREFETCH)
			__builtin_prefetch(&fs[i - WAIT_PREFETCH]->state);
		if (!px_future_is_done(fs[i]))
			r = px_future_wait(fs[i], px__deadline_left(deadline));
	}
	if (done) {
		size_t ndone;
		condition(fs, n, PX_ALL_COMPLETED, &ndone, done);
	}
	return r ? r : (int)(n > INT_MAX ? INT_MAX : n);
}

PX_API int px_wait(px_future *const *fs, size_t n, px_wait_mode mode,
		   int64_t timeout_ns, bool *done)
{
	if ((!fs && n) || (mode != PX_FIRST_COMPLETED &&
			   mode != PX_FIRST_EXCEPTION && mode != PX_ALL_COMPLETED))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!fs[i])
			return -EINVAL;
	if (mode == PX_ALL_COMPLETED)
		return wait_all(fs, n, timeout_ns, done);

	size_t ndone;
	bool ok = condition(fs, n, mode, &ndone, done);
	if (ok || timeout_ns == 0)
		return ok ? (int)(ndone > INT_MAX ? INT_MAX : ndone) : -ETIMEDOUT;

	struct wait_node *nodes = calloc(n, sizeof(*nodes));
	if (!nodes)
		return -ENOMEM; /* done[] was filled by the first pass */
	struct waitset ws;
	atomic_init(&ws.seq, 0);
	atomic_init(&ws.sleeping, 0);
	for (size_t i = 0; i < n; i++) {
		nodes[i].node.fire = wait_fire;
		nodes[i].ws = &ws;
		if (!px__future_link(fs[i], &nodes[i].node))
			atomic_store_explicit(&nodes[i].node.fired, 1,
					      memory_order_relaxed);
	}

	void *tok = px__blocking_enter();
	int64_t deadline = px__deadline_after(timeout_ns);
	int r = 0;
	for (;;) {
		uint32_t seq = atomic_load(&ws.seq);
		if (condition(fs, n, mode, &ndone, NULL))
			break;
		if (px__deadline_passed(deadline)) {
			r = -ETIMEDOUT;
			break;
		}
		if (help_one(fs, n, deadline))
			continue;
		waitset_sleep(&ws, seq, deadline);
	}
	px__blocking_leave(tok);

	for (size_t i = 0; i < n; i++)
		px__future_unlink(fs[i], &nodes[i].node);
	free(nodes);
	/* One final pass: the count returned and done[] agree. */
	ok = condition(fs, n, mode, &ndone, done);
	if (r && ok)
		r = 0; /* it held after all, just at the deadline */
	return r ? r : (int)(ndone > INT_MAX ? INT_MAX : ndone);
}

/* As-completed ------------------------------------------------------------
 *
 * Every added future gets a node (malloc'd, so a set can grow without
 * bound and shrink as it yields). A node is on:
 *  - the membership list (added, not yet yielded; under mu, since adds come
 *    from any thread), and
 *  - the ready stack exactly once, when its future finishes: pushed by
 *    ac_fire(), or by the adder if the future was already finished. The
 *    iterating thread pops the stack into its local list.
 * A yielded node leaves the membership list. With PX_AS_COMPLETED_TAKE it is
 * freed at once if it was popped; one found by the scan (done, but its fire
 * still pending behind a slow callback) keeps a reference of its own and
 * waits on the `kept` list until it is popped. Without TAKE every yielded
 * node goes to `kept` and holds its reference until close, as documented.
 *
 * Locks: mu is taken by add, seal, and by next around the membership list;
 * it is never held while a callback runs, and ac_fire() takes no lock, so a
 * done callback may call px_as_completed_add().
 */

struct ac_node {
	struct px__node node;
	struct px_as_completed *it;
	px_future *f;
	struct ac_node *ready_next;  /* ready stack, then the local list */
	struct ac_node *prev, *next; /* membership (under mu), then kept */
	bool yielded;                /* the iterating thread's only */
};

struct px_as_completed {
	pthread_mutex_t mu;
	struct ac_node *members;          /* under mu */
	size_t outstanding;               /* under mu: added, not yielded */
	bool sealed;                      /* under mu */
	unsigned flags;                   /* PX_AS_COMPLETED_*, fixed */
	struct ac_node *kept;             /* iterating thread's */
	_Atomic(struct ac_node *) ready;  /* Treiber stack pushed by fire() */
	struct ac_node *local;            /* popped, in completion order */
	struct waitset ws;
};

static void ready_push(struct px_as_completed *it, struct ac_node *a)
{
	struct ac_node *head = atomic_load_explicit(&it->ready, memory_order_relaxed);
	do
		a->ready_next = head;
	/* release: the popper, which exchanges with acquire, sees ready_next */
	while (!atomic_compare_exchange_weak_explicit(&it->ready, &head, a,
						      memory_order_release,
						      memory_order_relaxed));
}

static void ac_fire(struct px__node *n, px_future *f)
{
	(void)f;
	struct ac_node *a = (struct ac_node *)n;
	struct px_as_completed *it = a->it;
	ready_push(it, a);
	waitset_signal(&it->ws);
	atomic_store_explicit(&n->fired, 1, memory_order_release);
}

static void list_add(struct ac_node **head, struct ac_node *a)
{
	a->prev = NULL;
	a->next = *head;
	if (*head)
		(*head)->prev = a;
	*head = a;
}

static void list_del(struct ac_node **head, struct ac_node *a)
{
	if (a->prev)
		a->prev->next = a->next;
	else
		*head = a->next;
	if (a->next)
		a->next->prev = a->prev;
	a->prev = a->next = NULL;
}

PX_API int px_as_completed_create(px_as_completed **out, unsigned flags)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (flags & ~(unsigned)(PX_AS_COMPLETED_TAKE | PX_AS_COMPLETED_OPEN))
		return -EINVAL;
	struct px_as_completed *it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	if (pthread_mutex_init(&it->mu, NULL)) {
		free(it);
		return -ENOMEM;
	}
	it->flags = flags;
	atomic_init(&it->ready, NULL);
	atomic_init(&it->ws.seq, 0);
	atomic_init(&it->ws.sleeping, 0);
	*out = it;
	return 0;
}

PX_API int px_as_completed_add(px_as_completed *it, px_future *f)
{
	if (!it || !f)
		return -EINVAL;
	struct ac_node *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->node.fire = ac_fire;
	a->it = it;
	a->f = px_future_retain(f);
	pthread_mutex_lock(&it->mu);
	if (it->sealed) {
		pthread_mutex_unlock(&it->mu);
		px_future_release(f);
		free(a);
		return -EPIPE;
	}
	list_add(&it->members, a);
	it->outstanding++;
	/* Linked (or pushed) under mu, so a scan never sees a member that is
	 * finished but neither linked nor on the stack. */
	if (!px__future_link(f, &a->node)) {
		ready_push(it, a);
		atomic_store_explicit(&a->node.fired, 1, memory_order_release);
	}
	pthread_mutex_unlock(&it->mu);
	/* Wakes a next() that waits for members (PX_AS_COMPLETED_OPEN). */
	waitset_signal(&it->ws);
	return 0;
}

PX_API int px_as_completed_seal(px_as_completed *it)
{
	if (!it)
		return -EINVAL;
	pthread_mutex_lock(&it->mu);
	it->sealed = true;
	pthread_mutex_unlock(&it->mu);
	waitset_signal(&it->ws);
	return 0;
}

PX_API int px_as_completed_open(px_as_completed **out, px_future *const *fs,
				size_t n)
{
	if (!out || (!fs && n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!fs[i])
			return -EINVAL;
	px_as_completed *it;
	int r = px_as_completed_create(&it, 0);
	if (r)
		return r;
	/* Already-finished futures are pushed as they are added, so they
	 * come first, in array order. */
	for (size_t i = 0; i < n && !r; i++)
		r = px_as_completed_add(it, fs[i]);
	if (r) {
		px_as_completed_close(it);
		return r;
	}
	px_as_completed_seal(it);
	*out = it;
	return 0;
}

/* Moves the ready stack to the local list, oldest completion first. */
static void take_ready(struct px_as_completed *it)
{
	struct ac_node *s = atomic_exchange_explicit(&it->ready, NULL,
						     memory_order_acquire);
	struct ac_node *rev = NULL;
	while (s) {
		struct ac_node *nx = s->ready_next;
		s->ready_next = rev;
		rev = s;
		s = nx;
	}
	if (!it->local) {
		it->local = rev;
		return;
	}
	struct ac_node *t = it->local;
	while (t->ready_next)
		t = t->ready_next;
	t->ready_next = rev;
}

/* Drops a node that was yielded by a scan and has now come off the ready
 * stack: its fire() is done with it (px__future_unlink waits for `fired`),
 * and under TAKE it holds a reference of its own. */
static void drop_kept(struct px_as_completed *it, struct ac_node *a)
{
	if (!(it->flags & PX_AS_COMPLETED_TAKE))
		return; /* stays on kept until close */
	list_del(&it->kept, a);
	px__future_unlink(a->f, &a->node);
	px_future_release(a->f);
	free(a);
}

/* Hands a out: through *out, and by the rules of the set's mode. */
static px_future *yield(struct px_as_completed *it, struct ac_node *a,
			bool popped)
{
	pthread_mutex_lock(&it->mu);
	list_del(&it->members, a);
	it->outstanding--;
	pthread_mutex_unlock(&it->mu);
	a->yielded = true;
	px_future *f = a->f;
	if (!(it->flags & PX_AS_COMPLETED_TAKE)) {
		list_add(&it->kept, a); /* the set's reference until close */
	} else if (popped) {
		/* Off the stack, so fire() has pushed it; unlink waits only
		 * for its last store. The reference passes to the caller. */
		px__future_unlink(f, &a->node);
		free(a);
	} else {
		/* Its fire() may still be pending (it will push the node):
		 * the node keeps a reference of its own until popped. */
		px_future_retain(f);
		list_add(&it->kept, a);
	}
	return f;
}

/* The next finished, not yet yielded future: from the ready list, else
 * from a scan of the members, since a future's state is published before
 * its completion list fires (an earlier slow callback may delay our node).
 * NULL if none. */
static px_future *next_ready(struct px_as_completed *it)
{
	for (;;) {
		if (!it->local)
			take_ready(it);
		if (!it->local)
			break;
		struct ac_node *a = it->local;
		it->local = a->ready_next;
		if (!a->yielded)
			return yield(it, a, true);
		drop_kept(it, a);
	}
	/* The oldest finished member (the list is newest first): when two
	 * finished while this thread looked elsewhere, the one added first
	 * comes first, as it would have through the ready list. */
	struct ac_node *found = NULL;
	pthread_mutex_lock(&it->mu);
	for (struct ac_node *a = it->members; a; a = a->next)
		if (px_future_is_done(a->f))
			found = a;
	pthread_mutex_unlock(&it->mu);
	/* Only this thread removes members, so found stays one. */
	return found ? yield(it, found, false) : NULL;
}

/* Whether next() has reached the end: no member left, and none to wait
 * for (a set without PX_AS_COMPLETED_OPEN, or a sealed one). */
static bool at_end(struct px_as_completed *it)
{
	pthread_mutex_lock(&it->mu);
	bool end = it->outstanding == 0 &&
		   (it->sealed || !(it->flags & PX_AS_COMPLETED_OPEN));
	pthread_mutex_unlock(&it->mu);
	return end;
}

PX_API int px_as_completed_next(px_as_completed *it, int64_t timeout_ns,
				px_future **out)
{
	if (!it || !out)
		return -EINVAL;
	int64_t deadline = px__deadline_after(timeout_ns);
	void *tok = NULL;
	bool blocked = false;
	int r = 0;
	px_future *f;
	for (;;) {
		uint32_t seq = atomic_load(&it->ws.seq);
		if ((f = next_ready(it)))
			break;
		if (at_end(it)) {
			r = PX_EEOF;
			break;
		}
		if (px__deadline_passed(deadline)) {
			r = -ETIMEDOUT;
			break;
		}
		if (!blocked) {
			tok = px__blocking_enter();
			blocked = true;
		}
		waitset_sleep(&it->ws, seq, deadline);
	}
	if (blocked)
		px__blocking_leave(tok);
	if (r)
		return r;
	*out = f;
	return 0;
}

PX_API void px_as_completed_close(px_as_completed *it)
{
	if (!it)
		return;
	/* First stop every fire(): after these, nothing pushes any more. */
	for (struct ac_node *a = it->members; a; a = a->next)
		px__future_unlink(a->f, &a->node);
	for (struct ac_node *a = it->kept; a; a = a->next)
		px__future_unlink(a->f, &a->node);
	/* Every node on the stack is a member or kept: freed below. */
	atomic_store_explicit(&it->ready, NULL, memory_order_relaxed);
	it->local = NULL;
	struct ac_node *lists[2] = { it->members, it->kept };
	for (int l = 0; l < 2; l++) {
		for (struct ac_node *a = lists[l], *nx; a; a = nx) {
			nx = a->next;
			px_future_release(a->f);
			free(a);
		}
	}
	pthread_mutex_destroy(&it->mu);
	free(it);
}
