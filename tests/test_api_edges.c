/*
 * tests/test_api_edges.c - the public API's edges behave the same
 * everywhere: NULL to every pointer-taking function of the ipc headers is
 * refused as each header documents (never a crash), px_sem_post refuses to
 * overflow, and px_executor_free of a pointer the executor did not hand out
 * is ignored on every backend.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <parex/parex.h>

#include "test_ipc_common.h"

/* ---- px_executor_free --------------------------------------------------- */

static void free_foreign_on(const char *spec)
{
	char err[256];
	px_executor *ex, *other;
	assert_int_equal(px_executor_open(&ex, spec, err, sizeof err), 0);
	assert_int_equal(px_executor_open(&other, spec, err, sizeof err), 0);
	void *p, *q, *o;
	assert_int_equal(px_executor_alloc(ex, 256, &p), 0);
	assert_int_equal(px_executor_alloc(ex, 256, &q), 0);
	assert_int_equal(px_executor_alloc(other, 256, &o), 0);
	memset(p, 0xab, 256);

	int on_stack[32];
	px_executor_free(ex, on_stack);                 /* a stack address */
	px_executor_free(ex, (char *)p + 64);           /* an interior pointer */
	px_executor_free(ex, (char *)p + 1);
	px_executor_free(ex, o);                        /* another executor's */
	char *heap = malloc(64);
	px_executor_free(ex, heap);                     /* plain malloc */
	free(heap);
	px_executor_free(ex, NULL);
	px_executor_free(NULL, p);

	/* p survived all of that, and is freed exactly once. */
	for (int i = 0; i < 256; i++)
		assert_int_equal(((unsigned char *)p)[i], 0xab);
	px_executor_free(ex, p);
	px_executor_free(ex, p); /* freed already: ignored */
	px_executor_free(ex, q);
	px_executor_free(other, o);

	/* Still usable. */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(px_executor_alloc(ex, 128, &p), 0);
		px_executor_free(ex, p);
	}
	px_executor_destroy(other);
	px_executor_destroy(ex);
}

static void test_executor_free_foreign_pointer_ignored_inline(void **state)
{
	(void)state;
	free_foreign_on("inline");
}

static void test_executor_free_foreign_pointer_ignored_thread(void **state)
{
	(void)state;
	free_foreign_on("thread:workers=2");
}

static void test_executor_free_foreign_pointer_ignored_process(void **state)
{
	(void)state;
	free_foreign_on("process:workers=1,shm_size=1M");
}

/* Many live blocks at once: the record of live blocks grows and shrinks
 * (and frees in a scrambled order) without losing one. */
static void test_executor_free_tracks_many_live_blocks(void **state)
{
	(void)state;
	char err[256];
	px_executor *ex;
	assert_int_equal(px_executor_open(&ex, "inline", err, sizeof err), 0);
	enum { N = 3000 };
	void **p = calloc(N, sizeof *p);
	for (int i = 0; i < N; i++) {
		assert_int_equal(px_executor_alloc(ex, 64, &p[i]), 0);
		*(int *)p[i] = i;
	}
	/* i -> i * 7919 % N is a permutation (7919 is a prime not dividing
	 * N): free the even-numbered half in that scrambled order. */
	for (int i = 0; i < N; i += 2)
		px_executor_free(ex, p[(int)(((long)i * 7919) % N)]);
	for (int i = 0; i < N; i++) {
		int j = (int)(((long)i * 7919) % N);
		if (i % 2 == 0)
			px_executor_free(ex, p[j]); /* freed already: ignored */
		else
			assert_int_equal(*(int *)p[j], j);
	}
	for (int i = 1; i < N; i += 2)
		px_executor_free(ex, p[(int)(((long)i * 7919) % N)]);
	free(p);
	px_executor_destroy(ex);
}

/* ---- px_sem_post overflow ------------------------------------------------ */

static void test_sem_post_beyond_max_overflows_and_changes_nothing(void **state)
{
	(void)state;
	px_sem s;
	assert_int_equal(px_sem_init(&s, 0), 0);
	assert_int_equal(px_sem_post(&s, PX_SEM_VALUE_MAX + 1u), -EOVERFLOW);
	assert_int_equal(px_sem_post(&s, UINT32_MAX), -EOVERFLOW);
	assert_int_equal(px_sem_value(&s), 0);
	assert_int_equal(px_sem_post(&s, PX_SEM_VALUE_MAX), 0);
	assert_int_equal(px_sem_value(&s), PX_SEM_VALUE_MAX);
	assert_int_equal(px_sem_post(&s, 1), -EOVERFLOW);
	assert_int_equal(px_sem_value(&s), PX_SEM_VALUE_MAX);
	assert_int_equal(px_sem_trywait(&s), 0);
	assert_int_equal(px_sem_post(&s, 1), 0);
	assert_int_equal(px_sem_post(&s, 0), -EINVAL);
}

/* ---- NULL, header by header ---------------------------------------------- */

static void test_counter_null_is_refused(void **state)
{
	(void)state;
	assert_int_equal(px_counter_init(NULL, 5), -EINVAL);
	assert_int_equal(px_counter_add(NULL, 5), 0);
	assert_int_equal(px_counter_get(NULL), 0);
	assert_int_equal(px_counter_exchange(NULL, 5), 0);
	int64_t e = 0;
	assert_false(px_counter_cas(NULL, &e, 1));
	px_counter c;
	assert_int_equal(px_counter_init(&c, 3), 0);
	assert_false(px_counter_cas(&c, NULL, 1));
	assert_int_equal(px_counter_get(&c), 3);
}

static void test_sync_null_is_refused(void **state)
{
	(void)state;
	assert_int_equal(px_lock_init(NULL), -EINVAL);
	assert_int_equal(px_lock_destroy(NULL), -EINVAL);
	assert_int_equal(px_lock_lock(NULL, 0), -EINVAL);
	assert_int_equal(px_lock_trylock(NULL), -EINVAL);
	assert_int_equal(px_lock_unlock(NULL), -EINVAL);
	assert_int_equal(px_lock_consistent(NULL), -EINVAL);
	assert_int_equal(px_rlock_init(NULL), -EINVAL);
	assert_int_equal(px_rlock_destroy(NULL), -EINVAL);
	assert_int_equal(px_rlock_lock(NULL, 0), -EINVAL);
	assert_int_equal(px_rlock_trylock(NULL), -EINVAL);
	assert_int_equal(px_rlock_unlock(NULL), -EINVAL);
	assert_int_equal(px_rlock_consistent(NULL), -EINVAL);
	assert_int_equal(px_sem_init(NULL, 1), -EINVAL);
	assert_int_equal(px_sem_wait(NULL, 0), -EINVAL);
	assert_int_equal(px_sem_trywait(NULL), -EINVAL);
	assert_int_equal(px_sem_post(NULL, 1), -EINVAL);
	assert_int_equal(px_sem_value(NULL), 0);
	assert_int_equal(px_event_init(NULL, true), -EINVAL);
	assert_int_equal(px_event_set(NULL), -EINVAL);
	assert_int_equal(px_event_clear(NULL), -EINVAL);
	assert_false(px_event_is_set(NULL));
	assert_int_equal(px_event_wait(NULL, 0), -EINVAL);
	px_lock l;
	px_cond c;
	assert_int_equal(px_lock_init(&l), 0);
	assert_int_equal(px_cond_init(&c), 0);
	assert_int_equal(px_cond_init(NULL), -EINVAL);
	assert_int_equal(px_cond_destroy(NULL), -EINVAL);
	assert_int_equal(px_cond_wait(NULL, &l, 0), -EINVAL);
	assert_int_equal(px_cond_wait(&c, NULL, 0), -EINVAL);
	assert_int_equal(px_cond_notify(NULL), -EINVAL);
	assert_int_equal(px_cond_notify_all(NULL), -EINVAL);
	assert_int_equal(px_barrier_init(NULL, 2), -EINVAL);
	assert_int_equal(px_barrier_wait(NULL, 0), -EINVAL);
	assert_int_equal(px_barrier_abort(NULL), -EINVAL);
	assert_int_equal(px_barrier_reset(NULL), -EINVAL);
	assert_int_equal(px_barrier_waiting(NULL), 0);
	assert_int_equal(px_cond_destroy(&c), 0);
	assert_int_equal(px_lock_destroy(&l), 0);
}

static void test_ring_null_is_refused(void **state)
{
	(void)state;
	size_t size = (size_t)px_ring_memsize(4, 8, 0);
	void *mem = aligned_alloc(PX_RING_ALIGN, size);
	assert_int_equal(px_ring_init(mem, size, 4, 8, 0), 0);
	px_ring *r;
	assert_int_equal(px_ring_attach(&r, mem, size), 0);
	uint64_t v = 1;
	assert_int_equal(px_ring_init(NULL, size, 4, 8, 0), -EINVAL);
	assert_int_equal(px_ring_attach(NULL, mem, size), -EINVAL);
	assert_int_equal(px_ring_attach(&r, NULL, size), -EINVAL);
	assert_int_equal(px_ring_try_push(NULL, &v), -EINVAL);
	assert_int_equal(px_ring_try_push(r, NULL), -EINVAL);
	assert_int_equal(px_ring_try_pop(NULL, &v), -EINVAL);
	assert_int_equal(px_ring_try_pop(r, NULL), -EINVAL);
	assert_int_equal(px_ring_push(NULL, &v, 0), -EINVAL);
	assert_int_equal(px_ring_push(r, NULL, 0), -EINVAL);
	assert_int_equal(px_ring_pop(NULL, &v, 0), -EINVAL);
	assert_int_equal(px_ring_pop(r, NULL, 0), -EINVAL);
	assert_int_equal(px_ring_try_push_burst(NULL, &v, 1), -EINVAL);
	assert_int_equal(px_ring_try_push_burst(r, NULL, 1), -EINVAL);
	assert_int_equal(px_ring_try_pop_burst(NULL, &v, 1), -EINVAL);
	assert_int_equal(px_ring_try_pop_burst(r, NULL, 1), -EINVAL);
	assert_int_equal(px_ring_push_burst(NULL, &v, 1, 0), -EINVAL);
	assert_int_equal(px_ring_push_burst(r, NULL, 1, 0), -EINVAL);
	assert_int_equal(px_ring_pop_burst(NULL, &v, 1, 0), -EINVAL);
	assert_int_equal(px_ring_pop_burst(r, NULL, 1, 0), -EINVAL);
	assert_int_equal(px_ring_close(NULL), -EINVAL);
	assert_false(px_ring_is_closed(NULL));
	assert_int_equal(px_ring_kick(NULL), -EINVAL);
	assert_int_equal(px_ring_count(NULL), 0);
	assert_int_equal(px_ring_capacity(NULL), 0);
	assert_int_equal(px_ring_slot_size(NULL), 0);
	px_ring_set_spin(NULL, 5);
	px_ring_detach(NULL);
	px_ring_detach((px_ring *)mem); /* the memory itself: a no-op */
	assert_int_equal(px_ring_try_push(r, &v), 0);
	px_ring_detach(r);
	free(mem);
}

static void test_queue_null_is_refused(void **state)
{
	(void)state;
	px_queue_config c = {.capacity = 4, .max_msg = 100};
	size_t size = (size_t)px_queue_memsize(&c);
	void *mem = aligned_alloc(PX_RING_ALIGN, (size + 63) & ~(size_t)63);
	assert_int_equal(px_queue_init(mem, size, &c), 0);
	px_queue *q;
	assert_int_equal(px_queue_attach(&q, mem, size), 0);
	char buf[100];
	struct iovec iov = {.iov_base = buf, .iov_len = 4};
	assert_int_equal(px_queue_memsize(NULL), -EINVAL);
	assert_int_equal(px_queue_init(NULL, size, &c), -EINVAL);
	assert_int_equal(px_queue_init(mem, size, NULL), -EINVAL);
	assert_int_equal(px_queue_attach(NULL, mem, size), -EINVAL);
	assert_int_equal(px_queue_attach(&q, NULL, size), -EINVAL);
	assert_int_equal(px_queue_put(NULL, buf, 4, 0), -EINVAL);
	assert_int_equal(px_queue_put(q, NULL, 4, 0), -EINVAL);
	assert_int_equal(px_queue_putv(NULL, &iov, 1, 0), -EINVAL);
	assert_int_equal(px_queue_putv(q, NULL, 1, 0), -EINVAL);
	assert_int_equal(px_queue_get(NULL, buf, sizeof buf, 0), -EINVAL);
	assert_int_equal(px_queue_get(q, NULL, sizeof buf, 0), -EINVAL);
	assert_int_equal(px_queue_close(NULL), -EINVAL);
	assert_false(px_queue_is_closed(NULL));
	assert_int_equal(px_queue_kick(NULL), -EINVAL);
	assert_int_equal(px_queue_count(NULL), 0);
	assert_int_equal(px_queue_max_msg(NULL), 0);
	px_queue_set_spin(NULL, 1);
	px_queue_detach(NULL);
	px_queue_detach((px_queue *)mem);
	assert_int_equal(px_queue_put(q, buf, 4, 0), 0);
	assert_int_equal(px_queue_get(q, buf, sizeof buf, 0), 4);
	px_queue_detach(q);
	free(mem);
}

static void test_shm_null_is_refused(void **state)
{
	(void)state;
	px_shm *s;
	assert_int_equal(px_shm_create_anon(NULL, 64), -EINVAL);
	assert_int_equal(px_shm_create(NULL, "/px-edges", 64, 0), -EINVAL);
	assert_int_equal(px_shm_create(&s, NULL, 64, 0), -EINVAL);
	assert_int_equal(px_shm_open(NULL, "/px-edges"), -EINVAL);
	assert_int_equal(px_shm_open(&s, NULL), -EINVAL);
	assert_int_equal(px_shm_open_fd(NULL, 0), -EINVAL);
	assert_int_equal(px_shm_close(NULL), 0);
	assert_null(px_shm_data(NULL));
	assert_int_equal(px_shm_size(NULL), 0);
	assert_null(px_shm_name(NULL));
	assert_int_equal(px_shm_fd(NULL), -EBADF);
	assert_int_equal(px_shm_unlink(NULL), -EINVAL);
	assert_int_equal(px_shm_is_stale(NULL), -EINVAL);
	assert_int_equal(px_shm_remove_stale(NULL), -EINVAL);
}

/* An anonymous segment's descriptor is sealed: a process it is passed to
 * cannot shrink it under the creator's mapping. */
static void test_shm_anon_segment_cannot_be_truncated(void **state)
{
	(void)state;
	px_shm *s;
	assert_int_equal(px_shm_create_anon(&s, 4096), 0);
	int fd = px_shm_fd(s);
	if (fd < 0) {
		px_shm_close(s);
		skip(); /* no memfd here */
	}
	assert_int_equal(ftruncate(fd, 64), -1);
	assert_int_equal(errno, EPERM);
	memset(px_shm_data(s), 1, 4096); /* every page still there */
	px_shm_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_executor_free_foreign_pointer_ignored_inline),
		cmocka_unit_test(test_executor_free_foreign_pointer_ignored_thread),
		cmocka_unit_test(test_executor_free_foreign_pointer_ignored_process),
		cmocka_unit_test(test_executor_free_tracks_many_live_blocks),
		cmocka_unit_test(test_sem_post_beyond_max_overflows_and_changes_nothing),
		cmocka_unit_test(test_counter_null_is_refused),
		cmocka_unit_test(test_sync_null_is_refused),
		cmocka_unit_test(test_ring_null_is_refused),
		cmocka_unit_test(test_queue_null_is_refused),
		cmocka_unit_test(test_shm_null_is_refused),
		cmocka_unit_test(test_shm_anon_segment_cannot_be_truncated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
