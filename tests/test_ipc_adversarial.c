/*
 * tests/test_ipc_adversarial.c - interleavings and edge cases of ipc/ that
 * the topic tests do not force:
 *
 *  - a wake-up spent on a sleeper that cannot use it: with several
 *    producers (consumers), a later position can be published (released)
 *    while an earlier one is still being written (read). The one sleeper a
 *    later publication wakes finds the earlier slot not ready and sleeps
 *    again; when the earlier one completes and wakes only one sleeper, the
 *    other must not stay asleep beside a ready slot. A party is held between
 *    its claim and its sequence store by a page fault: its item (or its
 *    destination) lies on a PROT_NONE page whose SIGSEGV handler waits for
 *    the test's go;
 *  - queue arena size classes: small messages carved before a large one
 *    must not leave an empty queue unable to take a max_msg message;
 *  - px_cond_wait with a timeout too large for a deadline.
 *
 * Children report through their exit status; a child still running after
 * its time limit counts as hung (the parent kills it).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include <parex/queue.h>
#include <parex/ring.h>
#include <parex/sync.h>

#include "test_ipc_common.h"

/* ---- a party held between its claim and its sequence store ------------ */

static unsigned char *trap_page;
static int trap_go_fd = -1, trap_hit_fd = -1;

/* Runs on the fault: tells the test, waits for its go, lifts the trap and
 * returns, so the faulting copy runs again and completes. */
static void trap_handler(int sig)
{
	(void)sig;
	char c = 1;
	if (write(trap_hit_fd, &c, 1) != 1)
		_exit(90);
	if (read(trap_go_fd, &c, 1) != 1)
		_exit(91);
	if (mprotect(trap_page, 4096, PROT_READ | PROT_WRITE) != 0)
		_exit(92);
}

struct held {
	px_ring *r;
	bool push; /* push the trapped item, or pop into the trapped page */
	uint64_t value;
	int go[2], hit[2];
};

static int held_child(void *arg)
{
	struct held *h = arg;
	trap_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (trap_page == MAP_FAILED)
		return 80;
	memcpy(trap_page, &h->value, sizeof h->value);
	trap_go_fd = h->go[0];
	trap_hit_fd = h->hit[1];
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = trap_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0)
		return 81;
	if (mprotect(trap_page, 4096, PROT_NONE) != 0)
		return 82;
	int r = h->push ? px_ring_push(h->r, trap_page, -1)
			: px_ring_pop(h->r, trap_page, -1);
	if (r != 0)
		return 83;
	if (!h->push) {
		uint64_t v;
		memcpy(&v, trap_page, sizeof v);
		if (v != h->value)
			return 84;
	}
	return 0;
}

/* Forks the held party and returns once it sits in its fault handler. */
static pid_t held_start(struct held *h)
{
	assert_int_equal(pipe(h->go), 0);
	assert_int_equal(pipe(h->hit), 0);
	pid_t pid = ipc_fork(held_child, h);
	assert_true(pid > 0);
	char c;
	assert_int_equal(read(h->hit[0], &c, 1), 1);
	return pid;
}

static void held_release(struct held *h)
{
	char c = 1;
	assert_int_equal(write(h->go[1], &c, 1), 1);
}

static void held_close(struct held *h)
{
	close(h->go[0]);
	close(h->go[1]);
	close(h->hit[0]);
	close(h->hit[1]);
}

struct blocked {
	px_ring *r;
	uint64_t value; /* push: this; pop: any value below 100 */
};

static int pop_one(void *arg)
{
	struct blocked *b = arg;
	uint64_t v = 0;
	int r = px_ring_pop(b->r, &v, -1);
	if (r != 0)
		return ipc_expect(r, 0);
	return v < 100 ? 0 : 50;
}

static int push_one(void *arg)
{
	struct blocked *b = arg;
	return ipc_expect(px_ring_push(b->r, &b->value, -1), 0);
}

static px_ring *shared_ring(uint32_t cap, size_t *size)
{
	ssize_t need = px_ring_memsize(cap, sizeof(uint64_t), PX_RING_MPMC);
	assert_true(need > 0);
	void *mem = ipc_shared_alloc((size_t)need);
	assert_non_null(mem);
	assert_int_equal(px_ring_init(mem, (size_t)need, cap, sizeof(uint64_t),
				      PX_RING_MPMC), 0);
	px_ring_set_spin(mem, 0); /* park at once */
	*size = (size_t)need;
	return mem;
}

/* Lets a woken party run and park again before the next step. */
static void settle(const pid_t *pids, int n)
{
	usleep(50 * 1000);
	for (int i = 0; i < n; i++)
		assert_true(ipc_wait_sleeping(pids[i]));
}

/*
 * Consumers C1, C2 sleep on an empty ring. Producer H claims position 0 and
 * stalls in its copy; the test pushes position 1, whose wake goes to C1,
 * which finds position 0 not ready and parks again. H completes and wakes
 * one sleeper (C2), which takes item 0: C1 must still get item 1.
 */
static void test_ring_mc_wake_not_lost_on_out_of_order_publish(void **state)
{
	(void)state;
	size_t size;
	px_ring *r = shared_ring(4, &size);
	struct blocked b = {.r = r};
	pid_t cons[2];
	for (int i = 0; i < 2; i++) {
		cons[i] = ipc_fork(pop_one, &b);
		assert_true(cons[i] > 0);
		assert_true(ipc_wait_sleeping(cons[i]));
	}
	struct held h = {.r = r, .push = true, .value = 7};
	pid_t hp = held_start(&h);
	assert_int_equal(px_ring_count(r), 1); /* position 0 claimed */
	uint64_t v = 8;
	assert_int_equal(px_ring_push(r, &v, 0), 0);
	settle(cons, 2);
	held_release(&h);
	assert_int_equal(ipc_wait_ms(hp, 5000), 0);
	assert_int_equal(ipc_wait_ms(cons[0], 5000), 0);
	assert_int_equal(ipc_wait_ms(cons[1], 5000), 0);
	assert_int_equal(px_ring_count(r), 0);
	held_close(&h);
	ipc_shared_free(r, size);
}

/*
 * The mirror image: producers P1, P2 sleep on a full ring of 2. Consumer H
 * claims position 0 and stalls writing it out; the test pops position 1,
 * whose wake goes to P1, which finds slot 0 not free and parks again. H
 * completes and wakes one producer (P2), which takes slot 0: P1 must still
 * get slot 1.
 */
static void test_ring_mp_wake_not_lost_on_out_of_order_release(void **state)
{
	(void)state;
	size_t size;
	px_ring *r = shared_ring(2, &size);
	uint64_t v = 1;
	assert_int_equal(px_ring_push(r, &v, 0), 0);
	v = 2;
	assert_int_equal(px_ring_push(r, &v, 0), 0);
	struct blocked b[2] = {{.r = r, .value = 11}, {.r = r, .value = 12}};
	pid_t prod[2];
	for (int i = 0; i < 2; i++) {
		prod[i] = ipc_fork(push_one, &b[i]);
		assert_true(prod[i] > 0);
		assert_true(ipc_wait_sleeping(prod[i]));
	}
	struct held h = {.r = r, .push = false, .value = 1};
	pid_t hp = held_start(&h);
	assert_int_equal(px_ring_pop(r, &v, 0), 0);
	assert_int_equal(v, 2);
	settle(prod, 2);
	held_release(&h);
	assert_int_equal(ipc_wait_ms(hp, 5000), 0);
	assert_int_equal(ipc_wait_ms(prod[0], 5000), 0);
	assert_int_equal(ipc_wait_ms(prod[1], 5000), 0);
	uint64_t got[2];
	assert_int_equal(px_ring_pop_burst(r, got, 2, 0), 2);
	assert_int_equal(got[0] + got[1], 23);
	held_close(&h);
	ipc_shared_free(r, size);
}

/* ---- queue arena ------------------------------------------------------- */

static px_queue *queue_new(uint32_t cap, uint32_t max_msg, uint64_t arena,
			   void **mem_out)
{
	px_queue_config cfg = {.capacity = cap, .max_msg = max_msg,
			       .arena_size = arena, .flags = PX_RING_MPMC};
	ssize_t need = px_queue_memsize(&cfg);
	assert_true(need > 0);
	void *mem = aligned_alloc(PX_RING_ALIGN, ((size_t)need + 63) & ~(size_t)63);
	assert_non_null(mem);
	assert_int_equal(px_queue_init(mem, (size_t)need, &cfg), 0);
	px_queue *q;
	assert_int_equal(px_queue_attach(&q, mem, (size_t)need), 0);
	*mem_out = mem;
	return q;
}

/* Puts n messages of len bytes (byte i of message k = k + i), without
 * waiting, then gets and checks them. */
static void put_get_round(px_queue *q, uint32_t n, size_t len, unsigned char *buf)
{
	for (uint32_t k = 0; k < n; k++) {
		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)(k + i);
		assert_int_equal(px_queue_put(q, buf, len, 0), 0);
	}
	for (uint32_t k = 0; k < n; k++) {
		assert_int_equal(px_queue_get(q, buf, px_queue_max_msg(q), 0),
				 (ssize_t)len);
		for (size_t i = 0; i < len; i++)
			assert_int_equal(buf[i], (unsigned char)(k + i));
	}
}

/*
 * The default arena holds capacity blocks of the largest class and is
 * documented never to run out. Rounds of ever smaller messages used to
 * carve most of it into small-class blocks that are never merged, after
 * which an empty queue refused a max_msg message.
 */
static void test_queue_default_arena_never_runs_out(void **state)
{
	(void)state;
	void *mem;
	px_queue *q = queue_new(4, 4096, 0, &mem);
	unsigned char *buf = malloc(4096);
	assert_non_null(buf);
	for (int c = 5; c >= 0; c--)
		put_get_round(q, 4, (size_t)64 << c, buf);
	/* capacity messages of max_msg bytes, none waiting for another */
	put_get_round(q, 4, 4096, buf);
	for (int c = 0; c <= 6; c++)
		put_get_round(q, 4, (size_t)64 << c, buf);
	free(buf);
	free(mem);
}

/*
 * A smaller arena may make a producer wait while messages are in flight,
 * but once the queue is empty every message size must fit again, whatever
 * sizes came before.
 */
static void test_queue_small_arena_empty_queue_fits_any_size(void **state)
{
	(void)state;
	void *mem;
	/* room for two largest blocks only */
	px_queue *q = queue_new(8, 4096, 2 * 4096, &mem);
	unsigned char *buf = malloc(4096);
	assert_non_null(buf);
	for (int c = 5; c >= 0; c--)
		put_get_round(q, 2, (size_t)64 << c, buf);
	put_get_round(q, 1, 4096, buf);
	for (int c = 0; c <= 6; c++)
		put_get_round(q, 1, (size_t)64 << c, buf);
	/* exhaustion answers -EAGAIN, and a get makes room again */
	size_t n = 0;
	while (px_queue_put(q, buf, 4096, 0) == 0)
		n++;
	assert_true(n >= 1);
	assert_int_equal(px_queue_put(q, buf, 4096, 0), -EAGAIN);
	assert_int_equal(px_queue_get(q, buf, 4096, 0), 4096);
	assert_int_equal(px_queue_put(q, buf, 4096, 0), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(px_queue_get(q, buf, 4096, 0), 4096);
	assert_int_equal(px_queue_get(q, buf, 4096, 0), -EAGAIN);
	free(buf);
	free(mem);
}

/* ---- px_cond ------------------------------------------------------------ */

struct condpair {
	px_lock lock;
	px_cond cond;
	_Atomic int done;
};

static int cond_waiter(void *arg)
{
	struct condpair *cp = arg;
	int r = px_lock_lock(&cp->lock, -1);
	if (r != 0)
		return 10;
	while (!atomic_load(&cp->done)) {
		r = px_cond_wait(&cp->cond, &cp->lock, INT64_MAX);
		if (r != 0) {
			px_lock_unlock(&cp->lock);
			return ipc_expect(r, 0);
		}
	}
	return px_lock_unlock(&cp->lock) == 0 ? 0 : 11;
}

/* INT64_MAX ns cannot be a deadline: it means "no limit", as elsewhere. */
static void test_cond_wait_huge_timeout_waits(void **state)
{
	(void)state;
	struct condpair *cp = ipc_shared_alloc(sizeof *cp);
	assert_non_null(cp);
	assert_int_equal(px_lock_init(&cp->lock), 0);
	assert_int_equal(px_cond_init(&cp->cond), 0);
	pid_t pid = ipc_fork(cond_waiter, cp);
	assert_true(pid > 0);
	assert_true(ipc_wait_sleeping(pid));
	assert_int_equal(px_lock_lock(&cp->lock, -1), 0);
	atomic_store(&cp->done, 1);
	assert_int_equal(px_cond_notify_all(&cp->cond), 0);
	assert_int_equal(px_lock_unlock(&cp->lock), 0);
	assert_int_equal(ipc_wait_ms(pid, 5000), 0);
	assert_int_equal(px_cond_destroy(&cp->cond), 0);
	assert_int_equal(px_lock_destroy(&cp->lock), 0);
	ipc_shared_free(cp, sizeof *cp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_mc_wake_not_lost_on_out_of_order_publish),
		cmocka_unit_test(test_ring_mp_wake_not_lost_on_out_of_order_release),
		cmocka_unit_test(test_queue_default_arena_never_runs_out),
		cmocka_unit_test(test_queue_small_arena_empty_queue_fits_any_size),
		cmocka_unit_test(test_cond_wait_huge_timeout_waits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
