/*
 * tests/test_ring_park.c - parking and waking on a px_ring (ipc_util.h's
 * protocol with its deferred sleeper barrier): no wake-up is ever lost.
 *
 *  - racing park/wake cycles between processes and between threads, with
 *    spinning off: each push is timed to land around the moment the other
 *    side parks, on both sides (consumers waiting for items, producers
 *    waiting for room), SPSC and MPMC; every item must arrive exactly once,
 *    in order, and no blocking call may time out; the waiter counts must
 *    be back to zero afterwards;
 *  - many sleepers: 2 consumer and 2 producer processes on a capacity-2
 *    MPMC ring, all parking, bursts between pauses; exactly once;
 *  - the barrier's backstop: a consumer parks, and the item is then
 *    published behind its back with no wake (what a waker that missed the
 *    waiter count leaves behind); the consumer must still find it, by
 *    passing its deferred barrier after PX__PARK_BARRIER_NS;
 *  - a park longer than the deferral (barrier passed) is still woken by a
 *    push; timeouts shorter and longer than the deferral end on time;
 *    a kick reaches a sleeper before and after its barrier;
 *  - on one CPU a blocking call parks without spinning.
 *
 * Run again with PX_IPC_NO_MEMBARRIER=1 (test_ring_park_fences) for the
 * fence fallbacks. Links parex_static: it reads ring_internal.h's layout and
 * ipc_util.h's counters.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <parex/ring.h>

#include "test_ipc_common.h"

#include "../ipc/ipc_util.h"
#include "../ipc/ring_internal.h"

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void busy_wait_ns(int64_t ns)
{
	int64_t t0 = now_ns();
	while (now_ns() - t0 < ns)
		;
}

/* A shared, spin-free ring of 8-byte items. */
static px_ring *ring_shared(uint32_t cap, unsigned flags, size_t *sz)
{
	ssize_t need = px_ring_memsize(cap, 8, flags);
	assert_true(need > 0);
	*sz = ((size_t)need + 4095) & ~(size_t)4095;
	px_ring *r = ipc_shared_alloc(*sz);
	assert_non_null(r);
	assert_int_equal(px_ring_init(r, (size_t)need, cap, 8, flags), 0);
	px_ring_set_spin(r, 0);
	return r;
}

/* ---- racing park/wake cycles ------------------------------------------- */

/*
 * One party waits for the other's acknowledgement of item i, then waits a
 * pseudo-random 0..jitter ns and makes the next operation, so that it lands
 * near the moment the other side, having just acknowledged, parks again.
 *
 * "items" direction: the producer paces, the consumer parks in pop (ring
 * empty). "room" direction: the consumer paces on a capacity-1 ring kept
 * full, the producer parks in push.
 */
struct cyc {
	px_ring *r;
	size_t ring_size; /* r's mapping, for cyc_finish */
	uint64_t n;
	int jitter_ns;
	bool room; /* the producer parks (ring full), not the consumer */
	_Atomic uint64_t ack;  /* items the consumer has taken */
	_Atomic uint64_t sent; /* items the producer has pushed */
	_Atomic int failed;    /* a side's failure code, for threads */
	/* late finds (px__ipc_park_late) in each side's process */
	_Atomic uint64_t late_prod, late_cons;
};

#define CYC_TIMEOUT (20 * (int64_t)1000000000) /* per call: never hit */

static int cyc_producer(void *arg)
{
	struct cyc *c = arg;
	unsigned seed = 12345;
	uint64_t late0 = atomic_load(&px__ipc_park_late);
	for (uint64_t i = 0; i < c->n; i++) {
		if (!c->room) {
			/* Pace on the consumer: it has taken i - 1 and is
			 * about to park for i. */
			while (atomic_load(&c->ack) != i)
				if (atomic_load(&c->failed))
					return 2;
			busy_wait_ns(c->jitter_ns ? rand_r(&seed) % c->jitter_ns : 0);
		}
		int e = px_ring_push(c->r, &i, CYC_TIMEOUT);
		if (e != 0)
			return 10 + ipc_expect(e, 0);
		atomic_store(&c->sent, i + 1);
		if (atomic_load(&px__ipc_park_late) - late0 > c->n / 100)
			return 5; /* wakes go missing: fail now, not in hours */
	}
	atomic_store(&c->late_prod, atomic_load(&px__ipc_park_late) - late0);
	return 0;
}

static int cyc_consumer(void *arg)
{
	struct cyc *c = arg;
	unsigned seed = 54321;
	uint64_t late0 = atomic_load(&px__ipc_park_late);
	for (uint64_t i = 0; i < c->n; i++) {
		if (c->room) {
			/* Pace on the producer: item i fills the ring, and it
			 * is about to park for room for i + 1. */
			while (atomic_load(&c->sent) < i + 1)
				if (atomic_load(&c->failed))
					return 2;
			busy_wait_ns(c->jitter_ns ? rand_r(&seed) % c->jitter_ns : 0);
		}
		uint64_t v = UINT64_MAX;
		int e = px_ring_pop(c->r, &v, CYC_TIMEOUT);
		if (e != 0)
			return 20 + ipc_expect(e, 0);
		if (v != i)
			return 3; /* lost, duplicated or reordered */
		atomic_store(&c->ack, i + 1);
		if (atomic_load(&px__ipc_park_late) - late0 > c->n / 100)
			return 5; /* as in cyc_producer() */
	}
	uint64_t extra;
	if (px_ring_try_pop(c->r, &extra) != -EAGAIN)
		return 4; /* more than was sent */
	atomic_store(&c->late_cons, atomic_load(&px__ipc_park_late) - late0);
	return 0;
}

/* Items found only by the deferred barrier's backstop, not by a wake:
 * at most 1 in 20,000 here (the race needs a push within a store's time
 * in the store buffer; a waker preempted between its publication and its
 * FUTEX_WAKE for 10 ms also makes one); a waker that skipped wakes would
 * make nearly every one late. Allow 1% for a loaded machine. */
static void check_late(const struct cyc *c)
{
	uint64_t late = atomic_load(&c->late_prod) + atomic_load(&c->late_cons);
	if (late)
		fprintf(stderr, "  %llu of %llu items found late (after %lld ms, by the barrier)\n",
			(unsigned long long)late, (unsigned long long)c->n,
			(long long)(PX__PARK_BARRIER_NS / 1000000));
	assert_true(late <= c->n / 100);
}

static void check_waiters_zero(px_ring *r)
{
	assert_int_equal(atomic_load(&r->ne.waiters), 0);
	assert_int_equal(atomic_load(&r->nf.waiters), 0);
}

/*
 * Waits for two children at once, up to ms in all: each one's status as
 * ipc_wait() gives it, or -2 if it had to be killed. Once one fails, sets
 * *failed (the other's pacing loop then gives up) and gives the other 2 s.
 */
static void wait_both(const pid_t pids[2], int st[2], _Atomic int *failed, int ms)
{
	bool done[2] = {false, false};
	for (int t = 0; t < ms && !(done[0] && done[1]); t++) {
		for (int i = 0; i < 2; i++) {
			int s;
			if (done[i] || waitpid(pids[i], &s, WNOHANG) != pids[i])
				continue;
			done[i] = true;
			st[i] = WIFEXITED(s) ? WEXITSTATUS(s)
					     : 128 + (WIFSIGNALED(s) ? WTERMSIG(s) : 0);
			if (st[i] && !atomic_exchange(failed, 1) && ms - t > 2000)
				ms = t + 2000;
		}
		usleep(1000);
	}
	for (int i = 0; i < 2; i++)
		if (!done[i]) {
			kill(pids[i], SIGKILL);
			ipc_wait(pids[i]);
			st[i] = -2;
		}
}

/* A shared ring (capacity 1 for `room` cycles, else 64) and the cycle
 * state both sides use; cyc_finish checks the outcome and frees both. */
static struct cyc *cyc_new(unsigned flags, bool room, uint64_t n, int jitter)
{
	size_t sz;
	px_ring *r = ring_shared(room ? 1 : 64, flags, &sz);
	struct cyc *c = ipc_shared_alloc(sizeof *c);
	assert_non_null(c);
	c->r = r;
	c->ring_size = sz;
	c->n = n;
	c->jitter_ns = jitter;
	c->room = room;
	return c;
}

static void cyc_finish(struct cyc *c)
{
	assert_int_equal(atomic_load(&c->ack), c->n);
	check_late(c);
	check_waiters_zero(c->r);
	px_ring *r = c->r;
	size_t sz = c->ring_size;
	ipc_shared_free(c, sizeof *c);
	ipc_shared_free(r, sz);
}

static void run_cycles_xproc(unsigned flags, bool room, uint64_t n, int jitter)
{
	struct cyc *c = cyc_new(flags, room, n, jitter);
	pid_t pids[2] = {ipc_fork(cyc_consumer, c), ipc_fork(cyc_producer, c)};
	assert_true(pids[0] > 0 && pids[1] > 0);
	int st[2] = {-1, -1};
	wait_both(pids, st, &c->failed, 240000);
	if (st[0] || st[1])
		fprintf(stderr, "cycles %s %s jitter %d: consumer %d producer %d at ack %llu\n",
			flags == PX_RING_SPSC ? "spsc" : "mpmc", room ? "room" : "items", jitter,
			st[0], st[1], (unsigned long long)atomic_load(&c->ack));
	assert_int_equal(st[0], 0);
	assert_int_equal(st[1], 0);
	cyc_finish(c);
}

static void test_cycles_items_xproc(void **state)
{
	(void)state;
	uint64_t n = ipc_scaled(20000, 500);
	uint64_t late0 = atomic_load(&px__ipc_park_late);
	for (int jitter = 0; jitter <= 4000; jitter += 2000) {
		run_cycles_xproc(PX_RING_SPSC, false, n, jitter);
		run_cycles_xproc(PX_RING_MPMC, false, n, jitter);
	}
	/* The children count their own late finds; this process made none. */
	assert_int_equal(atomic_load(&px__ipc_park_late), late0);
}

static void test_cycles_room_xproc(void **state)
{
	(void)state;
	uint64_t n = ipc_scaled(10000, 300);
	for (int jitter = 0; jitter <= 4000; jitter += 4000) {
		run_cycles_xproc(PX_RING_SPSC, true, n, jitter);
		run_cycles_xproc(PX_RING_MPMC, true, n, jitter);
	}
}

/* The same between threads, where the thread sanitizer can see the
 * pairings (it cannot see into other processes). */
static void *cyc_thread(void *arg)
{
	struct cyc *c = arg;
	int e = cyc_consumer(c);
	if (e)
		atomic_store(&c->failed, e);
	return NULL;
}

static void run_cycles_threads(unsigned flags, bool room, uint64_t n, int jitter)
{
	struct cyc *c = cyc_new(flags, room, n, jitter);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, cyc_thread, c), 0);
	int e = cyc_producer(c);
	if (e)
		atomic_store(&c->failed, e);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&c->failed), 0);
	cyc_finish(c);
}

static void test_cycles_threads(void **state)
{
	(void)state;
	uint64_t n = ipc_scaled(10000, 300);
	run_cycles_threads(PX_RING_SPSC, false, n, 2000);
	run_cycles_threads(PX_RING_MPMC, false, n, 2000);
	run_cycles_threads(PX_RING_SPSC, true, n, 2000);
	run_cycles_threads(PX_RING_MPMC, true, n, 2000);
}

/* ---- many sleepers ---------------------------------------------------- */

#define MS_P 2
#define MS_C 2

struct many {
	px_ring *r;
	uint64_t per; /* items per producer */
	_Atomic uint64_t count[MS_C], sum[MS_C];
	_Atomic uint64_t last[MS_C][MS_P]; /* last sequence seen per producer */
	_Atomic int bad;
};

/* Item: producer id in the top byte, sequence (from 1) below. */
static int many_produce(struct many *m, uint64_t id)
{
	for (uint64_t i = 1; i <= m->per; i++) {
		uint64_t v = id << 56 | i;
		int e = px_ring_push(m->r, &v, CYC_TIMEOUT);
		if (e != 0)
			return 10 + ipc_expect(e, 0);
		if (i % 64 == 0)
			usleep(50 + (unsigned)(i % 7) * 100); /* consumers park */
	}
	return 0;
}

static int many_p0(void *arg)
{
	return many_produce(arg, 0);
}

static int many_p1(void *arg)
{
	return many_produce(arg, 1);
}

static int many_consume(struct many *m, int c)
{
	for (;;) {
		uint64_t v;
		int e = px_ring_pop(m->r, &v, CYC_TIMEOUT);
		if (e == PX_EEOF)
			return 0;
		if (e != 0)
			return 20 + ipc_expect(e, 0);
		uint64_t id = v >> 56, seq = v & ((UINT64_C(1) << 56) - 1);
		if (id >= MS_P || seq == 0 || seq > m->per)
			return 3;
		/* Each consumer sees one producer's items in order. */
		if (seq <= atomic_load(&m->last[c][id]))
			return 4;
		atomic_store(&m->last[c][id], seq);
		atomic_fetch_add(&m->count[c], 1);
		atomic_fetch_add(&m->sum[c], v);
	}
}

static int many_c0(void *arg)
{
	return many_consume(arg, 0);
}

static int many_c1(void *arg)
{
	return many_consume(arg, 1);
}

static void test_many_sleepers_xproc(void **state)
{
	(void)state;
	size_t sz;
	px_ring *r = ring_shared(2, PX_RING_MPMC, &sz);
	struct many *m = ipc_shared_alloc(sizeof *m);
	assert_non_null(m);
	m->r = r;
	m->per = ipc_scaled(20000, 640);
	pid_t c0 = ipc_fork(many_c0, m), c1 = ipc_fork(many_c1, m);
	pid_t p0 = ipc_fork(many_p0, m), p1 = ipc_fork(many_p1, m);
	assert_true(c0 > 0 && c1 > 0 && p0 > 0 && p1 > 0);
	assert_int_equal(ipc_wait_ms(p0, 240000), 0);
	assert_int_equal(ipc_wait_ms(p1, 240000), 0);
	assert_int_equal(px_ring_close(r), 0);
	assert_int_equal(ipc_wait_ms(c0, 60000), 0);
	assert_int_equal(ipc_wait_ms(c1, 60000), 0);
	uint64_t count = atomic_load(&m->count[0]) + atomic_load(&m->count[1]);
	uint64_t sum = atomic_load(&m->sum[0]) + atomic_load(&m->sum[1]);
	uint64_t per = m->per;
	/* Every item exactly once: the count, and the sum of id << 56 | seq. */
	assert_int_equal(count, MS_P * per);
	uint64_t want = 0;
	for (uint64_t id = 0; id < MS_P; id++)
		want += (id << 56) * per + per * (per + 1) / 2;
	assert_int_equal(sum, want);
	check_waiters_zero(r);
	ipc_shared_free(m, sizeof *m);
	ipc_shared_free(r, sz);
}

/* ---- the deferred barrier --------------------------------------------- */

struct popper {
	px_ring *r;
	int64_t timeout;
	int ret;
	uint64_t v;
	int64_t took;
	_Atomic pid_t tid;
};

static void *pop_thread(void *arg)
{
	struct popper *p = arg;
	atomic_store(&p->tid, gettid());
	int64_t t0 = now_ns();
	p->ret = px_ring_pop(p->r, &p->v, p->timeout);
	p->took = now_ns() - t0;
	return NULL;
}

/* True once thread tid of this process sleeps (state 'S'). */
static bool thread_sleeping(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	char *q = strrchr(buf, ')');
	return q && q[1] == ' ' && q[2] == 'S';
}

/* Waits until p's thread has parked: counted as a waiter and asleep (in
 * the futex wait: it does nothing else that sleeps). */
static void wait_parked(struct popper *p)
{
	int i;
	for (i = 0; i < 100000; i++) {
		pid_t tid = atomic_load(&p->tid);
		if (tid && atomic_load(&p->r->ne.waiters) == 1 && thread_sleeping(tid))
			break;
		usleep(100);
	}
	assert_true(i < 100000);
}

/* Publishes item 0x5eed at position 0 the way a push does, but without
 * looking at the waiter count: the state a waker leaves that read the
 * count before the sleeper raised it. */
static void publish_silently(px_ring *r, unsigned flags)
{
	const struct px__ring_geo *g = &r->ro.geo;
	uint64_t v = 0x5eed;
	if (flags == PX_RING_SPSC) {
		memcpy(r->slots, &v, 8);
		atomic_store_explicit(&r->prod.tail, 1, memory_order_release);
		return;
	}
	_Atomic uint64_t *seq = px__entry_seq(r, g, 0);
	memcpy((unsigned char *)(seq + 1), &v, 8);
	atomic_store_explicit(&r->prod.tail, 1, memory_order_relaxed);
	atomic_store_explicit(seq, 1, memory_order_release); /* 2 * 0 + 1 */
}

static void run_silent(unsigned flags)
{
	size_t sz;
	px_ring *r = ring_shared(8, flags, &sz);
	uint64_t late0 = atomic_load(&px__ipc_park_late);
	uint64_t bar0 = atomic_load(&px__ipc_park_barriers);
	struct popper p = {r, 30 * (int64_t)1000000000, -1, 0, 0, 0};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, pop_thread, &p), 0);
	wait_parked(&p);
	publish_silently(r, flags);
	pthread_join(t, NULL);
	/* Found with no wake, well before its own timeout. */
	assert_int_equal(p.ret, 0);
	assert_int_equal(p.v, 0x5eed);
	assert_true(p.took < 20 * (int64_t)1000000000);
	if (px__ipc_sleeper_mb_ok()) {
		/* Through the deferred barrier, not before it (nothing woke
		 * the sleeper), and counted as a late find. */
		assert_true(atomic_load(&px__ipc_park_barriers) > bar0);
		assert_true(atomic_load(&px__ipc_park_late) > late0);
		assert_true(p.took >= PX__PARK_BARRIER_NS);
	}
	check_waiters_zero(r);
	ipc_shared_free(r, sz);
}

static void test_silent_publish_found(void **state)
{
	(void)state;
#ifdef PX__NO_FENCES
	/* Under TSan a sleeper has no deferred barrier: wakers read the
	 * count with an RMW, and nothing else would ever wake it. */
	skip();
#endif
	run_silent(PX_RING_SPSC);
	run_silent(PX_RING_MPMC);
}

/* A park that outlasts the deferral (the barrier passed, the sleep
 * unbounded) is still woken by a push, from another process. */
static int push_after(void *arg)
{
	px_ring *r = arg;
	usleep((useconds_t)(3 * PX__PARK_BARRIER_NS / 1000));
	uint64_t v = 77;
	return px_ring_push(r, &v, CYC_TIMEOUT) == 0 ? 0 : 1;
}

static void test_long_park_woken(void **state)
{
	(void)state;
	size_t sz;
	px_ring *r = ring_shared(8, PX_RING_SPSC, &sz);
	for (int k = 0; k < 3; k++) {
		uint64_t bar0 = atomic_load(&px__ipc_park_barriers);
		pid_t pid = ipc_fork(push_after, r);
		assert_true(pid > 0);
		uint64_t v = 0;
		int64_t t0 = now_ns();
		assert_int_equal(px_ring_pop(r, &v, 60 * (int64_t)1000000000), 0);
		int64_t took = now_ns() - t0;
		assert_int_equal(v, 77);
		assert_int_equal(ipc_wait(pid), 0);
		/* It slept past the deferral, so it passed the barrier (the
		 * child's push came 3 deferrals later), and a wake, not a
		 * poll, ended the unbounded sleep: well before the timeout. */
		assert_true(took >= PX__PARK_BARRIER_NS);
		if (px__ipc_sleeper_mb_ok())
			assert_true(atomic_load(&px__ipc_park_barriers) > bar0);
		assert_true(took < 30 * (int64_t)1000000000);
	}
	check_waiters_zero(r);
	ipc_shared_free(r, sz);
}

/* Timeouts before and after the deferred barrier end on time, and leave
 * no waiter counted. */
static void test_timeouts_around_barrier(void **state)
{
	(void)state;
	size_t sz;
	px_ring *r = ring_shared(1, PX_RING_SPSC, &sz);
	const int64_t ms = 1000000;
	const int64_t tos[] = {2 * ms, PX__PARK_BARRIER_NS / 2, 3 * PX__PARK_BARRIER_NS};
	for (size_t i = 0; i < sizeof tos / sizeof tos[0]; i++) {
		uint64_t v;
		int64_t t0 = now_ns();
		assert_int_equal(px_ring_pop(r, &v, tos[i]), -ETIMEDOUT);
		assert_true(now_ns() - t0 >= tos[i]);
		/* the producer side: fill the ring, then wait for room */
		assert_int_equal(px_ring_try_push(r, &(uint64_t){1}), 0);
		assert_int_equal(px_ring_push(r, &(uint64_t){2}, 0), -EAGAIN);
		t0 = now_ns();
		assert_int_equal(px_ring_push(r, &(uint64_t){2}, tos[i]), -ETIMEDOUT);
		assert_true(now_ns() - t0 >= tos[i]);
		assert_int_equal(px_ring_try_pop(r, &v), 0);
		assert_int_equal(v, 1);
		check_waiters_zero(r);
	}
	ipc_shared_free(r, sz);
}

/* A kick reaches a sleeper still in its deferral and one past it. */
static void test_kick_around_barrier(void **state)
{
	(void)state;
	size_t sz;
	px_ring *r = ring_shared(8, PX_RING_SPSC, &sz);
	const int64_t delays[] = {0, 3 * PX__PARK_BARRIER_NS};
	for (size_t i = 0; i < 2; i++) {
		struct popper p = {r, 60 * (int64_t)1000000000, 0, 0, 0, 0};
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, pop_thread, &p), 0);
		wait_parked(&p);
		if (delays[i])
			usleep((useconds_t)(delays[i] / 1000));
		assert_int_equal(px_ring_kick(r), 0);
		pthread_join(t, NULL);
		assert_int_equal(p.ret, -EINTR);
		assert_true(p.took < 30 * (int64_t)1000000000);
		check_waiters_zero(r);
	}
	ipc_shared_free(r, sz);
}

/* ---- the spin budget ---------------------------------------------------- */

/* Watches r's consumer waiter count while p's pop runs: true if it was
 * ever raised (the call parked). */
static bool watch_parked(struct popper *p, pthread_t t)
{
	bool parked = false;
	for (;;) {
		if (atomic_load(&p->r->ne.waiters))
			parked = true;
		if (pthread_tryjoin_np(t, NULL) == 0)
			return parked;
		usleep(50);
	}
}

/* On one CPU a blocking call parks at once, whatever the spin setting:
 * the party it waits for cannot run while it spins. With more CPUs it
 * spins first (here for its whole timeout, never parking). */
static void test_no_spin_on_one_cpu(void **state)
{
	(void)state;
	size_t sz;
	px_ring *r = ring_shared(8, PX_RING_SPSC, &sz);
	px_ring_set_spin(r, UINT32_MAX);
	int real = px__ipc_ncpus();
	const int pretend[] = {1, 2};
	for (int i = 0; i < 2; i++) {
		atomic_store(&px__ipc_ncpus_cache, pretend[i]);
		struct popper p = {r, 100 * 1000000, 0, 0, 0, 0};
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, pop_thread, &p), 0);
		bool parked = watch_parked(&p, t);
		assert_int_equal(p.ret, -ETIMEDOUT);
		assert_int_equal(parked, pretend[i] == 1);
		check_waiters_zero(r);
	}
	atomic_store(&px__ipc_ncpus_cache, real);
	ipc_shared_free(r, sz);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_silent_publish_found),
		cmocka_unit_test(test_long_park_woken),
		cmocka_unit_test(test_timeouts_around_barrier),
		cmocka_unit_test(test_kick_around_barrier),
		cmocka_unit_test(test_no_spin_on_one_cpu),
		cmocka_unit_test(test_cycles_threads),
		cmocka_unit_test(test_cycles_items_xproc),
		cmocka_unit_test(test_cycles_room_xproc),
		cmocka_unit_test(test_many_sleepers_xproc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
