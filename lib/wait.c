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
#include <stdlib.h>

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

static int wait_all(px_future *const *fs, size_t n, int64_t timeout_ns,
		    bool *done)
{
	int64_t deadline = px__deadline_after(timeout_ns);
	int r = 0;
	/* Last first: futures mostly finish in submission order, so once the
	 * last is done the rest usually are, and the waiter sleeps once
	 * instead of catching up with the producer and sleeping again and
	 * again. */
	for (size_t i = n; i-- > 0 && r == 0;)
		if (!px_future_is_done(fs[i]))
			r = px_future_wait(fs[i], px__deadline_left(deadline));
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

/* As-completed ------------------------------------------------------------ */

struct ac_node {
	struct px__node node;
	struct px_as_completed *it;
	size_t idx;
	struct ac_node *ready_next; /* on the iterator's ready stack */
	bool yielded;               /* handed out (maybe found by a scan) */
};

struct px_as_completed {
	size_t n;
	size_t yielded;
	px_future **fs;
	struct ac_node *nodes;
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

PX_API int px_as_completed_open(px_as_completed **out, px_future *const *fs,
				size_t n)
{
	if (!out || (!fs && n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!fs[i])
			return -EINVAL;
	struct px_as_completed *it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->n = n;
	it->fs = calloc(n ? n : 1, sizeof(*it->fs));
	it->nodes = calloc(n ? n : 1, sizeof(*it->nodes));
	if (!it->fs || !it->nodes) {
		free(it->fs);
		free(it->nodes);
		free(it);
		return -ENOMEM;
	}
	atomic_init(&it->ready, NULL);
	/* Already-finished futures go first, in array order. */
	struct ac_node **tail = &it->local;
	for (size_t i = 0; i < n; i++) {
		it->fs[i] = px_future_retain(fs[i]);
		struct ac_node *a = &it->nodes[i];
		a->node.fire = ac_fire;
		a->it = it;
		a->idx = i;
		if (!px__future_link(fs[i], &a->node)) {
			atomic_store_explicit(&a->node.fired, 1, memory_order_relaxed);
			*tail = a;
			tail = &a->ready_next;
		}
	}
	*tail = NULL;
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

/* The next finished, not yet yielded future: from the ready list, else
 * from a scan, since a future's state is published before its completion
 * list fires (an earlier slow callback may delay our node). NULL if none. */
static struct ac_node *next_ready(struct px_as_completed *it)
{
	for (;;) {
		if (!it->local)
			take_ready(it);
		if (!it->local)
			break;
		struct ac_node *a = it->local;
		it->local = a->ready_next;
		if (!a->yielded)
			return a;
	}
	for (size_t i = 0; i < it->n; i++)
		if (!it->nodes[i].yielded && px_future_is_done(it->fs[i]))
			return &it->nodes[i];
	return NULL;
}

PX_API int px_as_completed_next(px_as_completed *it, int64_t timeout_ns,
				px_future **out)
{
	if (!it || !out)
		return -EINVAL;
	if (it->yielded == it->n)
		return PX_EEOF;
	int64_t deadline = px__deadline_after(timeout_ns);
	void *tok = NULL;
	bool blocked = false;
	int r = 0;
	struct ac_node *a;
	for (;;) {
		uint32_t seq = atomic_load(&it->ws.seq);
		if ((a = next_ready(it)))
			break;
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
	a->yielded = true;
	it->yielded++;
	*out = it->fs[a->idx];
	return 0;
}

PX_API void px_as_completed_close(px_as_completed *it)
{
	if (!it)
		return;
	for (size_t i = 0; i < it->n; i++) {
		px__future_unlink(it->fs[i], &it->nodes[i].node);
		px_future_release(it->fs[i]);
	}
	free(it->fs);
	free(it->nodes);
	free(it);
}
