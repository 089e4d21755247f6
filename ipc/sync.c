/*
 * ipc/sync.c - process-shared synchronisation primitives. See
 * include/parex/sync.h.
 *
 * px_lock, px_rlock and px_cond wrap POSIX robust, process-shared mutexes
 * and condition variables: robustness needs the kernel's robust-futex list,
 * which glibc owns per thread (set_robust_list), so a private futex lock could
 * not be registered there without fighting glibc. The other primitives are
 * a few atomics and a shared futex each. Every futex sleeper but the
 * barrier's follows the same protocol as ring.c: register in a waiter count,
 * re-check, sleep on the word, with the sleeper's barrier deferred; wakers
 * change the word, pass the waker's barrier, and make a system call only
 * when the count is non-zero (ipc_util.h: px__park_begin(),
 * px__park_sleep(), px__waiters_seen()).
 * The barrier's waiters sleep on its generation word, and every round's last
 * arrival wakes them unconditionally.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <parex/sync.h>

#include "ipc_util.h"

_Static_assert(sizeof(pthread_mutex_t) <= sizeof(px_lock), "px_lock size");
_Static_assert(sizeof(pthread_mutex_t) <= sizeof(px_rlock), "px_rlock size");
_Static_assert(sizeof(pthread_cond_t) <= sizeof(px_cond), "px_cond size");

#define PX__MUTEX(l) ((pthread_mutex_t *)(void *)(l)->opaque_)

/* An absolute CLOCK_REALTIME time timeout_ns from now (for timedlock). */
static inline struct timespec px__abs_realtime(int64_t timeout_ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t ns = ts.tv_nsec + timeout_ns % PX_SEC;
	ts.tv_sec += timeout_ns / PX_SEC + ns / PX_SEC;
	ts.tv_nsec = ns % PX_SEC;
	return ts;
}

static int px__mutex_init(pthread_mutex_t *m, int type)
{
	pthread_mutexattr_t a;
	int r = pthread_mutexattr_init(&a);
	if (r)
		return -r;
	if ((r = pthread_mutexattr_settype(&a, type)) ||
	    (r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) ||
	    (r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)))
		goto out;
	r = pthread_mutex_init(m, &a);
out:
	pthread_mutexattr_destroy(&a);
	return -r;
}

#if defined(__SANITIZE_THREAD__) && defined(__GLIBC__)
/*
 * Under the thread sanitizer only. Its pthread_mutex_timedlock interceptor
 * records the lock only for a 0 return, not for EOWNERDEAD, and its unlock
 * interceptor reports an unlock by a non-owner as a bug even though a robust
 * mutex answers EPERM by contract. So timed locks poll trylock (whose
 * interceptor knows EOWNERDEAD) and unlocks check the owner first: the lock
 * word of a robust mutex holds the owner's TID.
 */
static int px__mutex_timedlock_tsan(pthread_mutex_t *m, int64_t timeout_ns)
{
	int64_t deadline = px__deadline_after(timeout_ns);
	for (;;) {
		int r = pthread_mutex_trylock(m);
		if (r != EBUSY)
			return r;
		if (px__deadline_passed(deadline))
			return ETIMEDOUT;
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
	}
}

static int px__mutex_unlock(pthread_mutex_t *m)
{
	uint32_t word = __atomic_load_n((uint32_t *)&m->__data.__lock, __ATOMIC_RELAXED);
	if ((word & FUTEX_TID_MASK) != (uint32_t)gettid())
		return -EPERM;
	return -pthread_mutex_unlock(m);
}
#else
static int px__mutex_unlock(pthread_mutex_t *m)
{
	return -pthread_mutex_unlock(m);
}
#endif

static int px__mutex_lock(pthread_mutex_t *m, int64_t timeout_ns)
{
	int r;
	/* A timeout too large to add to the clock means no limit. */
	if (px__timeout_unbounded(timeout_ns)) {
		r = pthread_mutex_lock(m);
	} else if (timeout_ns == 0) {
		r = pthread_mutex_trylock(m);
	} else {
		/* timedlock measures CLOCK_REALTIME (clocklock would take
		 * CLOCK_MONOTONIC, but the thread sanitizer does not know it,
		 * and would then miss the acquire). */
#if defined(__SANITIZE_THREAD__) && defined(__GLIBC__)
		r = px__mutex_timedlock_tsan(m, timeout_ns);
#else
		struct timespec ts = px__abs_realtime(timeout_ns);
		r = pthread_mutex_timedlock(m, &ts);
#endif
	}
	return -r;
}

/* glibc's pthread_mutex_destroy() does not refuse a locked robust mutex,
 * and destroying one that sits on its owner's robust list corrupts that
 * list, so check the lock word ourselves. */
static int px__mutex_destroy(pthread_mutex_t *m)
{
#ifdef __GLIBC__
	if (__atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED) != 0)
		return -EBUSY;
#endif
	return -pthread_mutex_destroy(m);
}

int px_lock_init(px_lock *l)
{
	if (!l)
		return -EINVAL;
	memset(l, 0, sizeof *l);
	/* Error-checking, so relocking says -EDEADLK instead of hanging. */
	return px__mutex_init(PX__MUTEX(l), PTHREAD_MUTEX_ERRORCHECK);
}

int px_lock_destroy(px_lock *l)
{
	return l ? px__mutex_destroy(PX__MUTEX(l)) : -EINVAL;
}

int px_lock_lock(px_lock *l, int64_t timeout_ns)
{
	return l ? px__mutex_lock(PX__MUTEX(l), timeout_ns) : -EINVAL;
}

int px_lock_trylock(px_lock *l)
{
	return px_lock_lock(l, 0);
}

int px_lock_unlock(px_lock *l)
{
	return l ? px__mutex_unlock(PX__MUTEX(l)) : -EINVAL;
}

int px_lock_consistent(px_lock *l)
{
	return l ? -pthread_mutex_consistent(PX__MUTEX(l)) : -EINVAL;
}

int px_rlock_init(px_rlock *l)
{
	if (!l)
		return -EINVAL;
	memset(l, 0, sizeof *l);
	return px__mutex_init(PX__MUTEX(l), PTHREAD_MUTEX_RECURSIVE);
}

int px_rlock_destroy(px_rlock *l)
{
	return l ? px__mutex_destroy(PX__MUTEX(l)) : -EINVAL;
}

int px_rlock_lock(px_rlock *l, int64_t timeout_ns)
{
	return l ? px__mutex_lock(PX__MUTEX(l), timeout_ns) : -EINVAL;
}

int px_rlock_trylock(px_rlock *l)
{
	return px_rlock_lock(l, 0);
}

int px_rlock_unlock(px_rlock *l)
{
	return l ? px__mutex_unlock(PX__MUTEX(l)) : -EINVAL;
}

int px_rlock_consistent(px_rlock *l)
{
	return l ? -pthread_mutex_consistent(PX__MUTEX(l)) : -EINVAL;
}

/* ---- px_cond ----------------------------------------------------------- */

#define PX__COND(c) ((pthread_cond_t *)(void *)(c)->opaque_)

int px_cond_init(px_cond *c)
{
	if (!c)
		return -EINVAL;
	memset(c, 0, sizeof *c);
	pthread_condattr_t a;
	int r = pthread_condattr_init(&a);
	if (r)
		return -r;
	if (!(r = pthread_condattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) &&
	    !(r = pthread_condattr_setclock(&a, CLOCK_MONOTONIC)))
		r = pthread_cond_init(PX__COND(c), &a);
	pthread_condattr_destroy(&a);
	return -r;
}

int px_cond_destroy(px_cond *c)
{
	return c ? -pthread_cond_destroy(PX__COND(c)) : -EINVAL;
}

int px_cond_wait(px_cond *c, px_lock *l, int64_t timeout_ns)
{
	if (!c || !l)
		return -EINVAL;
	/* A timeout too large for a deadline (px__deadline_after() saturates
	 * to PX__NO_DEADLINE) means no limit, as everywhere else. */
	int64_t d = px__deadline_after(timeout_ns);
	if (d == PX__NO_DEADLINE)
		return -pthread_cond_wait(PX__COND(c), PX__MUTEX(l));
	struct timespec ts = {.tv_sec = d / PX_SEC, .tv_nsec = d % PX_SEC};
	return -pthread_cond_timedwait(PX__COND(c), PX__MUTEX(l), &ts);
}

int px_cond_notify(px_cond *c)
{
	return c ? -pthread_cond_signal(PX__COND(c)) : -EINVAL;
}

int px_cond_notify_all(px_cond *c)
{
	return c ? -pthread_cond_broadcast(PX__COND(c)) : -EINVAL;
}

/* ---- px_sem: the value is the futex word ------------------------------- */

/* Every CAS loop on a word in shared memory gives up after this many
 * failures: only a peer rewriting the word without end can cause that many,
 * and it must not make a call that never sleeps spin for ever. */
#define PX__SYNC_RETRIES 4096

struct px__sem {
	_Atomic uint32_t value;
	_Atomic uint32_t waiters;
};
_Static_assert(sizeof(struct px__sem) <= sizeof(px_sem), "px_sem size");
#define PX__SEM(s) ((struct px__sem *)(void *)(s)->opaque_)

int px_sem_init(px_sem *s, uint32_t value)
{
	if (!s || value > PX_SEM_VALUE_MAX)
		return -EINVAL;
	memset(s, 0, sizeof *s);
	atomic_init(&PX__SEM(s)->value, value);
	return 0;
}

static bool px__sem_take(struct px__sem *s)
{
	uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
	for (uint32_t tries = 0; v > 0 && tries < PX__SYNC_RETRIES; tries++) {
		/* Acquire: pairs with the release in px_sem_post(); what the
		 * poster did before posting happens before our unit. */
		if (atomic_compare_exchange_weak_explicit(&s->value, &v, v - 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			return true;
	}
	return false;
}

int px_sem_wait(px_sem *sp, int64_t timeout_ns)
{
	if (!sp)
		return -EINVAL;
	struct px__sem *s = PX__SEM(sp);
	if (px__sem_take(s))
		return 0;
	if (timeout_ns == 0)
		return -EAGAIN;
	int64_t deadline = px__deadline_after(timeout_ns);
	int ret = 0;
	/* Pairs with px__waiters_seen() in px_sem_post(): registration
	 * before the re-check (the kernel re-checks value == 0 atomically). */
	struct px__park pk;
	px__park_begin(&pk, &s->waiters);
	for (;;) {
		if (px__sem_take(s))
			break;
		if (px__deadline_passed(deadline)) {
			ret = -ETIMEDOUT;
			break;
		}
		px__park_sleep(&pk, &s->value, 0, deadline);
	}
	px__waiter_unregister(&s->waiters);
	return ret;
}

int px_sem_trywait(px_sem *s)
{
	return px_sem_wait(s, 0);
}

int px_sem_post(px_sem *sp, uint32_t n)
{
	if (!sp || n == 0)
		return -EINVAL;
	if (n > PX_SEM_VALUE_MAX)
		return -EOVERFLOW; /* even on a semaphore at 0 */
	struct px__sem *s = PX__SEM(sp);
	uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
	for (uint32_t tries = 0;; tries++) {
		if (v > PX_SEM_VALUE_MAX - n)
			return -EOVERFLOW;
		if (tries == PX__SYNC_RETRIES)
			return -EAGAIN;
		/* Release: pairs with the acquire in px__sem_take(). */
		if (atomic_compare_exchange_weak_explicit(&s->value, &v, v + n,
							  memory_order_release,
							  memory_order_relaxed))
			break;
	}
	/* Pairs with px__park_begin() in px_sem_wait(). */
	if (px__waiters_seen(&s->waiters))
		px__futex_wake_shared(&s->value, n > INT_MAX ? INT_MAX : (int)n);
	return 0;
}

uint32_t px_sem_value(const px_sem *s)
{
	return s ? atomic_load_explicit(&PX__SEM((px_sem *)s)->value,
					memory_order_relaxed) : 0;
}

/* ---- px_event: bit 0 = set, bits 1.. count the sets -------------------- */

struct px__event {
	_Atomic uint32_t word;
	_Atomic uint32_t waiters;
};
_Static_assert(sizeof(struct px__event) <= sizeof(px_event), "px_event size");
#define PX__EVENT(e) ((struct px__event *)(void *)(e)->opaque_)

int px_event_init(px_event *e, bool set)
{
	if (!e)
		return -EINVAL;
	memset(e, 0, sizeof *e);
	atomic_init(&PX__EVENT(e)->word, set ? 1u : 0u);
	return 0;
}

int px_event_set(px_event *ep)
{
	if (!ep)
		return -EINVAL;
	struct px__event *e = PX__EVENT(ep);
	uint32_t w = atomic_load_explicit(&e->word, memory_order_relaxed);
	for (uint32_t tries = 0;; tries++) {
		if (w & 1u)
			return 0; /* already set: nobody can be waiting for it */
		if (tries == PX__SYNC_RETRIES)
			return -EAGAIN;
		/* Release: pairs with the waiter's acquire load of word. The
		 * set count changes too, so a waiter that sleeps through a
		 * set/clear pair still sees that a set happened. */
		if (atomic_compare_exchange_weak_explicit(&e->word, &w, (w + 2u) | 1u,
							  memory_order_release,
							  memory_order_relaxed))
			break;
	}
	/* Pairs with px__park_begin() in px_event_wait(). */
	if (px__waiters_seen(&e->waiters))
		px__futex_wake_shared(&e->word, INT_MAX);
	return 0;
}

int px_event_clear(px_event *e)
{
	if (!e)
		return -EINVAL;
	/* Relaxed: clearing publishes nothing. */
	atomic_fetch_and_explicit(&PX__EVENT(e)->word, ~1u, memory_order_relaxed);
	return 0;
}

bool px_event_is_set(const px_event *e)
{
	/* Acquire: pairs with the release in px_event_set(). */
	return e && (atomic_load_explicit(&PX__EVENT((px_event *)e)->word,
					  memory_order_acquire) & 1u);
}

int px_event_wait(px_event *ep, int64_t timeout_ns)
{
	if (!ep)
		return -EINVAL;
	struct px__event *e = PX__EVENT(ep);
	/* Acquire: pairs with the release in px_event_set(). */
	uint32_t w0 = atomic_load_explicit(&e->word, memory_order_acquire);
	if (w0 & 1u)
		return 0;
	if (timeout_ns == 0)
		return -ETIMEDOUT;
	int64_t deadline = px__deadline_after(timeout_ns);
	int ret = 0;
	/* Pairs with px__waiters_seen() in px_event_set(). */
	struct px__park pk;
	px__park_begin(&pk, &e->waiters);
	for (;;) {
		uint32_t w = atomic_load_explicit(&e->word, memory_order_acquire);
		if ((w & 1u) || (w >> 1) != (w0 >> 1))
			break; /* set now, or set since we started */
		if (px__deadline_passed(deadline)) {
			ret = -ETIMEDOUT;
			break;
		}
		px__park_sleep(&pk, &e->word, w, deadline);
	}
	px__waiter_unregister(&e->waiters);
	return ret;
}

/* ---- px_barrier: gen is the futex word; bit 31 = broken ---------------- */

#define PX__BROKEN 0x80000000u

struct px__barrier {
	uint32_t parties;
	_Atomic uint32_t count;
	_Atomic uint32_t gen;
	uint32_t reserved;
};
_Static_assert(sizeof(struct px__barrier) <= sizeof(px_barrier), "px_barrier size");
#define PX__BARRIER(b) ((struct px__barrier *)(void *)(b)->opaque_)

int px_barrier_init(px_barrier *b, uint32_t parties)
{
	if (!b || parties == 0)
		return -EINVAL;
	memset(b, 0, sizeof *b);
	PX__BARRIER(b)->parties = parties;
	return 0;
}

static void px__barrier_break(struct px__barrier *b)
{
	/* Release: pairs with the acquire loads of gen in the waiters. */
	atomic_fetch_or_explicit(&b->gen, PX__BROKEN, memory_order_release);
	px__futex_wake_shared(&b->gen, INT_MAX);
}

int px_barrier_wait(px_barrier *bp, int64_t timeout_ns)
{
	if (!bp)
		return -EINVAL;
	struct px__barrier *b = PX__BARRIER(bp);
	/* Acquire: pairs with the release increment by the last arrival of
	 * the previous round and with px__barrier_break(). */
	uint32_t g = atomic_load_explicit(&b->gen, memory_order_acquire);
	if (g & PX__BROKEN)
		return -EPIPE;
	/* Acq_rel: the last arrival acquires every other party's release,
	 * so all of the round's work happens before anyone leaves. */
	uint32_t a = atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) + 1;
	if (a == b->parties) {
		/* Reset the count before the new generation is visible: the
		 * next round's arrivals only start after they saw it. */
		atomic_store_explicit(&b->count, 0, memory_order_relaxed);
		uint32_t ng = (g + 1) & ~PX__BROKEN;
		/* Release: pairs with the waiters' acquire load of gen. The
		 * CAS fails only if the barrier broke meanwhile. */
		if (!atomic_compare_exchange_strong_explicit(&b->gen, &g, ng,
							     memory_order_release,
							     memory_order_acquire))
			return -EPIPE;
		px__futex_wake_shared(&b->gen, INT_MAX);
		return PX_BARRIER_SERIAL;
	}
	int64_t deadline = px__deadline_after(timeout_ns);
	for (;;) {
		uint32_t w = atomic_load_explicit(&b->gen, memory_order_acquire);
		if (w & PX__BROKEN)
			return -EPIPE;
		if (w != g)
			return 0;
		if (timeout_ns == 0 ||
		    px__futex_wait_shared(&b->gen, g, deadline) == -ETIMEDOUT) {
			w = atomic_load_explicit(&b->gen, memory_order_acquire);
			if (w == g) {
				px__barrier_break(b);
				return -ETIMEDOUT;
			}
		}
	}
}

int px_barrier_abort(px_barrier *b)
{
	if (!b)
		return -EINVAL;
	px__barrier_break(PX__BARRIER(b));
	return 0;
}

int px_barrier_reset(px_barrier *bp)
{
	if (!bp)
		return -EINVAL;
	struct px__barrier *b = PX__BARRIER(bp);
	atomic_store_explicit(&b->count, 0, memory_order_relaxed);
	uint32_t g = atomic_load_explicit(&b->gen, memory_order_relaxed);
	/* Release: a later waiter's acquire sees the zeroed count. */
	atomic_store_explicit(&b->gen, (g + 1) & ~PX__BROKEN, memory_order_release);
	px__futex_wake_shared(&b->gen, INT_MAX);
	return 0;
}

uint32_t px_barrier_waiting(const px_barrier *b)
{
	return b ? atomic_load_explicit(&PX__BARRIER((px_barrier *)b)->count,
					memory_order_relaxed) : 0;
}

/* ---- px_counter ---------------------------------------------------------- */

#define PX__COUNTER(c) ((_Atomic int64_t *)(void *)&(c)->opaque_)

int px_counter_init(px_counter *c, int64_t value)
{
	if (!c)
		return -EINVAL;
	atomic_init(PX__COUNTER(c), value);
	return 0;
}

/* Seq_cst throughout: a counter is often used as a flag between processes,
 * and callers should not have to reason about weaker orders. A NULL counter
 * is refused as documented in sync.h: nothing happens, the value is 0. */
int64_t px_counter_add(px_counter *c, int64_t delta)
{
	if (!c)
		return 0;
	return (int64_t)((uint64_t)atomic_fetch_add(PX__COUNTER(c), delta) +
			 (uint64_t)delta);
}

int64_t px_counter_get(const px_counter *c)
{
	return c ? atomic_load(PX__COUNTER((px_counter *)c)) : 0;
}

int64_t px_counter_exchange(px_counter *c, int64_t value)
{
	return c ? atomic_exchange(PX__COUNTER(c), value) : 0;
}

bool px_counter_cas(px_counter *c, int64_t *expected, int64_t desired)
{
	if (!c || !expected)
		return false;
	return atomic_compare_exchange_strong(PX__COUNTER(c), expected, desired);
}
