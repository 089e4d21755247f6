/*
 * tests/test_ipc_chaos.c - the trust model of ring.h and queue.h under
 * fire: a producer and a consumer process use a live ring and a live queue
 * through handles from px_*_attach() while a third process keeps writing
 * random bytes over their headers, slots, descriptors and arena.
 *
 * Asserted, in each user process (which reports through its exit status):
 *  - no crash and no sanitizer report (the process would die of a signal
 *    or exit with the sanitizer's status);
 *  - every call returns success or an error its header documents;
 *  - no call takes long: each is timed, on the thread's CPU clock (more
 *    than 0.5 s of CPU is a spin that does not end) and on the wall clock
 *    (more than 10 s beyond its timeout is a sleep that does not end: a
 *    loaded machine can deschedule a process for a while, so that bound is
 *    loose); and no call at all outlives an alarm();
 *  - lengths returned by px_queue_get() fit the caller's buffer, which is a
 *    heap block of exactly max_msg bytes (ASan reports a write past it);
 *  - re-attaching to the damaged memory either fails with a documented
 *    error or yields a handle that works under the same rules.
 *
 * What is not asserted: that items arrive intact or at all - the trust
 * model allows a peer to garble, lose or stall them.
 *
 * Duration: 2 s scaled by PX_TEST_SCALE (at least 0.5 s).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <parex/queue.h>
#include <parex/ring.h>

#include "test_ipc_common.h"

#define SLOT 24u
#define RING_CAP 64u
#define Q_CAP 16u
#define Q_MAX 3000u

/* Exit statuses of the user processes. */
enum {
	BAD_RING_RC = 10,
	BAD_QUEUE_RC = 20,
	BAD_LEN = 30,
	SLOW_TRY = 40,
	SLOW_SLEEP = 70,
	BAD_ATTACH = 50,
	NO_PROGRESS = 60,
};

struct shared {
	_Atomic int stop;
	_Atomic uint64_t calls[2];
};

struct layout {
	struct shared *ctl;
	unsigned char *ring_mem; /* both in one MAP_SHARED mapping */
	size_t ring_size;
	unsigned char *queue_mem;
	size_t queue_size;
	unsigned ring_flags;
};

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

static bool ring_rc_ok(int rc, bool push, bool burst)
{
	if (burst && rc >= 0)
		return true;
	switch (rc) {
	case 0:
	case -EAGAIN:
	case -ETIMEDOUT:
	case -EINTR:
		return true;
	case -EPIPE:
		return push;
	case PX_EEOF:
		return !push;
	default:
		return false;
	}
}

static bool queue_rc_ok(ssize_t rc, bool put)
{
	if (!put && rc >= 0)
		return rc <= (ssize_t)Q_MAX;
	switch (rc) {
	case 0:
	case -EAGAIN:
	case -ETIMEDOUT:
	case -EINTR:
		return true;
	case -EPIPE:
		return put;
	case PX_EEOF:
	case -EBADMSG:
		return !put;
	default:
		return false;
	}
}

static bool attach_rc_ok(int rc)
{
	return rc == 0 || rc == PX_EBADMAGIC || rc == PX_EVERSION || rc == -EBADMSG;
}

/* One party: side 0 produces, side 1 consumes. */
static int user(struct layout *L, int side)
{
	alarm(60);
	uint64_t seed = (uint64_t)getpid() * 2654435761u + 1;
	px_ring *r = NULL;
	px_queue *q = NULL;
	if (px_ring_attach(&r, L->ring_mem, L->ring_size) ||
	    px_queue_attach(&q, L->queue_mem, L->queue_size))
		return BAD_ATTACH; /* nothing damaged yet: the chaos waits */
	unsigned char items[8 * SLOT];
	unsigned char *msg = malloc(Q_MAX); /* exactly max_msg: ASan sees past it */
	memset(items, side ? 0 : 0x11, sizeof items);
	memset(msg, 0x22, Q_MAX);
	uint64_t calls = 0;
	while (!atomic_load(&L->ctl->stop)) {
		uint64_t x = rnd(&seed);
		int op = (int)(x % 16);
		bool timed = op >= 12;
		int64_t timeout = timed ? (int64_t)(x >> 8) % 2000000 + 1 : 0;
		int64_t t0 = clock_ns(CLOCK_MONOTONIC);
		int64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		if (op < 6) {
			int rc;
			bool burst = op >= 3;
			uint32_t n = (uint32_t)(x >> 16) % 8 + 1;
			if (side == 0)
				rc = burst ? px_ring_try_push_burst(r, items, n)
					   : px_ring_try_push(r, items);
			else
				rc = burst ? px_ring_try_pop_burst(r, items, n)
					   : px_ring_try_pop(r, items);
			if (!ring_rc_ok(rc, side == 0, burst) || rc > (int)n)
				return BAD_RING_RC + (op % 6);
		} else if (op < 11 || timed) {
			ssize_t rc;
			if (side == 0) {
				size_t len = (size_t)(x >> 20) % (Q_MAX + 1);
				rc = px_queue_put(q, msg, len, timeout);
			} else {
				rc = px_queue_get(q, msg, Q_MAX, timeout);
			}
			if (!queue_rc_ok(rc, side == 0))
				return rc >= 0 ? BAD_LEN : BAD_QUEUE_RC + (int)(x % 8);
			if (timed) {
				int rrc = side == 0 ? px_ring_push(r, items, timeout)
						    : px_ring_pop(r, items, timeout);
				if (!ring_rc_ok(rrc, side == 0, false))
					return BAD_RING_RC + 7;
			}
		} else {
			/* Re-attach to whatever the memory holds now. */
			px_ring *r2;
			px_queue *q2;
			int a = px_ring_attach(&r2, L->ring_mem, L->ring_size);
			int b = px_queue_attach(&q2, L->queue_mem, L->queue_size);
			if (!attach_rc_ok(a) || !attach_rc_ok(b))
				return BAD_ATTACH + 1;
			if (a == 0) {
				uint32_t cap = px_ring_capacity(r2);
				/* A consistent header of another geometry is
				 * possible: use it only if its slot fits. */
				if (px_ring_slot_size(r2) <= sizeof items) {
					int rc = side == 0 ? px_ring_try_push(r2, items)
							   : px_ring_try_pop(r2, items);
					if (!ring_rc_ok(rc, side == 0, false))
						return BAD_RING_RC + 8;
				}
				if (px_ring_count(r2) > cap)
					return BAD_RING_RC + 9;
				px_ring_detach(r2);
			}
			if (b == 0) {
				uint32_t max = px_queue_max_msg(q2);
				if (max <= Q_MAX) {
					ssize_t rc = side == 0 ? px_queue_put(q2, msg, max, 0)
							       : px_queue_get(q2, msg, Q_MAX, 0);
					if (!queue_rc_ok(rc, side == 0) || rc > (ssize_t)max)
						return BAD_QUEUE_RC + 9;
				}
				px_queue_detach(q2);
			}
		}
		int64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
		int64_t took = clock_ns(CLOCK_MONOTONIC) - t0;
		if (cpu > 500000000)
			return SLOW_TRY + op % 10;
		if (took > INT64_C(10000000000) + timeout)
			return SLOW_SLEEP + op % 10;
		calls++;
		atomic_store(&L->ctl->calls[side], calls);
	}
	free(msg);
	px_ring_detach(r);
	px_queue_detach(q);
	return calls ? 0 : NO_PROGRESS;
}

static int producer(void *p)
{
	return user(p, 0);
}

static int consumer(void *p)
{
	return user(p, 1);
}

/* Random bytes at random places; half the writes aim at the headers (the
 * first 1 KiB of the ring and of the queue, and the queue's ring header). */
static int chaos(void *p)
{
	struct layout *L = p;
	alarm(60);
	uint64_t seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15u + 7;
	while (!atomic_load(&L->ctl->stop)) {
		uint64_t x = rnd(&seed);
		bool ring = x & 1;
		unsigned char *base = ring ? L->ring_mem : L->queue_mem;
		size_t size = ring ? L->ring_size : L->queue_size;
		size_t span = (x & 2) ? (size < 1024 ? size : 1024) : size;
		if (!ring && (x & 4) && size > 1664)
			base += 640, span = 1024; /* the queue's ring header */
		size_t len = (size_t)(x >> 8) % 8 + 1;
		size_t off = (size_t)(x >> 16) % span;
		if (off + len > span)
			len = span - off;
		uint64_t v = rnd(&seed);
		/* Small values too: they pass more checks than random ones. */
		if (x & 8)
			v &= 0xff;
		memcpy(base + off, &v, len);
		if ((x & 0x3ff) == 0)
			usleep(100); /* let the users run a while undisturbed */
	}
	return 0;
}

static void chaos_run(unsigned ring_flags, unsigned queue_flags)
{
	struct layout L = {.ring_flags = ring_flags};
	ssize_t rs = px_ring_memsize(RING_CAP, SLOT, ring_flags);
	px_queue_config qc = {.capacity = Q_CAP, .max_msg = Q_MAX,
			      .arena_size = 0, .flags = queue_flags};
	ssize_t qs = px_queue_memsize(&qc);
	assert_true(rs > 0 && qs > 0);
	L.ring_size = (size_t)rs;
	L.queue_size = (size_t)qs;
	size_t qoff = ((size_t)rs + 127) & ~(size_t)127;
	size_t total = qoff + (size_t)qs;
	unsigned char *mem = ipc_shared_alloc(total);
	L.ctl = ipc_shared_alloc(sizeof *L.ctl);
	assert_non_null(mem);
	assert_non_null(L.ctl);
	L.ring_mem = mem;
	L.queue_mem = mem + qoff;
	assert_int_equal(px_ring_init(L.ring_mem, L.ring_size, RING_CAP, SLOT,
				      ring_flags), 0);
	assert_int_equal(px_queue_init(L.queue_mem, L.queue_size, &qc), 0);

	pid_t prod = ipc_fork(producer, &L);
	pid_t cons = ipc_fork(consumer, &L);
	assert_true(prod > 0 && cons > 0);
	/* Let them start on intact memory, then unleash the chaos. */
	for (int i = 0; i < 2000 && (!atomic_load(&L.ctl->calls[0]) ||
				     !atomic_load(&L.ctl->calls[1])); i++)
		usleep(1000);
	pid_t ch = ipc_fork(chaos, &L);
	assert_true(ch > 0);
	uint64_t ms = ipc_scaled(2000, 500);
	usleep((useconds_t)(ms * 1000));
	atomic_store(&L.ctl->stop, 1);
	int pst = ipc_wait(prod), cst = ipc_wait(cons), xst = ipc_wait(ch);
	uint64_t calls0 = atomic_load(&L.ctl->calls[0]);
	uint64_t calls1 = atomic_load(&L.ctl->calls[1]);
	print_message("chaos (ring flags %u, queue flags %u): %llu + %llu calls\n",
		      ring_flags, queue_flags, (unsigned long long)calls0,
		      (unsigned long long)calls1);
	assert_int_equal(pst, 0);
	assert_int_equal(cst, 0);
	assert_int_equal(xst, 0);
	ipc_shared_free(mem, total);
	ipc_shared_free(L.ctl, sizeof *L.ctl);
}

static void test_chaos_mpmc_ring_and_queue_survive_random_writes(void **state)
{
	(void)state;
	chaos_run(PX_RING_MPMC, PX_RING_MPMC);
}

static void test_chaos_spsc_ring_and_queue_survive_random_writes(void **state)
{
	(void)state;
	chaos_run(PX_RING_SPSC, PX_RING_SPSC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chaos_mpmc_ring_and_queue_survive_random_writes),
		cmocka_unit_test(test_chaos_spsc_ring_and_queue_survive_random_writes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
