/*
 * tests/test_queue.c - px_queue: bad input, inline and arena messages,
 * FIFO order, timeouts, arena exhaustion, close semantics (-EPIPE, drain,
 * PX_EEOF), and producers and consumers in separate processes and threads
 * with every message checked byte for byte, exactly once.
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

#include <parex/queue.h>

#include "test_ipc_common.h"

static px_queue *queue_new(const px_queue_config *cfg, size_t *size)
{
	ssize_t need = px_queue_memsize(cfg);
	assert_true(need > 0);
	void *mem = aligned_alloc(PX_RING_ALIGN, ((size_t)need + 63) & ~(size_t)63);
	assert_non_null(mem);
	assert_int_equal(px_queue_init(mem, (size_t)need, cfg), 0);
	if (size)
		*size = (size_t)need;
	return mem;
}

/* Message (p, i): length and bytes derived from both, so any mix-up shows. */
static size_t msg_len(uint32_t p, uint64_t i, uint32_t max)
{
	uint64_t x = (i * 2654435761u + p * 40503u) % 1000;
	if (x < 600)
		return (size_t)(x % 49); /* inline sizes, 0 .. 48 */
	return (size_t)(8 + (x * 7919 + i) % (max - 7));
}

static void msg_fill(unsigned char *b, size_t len, uint32_t p, uint64_t i)
{
	for (size_t k = 0; k < len; k++)
		b[k] = (unsigned char)(i * 31 + p * 7 + k);
	if (len >= 12) {
		memcpy(b, &p, 4);
		memcpy(b + 4, &i, 8);
	}
}

static void test_bad_input(void **state)
{
	(void)state;
	px_queue_config c = {.capacity = 8, .max_msg = 100};
	assert_int_equal(px_queue_memsize(NULL), -EINVAL);
	c.capacity = 0;
	assert_int_equal(px_queue_memsize(&c), -EINVAL);
	c.capacity = PX_RING_CAPACITY_MAX + 1;
	assert_int_equal(px_queue_memsize(&c), -E2BIG);
	c.capacity = 8;
	c.max_msg = 0;
	assert_int_equal(px_queue_memsize(&c), -EINVAL);
	c.max_msg = PX_QUEUE_MSG_MAX + 1;
	assert_int_equal(px_queue_memsize(&c), -E2BIG);
	c.max_msg = 1000;
	c.arena_size = 512; /* smaller than one 1 KiB block */
	assert_int_equal(px_queue_memsize(&c), -EINVAL);
	c.arena_size = 0;
	c.flags = 1u << 4;
	assert_int_equal(px_queue_memsize(&c), -EINVAL);
	c.flags = 0;
	c.capacity = PX_RING_CAPACITY_MAX;
	c.max_msg = PX_QUEUE_MSG_MAX; /* default arena would be absurd */
	assert_int_equal(px_queue_memsize(&c), -E2BIG);
	c.capacity = 8;
	c.max_msg = 100;

	ssize_t need = px_queue_memsize(&c);
	assert_true(need > 0);
	unsigned char *mem = aligned_alloc(PX_RING_ALIGN, (size_t)need + 64);
	assert_int_equal(px_queue_init(NULL, (size_t)need, &c), -EINVAL);
	assert_int_equal(px_queue_init(mem + 8, (size_t)need, &c), -EINVAL);
	assert_int_equal(px_queue_init(mem, (size_t)need - 1, &c), -ENOSPC);
	assert_int_equal(px_queue_init(mem, (size_t)need, NULL), -EINVAL);

	px_queue *q;
	memset(mem, 0, (size_t)need);
	assert_int_equal(px_queue_attach(&q, mem, (size_t)need), PX_EBADMAGIC);
	assert_int_equal(px_queue_init(mem, (size_t)need, &c), 0);
	assert_int_equal(px_queue_attach(&q, mem, (size_t)need), 0);
	assert_int_equal(px_queue_attach(&q, mem, (size_t)need - 1), -EBADMSG);
	assert_int_equal(px_queue_attach(NULL, mem, (size_t)need), -EINVAL);
	((uint32_t *)mem)[2] ^= 0xff; /* version, after the magic */
	assert_int_equal(px_queue_attach(&q, mem, (size_t)need), PX_EVERSION);
	((uint32_t *)mem)[2] ^= 0xff;
	mem[1] ^= 1;
	assert_int_equal(px_queue_attach(&q, mem, (size_t)need), PX_EBADMAGIC);
	mem[1] ^= 1;
	assert_int_equal(px_queue_attach(&q, mem, (size_t)need), 0);

	char buf[200];
	assert_int_equal(px_queue_put(NULL, buf, 1, 0), -EINVAL);
	assert_int_equal(px_queue_put(q, NULL, 1, 0), -EINVAL);
	assert_int_equal(px_queue_put(q, buf, 101, 0), -EMSGSIZE);
	assert_int_equal(px_queue_put(q, buf, (size_t)1 << 40, 0), -EMSGSIZE);
	struct iovec iov[2] = {{buf, 60}, {buf, 41}};
	assert_int_equal(px_queue_putv(q, iov, 2, 0), -EMSGSIZE);
	assert_int_equal(px_queue_putv(q, iov, -1, 0), -EINVAL);
	assert_int_equal(px_queue_putv(q, iov, 65, 0), -EINVAL);
	assert_int_equal(px_queue_putv(q, NULL, 1, 0), -EINVAL);
	assert_int_equal(px_queue_get(q, buf, 99, 0), -EINVAL);
	assert_int_equal(px_queue_get(q, NULL, 100, 0), -EINVAL);
	assert_int_equal(px_queue_get(NULL, buf, 100, 0), -EINVAL);
	assert_int_equal(px_queue_close(NULL), -EINVAL);
	assert_int_equal(px_queue_kick(NULL), -EINVAL);
	assert_int_equal(px_queue_max_msg(q), 100);
	free(mem);
}

static void test_roundtrip_fifo(void **state)
{
	(void)state;
	static const unsigned modes[] = {0, PX_RING_SP, PX_RING_SC, PX_RING_SPSC};
	for (size_t m = 0; m < 4; m++) {
		px_queue_config c = {.capacity = 37, .max_msg = 5000, .flags = modes[m]};
		px_queue *q = queue_new(&c, NULL);
		unsigned char in[5000], out[5000];
		uint64_t put = 0, got = 0;
		for (int round = 0; round < 50; round++) {
			for (int k = 0; k < 1 + round % 37; k++) {
				size_t len = msg_len(0, put, 5000);
				msg_fill(in, len, 0, put);
				int r = px_queue_put(q, in, len, 0);
				if (r == -EAGAIN)
					break;
				assert_int_equal(r, 0);
				put++;
			}
			assert_int_equal(px_queue_count(q), put - got);
			while (got < put && (got + round) % 5 != 0) {
				ssize_t n = px_queue_get(q, out, sizeof out, 0);
				size_t len = msg_len(0, got, 5000);
				assert_int_equal(n, (ssize_t)len);
				msg_fill(in, len, 0, got);
				assert_memory_equal(out, in, len);
				got++;
			}
		}
		while (got < put) {
			ssize_t n = px_queue_get(q, out, sizeof out, PX_FOREVER);
			assert_int_equal(n, (ssize_t)msg_len(0, got, 5000));
			got++;
		}
		assert_int_equal(px_queue_get(q, out, sizeof out, 0), -EAGAIN);
		/* putv gathers pieces; a zero-length message is a message. */
		struct iovec iov[3] = {{"abc", 3}, {"", 0}, {"defgh", 5}};
		assert_int_equal(px_queue_putv(q, iov, 3, 0), 0);
		assert_int_equal(px_queue_put(q, NULL, 0, 0), 0);
		assert_int_equal(px_queue_get(q, out, sizeof out, 0), 8);
		assert_memory_equal(out, "abcdefgh", 8);
		assert_int_equal(px_queue_get(q, out, sizeof out, 0), 0);
		free(q);
	}
}

static void test_timeouts_and_full(void **state)
{
	(void)state;
	px_queue_config c = {.capacity = 2, .max_msg = 64};
	px_queue *q = queue_new(&c, NULL);
	char buf[64] = "x";
	assert_int_equal(px_queue_get(q, buf, sizeof buf, 0), -EAGAIN);
	assert_int_equal(px_queue_get(q, buf, sizeof buf, 5 * PX_MSEC), -ETIMEDOUT);
	assert_int_equal(px_queue_put(q, buf, 1, 0), 0);
	assert_int_equal(px_queue_put(q, buf, 64, 0), 0);
	assert_int_equal(px_queue_put(q, buf, 1, 0), -EAGAIN);
	assert_int_equal(px_queue_put(q, buf, 1, 5 * PX_MSEC), -ETIMEDOUT);
	assert_int_equal(px_queue_count(q), 2);
	free(q);
}

/* An arena with room for one large block: the second large put waits for
 * the first to be taken; small (inline) messages need no arena at all. */
static void test_arena_exhaustion(void **state)
{
	(void)state;
	px_queue_config c = {.capacity = 8, .max_msg = 4000, .arena_size = 4096};
	px_queue *q = queue_new(&c, NULL);
	unsigned char big[4000], out[4000];
	memset(big, 0xab, sizeof big);
	assert_int_equal(px_queue_put(q, big, 4000, 0), 0);
	assert_int_equal(px_queue_put(q, big, 3000, 0), -EAGAIN);
	assert_int_equal(px_queue_put(q, big, 3000, 5 * PX_MSEC), -ETIMEDOUT);
	assert_int_equal(px_queue_put(q, big, 48, 0), 0); /* inline */
	assert_int_equal(px_queue_get(q, out, sizeof out, 0), 4000);
	assert_memory_equal(out, big, 4000);
	/* The freed block serves smaller classes too (taken whole). */
	assert_int_equal(px_queue_put(q, big, 100, 0), 0);
	assert_int_equal(px_queue_put(q, big, 100, 0), -EAGAIN);
	assert_int_equal(px_queue_get(q, out, sizeof out, 0), 48);
	assert_int_equal(px_queue_get(q, out, sizeof out, 0), 100);
	assert_int_equal(px_queue_put(q, big, 4000, 0), 0);
	free(q);
}

static void test_close_semantics(void **state)
{
	(void)state;
	px_queue_config c = {.capacity = 8, .max_msg = 1000};
	px_queue *q = queue_new(&c, NULL);
	unsigned char buf[1000] = {1, 2, 3};
	assert_int_equal(px_queue_put(q, buf, 3, 0), 0);
	assert_int_equal(px_queue_put(q, buf, 1000, 0), 0);
	assert_false(px_queue_is_closed(q));
	assert_int_equal(px_queue_close(q), 0);
	assert_int_equal(px_queue_close(q), 0);
	assert_true(px_queue_is_closed(q));
	assert_int_equal(px_queue_put(q, buf, 3, 0), -EPIPE);
	assert_int_equal(px_queue_put(q, buf, 500, PX_FOREVER), -EPIPE);
	assert_int_equal(px_queue_get(q, buf, sizeof buf, 0), 3);
	assert_int_equal(px_queue_get(q, buf, sizeof buf, PX_FOREVER), 1000);
	assert_int_equal(px_queue_get(q, buf, sizeof buf, 0), PX_EEOF);
	assert_int_equal(px_queue_get(q, buf, sizeof buf, PX_FOREVER), PX_EEOF);
	free(q);
}

/* ---- processes ---------------------------------------------------------- */

#define NP 2
#define NC 2
#define MAXMSG 3000

struct res {
	uint64_t count[NC][NP];
	uint64_t sum[NC][NP];
	uint64_t errors[NC];
	uint64_t producers_left;
};

struct arg {
	px_queue *q;
	struct res *res;
	uint64_t per;
	uint32_t id;
};

static int producer(void *p)
{
	struct arg *a = p;
	unsigned char buf[MAXMSG];
	for (uint64_t i = 0; i < a->per; i++) {
		size_t len = msg_len(a->id, i, MAXMSG);
		msg_fill(buf, len, a->id, i);
		if (len < 12) {
			/* too short to carry (p, i): prepend them via putv */
			struct iovec iov[3] = {{&a->id, 4}, {&i, 8}, {buf, len}};
			if (px_queue_putv(a->q, iov, 3, 30 * PX_SEC) != 0)
				return 2;
			continue;
		}
		if (px_queue_put(a->q, buf, len, 30 * PX_SEC) != 0)
			return 3;
	}
	/* The last producer out closes the queue: the built-in sentinel. */
	if (__atomic_sub_fetch(&a->res->producers_left, 1, __ATOMIC_ACQ_REL) == 0)
		px_queue_close(a->q);
	return 0;
}

static int consumer(void *p)
{
	struct arg *a = p;
	unsigned char buf[MAXMSG + 16], want[MAXMSG + 16];
	for (;;) {
		ssize_t n = px_queue_get(a->q, buf, sizeof buf, 30 * PX_SEC);
		if (n == PX_EEOF)
			return 0;
		if (n < 12)
			return 4;
		uint32_t pid;
		uint64_t i;
		memcpy(&pid, buf, 4);
		memcpy(&i, buf + 4, 8);
		if (pid >= NP) {
			a->res->errors[a->id]++;
			continue;
		}
		size_t len = msg_len(pid, i, MAXMSG);
		if (len < 12) {
			msg_fill(want, len, pid, i);
			if ((size_t)n != len + 12 || memcmp(buf + 12, want, len))
				a->res->errors[a->id]++;
		} else {
			msg_fill(want, len, pid, i);
			if ((size_t)n != len || memcmp(buf, want, len))
				a->res->errors[a->id]++;
		}
		a->res->count[a->id][pid]++;
		a->res->sum[a->id][pid] += i;
	}
}

static void check_res(struct res *res, uint64_t per, int np, int nc)
{
	for (int p = 0; p < np; p++) {
		uint64_t c = 0, s = 0;
		for (int k = 0; k < nc; k++) {
			c += res->count[k][p];
			s += res->sum[k][p];
		}
		assert_int_equal(c, per);
		assert_int_equal(s, per * (per - 1) / 2);
	}
	for (int k = 0; k < nc; k++)
		assert_int_equal(res->errors[k], 0);
}

static void test_processes_2p2c(void **state)
{
	(void)state;
	/* A small arena, so producers also wait for space. */
	px_queue_config c = {.capacity = 256, .max_msg = MAXMSG + 12,
			     .arena_size = 64 * 4096};
	ssize_t need = px_queue_memsize(&c);
	size_t shsz = (size_t)need + sizeof(struct res) + 128;
	unsigned char *sh = ipc_shared_alloc(shsz);
	assert_non_null(sh);
	assert_int_equal(px_queue_init(sh, (size_t)need, &c), 0);
	struct res *res = (struct res *)(sh + (((size_t)need + 127) & ~(size_t)127));
	res->producers_left = NP;
	struct arg a = {.q = (px_queue *)sh, .res = res,
			.per = ipc_scaled(200000, 2000)};
	px_queue_set_spin(a.q, 128);
	pid_t pids[NP + NC];
	for (uint32_t i = 0; i < NC; i++) {
		a.id = i;
		pids[i] = ipc_fork(consumer, &a);
	}
	for (uint32_t i = 0; i < NP; i++) {
		a.id = i;
		pids[NC + i] = ipc_fork(producer, &a);
	}
	for (int i = 0; i < NP + NC; i++)
		assert_int_equal(ipc_wait(pids[i]), 0);
	check_res(res, a.per, NP, NC);
	ipc_shared_free(sh, shsz);
}

static void *thr_producer(void *p)
{
	assert_int_equal(producer(p), 0);
	return NULL;
}

static void *thr_consumer(void *p)
{
	assert_int_equal(consumer(p), 0);
	return NULL;
}

static void test_threads_2p2c(void **state)
{
	(void)state;
	px_queue_config c = {.capacity = 64, .max_msg = MAXMSG + 12,
			     .arena_size = 32 * 4096};
	px_queue *q = queue_new(&c, NULL);
	px_queue_set_spin(q, 64);
	struct res *res = calloc(1, sizeof *res);
	res->producers_left = NP;
	struct arg pa[NP], ca[NC];
	pthread_t t[NP + NC];
	for (uint32_t i = 0; i < NC; i++) {
		ca[i] = (struct arg){.q = q, .res = res, .id = i};
		pthread_create(&t[i], NULL, thr_consumer, &ca[i]);
	}
	uint64_t per = ipc_scaled(50000, 1000);
	for (uint32_t i = 0; i < NP; i++) {
		pa[i] = (struct arg){.q = q, .res = res, .id = i, .per = per};
		pthread_create(&t[NC + i], NULL, thr_producer, &pa[i]);
	}
	for (int i = 0; i < NP + NC; i++)
		pthread_join(t[i], NULL);
	check_res(res, per, NP, NC);
	free(res);
	free(q);
}

/* A consumer parked in another process wakes for close (PX_EEOF) and
 * kick (-EINTR). */
struct kick_arg {
	px_queue *q;
	int *first_done; /* shared: set once the first get returned */
};

static int child_get(void *p)
{
	struct kick_arg *a = p;
	unsigned char buf[100];
	ssize_t r1 = px_queue_get(a->q, buf, sizeof buf, 20 * PX_SEC);
	__atomic_store_n(a->first_done, 1, __ATOMIC_RELEASE);
	ssize_t r2 = px_queue_get(a->q, buf, sizeof buf, 20 * PX_SEC);
	return ipc_expect((int)r1, -EINTR) ? 10 : ipc_expect((int)r2, PX_EEOF);
}

static void test_close_kick_wake_other_process(void **state)
{
	(void)state;
	px_queue_config c = {.capacity = 4, .max_msg = 100};
	ssize_t need = px_queue_memsize(&c);
	void *sh = ipc_shared_alloc((size_t)need);
	assert_int_equal(px_queue_init(sh, (size_t)need, &c), 0);
	px_queue *q;
	assert_int_equal(px_queue_attach(&q, sh, (size_t)need), 0);
	px_queue_set_spin(q, 8);
	int *first_done = ipc_shared_alloc(sizeof(int));
	struct kick_arg a = {q, first_done};
	pid_t pid = ipc_fork(child_get, &a);
	assert_true(ipc_wait_sleeping(pid)); /* parked in its first get */
	assert_int_equal(px_queue_kick(q), 0);
	while (!__atomic_load_n(first_done, __ATOMIC_ACQUIRE))
		usleep(1000);
	/* Close is sticky: whether the second get is parked yet or not, it
	 * ends with PX_EEOF. */
	assert_int_equal(px_queue_close(q), 0);
	assert_int_equal(ipc_wait(pid), 0);
	ipc_shared_free(first_done, sizeof(int));
	ipc_shared_free(sh, (size_t)need);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_roundtrip_fifo),
		cmocka_unit_test(test_timeouts_and_full),
		cmocka_unit_test(test_arena_exhaustion),
		cmocka_unit_test(test_close_semantics),
		cmocka_unit_test(test_close_kick_wake_other_process),
		cmocka_unit_test(test_processes_2p2c),
		cmocka_unit_test(test_threads_2p2c),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
