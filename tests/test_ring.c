/*
 * tests/test_ring.c - px_ring: bad input, exact capacity, every mode, burst
 * ops, timeouts, close and kick, threads, and cross-process stress: 2
 * producer and 2 consumer processes move 10,000,000 messages, each verified
 * to arrive exactly once (count and sum per producer, per-producer order).
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

#include <parex/ring.h>

#include "test_ipc_common.h"

static const unsigned modes[] = {PX_RING_MPMC, PX_RING_SP, PX_RING_SC, PX_RING_SPSC};
#define NMODES (sizeof modes / sizeof modes[0])

static px_ring *ring_new(uint32_t cap, uint32_t slot, unsigned flags, size_t *sz)
{
	ssize_t need = px_ring_memsize(cap, slot, flags);
	assert_true(need > 0);
	void *mem = aligned_alloc(PX_RING_ALIGN, (size_t)need);
	assert_non_null(mem);
	assert_int_equal(px_ring_init(mem, (size_t)need, cap, slot, flags), 0);
	if (sz)
		*sz = (size_t)need;
	return mem;
}

static void test_bad_input(void **state)
{
	(void)state;
	assert_int_equal(px_ring_memsize(0, 8, 0), -EINVAL);
	assert_int_equal(px_ring_memsize(8, 0, 0), -EINVAL);
	assert_int_equal(px_ring_memsize(8, 8, 1u << 5), -EINVAL);
	assert_int_equal(px_ring_memsize(PX_RING_CAPACITY_MAX + 1, 8, 0), -E2BIG);
	assert_int_equal(px_ring_memsize(UINT32_MAX, 8, 0), -E2BIG);
	assert_int_equal(px_ring_memsize(8, PX_RING_SLOT_MAX + 1, 0), -E2BIG);
	assert_true(px_ring_memsize(PX_RING_CAPACITY_MAX, 8, 0) > 0);

	ssize_t need = px_ring_memsize(16, 8, 0);
	unsigned char *mem = aligned_alloc(PX_RING_ALIGN, (size_t)need + 64);
	assert_non_null(mem);
	assert_int_equal(px_ring_init(NULL, (size_t)need, 16, 8, 0), -EINVAL);
	assert_int_equal(px_ring_init(mem + 8, (size_t)need, 16, 8, 0), -EINVAL);
	assert_int_equal(px_ring_init(mem, (size_t)need - 1, 16, 8, 0), -ENOSPC);
	assert_int_equal(px_ring_init(mem, (size_t)need, 0, 8, 0), -EINVAL);
	assert_int_equal(px_ring_init(mem, (size_t)need, 16, 0, 0), -EINVAL);
	assert_int_equal(px_ring_init(mem, (size_t)need, 1u << 31, 8, 0), -E2BIG);

	/* Attach checks: nothing there yet, then a good ring, then damage. */
	px_ring *r = NULL;
	memset(mem, 0, (size_t)need);
	assert_int_equal(px_ring_attach(&r, mem, (size_t)need), PX_EBADMAGIC);
	assert_int_equal(px_ring_init(mem, (size_t)need, 16, 8, 0), 0);
	assert_int_equal(px_ring_attach(&r, mem, (size_t)need), 0);
	assert_int_equal(px_ring_capacity(r), 16); /* a handle, not mem */
	assert_int_equal(px_ring_attach(NULL, mem, (size_t)need), -EINVAL);
	assert_int_equal(px_ring_attach(&r, NULL, (size_t)need), -EINVAL);
	assert_int_equal(px_ring_attach(&r, mem + 8, (size_t)need), -EINVAL);
	assert_int_equal(px_ring_attach(&r, mem, (size_t)need - 1), -EBADMSG);
	assert_int_equal(px_ring_attach(&r, mem, 16), -EBADMSG);
	((uint32_t *)mem)[2] += 1; /* version, after the 8-byte magic */
	assert_int_equal(px_ring_attach(&r, mem, (size_t)need), PX_EVERSION);
	((uint32_t *)mem)[2] -= 1;
	mem[0] ^= 0x5a;
	assert_int_equal(px_ring_attach(&r, mem, (size_t)need), PX_EBADMAGIC);
	mem[0] ^= 0x5a;
	assert_int_equal(px_ring_attach(&r, mem, (size_t)need), 0);

	uint64_t v = 1;
	assert_int_equal(px_ring_try_push(NULL, &v), -EINVAL);
	assert_int_equal(px_ring_try_push(r, NULL), -EINVAL);
	assert_int_equal(px_ring_try_pop(NULL, &v), -EINVAL);
	assert_int_equal(px_ring_push(NULL, &v, 0), -EINVAL);
	assert_int_equal(px_ring_pop(r, NULL, 0), -EINVAL);
	assert_int_equal(px_ring_try_push_burst(r, NULL, 2), -EINVAL);
	assert_int_equal(px_ring_try_pop_burst(NULL, &v, 1), -EINVAL);
	assert_int_equal(px_ring_try_push_burst(r, &v, 0), 0);
	assert_int_equal(px_ring_close(NULL), -EINVAL);
	assert_int_equal(px_ring_kick(NULL), -EINVAL);
	assert_false(px_ring_is_closed(NULL));
	assert_int_equal(px_ring_count(NULL), 0);
	free(mem);
}

/* Capacity means what was asked for, in every mode, powers of two or not. */
static void test_exact_capacity(void **state)
{
	(void)state;
	static const uint32_t caps[] = {1, 2, 3, 7, 64, 1000};
	for (size_t m = 0; m < NMODES; m++) {
		for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
			uint32_t cap = caps[c];
			px_ring *r = ring_new(cap, 8, modes[m], NULL);
			assert_int_equal(px_ring_capacity(r), cap);
			assert_int_equal(px_ring_slot_size(r), 8);
			uint64_t v;
			assert_int_equal(px_ring_try_pop(r, &v), -EAGAIN);
			/* Several laps to cross the wrap point. */
			for (uint64_t lap = 0; lap < 3; lap++) {
				for (uint64_t i = 0; i < cap; i++) {
					v = lap * 10000 + i;
					assert_int_equal(px_ring_try_push(r, &v), 0);
				}
				assert_int_equal(px_ring_count(r), cap);
				assert_int_equal(px_ring_try_push(r, &v), -EAGAIN);
				for (uint64_t i = 0; i < cap; i++) {
					assert_int_equal(px_ring_try_pop(r, &v), 0);
					assert_int_equal(v, lap * 10000 + i);
				}
				assert_int_equal(px_ring_count(r), 0);
				assert_int_equal(px_ring_try_pop(r, &v), -EAGAIN);
			}
			free(r);
		}
	}
}

/* Odd slot sizes and bursts that straddle the wrap point. */
static void test_burst_and_slot_sizes(void **state)
{
	(void)state;
	static const uint32_t slots[] = {1, 5, 8, 24, 100};
	for (size_t m = 0; m < NMODES; m++) {
		for (size_t s = 0; s < sizeof slots / sizeof slots[0]; s++) {
			uint32_t ss = slots[s], cap = 10;
			px_ring *r = ring_new(cap, ss, modes[m], NULL);
			unsigned char in[16 * 100], out[16 * 100];
			uint32_t next_in = 0, next_out = 0;
			for (int round = 0; round < 40; round++) {
				uint32_t n = 1 + (uint32_t)(round * 7 % 13);
				for (uint32_t k = 0; k < n * ss; k++)
					in[k] = (unsigned char)(next_in * ss + k);
				int got = px_ring_try_push_burst(r, in, n);
				assert_true(got >= 0 && (uint32_t)got <= n);
				uint32_t before = next_in;
				next_in += (uint32_t)got;
				(void)before;
				assert_true(px_ring_count(r) <= cap);
				uint32_t want = 1 + (uint32_t)(round * 5 % 11);
				int popped = px_ring_try_pop_burst(r, out, want);
				assert_true(popped >= 0 && (uint32_t)popped <= want);
				for (uint32_t k = 0; k < (uint32_t)popped * ss; k++)
					assert_int_equal(out[k],
							 (unsigned char)(next_out * ss + k));
				next_out += (uint32_t)popped;
				assert_int_equal(px_ring_count(r), next_in - next_out);
			}
			/* A full ring takes nothing, an empty one gives nothing. */
			while (px_ring_try_push_burst(r, in, 16) > 0)
				;
			assert_int_equal(px_ring_count(r), cap);
			assert_int_equal(px_ring_try_push_burst(r, in, 3), 0);
			assert_int_equal(px_ring_try_pop_burst(r, out, 16), (int)cap);
			assert_int_equal(px_ring_try_pop_burst(r, out, 16), 0);
			free(r);
		}
	}
}

static void test_timeouts(void **state)
{
	(void)state;
	for (size_t m = 0; m < NMODES; m++) {
		px_ring *r = ring_new(2, 8, modes[m], NULL);
		uint64_t v = 7, w[4] = {1, 2, 3, 4};
		assert_int_equal(px_ring_pop(r, &v, 0), -EAGAIN);
		assert_int_equal(px_ring_pop(r, &v, 5 * PX_MSEC), -ETIMEDOUT);
		assert_int_equal(px_ring_pop_burst(r, w, 4, 5 * PX_MSEC), -ETIMEDOUT);
		px_ring_set_spin(r, 0);
		assert_int_equal(px_ring_pop(r, &v, 2 * PX_MSEC), -ETIMEDOUT);
		assert_int_equal(px_ring_push_burst(r, w, 4, PX_FOREVER), 2);
		assert_int_equal(px_ring_push(r, &v, 0), -EAGAIN);
		assert_int_equal(px_ring_push(r, &v, 5 * PX_MSEC), -ETIMEDOUT);
		assert_int_equal(px_ring_push_burst(r, w, 4, 5 * PX_MSEC), -ETIMEDOUT);
		assert_int_equal(px_ring_pop(r, &v, PX_FOREVER), 0);
		assert_int_equal(v, 1);
		assert_int_equal(px_ring_pop_burst(r, w, 4, PX_FOREVER), 1);
		assert_int_equal(w[0], 2);
		free(r);
	}
}

static void test_close_semantics(void **state)
{
	(void)state;
	for (size_t m = 0; m < NMODES; m++) {
		px_ring *r = ring_new(8, 8, modes[m], NULL);
		uint64_t v;
		for (v = 0; v < 3; v++)
			assert_int_equal(px_ring_try_push(r, &v), 0);
		assert_false(px_ring_is_closed(r));
		assert_int_equal(px_ring_close(r), 0);
		assert_int_equal(px_ring_close(r), 0);
		assert_true(px_ring_is_closed(r));
		assert_int_equal(px_ring_try_push(r, &v), -EPIPE);
		assert_int_equal(px_ring_push(r, &v, PX_FOREVER), -EPIPE);
		assert_int_equal(px_ring_try_push_burst(r, &v, 1), -EPIPE);
		assert_int_equal(px_ring_count(r), 3);
		for (uint64_t i = 0; i < 3; i++) {
			assert_int_equal(px_ring_pop(r, &v, PX_FOREVER), 0);
			assert_int_equal(v, i);
		}
		assert_int_equal(px_ring_try_pop(r, &v), PX_EEOF);
		assert_int_equal(px_ring_pop(r, &v, PX_FOREVER), PX_EEOF);
		assert_int_equal(px_ring_try_pop_burst(r, &v, 1), PX_EEOF);
		assert_int_equal(px_ring_pop_burst(r, &v, 1, 0), PX_EEOF);
		free(r);
	}
}

/* ---- cross-process wakeups: close and kick wake a parked child -------- */

struct wake_arg {
	px_ring *r;
	bool push; /* block in push (ring full) instead of pop (empty) */
	int want;
};

static int child_block(void *p)
{
	struct wake_arg *a = p;
	uint64_t v = 0;
	int r = a->push ? px_ring_push(a->r, &v, 20 * PX_SEC)
			: px_ring_pop(a->r, &v, 20 * PX_SEC);
	return ipc_expect(r, a->want);
}

/* The child's only sleep is the ring's futex wait: once the kernel says it
 * sleeps, it has parked (so a kick must interrupt it). */
static void wait_for_sleeper(pid_t pid)
{
	assert_true(ipc_wait_sleeping(pid));
}

static void test_close_and_kick_wake_other_process(void **state)
{
	(void)state;
	for (size_t m = 0; m < NMODES; m++) {
		ssize_t need = px_ring_memsize(1, 8, modes[m]);
		void *mem = ipc_shared_alloc((size_t)need);
		assert_non_null(mem);
		assert_int_equal(px_ring_init(mem, (size_t)need, 1, 8, modes[m]), 0);
		px_ring *r = mem;
		px_ring_set_spin(r, 16);

		/* Kick: a consumer parked on the empty ring gets -EINTR. */
		struct wake_arg a = {r, false, -EINTR};
		pid_t pid = ipc_fork(child_block, &a);
		assert_true(pid > 0);
		wait_for_sleeper(pid);
		assert_int_equal(px_ring_kick(r), 0);
		assert_int_equal(ipc_wait(pid), 0);

		/* A push wakes a parked consumer. */
		a.want = 0;
		pid = ipc_fork(child_block, &a);
		wait_for_sleeper(pid);
		uint64_t v = 42;
		assert_int_equal(px_ring_push(r, &v, PX_FOREVER), 0);
		assert_int_equal(ipc_wait(pid), 0);

		/* A pop wakes a parked producer (capacity 1: full after one). */
		assert_int_equal(px_ring_try_push(r, &v), 0);
		a.push = true;
		pid = ipc_fork(child_block, &a);
		wait_for_sleeper(pid);
		assert_int_equal(px_ring_pop(r, &v, PX_FOREVER), 0);
		assert_int_equal(ipc_wait(pid), 0);
		assert_int_equal(px_ring_pop(r, &v, PX_FOREVER), 0);

		/* Close: a parked consumer drains nothing and sees the end. */
		a.push = false;
		a.want = PX_EEOF;
		pid = ipc_fork(child_block, &a);
		wait_for_sleeper(pid);
		assert_int_equal(px_ring_close(r), 0);
		assert_int_equal(ipc_wait(pid), 0);
		ipc_shared_free(mem, (size_t)need);
	}
}

/* Close wakes a producer parked on a full ring with -EPIPE. */
static void test_close_wakes_producer(void **state)
{
	(void)state;
	for (size_t m = 0; m < NMODES; m++) {
		ssize_t need = px_ring_memsize(1, 8, modes[m]);
		void *mem = ipc_shared_alloc((size_t)need);
		assert_int_equal(px_ring_init(mem, (size_t)need, 1, 8, modes[m]), 0);
		px_ring *r = mem;
		uint64_t v = 1;
		assert_int_equal(px_ring_try_push(r, &v), 0);
		struct wake_arg a = {r, true, -EPIPE};
		pid_t pid = ipc_fork(child_block, &a);
		wait_for_sleeper(pid);
		assert_int_equal(px_ring_close(r), 0);
		assert_int_equal(ipc_wait(pid), 0);
		assert_int_equal(px_ring_try_pop(r, &v), 0);
		assert_int_equal(px_ring_try_pop(r, &v), PX_EEOF);
		ipc_shared_free(mem, (size_t)need);
	}
}

/* ---- SPSC: a producer killed mid-stream does not block the consumer --- */

static int child_push_forever(void *p)
{
	px_ring *r = p;
	for (uint64_t i = 0;; i++)
		if (px_ring_push(r, &i, PX_FOREVER) != 0)
			return 1;
}

static void test_spsc_survives_killed_producer(void **state)
{
	(void)state;
	ssize_t need = px_ring_memsize(64, 8, PX_RING_SPSC);
	void *mem = ipc_shared_alloc((size_t)need);
	assert_int_equal(px_ring_init(mem, (size_t)need, 64, 8, PX_RING_SPSC), 0);
	px_ring *r = mem;
	pid_t pid = ipc_fork(child_push_forever, r);
	uint64_t v, next = 0;
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(px_ring_pop(r, &v, 10 * PX_SEC), 0);
		assert_int_equal(v, next++);
	}
	kill(pid, SIGKILL);
	assert_int_equal(ipc_wait(pid), 128 + SIGKILL);
	/* Everything it published arrives, in order, then the ring is just
	 * empty; a new producer (us) carries on. */
	while (px_ring_try_pop(r, &v) == 0)
		assert_int_equal(v, next++);
	assert_int_equal(px_ring_try_pop(r, &v), -EAGAIN);
	v = 12345;
	assert_int_equal(px_ring_try_push(r, &v), 0);
	assert_int_equal(px_ring_try_pop(r, &v), 0);
	assert_int_equal(v, 12345);
	ipc_shared_free(mem, (size_t)need);
}

/* ---- stress ------------------------------------------------------------ */

#define NP 2
#define NC 2
#define BURST 32

struct stress_res {
	uint64_t count[NC][NP];
	uint64_t sum[NC][NP];
	uint64_t order_errors[NC];
	uint64_t bad[NC];
};

struct stress_arg {
	px_ring *ring[NP]; /* SPSC: one ring per pair; else ring[0] shared */
	struct stress_res *res;
	uint64_t per_producer;
	int id;
	bool spsc;
};

static int stress_producer(void *p)
{
	struct stress_arg *a = p;
	px_ring *r = a->ring[a->spsc ? a->id : 0];
	uint64_t tag = (uint64_t)a->id << 48;
	uint64_t buf[BURST];
	uint64_t i = 0;
	while (i < a->per_producer) {
		if (a->id == 0) { /* single-item blocking pushes */
			uint64_t v = tag | i;
			if (px_ring_push(r, &v, 30 * PX_SEC) != 0)
				return 2;
			i++;
			continue;
		}
		/* bursts of varying size */
		uint32_t n = 1 + (uint32_t)(i % BURST);
		if (n > a->per_producer - i)
			n = (uint32_t)(a->per_producer - i);
		for (uint32_t k = 0; k < n; k++)
			buf[k] = tag | (i + k);
		int got = px_ring_push_burst(r, buf, n, 30 * PX_SEC);
		if (got <= 0)
			return 3;
		i += (uint64_t)got;
		/* push the unsent tail first next round */
		if ((uint32_t)got < n)
			continue;
	}
	return 0;
}

static int stress_consumer(void *p)
{
	struct stress_arg *a = p;
	px_ring *r = a->ring[a->spsc ? a->id : 0];
	struct stress_res *res = a->res;
	uint64_t last[NP], seen[NP] = {0};
	uint64_t buf[BURST];
	for (;;) {
		int n = a->id == 0 ? px_ring_pop(r, buf, 30 * PX_SEC)
				   : px_ring_pop_burst(r, buf, BURST, 30 * PX_SEC);
		if (n == PX_EEOF)
			break;
		if (n < 0)
			return 4;
		if (a->id == 0)
			n = 1;
		for (int k = 0; k < n; k++) {
			uint64_t prod = buf[k] >> 48, seq = buf[k] & ((UINT64_C(1) << 48) - 1);
			if (prod >= NP) {
				res->bad[a->id]++;
				continue;
			}
			/* Per-producer order: strictly increasing for every
			 * consumer, and gap-free with one consumer (SPSC). */
			if (seen[prod] && seq <= last[prod])
				res->order_errors[a->id]++;
			if (a->spsc && seq != (seen[prod] ? last[prod] + 1 : 0))
				res->order_errors[a->id]++;
			last[prod] = seq;
			seen[prod] = 1;
			res->count[a->id][prod]++;
			res->sum[a->id][prod] += seq;
		}
	}
	return 0;
}

static void run_stress(unsigned flags, uint64_t total)
{
	bool spsc = flags == PX_RING_SPSC;
	uint64_t per = total / NP;
	uint32_t cap = 1024;
	ssize_t need = px_ring_memsize(cap, 8, flags);
	size_t rsz = ((size_t)need + 127) & ~(size_t)127;
	size_t shsz = NP * rsz + sizeof(struct stress_res);
	unsigned char *sh = ipc_shared_alloc(shsz);
	assert_non_null(sh);
	struct stress_arg a = {.res = (struct stress_res *)(sh + NP * rsz),
			       .per_producer = per, .spsc = spsc};
	for (int i = 0; i < NP; i++) {
		a.ring[i] = (px_ring *)(sh + (size_t)i * rsz);
		assert_int_equal(px_ring_init(a.ring[i], rsz, cap, 8, flags), 0);
		px_ring_set_spin(a.ring[i], 256);
	}
	pid_t prod[NP], cons[NC];
	for (int i = 0; i < NC; i++) {
		a.id = i;
		cons[i] = ipc_fork(stress_consumer, &a);
		assert_true(cons[i] > 0);
	}
	for (int i = 0; i < NP; i++) {
		a.id = i;
		prod[i] = ipc_fork(stress_producer, &a);
		assert_true(prod[i] > 0);
	}
	for (int i = 0; i < NP; i++)
		assert_int_equal(ipc_wait(prod[i]), 0);
	for (int i = 0; i < NP; i++)
		assert_int_equal(px_ring_close(a.ring[i]), 0);
	for (int i = 0; i < NC; i++)
		assert_int_equal(ipc_wait(cons[i]), 0);

	struct stress_res *res = a.res;
	uint64_t want_sum = per * (per - 1) / 2;
	for (int p = 0; p < NP; p++) {
		uint64_t c = 0, s = 0;
		for (int k = 0; k < NC; k++) {
			c += res->count[k][p];
			s += res->sum[k][p];
		}
		assert_int_equal(c, per);
		assert_int_equal(s, want_sum);
	}
	for (int k = 0; k < NC; k++) {
		assert_int_equal(res->order_errors[k], 0);
		assert_int_equal(res->bad[k], 0);
	}
	ipc_shared_free(sh, shsz);
}

static void test_stress_mpmc_2p2c_processes(void **state)
{
	(void)state;
	run_stress(PX_RING_MPMC, ipc_scaled(10000000, 10000));
}

static void test_stress_spsc_pairs_processes(void **state)
{
	(void)state;
	run_stress(PX_RING_SPSC, ipc_scaled(10000000, 10000));
}

/* ---- threads: the same protocol, where the thread sanitizer sees it --- */

struct thr_arg {
	px_ring *r;
	int id;
	uint64_t n;
	uint64_t count[NP], sum[NP];
};

static void *thr_producer(void *p)
{
	struct thr_arg *a = p;
	for (uint64_t i = 0; i < a->n; i++) {
		uint64_t v = (uint64_t)a->id << 48 | i;
		assert_int_equal(px_ring_push(a->r, &v, 30 * PX_SEC), 0);
	}
	return NULL;
}

static void *thr_consumer(void *p)
{
	struct thr_arg *a = p;
	uint64_t v[8];
	for (;;) {
		int n = px_ring_pop_burst(a->r, v, 8, 30 * PX_SEC);
		if (n == PX_EEOF)
			return NULL;
		assert_true(n > 0);
		for (int k = 0; k < n; k++) {
			a->count[v[k] >> 48]++;
			a->sum[v[k] >> 48] += v[k] & 0xffffffffffff;
		}
	}
}

static void test_threads_all_modes(void **state)
{
	(void)state;
	uint64_t per = ipc_scaled(200000, 2000);
	for (size_t m = 0; m < NMODES; m++) {
		int np = (modes[m] & PX_RING_SP) ? 1 : NP;
		int nc = (modes[m] & PX_RING_SC) ? 1 : NC;
		px_ring *r = ring_new(100, 8, modes[m], NULL);
		px_ring_set_spin(r, 64);
		pthread_t pt[NP], ct[NC];
		struct thr_arg pa[NP], ca[NC];
		memset(ca, 0, sizeof ca);
		for (int i = 0; i < nc; i++) {
			ca[i].r = r;
			assert_int_equal(pthread_create(&ct[i], NULL, thr_consumer, &ca[i]), 0);
		}
		for (int i = 0; i < np; i++) {
			pa[i] = (struct thr_arg){.r = r, .id = i, .n = per};
			assert_int_equal(pthread_create(&pt[i], NULL, thr_producer, &pa[i]), 0);
		}
		for (int i = 0; i < np; i++)
			pthread_join(pt[i], NULL);
		px_ring_close(r);
		for (int i = 0; i < nc; i++)
			pthread_join(ct[i], NULL);
		for (int p = 0; p < np; p++) {
			uint64_t c = 0, s = 0;
			for (int k = 0; k < nc; k++) {
				c += ca[k].count[p];
				s += ca[k].sum[p];
			}
			assert_int_equal(c, per);
			assert_int_equal(s, per * (per - 1) / 2);
		}
		free(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_exact_capacity),
		cmocka_unit_test(test_burst_and_slot_sizes),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_close_semantics),
		cmocka_unit_test(test_close_and_kick_wake_other_process),
		cmocka_unit_test(test_close_wakes_producer),
		cmocka_unit_test(test_spsc_survives_killed_producer),
		cmocka_unit_test(test_stress_mpmc_2p2c_processes),
		cmocka_unit_test(test_stress_spsc_pairs_processes),
		cmocka_unit_test(test_threads_all_modes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
