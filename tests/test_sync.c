/*
 * tests/test_sync.c - process-shared primitives: each between threads and
 * between forked processes through shared memory; exact errors; the robust
 * lock surviving SIGKILL of its holder.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <parex/sync.h>

#include "test_ipc_common.h"

/* One shared block for every cross-process test. */
struct shared {
	px_lock lock;
	px_rlock rlock;
	px_sem sem;
	px_event ev;
	px_cond cond;
	px_barrier bar;
	px_counter counter;
	px_event ready;
	uint64_t plain; /* protected by lock */
	uint64_t round_serial[64];
	int flag;
};

static struct shared *sh_new(void)
{
	struct shared *s = ipc_shared_alloc(sizeof *s);
	assert_non_null(s);
	return s;
}

static void sh_free(struct shared *s)
{
	ipc_shared_free(s, sizeof *s);
}

static void test_bad_input(void **state)
{
	(void)state;
	assert_int_equal(px_lock_init(NULL), -EINVAL);
	assert_int_equal(px_lock_lock(NULL, 0), -EINVAL);
	assert_int_equal(px_lock_unlock(NULL), -EINVAL);
	assert_int_equal(px_lock_consistent(NULL), -EINVAL);
	assert_int_equal(px_rlock_init(NULL), -EINVAL);
	assert_int_equal(px_sem_init(NULL, 0), -EINVAL);
	px_sem s;
	assert_int_equal(px_sem_init(&s, PX_SEM_VALUE_MAX + 1u), -EINVAL);
	assert_int_equal(px_sem_wait(NULL, 0), -EINVAL);
	assert_int_equal(px_sem_post(NULL, 1), -EINVAL);
	assert_int_equal(px_sem_init(&s, 0), 0);
	assert_int_equal(px_sem_post(&s, 0), -EINVAL);
	assert_int_equal(px_event_init(NULL, false), -EINVAL);
	assert_int_equal(px_event_wait(NULL, 0), -EINVAL);
	assert_int_equal(px_event_set(NULL), -EINVAL);
	assert_false(px_event_is_set(NULL));
	assert_int_equal(px_cond_init(NULL), -EINVAL);
	px_cond c;
	assert_int_equal(px_cond_init(&c), 0);
	assert_int_equal(px_cond_wait(&c, NULL, 0), -EINVAL);
	assert_int_equal(px_cond_notify(NULL), -EINVAL);
	assert_int_equal(px_cond_destroy(&c), 0);
	assert_int_equal(px_barrier_init(NULL, 2), -EINVAL);
	px_barrier b;
	assert_int_equal(px_barrier_init(&b, 0), -EINVAL);
	assert_int_equal(px_barrier_wait(NULL, 0), -EINVAL);
	assert_int_equal(px_counter_init(NULL, 0), -EINVAL);
}

/* ---- lock --------------------------------------------------------------- */

static void *thr_unlock_other(void *p)
{
	return (void *)(intptr_t)px_lock_unlock(p);
}

static void *thr_trylock(void *p)
{
	return (void *)(intptr_t)px_lock_lock(p, 5 * PX_MSEC);
}

static void test_lock_basics(void **state)
{
	(void)state;
	px_lock l;
	assert_int_equal(px_lock_init(&l), 0);
	assert_int_equal(px_lock_lock(&l, PX_FOREVER), 0);
	assert_int_equal(px_lock_lock(&l, PX_FOREVER), -EDEADLK);
	assert_int_equal(px_lock_trylock(&l), -EDEADLK);
	assert_int_equal(px_lock_destroy(&l), -EBUSY);
	pthread_t t;
	void *ret;
	pthread_create(&t, NULL, thr_unlock_other, &l);
	pthread_join(t, &ret);
	assert_int_equal((int)(intptr_t)ret, -EPERM);
	pthread_create(&t, NULL, thr_trylock, &l);
	pthread_join(t, &ret);
	assert_int_equal((int)(intptr_t)ret, -ETIMEDOUT);
	assert_int_equal(px_lock_unlock(&l), 0);
	assert_int_equal(px_lock_unlock(&l), -EPERM);
	assert_int_equal(px_lock_consistent(&l), -EINVAL);
	assert_int_equal(px_lock_trylock(&l), 0);
	assert_int_equal(px_lock_unlock(&l), 0);
	assert_int_equal(px_lock_destroy(&l), 0);
}

struct incr_arg {
	struct shared *s;
	uint64_t n;
};

static int child_increment(void *p)
{
	struct incr_arg *a = p;
	for (uint64_t i = 0; i < a->n; i++) {
		if (px_lock_lock(&a->s->lock, PX_FOREVER) != 0)
			return 2;
		/* non-atomic read-modify-write: only the lock makes it exact */
		uint64_t v = *(volatile uint64_t *)&a->s->plain;
		*(volatile uint64_t *)&a->s->plain = v + 1;
		if (px_lock_unlock(&a->s->lock) != 0)
			return 3;
		px_counter_add(&a->s->counter, 1);
	}
	return 0;
}

static void test_lock_processes(void **state)
{
	(void)state;
	struct shared *s = sh_new();
	assert_int_equal(px_lock_init(&s->lock), 0);
	assert_int_equal(px_counter_init(&s->counter, 0), 0);
	struct incr_arg a = {s, ipc_scaled(50000, 1000)};
	pid_t p[3];
	for (int i = 0; i < 3; i++)
		p[i] = ipc_fork(child_increment, &a);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ipc_wait(p[i]), 0);
	assert_int_equal(s->plain, 3 * a.n);
	assert_int_equal(px_counter_get(&s->counter), (int64_t)(3 * a.n));
	sh_free(s);
}

static int child_lock_and_hang(void *p)
{
	struct shared *s = p;
	if (px_lock_lock(&s->lock, PX_FOREVER) != 0)
		return 2;
	if (px_rlock_lock(&s->rlock, PX_FOREVER) != 0 ||
	    px_rlock_lock(&s->rlock, PX_FOREVER) != 0)
		return 3;
	s->plain = 1; /* "half-updated" state */
	px_event_set(&s->ready);
	for (;;)
		pause();
}

/* The holder is SIGKILLed: the next locker gets -EOWNERDEAD, repairs, marks
 * consistent and the lock works again; without repair the lock becomes
 * unrecoverable. Both for px_lock and px_rlock. */
static void test_robust_lock_survives_sigkill(void **state)
{
	(void)state;
	struct shared *s = sh_new();
	assert_int_equal(px_lock_init(&s->lock), 0);
	assert_int_equal(px_rlock_init(&s->rlock), 0);
	assert_int_equal(px_event_init(&s->ready, false), 0);
	pid_t pid = ipc_fork(child_lock_and_hang, s);
	assert_int_equal(px_event_wait(&s->ready, 20 * PX_SEC), 0);
	assert_int_equal(px_lock_trylock(&s->lock), -EBUSY);
	kill(pid, SIGKILL);
	assert_int_equal(ipc_wait(pid), 128 + SIGKILL);

	assert_int_equal(px_lock_lock(&s->lock, PX_FOREVER), -EOWNERDEAD);
	assert_int_equal(s->plain, 1);
	s->plain = 0; /* repair */
	assert_int_equal(px_lock_consistent(&s->lock), 0);
	assert_int_equal(px_lock_unlock(&s->lock), 0);
	assert_int_equal(px_lock_lock(&s->lock, 0), 0);
	assert_int_equal(px_lock_unlock(&s->lock), 0);

	/* The recursive lock, held twice by the dead child: not repaired. */
	assert_int_equal(px_rlock_lock(&s->rlock, 5 * PX_MSEC), -EOWNERDEAD);
	assert_int_equal(px_rlock_unlock(&s->rlock), 0);
	assert_int_equal(px_rlock_lock(&s->rlock, PX_FOREVER), -ENOTRECOVERABLE);
	assert_int_equal(px_rlock_trylock(&s->rlock), -ENOTRECOVERABLE);
	sh_free(s);
}

/* ---- rlock -------------------------------------------------------------- */

static void *thr_rlock_try(void *p)
{
	return (void *)(intptr_t)px_rlock_trylock(p);
}

static void test_rlock(void **state)
{
	(void)state;
	px_rlock l;
	assert_int_equal(px_rlock_init(&l), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(px_rlock_lock(&l, PX_FOREVER), 0);
	pthread_t t;
	void *ret;
	for (int i = 0; i < 3; i++) {
		pthread_create(&t, NULL, thr_rlock_try, &l);
		pthread_join(t, &ret);
		assert_int_equal((int)(intptr_t)ret, -EBUSY);
		assert_int_equal(px_rlock_unlock(&l), 0);
	}
	assert_int_equal(px_rlock_unlock(&l), -EPERM);
	assert_int_equal(px_rlock_destroy(&l), 0);
	assert_int_equal(px_rlock_init(&l), 0);
	pthread_create(&t, NULL, thr_rlock_try, &l);
	pthread_join(t, &ret);
	assert_int_equal((int)(intptr_t)ret, 0); /* the thread died holding it */
	assert_int_equal(px_rlock_lock(&l, 0), -EOWNERDEAD);
	assert_int_equal(px_rlock_consistent(&l), 0);
	assert_int_equal(px_rlock_unlock(&l), 0);
	assert_int_equal(px_rlock_destroy(&l), 0);
}

/* ---- semaphore ---------------------------------------------------------- */

static int child_sem_consumer(void *p)
{
	struct shared *s = p;
	for (int i = 0; i < 1000; i++)
		if (px_sem_wait(&s->sem, 20 * PX_SEC) != 0)
			return 2;
	return 0;
}

static void test_sem(void **state)
{
	(void)state;
	px_sem s;
	assert_int_equal(px_sem_init(&s, 2), 0);
	assert_int_equal(px_sem_value(&s), 2);
	assert_int_equal(px_sem_trywait(&s), 0);
	assert_int_equal(px_sem_wait(&s, PX_FOREVER), 0);
	assert_int_equal(px_sem_trywait(&s), -EAGAIN);
	assert_int_equal(px_sem_wait(&s, 5 * PX_MSEC), -ETIMEDOUT);
	assert_int_equal(px_sem_post(&s, PX_SEM_VALUE_MAX), 0);
	assert_int_equal(px_sem_post(&s, 1), -EOVERFLOW);
	assert_int_equal(px_sem_value(&s), PX_SEM_VALUE_MAX);

	struct shared *sh = sh_new();
	assert_int_equal(px_sem_init(&sh->sem, 0), 0);
	pid_t p[2];
	for (int i = 0; i < 2; i++)
		p[i] = ipc_fork(child_sem_consumer, sh);
	for (int i = 0; i < 2000; i++) {
		assert_int_equal(px_sem_post(&sh->sem, 1), 0);
		if (i % 500 == 0)
			usleep(2000); /* let the children park */
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(ipc_wait(p[i]), 0);
	assert_int_equal(px_sem_value(&sh->sem), 0);
	sh_free(sh);
}

/* ---- event -------------------------------------------------------------- */

static int child_event_wait(void *p)
{
	struct shared *s = p;
	return ipc_expect(px_event_wait(&s->ev, 20 * PX_SEC), 0);
}

static void test_event(void **state)
{
	(void)state;
	px_event e;
	assert_int_equal(px_event_init(&e, false), 0);
	assert_false(px_event_is_set(&e));
	assert_int_equal(px_event_wait(&e, 0), -ETIMEDOUT);
	assert_int_equal(px_event_wait(&e, 5 * PX_MSEC), -ETIMEDOUT);
	assert_int_equal(px_event_set(&e), 0);
	assert_int_equal(px_event_set(&e), 0);
	assert_true(px_event_is_set(&e));
	assert_int_equal(px_event_wait(&e, 0), 0);
	assert_int_equal(px_event_wait(&e, PX_FOREVER), 0);
	assert_int_equal(px_event_clear(&e), 0);
	assert_false(px_event_is_set(&e));
	assert_int_equal(px_event_init(&e, true), 0);
	assert_true(px_event_is_set(&e));

	struct shared *s = sh_new();
	assert_int_equal(px_event_init(&s->ev, false), 0);
	pid_t p[3];
	for (int i = 0; i < 3; i++)
		p[i] = ipc_fork(child_event_wait, s);
	for (int i = 0; i < 3; i++)
		assert_true(ipc_wait_sleeping(p[i])); /* parked in the wait */
	/* A set immediately followed by a clear still releases the waiters
	 * that were asleep during the set. */
	assert_int_equal(px_event_set(&s->ev), 0);
	assert_int_equal(px_event_clear(&s->ev), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ipc_wait(p[i]), 0);
	sh_free(s);
}

/* ---- condition ---------------------------------------------------------- */

static int child_cond_waiter(void *p)
{
	struct shared *s = p;
	if (px_lock_lock(&s->lock, PX_FOREVER) != 0)
		return 2;
	px_counter_add(&s->counter, 1); /* "I hold the lock and will wait" */
	while (!s->flag) {
		int r = px_cond_wait(&s->cond, &s->lock, 20 * PX_SEC);
		if (r != 0)
			return 3;
	}
	s->plain++;
	px_lock_unlock(&s->lock);
	return 0;
}

static void test_cond(void **state)
{
	(void)state;
	struct shared *s = sh_new();
	assert_int_equal(px_lock_init(&s->lock), 0);
	assert_int_equal(px_cond_init(&s->cond), 0);
	assert_int_equal(px_counter_init(&s->counter, 0), 0);

	assert_int_equal(px_lock_lock(&s->lock, PX_FOREVER), 0);
	assert_int_equal(px_cond_wait(&s->cond, &s->lock, 5 * PX_MSEC), -ETIMEDOUT);
	assert_int_equal(px_cond_wait(&s->cond, &s->lock, 0), -ETIMEDOUT);
	assert_int_equal(px_lock_unlock(&s->lock), 0);

	pid_t p[3];
	for (int i = 0; i < 3; i++)
		p[i] = ipc_fork(child_cond_waiter, s);
	while (px_counter_get(&s->counter) < 3)
		usleep(1000);
	/* Every child is in px_cond_wait or about to be (it holds the lock
	 * until it waits): set the predicate under the lock, notify all. */
	assert_int_equal(px_lock_lock(&s->lock, PX_FOREVER), 0);
	s->flag = 1;
	assert_int_equal(px_cond_notify_all(&s->cond), 0);
	assert_int_equal(px_lock_unlock(&s->lock), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ipc_wait(p[i]), 0);
	assert_int_equal(s->plain, 3);
	assert_int_equal(px_cond_notify(&s->cond), 0);
	sh_free(s);
}

/* ---- barrier ------------------------------------------------------------ */

#define BAR_PARTIES 3
#define BAR_ROUNDS 50

static int child_barrier(void *p)
{
	struct shared *s = p;
	for (int r = 0; r < BAR_ROUNDS; r++) {
		px_counter_add(&s->counter, 1);
		int w = px_barrier_wait(&s->bar, 20 * PX_SEC);
		if (w < 0)
			return 2;
		/* after the barrier every party of this round has arrived */
		if (px_counter_get(&s->counter) < (int64_t)(r + 1) * BAR_PARTIES)
			return 3;
		if (w == PX_BARRIER_SERIAL)
			__atomic_add_fetch(&s->round_serial[r], 1, __ATOMIC_RELAXED);
		/* a second barrier so nobody races into the next round's count */
		if (px_barrier_wait(&s->bar, 20 * PX_SEC) < 0)
			return 4;
	}
	return 0;
}

static int child_barrier_broken(void *p)
{
	struct shared *s = p;
	return ipc_expect(px_barrier_wait(&s->bar, 20 * PX_SEC), -EPIPE);
}

static void test_barrier(void **state)
{
	(void)state;
	px_barrier b;
	assert_int_equal(px_barrier_init(&b, 1), 0);
	assert_int_equal(px_barrier_wait(&b, 0), PX_BARRIER_SERIAL);
	assert_int_equal(px_barrier_init(&b, 2), 0);
	assert_int_equal(px_barrier_wait(&b, 5 * PX_MSEC), -ETIMEDOUT);
	assert_int_equal(px_barrier_wait(&b, PX_FOREVER), -EPIPE); /* broken */
	assert_int_equal(px_barrier_reset(&b), 0);
	assert_int_equal(px_barrier_waiting(&b), 0);
	assert_int_equal(px_barrier_wait(&b, 0), -ETIMEDOUT);
	assert_int_equal(px_barrier_reset(&b), 0);

	struct shared *s = sh_new();
	assert_int_equal(px_barrier_init(&s->bar, BAR_PARTIES), 0);
	assert_int_equal(px_counter_init(&s->counter, 0), 0);
	pid_t p[BAR_PARTIES];
	for (int i = 0; i < BAR_PARTIES; i++)
		p[i] = ipc_fork(child_barrier, s);
	for (int i = 0; i < BAR_PARTIES; i++)
		assert_int_equal(ipc_wait(p[i]), 0);
	for (int r = 0; r < BAR_ROUNDS; r++)
		assert_int_equal(s->round_serial[r], 1);

	/* abort wakes a waiting party in another process with -EPIPE */
	assert_int_equal(px_barrier_init(&s->bar, 2), 0);
	pid_t c = ipc_fork(child_barrier_broken, s);
	assert_true(ipc_wait_sleeping(c));
	assert_int_equal(px_barrier_abort(&s->bar), 0);
	assert_int_equal(ipc_wait(c), 0);
	sh_free(s);
}

/* ---- counter ------------------------------------------------------------ */

static void test_counter(void **state)
{
	(void)state;
	px_counter c;
	assert_int_equal(px_counter_init(&c, 5), 0);
	assert_int_equal(px_counter_add(&c, 3), 8);
	assert_int_equal(px_counter_add(&c, -10), -2);
	assert_int_equal(px_counter_exchange(&c, 100), -2);
	int64_t e = 99;
	assert_false(px_counter_cas(&c, &e, 1));
	assert_int_equal(e, 100);
	assert_true(px_counter_cas(&c, &e, 1));
	assert_int_equal(px_counter_get(&c), 1);
	assert_int_equal(px_counter_init(&c, INT64_MAX), 0);
	assert_int_equal(px_counter_add(&c, 1), INT64_MIN); /* wraps */
}

/* ---- the same primitives between threads (what TSan can check) -------- */

static struct shared *g_thr;

static void *thr_mix(void *p)
{
	(void)p;
	for (int i = 0; i < 2000; i++) {
		assert_int_equal(px_lock_lock(&g_thr->lock, PX_FOREVER), 0);
		g_thr->plain++;
		assert_int_equal(px_lock_unlock(&g_thr->lock), 0);
		assert_int_equal(px_rlock_lock(&g_thr->rlock, PX_FOREVER), 0);
		assert_int_equal(px_rlock_lock(&g_thr->rlock, PX_FOREVER), 0);
		g_thr->round_serial[0]++;
		assert_int_equal(px_rlock_unlock(&g_thr->rlock), 0);
		assert_int_equal(px_rlock_unlock(&g_thr->rlock), 0);
		assert_int_equal(px_sem_wait(&g_thr->sem, PX_FOREVER), 0);
		g_thr->round_serial[1]++; /* the semaphore has one unit */
		assert_int_equal(px_sem_post(&g_thr->sem, 1), 0);
		if (i % 100 == 0)
			assert_true(px_barrier_wait(&g_thr->bar, PX_FOREVER) >= 0);
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	g_thr = calloc(1, sizeof *g_thr);
	assert_int_equal(px_lock_init(&g_thr->lock), 0);
	assert_int_equal(px_rlock_init(&g_thr->rlock), 0);
	assert_int_equal(px_sem_init(&g_thr->sem, 1), 0);
	assert_int_equal(px_barrier_init(&g_thr->bar, 4), 0);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, thr_mix, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(g_thr->plain, 8000);
	assert_int_equal(g_thr->round_serial[0], 8000);
	assert_int_equal(g_thr->round_serial[1], 8000);
	free(g_thr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_lock_basics),
		cmocka_unit_test(test_lock_processes),
		cmocka_unit_test(test_robust_lock_survives_sigkill),
		cmocka_unit_test(test_rlock),
		cmocka_unit_test(test_sem),
		cmocka_unit_test(test_event),
		cmocka_unit_test(test_cond),
		cmocka_unit_test(test_barrier),
		cmocka_unit_test(test_counter),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
