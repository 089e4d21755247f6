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
 *  - px_cond_wait with a timeout too large for a deadline;
 *  - hostile headers: a peer that writes the shared header or slots (before
 *    attach, or after it) never makes a call through a handle touch memory
 *    outside the ring / queue or the caller's buffer, nor makes a try call
 *    spin. Buffers are heap blocks of the exact size, so AddressSanitizer
 *    reports any access past them.
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
/* The shared layout is a cross-process contract: the hostile-header tests
 * write its fields by name. */
#include "../ipc/ring_internal.h"

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


/* ---- hostile headers ---------------------------------------------------- */

/* The queue header's fields (queue.c; layout version 1): offsets in bytes. */
enum {
	QOFF_MAX_MSG = 68,
	QOFF_BUMP = 128,
	QOFF_FREE_HEAD = 256,
};

/* Heap memory of exactly the ring's size (a multiple of 128), so that an
 * access past the ring is an ASan report. */
static unsigned char *ring_mem(uint32_t cap, uint32_t slot, unsigned flags,
			       size_t *size)
{
	ssize_t need = px_ring_memsize(cap, slot, flags);
	assert_true(need > 0);
	unsigned char *mem = aligned_alloc(PX__RING_LINE, (size_t)need);
	assert_non_null(mem);
	assert_int_equal(px_ring_init(mem, (size_t)need, cap, slot, flags), 0);
	*size = (size_t)need;
	return mem;
}

static void test_ring_attach_refuses_mask_that_disagrees_with_capacity(void **state)
{
	(void)state;
	size_t size;
	unsigned char *mem = ring_mem(64, 8, PX_RING_SPSC, &size);
	px_ring *hdr = (px_ring *)mem;
	hdr->ro.geo.mask = 127;
	px_ring *r = NULL;
	assert_int_equal(px_ring_attach(&r, mem, size), -EBADMSG);
	hdr->ro.geo.mask = 63;
	hdr->ro.geo.stride = 16;
	assert_int_equal(px_ring_attach(&r, mem, size), -EBADMSG);
	hdr->ro.geo.stride = 8;
	hdr->ro.geo.flags = 0x10 | PX_RING_SPSC;
	assert_int_equal(px_ring_attach(&r, mem, size), -EBADMSG);
	hdr->ro.geo.flags = PX_RING_SPSC;
	hdr->ro.geo.capacity = 128; /* memsize no longer matches */
	assert_int_equal(px_ring_attach(&r, mem, size), -EBADMSG);
	hdr->ro.geo.capacity = 64;
	assert_int_equal(px_ring_attach(&r, mem, size), 0);
	px_ring_detach(r);
	free(mem);
}

static void test_ring_attach_refuses_pow2_flag_on_other_capacity(void **state)
{
	(void)state;
	size_t size;
	unsigned char *mem = ring_mem(100, 8, PX_RING_MPMC, &size);
	px_ring *hdr = (px_ring *)mem;
	hdr->ro.geo.pow2 = 1;
	px_ring *r = NULL;
	assert_int_equal(px_ring_attach(&r, mem, size), -EBADMSG);
	hdr->ro.geo.pow2 = 0;
	hdr->ro.geo.mask = 99;
	assert_int_equal(px_ring_attach(&r, mem, size), -EBADMSG);
	free(mem);
}

/* Runs fn(arg) in a child with an alarm: a call that should not block but
 * does ends the child by SIGALRM, which the parent sees. */
static int run_with_alarm(int (*fn)(void *), void *arg, unsigned seconds)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(seconds);
		_exit(fn(arg));
	}
	return ipc_wait_ms(pid, (int)seconds * 1000 + 5000);
}

struct geo_arg {
	px_ring *r;
	unsigned char *mem;
};

/* Rewrites the geometry after attach: mask and capacity past the ring, the
 * pow2 flag on; then every operation through the handle. */
static int geo_rewritten_child(void *p)
{
	struct geo_arg *a = p;
	px_ring *hdr = (px_ring *)a->mem;
	hdr->ro.geo.capacity = 1u << 20;
	hdr->ro.geo.mask = (1u << 20) - 1;
	hdr->ro.geo.pow2 = 1;
	hdr->ro.geo.slot_size = 4096;
	hdr->ro.geo.stride = 4096;
	uint64_t items[300] = {0};
	for (int i = 0; i < 300; i++) {
		if (px_ring_try_push(a->r, &items[0]) < 0)
			break;
	}
	if (px_ring_try_push_burst(a->r, items, 300) < 0)
		return 1;
	if (px_ring_count(a->r) > 100 || px_ring_capacity(a->r) != 100 ||
	    px_ring_slot_size(a->r) != 8)
		return 2;
	for (int i = 0; i < 300; i++) {
		int e = px_ring_try_pop(a->r, &items[0]);
		if (e == -EAGAIN)
			break;
		if (e)
			return 3;
	}
	if (px_ring_try_pop_burst(a->r, items, 300) < 0)
		return 4;
	int e = px_ring_push(a->r, items, 1000000);
	if (e != 0 && e != -ETIMEDOUT)
		return 5;
	e = px_ring_pop(a->r, items, 1000000);
	if (e != 0 && e != -ETIMEDOUT)
		return 6;
	return 0;
}

static void test_ring_header_rewritten_after_attach_moves_no_access(void **state)
{
	(void)state;
	unsigned flags[] = {PX_RING_SPSC, PX_RING_MPMC};
	for (int m = 0; m < 2; m++) {
		size_t size;
		unsigned char *mem = ring_mem(100, 8, flags[m], &size);
		struct geo_arg a = {.mem = mem};
		assert_int_equal(px_ring_attach(&a.r, mem, size), 0);
		assert_int_equal(run_with_alarm(geo_rewritten_child, &a, 10), 0);
		px_ring_detach(a.r);
		free(mem);
	}
}

/* A Vyukov ring whose sequence words all claim "taken by another
 * producer" (ahead of tail) and whose tail never moves: a try call used to
 * reload tail for ever. */
static int seq_ahead_child(void *p)
{
	struct geo_arg *a = p;
	px_ring *hdr = (px_ring *)a->mem;
	for (uint32_t i = 0; i < 16; i++) {
		uint64_t *seq = (uint64_t *)(void *)(hdr->slots + i * (8 + 8));
		*seq = UINT64_C(1) << 40;
	}
	uint64_t v = 7;
	if (px_ring_try_push(a->r, &v) != -EAGAIN)
		return 1;
	if (px_ring_try_pop(a->r, &v) != -EAGAIN)
		return 2;
	if (px_ring_try_push_burst(a->r, &v, 1) != 0)
		return 3;
	if (px_ring_push(a->r, &v, 20 * 1000 * 1000) != -ETIMEDOUT)
		return 4;
	return 0;
}

static void test_ring_try_push_returns_when_slots_never_free(void **state)
{
	(void)state;
	unsigned flags[] = {PX_RING_MPMC, PX_RING_SP, PX_RING_SC};
	for (int m = 0; m < 3; m++) {
		size_t size;
		unsigned char *mem = ring_mem(16, 8, flags[m], &size);
		struct geo_arg a = {.mem = mem};
		assert_int_equal(px_ring_attach(&a.r, mem, size), 0);
		assert_int_equal(run_with_alarm(seq_ahead_child, &a, 10), 0);
		px_ring_detach(a.r);
		free(mem);
	}
}

/* SPSC indices a lap or more apart: a burst never moves more than the
 * ring holds (the caller's buffer is larger than the ring). */
static void test_ring_spsc_corrupt_indices_stay_in_ring(void **state)
{
	(void)state;
	size_t size;
	unsigned char *mem = ring_mem(8, 8, PX_RING_SPSC, &size);
	px_ring *r;
	assert_int_equal(px_ring_attach(&r, mem, size), 0);
	px_ring *hdr = (px_ring *)mem;
	uint64_t *buf = calloc(64, sizeof *buf);
	atomic_store(&hdr->prod.tail, 1000);
	int n = px_ring_try_pop_burst(r, buf, 64);
	assert_true(n >= 0 && n <= 8);
	atomic_store(&hdr->cons.head, 5000); /* head past tail: no room */
	hdr->prod.cached_head = 5000;
	assert_int_equal(px_ring_try_push_burst(r, buf, 64), 0);
	assert_int_equal(px_ring_try_push(r, buf), -EAGAIN);
	hdr->prod.cached_head = 0; /* a stale cache two laps behind */
	atomic_store(&hdr->cons.head, 0);
	atomic_store(&hdr->prod.tail, 3);
	n = px_ring_try_push_burst(r, buf, 64);
	assert_int_equal(n, 5);
	free(buf);
	px_ring_detach(r);
	free(mem);
}

/* ---- queue ---- */

static unsigned char *queue_mem(const px_queue_config *c, size_t *size)
{
	ssize_t need = px_queue_memsize(c);
	assert_true(need > 0);
	size_t sz = ((size_t)need + 127) & ~(size_t)127;
	unsigned char *mem = aligned_alloc(PX__RING_LINE, sz);
	assert_non_null(mem);
	assert_int_equal(px_queue_init(mem, (size_t)need, c), 0);
	*size = (size_t)need;
	return mem;
}

/* The reviewer's case: max_msg lowered in the header after a 200-byte
 * message was queued; the attacher's 150-byte buffer used to receive 200
 * bytes. */
static void test_queue_get_refuses_message_longer_than_max_msg(void **state)
{
	(void)state;
	px_queue_config c = {.capacity = 4, .max_msg = 200};
	size_t size;
	unsigned char *mem = queue_mem(&c, &size);
	px_queue *q;
	assert_int_equal(px_queue_attach(&q, mem, size), 0);
	unsigned char msg[200];
	memset(msg, 0x5a, sizeof msg);
	assert_int_equal(px_queue_put(q, msg, sizeof msg, 0), 0);
	assert_int_equal(px_queue_put(q, msg, 20, 0), 0);
	px_queue_detach(q);
	*(uint32_t *)(void *)(mem + QOFF_MAX_MSG) = 150;
	assert_int_equal(px_queue_attach(&q, mem, size), 0);
	assert_int_equal(px_queue_max_msg(q), 150);
	unsigned char *buf = malloc(150);
	assert_int_equal(px_queue_get(q, buf, 150, 0), -EBADMSG);
	assert_int_equal(px_queue_get(q, buf, 150, 0), 20); /* the next one */
	assert_int_equal(px_queue_get(q, buf, 150, 0), -EAGAIN);
	free(buf);
	px_queue_detach(q);
	free(mem);
}

/* The header rewritten after attach (max_msg raised, offsets moved): the
 * handle keeps the values it validated. */
static void test_queue_header_rewritten_after_attach_is_not_used(void **state)
{
	(void)state;
	px_queue_config c = {.capacity = 4, .max_msg = 300};
	size_t size;
	unsigned char *mem = queue_mem(&c, &size);
	px_queue *q;
	assert_int_equal(px_queue_attach(&q, mem, size), 0);
	unsigned char msg[300];
	memset(msg, 1, sizeof msg);
	assert_int_equal(px_queue_put(q, msg, 300, 0), 0);
	/* Everything from the memsize on: offsets, units, sizes. */
	memset(mem + 16, 0xff, 64);
	assert_int_equal(px_queue_max_msg(q), 300);
	assert_int_equal(px_queue_put(q, msg, 301, 0), -EMSGSIZE);
	unsigned char *buf = malloc(300);
	assert_int_equal(px_queue_get(q, buf, 300, 0), 300);
	assert_memory_equal(buf, msg, 300);
	assert_int_equal(px_queue_put(q, msg, 300, 0), 0);
	assert_int_equal(px_queue_get(q, buf, 300, 0), 300);
	free(buf);
	px_queue_detach(q);
	free(mem);
}

/* Descriptors whose length, class or block are garbage are dropped. */
static void test_queue_get_drops_descriptor_outside_arena(void **state)
{
	(void)state;
	px_queue_config c = {.capacity = 8, .max_msg = 1000, .flags = PX_RING_SPSC};
	size_t size;
	unsigned char *mem = queue_mem(&c, &size);
	px_queue *q;
	assert_int_equal(px_queue_attach(&q, mem, size), 0);
	unsigned char msg[1000] = {0};
	unsigned char *buf = malloc(1000);
	/* Descriptor slots of the SPSC ring: the queue's ring starts at the
	 * first 128-byte line after the queue header (640 bytes). */
	px_ring *ring = (px_ring *)(void *)(mem + 640);
	assert_int_equal(ring->ro.geo.slot_size, 64);
	struct {
		uint32_t len, cls;
		uint64_t unit;
	} bad[] = {
		{100, 1, 1u << 30},   /* block far outside the arena */
		{100, 30, 0},         /* no such class */
		{900, 1, 0},          /* longer than its 128-byte block */
		{60, UINT32_MAX, 0},  /* inline, longer than 48 */
		{5000, 4, 0},         /* longer than max_msg */
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		assert_int_equal(px_queue_put(q, msg, 500, 0), 0);
		memcpy(ring->slots + (k % 8) * 64, &bad[k], sizeof bad[k]);
		assert_int_equal(px_queue_get(q, buf, 1000, 0), -EBADMSG);
	}
	/* Still works afterwards (the dropped blocks leak). */
	assert_int_equal(px_queue_put(q, msg, 40, 0), 0);
	assert_int_equal(px_queue_get(q, buf, 1000, 0), 40);
	free(buf);
	px_queue_detach(q);
	free(mem);
}

struct q_arg {
	px_queue *q;
	unsigned char *mem;
};

/* Free-list heads naming blocks outside the arena, and a bump pointer
 * near UINT64_MAX (a sum that wraps): allocation fails cleanly. */
static int arena_corrupt_child(void *p)
{
	struct q_arg *a = p;
	uint64_t *heads = (uint64_t *)(void *)(a->mem + QOFF_FREE_HEAD);
	for (int c = 0; c < 24; c++)
		heads[c] = UINT64_C(0x0000000500000000) | 0xfffffff0u;
	*(uint64_t *)(void *)(a->mem + QOFF_BUMP) = UINT64_MAX - 3;
	unsigned char msg[1000] = {0};
	if (px_queue_put(a->q, msg, 1000, 0) != -EAGAIN)
		return 1;
	if (px_queue_put(a->q, msg, 100, 20 * 1000 * 1000) != -ETIMEDOUT)
		return 2;
	if (px_queue_put(a->q, msg, 10, 0) != 0) /* inline still works */
		return 3;
	return 0;
}

static void test_queue_corrupt_arena_fails_put_cleanly(void **state)
{
	(void)state;
	px_queue_config c = {.capacity = 4, .max_msg = 1000};
	size_t size;
	unsigned char *mem = queue_mem(&c, &size);
	struct q_arg a = {.mem = mem};
	assert_int_equal(px_queue_attach(&a.q, mem, size), 0);
	assert_int_equal(run_with_alarm(arena_corrupt_child, &a, 10), 0);
	px_queue_detach(a.q);
	free(mem);
}

static void test_queue_attach_refuses_inconsistent_header(void **state)
{
	(void)state;
	px_queue_config c = {.capacity = 4, .max_msg = 1000};
	size_t size;
	unsigned char *mem = queue_mem(&c, &size);
	px_queue *q;
	/* Each field of the geometry in turn, then the ring inside. */
	static const size_t offs[] = {16, 24, 32, 40, 48, 56, 64, 72, 76};
	for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
		uint32_t *f = (uint32_t *)(void *)(mem + offs[k]);
		uint32_t old = *f;
		*f ^= 0x40;
		assert_int_equal(px_queue_attach(&q, mem, size), -EBADMSG);
		*f = old;
	}
	px_ring *ring = (px_ring *)(void *)(mem + 640);
	ring->ro.geo.slot_size = 32;
	ring->ro.geo.stride = 32;
	ring->ro.memsize = (uint64_t)px_ring_memsize(4, 32, 0);
	assert_int_equal(px_queue_attach(&q, mem, size), -EBADMSG);
	free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_mc_wake_not_lost_on_out_of_order_publish),
		cmocka_unit_test(test_ring_mp_wake_not_lost_on_out_of_order_release),
		cmocka_unit_test(test_queue_default_arena_never_runs_out),
		cmocka_unit_test(test_queue_small_arena_empty_queue_fits_any_size),
		cmocka_unit_test(test_cond_wait_huge_timeout_waits),
		cmocka_unit_test(test_ring_attach_refuses_mask_that_disagrees_with_capacity),
		cmocka_unit_test(test_ring_attach_refuses_pow2_flag_on_other_capacity),
		cmocka_unit_test(test_ring_header_rewritten_after_attach_moves_no_access),
		cmocka_unit_test(test_ring_try_push_returns_when_slots_never_free),
		cmocka_unit_test(test_ring_spsc_corrupt_indices_stay_in_ring),
		cmocka_unit_test(test_queue_get_refuses_message_longer_than_max_msg),
		cmocka_unit_test(test_queue_header_rewritten_after_attach_is_not_used),
		cmocka_unit_test(test_queue_get_drops_descriptor_outside_arena),
		cmocka_unit_test(test_queue_corrupt_arena_fails_put_cleanly),
		cmocka_unit_test(test_queue_attach_refuses_inconsistent_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
