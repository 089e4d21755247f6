/*
 * bench/bench_ring.c - px_ring against Concurrency Kit's ck_ring, DPDK's
 * rte_ring, a pipe and a UNIX socketpair, between forked processes, side by
 * side in one run.
 *
 *   ./bench_ring [rounds]        (default 5)
 *
 * Environment: PX_BENCH_N (messages per throughput case, default 4000000),
 * PX_BENCH_PINGS (round trips per latency case, default 20000),
 * PX_BENCH_SPORADIC (round trips per gap in the sporadic case, default 200;
 * 0 skips it),
 * PX_BENCH_CPUS ("0,2,4,6": CPUs for producer 0, consumer 0, producer 1,
 * consumer 1; default: one CPU per physical core from the allowed set).
 *
 * Cases: 8-byte messages, SPSC and MPMC with 1P/1C and 2P/2C, single and
 * burst-32 operations (throughput, ns per message); ping-pong round trips
 * (p50/p99), spinning and futex-parked. All rings hold 1024 items and live
 * in MAP_SHARED memory set up before fork. Producers and consumers use the
 * non-blocking operations in a loop (pause, and sched_yield() after 1000
 * failures, the same for every peer), except the pipe and socketpair, which
 * block in the kernel, and the futex ping-pong, which uses px_ring's
 * blocking calls with spinning off. Every round runs every case once, in
 * the same order; the report gives each case's median and the ratios the
 * ipc issue sets as targets.
 *
 * Sporadic case (idle wake): one process sleeps a gap (200 us, 1 ms,
 * 5 ms), then makes one round trip through two px_rings to a process
 * parked in px_ring_pop() (default spin, so it has parked long before the
 * item comes; the client's pop spins for the answer as the default does),
 * then sleeps the same gap and makes one round trip through two more rings
 * with spinning off on both sides ("parex_parked": the client parks for
 * the answer too, as a pipe's reader does), then sleeps the gap and makes
 * one round trip over a pipe to a process blocked in read(); p50 and p99
 * per gap and peer.
 * Each round's figures are also printed as "RESULT measure peer value unit"
 * lines (bench/bench_util.h) for bench/run_all.sh; throughput there is in
 * millions of messages per second.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <parex/ring.h>

#include "bench_util.h"

#ifdef PX_BENCH_HAVE_CK
#include <ck_ring.h>
#endif
#ifdef PX_BENCH_HAVE_RTE
#include <rte_ring.h>
#endif

#define CAP 1024
#define BURST 32
#define MAXR 64
#define STOP UINT64_MAX

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void relax(unsigned *fails)
{
	__builtin_ia32_pause();
	if (++*fails >= 1000) {
		*fails = 0;
		sched_yield();
	}
}

/* ---- peers: one interface over every queue ----------------------------- */

enum { SPSC = 0, MPMC = 1 };

struct peer {
	const char *name;
	size_t (*memsize)(int mode);
	int (*init)(void *mem, int mode);
	/* non-blocking; true when done */
	bool (*push)(void *mem, int mode, uint64_t v);
	bool (*pop)(void *mem, int mode, uint64_t *v);
	/* burst: how many moved; NULL when the peer has none */
	unsigned (*push_burst)(void *mem, int mode, const uint64_t *v, unsigned n);
	unsigned (*pop_burst)(void *mem, int mode, uint64_t *v, unsigned n);
	bool blocking; /* pipe/socketpair: push/pop block in the kernel */
};

/* px_ring */
static size_t px_memsize(int mode)
{
	return (size_t)px_ring_memsize(CAP, 8, mode == SPSC ? PX_RING_SPSC : PX_RING_MPMC);
}
static int px_init(void *mem, int mode)
{
	return px_ring_init(mem, px_memsize(mode), CAP, 8,
			    mode == SPSC ? PX_RING_SPSC : PX_RING_MPMC);
}
static bool px_push(void *mem, int mode, uint64_t v)
{
	(void)mode;
	return px_ring_try_push(mem, &v) == 0;
}
static bool px_pop(void *mem, int mode, uint64_t *v)
{
	(void)mode;
	return px_ring_try_pop(mem, v) == 0;
}
static unsigned px_push_burst(void *mem, int mode, const uint64_t *v, unsigned n)
{
	(void)mode;
	int r = px_ring_try_push_burst(mem, v, n);
	return r > 0 ? (unsigned)r : 0;
}
static unsigned px_pop_burst(void *mem, int mode, uint64_t *v, unsigned n)
{
	(void)mode;
	int r = px_ring_try_pop_burst(mem, v, n);
	return r > 0 ? (unsigned)r : 0;
}

#ifdef PX_BENCH_HAVE_CK
/* ck_ring: the ring header, then the buffer; entries are the values. */
struct ckr {
	struct ck_ring ring;
	struct ck_ring_buffer buf[CAP];
};
static size_t ck_memsize(int mode)
{
	(void)mode;
	return sizeof(struct ckr);
}
static int ck_init(void *mem, int mode)
{
	(void)mode;
	ck_ring_init(&((struct ckr *)mem)->ring, CAP);
	return 0;
}
static bool ck_push(void *mem, int mode, uint64_t v)
{
	struct ckr *c = mem;
	return mode == SPSC ? ck_ring_enqueue_spsc(&c->ring, c->buf, (void *)(uintptr_t)v)
			    : ck_ring_enqueue_mpmc(&c->ring, c->buf, (void *)(uintptr_t)v);
}
static bool ck_pop(void *mem, int mode, uint64_t *v)
{
	struct ckr *c = mem;
	void *p;
	bool ok = mode == SPSC ? ck_ring_dequeue_spsc(&c->ring, c->buf, &p)
			       : ck_ring_dequeue_mpmc(&c->ring, c->buf, &p);
	if (ok)
		*v = (uint64_t)(uintptr_t)p;
	return ok;
}
#endif

#ifdef PX_BENCH_HAVE_RTE
static size_t rte_memsize(int mode)
{
	(void)mode;
	return (size_t)rte_ring_get_memsize(CAP);
}
static int rte_init(void *mem, int mode)
{
	/* rte_ring_init() needs no EAL: it only fills the header. */
	return rte_ring_init(mem, "bench", CAP,
			     mode == SPSC ? RING_F_SP_ENQ | RING_F_SC_DEQ : 0);
}
static bool rte_push(void *mem, int mode, uint64_t v)
{
	(void)mode;
	return rte_ring_enqueue(mem, (void *)(uintptr_t)v) == 0;
}
static bool rte_pop(void *mem, int mode, uint64_t *v)
{
	(void)mode;
	void *p;
	if (rte_ring_dequeue(mem, &p) != 0)
		return false;
	*v = (uint64_t)(uintptr_t)p;
	return true;
}
static unsigned rte_push_burst(void *mem, int mode, const uint64_t *v, unsigned n)
{
	(void)mode;
	return rte_ring_enqueue_burst(mem, (void *const *)v, n, NULL);
}
static unsigned rte_pop_burst(void *mem, int mode, uint64_t *v, unsigned n)
{
	(void)mode;
	return rte_ring_dequeue_burst(mem, (void **)v, n, NULL);
}
#endif

/* pipe / socketpair: the two descriptors, made at init, inherited by fork */
struct fdq {
	int fd[2];
};
static size_t fd_memsize(int mode)
{
	(void)mode;
	return sizeof(struct fdq);
}
static int pipe_init(void *mem, int mode)
{
	(void)mode;
	return pipe(((struct fdq *)mem)->fd);
}
static int sock_init(void *mem, int mode)
{
	(void)mode;
	return socketpair(AF_UNIX, SOCK_STREAM, 0, ((struct fdq *)mem)->fd);
}
static bool fd_push(void *mem, int mode, uint64_t v)
{
	(void)mode;
	return write(((struct fdq *)mem)->fd[1], &v, 8) == 8;
}
static bool fd_pop(void *mem, int mode, uint64_t *v)
{
	(void)mode;
	return read(((struct fdq *)mem)->fd[0], v, 8) == 8;
}
static void fd_close(void *mem)
{
	struct fdq *f = mem;
	close(f->fd[0]);
	close(f->fd[1]);
}

static const struct peer peers[] = {
	{"parex", px_memsize, px_init, px_push, px_pop, px_push_burst, px_pop_burst, false},
#ifdef PX_BENCH_HAVE_CK
	{"ck_ring", ck_memsize, ck_init, ck_push, ck_pop, NULL, NULL, false},
#endif
#ifdef PX_BENCH_HAVE_RTE
	{"rte_ring", rte_memsize, rte_init, rte_push, rte_pop, rte_push_burst, rte_pop_burst, false},
#endif
	{"pipe", fd_memsize, pipe_init, fd_push, fd_pop, NULL, NULL, true},
	{"socketpair", fd_memsize, sock_init, fd_push, fd_pop, NULL, NULL, true},
};
#define NPEERS (sizeof peers / sizeof peers[0])

static const struct peer *peer_by_name(const char *n)
{
	for (size_t i = 0; i < NPEERS; i++)
		if (!strcmp(peers[i].name, n))
			return &peers[i];
	return NULL;
}

/* ---- CPU placement ------------------------------------------------------ */

static int g_cpus[8];
static int g_ncpus;

static void pick_cpus(void)
{
	const char *env = getenv("PX_BENCH_CPUS");
	if (env) {
		char *end;
		for (const char *p = env; *p && g_ncpus < 8; p = end) {
			g_cpus[g_ncpus++] = (int)strtol(p, &end, 10);
			if (*end == ',')
				end++;
			else if (*end)
				break;
		}
		return;
	}
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return;
	int seen_core[1024];
	int nseen = 0;
	for (int c = 0; c < CPU_SETSIZE && g_ncpus < 8; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		/* one CPU per physical core: skip SMT siblings */
		char path[128];
		snprintf(path, sizeof path,
			 "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", c);
		FILE *f = fopen(path, "r");
		int first = c;
		if (f) {
			if (fscanf(f, "%d", &first) != 1)
				first = c;
			fclose(f);
		}
		bool dup = false;
		for (int i = 0; i < nseen; i++)
			dup |= seen_core[i] == first;
		if (dup)
			continue;
		seen_core[nseen++] = first;
		g_cpus[g_ncpus++] = c;
	}
}

static void pin(int slot)
{
	if (g_ncpus == 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(g_cpus[slot % g_ncpus], &set);
	sched_setaffinity(0, sizeof set, &set);
}

/* ---- throughput --------------------------------------------------------- */

struct shared {
	_Atomic int ready;
	_Atomic int go;
	_Atomic int64_t end_ns;
	uint64_t sum[4];
	uint64_t count[4];
	int64_t lat[];
};

static void wait_go(struct shared *s)
{
	atomic_fetch_add(&s->ready, 1);
	while (!atomic_load_explicit(&s->go, memory_order_acquire))
		__builtin_ia32_pause();
}

static void producer(const struct peer *p, void *q, int mode, struct shared *s,
		     uint64_t first, uint64_t n, bool burst)
{
	unsigned fails = 0;
	wait_go(s);
	if (burst) {
		uint64_t buf[BURST];
		uint64_t i = 0;
		while (i < n) {
			unsigned k = n - i < BURST ? (unsigned)(n - i) : BURST;
			for (unsigned j = 0; j < k; j++)
				buf[j] = first + i + j;
			unsigned done = 0;
			while (done < k) {
				unsigned m = p->push_burst(q, mode, buf + done, k - done);
				if (m == 0)
					relax(&fails);
				done += m;
			}
			i += k;
		}
		return;
	}
	for (uint64_t i = 0; i < n; i++)
		while (!p->push(q, mode, first + i))
			relax(&fails);
}

static void consumer(const struct peer *p, void *q, int mode, struct shared *s,
		     int id, bool burst)
{
	unsigned fails = 0;
	uint64_t sum = 0, count = 0;
	wait_go(s);
	if (burst) {
		uint64_t buf[BURST];
		for (;;) {
			unsigned m = p->pop_burst(q, mode, buf, BURST);
			if (m == 0) {
				relax(&fails);
				continue;
			}
			for (unsigned j = 0; j < m; j++) {
				if (buf[j] == STOP)
					goto out; /* the stop marker comes last */
				sum += buf[j];
				count++;
			}
		}
	} else {
		for (;;) {
			uint64_t v;
			if (!p->pop(q, mode, &v)) {
				relax(&fails);
				continue;
			}
			if (v == STOP)
				break;
			sum += v;
			count++;
		}
	}
out:;
	int64_t t = now_ns();
	int64_t prev = atomic_load(&s->end_ns);
	while (prev < t && !atomic_compare_exchange_weak(&s->end_ns, &prev, t))
		;
	s->sum[id] = sum;
	s->count[id] = count;
}

/* ns per message, or -1 when the case does not apply or failed. */
static double run_throughput(const struct peer *p, int mode, int np, bool burst,
			     uint64_t n)
{
	if (burst && !p->push_burst)
		return -1;
	if (p->blocking && np > 1 && burst)
		return -1;
	/* Spinning processes sharing a CPU measure the scheduler (rte_ring's
	 * MP/MC mode even stalls for whole time slices when a producer is
	 * preempted between its claim and its tail update). */
	if (g_ncpus < 2 * np)
		return -1;
	size_t qsz = (p->memsize(mode) + 4095) & ~(size_t)4095;
	size_t ssz = sizeof(struct shared);
	void *q = mmap(NULL, qsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct shared *s = mmap(NULL, ssz, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (q == MAP_FAILED || s == MAP_FAILED || p->init(q, mode) != 0) {
		fprintf(stderr, "%s: init failed\n", p->name);
		exit(1);
	}
	pid_t pids[4];
	uint64_t per = n / (uint64_t)np;
	for (int i = 0; i < np; i++) {
		if ((pids[2 * i] = fork()) == 0) {
			pin(2 * i);
			producer(p, q, mode, s, 1 + per * (uint64_t)i, per, burst);
			_exit(0);
		}
		if ((pids[2 * i + 1] = fork()) == 0) {
			pin(2 * i + 1);
			consumer(p, q, mode, s, i, burst);
			_exit(0);
		}
	}
	while (atomic_load(&s->ready) < 2 * np)
		usleep(100);
	int64_t t0 = now_ns();
	atomic_store_explicit(&s->go, 1, memory_order_release);
	for (int i = 0; i < np; i++)
		waitpid(pids[2 * i], NULL, 0);
	/* every producer is done: one stop marker per consumer, after all data */
	unsigned fails = 0;
	for (int i = 0; i < np; i++)
		while (!p->push(q, mode, STOP))
			relax(&fails);
	for (int i = 0; i < np; i++)
		waitpid(pids[2 * i + 1], NULL, 0);
	uint64_t sum = 0, count = 0;
	for (int i = 0; i < np; i++) {
		sum += s->sum[i];
		count += s->count[i];
	}
	uint64_t total = per * (uint64_t)np;
	double ns = (double)(atomic_load(&s->end_ns) - t0) / (double)total;
	if (count != total || sum != total * (total + 1) / 2) {
		fprintf(stderr, "%s: lost messages (%llu of %llu)\n", p->name,
			(unsigned long long)count, (unsigned long long)total);
		ns = -1;
	}
	if (p->blocking)
		fd_close(q);
	munmap(q, qsz);
	munmap(s, ssz);
	return ns;
}

/* ---- ping-pong ------------------------------------------------------------ */

enum { PP_SPIN, PP_FUTEX };

static void pp_send(const struct peer *p, void *q, int how, uint64_t v)
{
	unsigned fails = 0;
	if (how == PP_FUTEX) {
		px_ring_push(q, &v, -1);
		return;
	}
	while (!p->push(q, SPSC, v))
		relax(&fails);
}

static uint64_t pp_recv(const struct peer *p, void *q, int how)
{
	unsigned fails = 0;
	uint64_t v = 0;
	if (how == PP_FUTEX) {
		px_ring_pop(q, &v, -1);
		return v;
	}
	while (!p->pop(q, SPSC, &v))
		relax(&fails);
	return v;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* p50 and p99 round trip in ns (out[0], out[1]); false if n/a. */
static bool run_pingpong(const struct peer *p, int how, uint64_t iters, double out[2])
{
	size_t qsz = (p->memsize(SPSC) + 4095) & ~(size_t)4095;
	size_t ssz = sizeof(struct shared) + iters * sizeof(int64_t);
	char *q = mmap(NULL, 2 * qsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct shared *s = mmap(NULL, ssz, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	void *ab = q, *ba = q + qsz;
	if (p->init(ab, SPSC) != 0 || p->init(ba, SPSC) != 0)
		return false;
	if (how == PP_FUTEX) {
		px_ring_set_spin(ab, 0);
		px_ring_set_spin(ba, 0);
	}
	pid_t a = fork();
	if (a == 0) {
		pin(0);
		wait_go(s);
		for (uint64_t i = 0; i < iters; i++) {
			int64_t t = now_ns();
			pp_send(p, ab, how, i + 1);
			if (pp_recv(p, ba, how) != i + 1)
				_exit(2);
			s->lat[i] = now_ns() - t;
		}
		_exit(0);
	}
	pid_t b = fork();
	if (b == 0) {
		pin(1);
		wait_go(s);
		for (uint64_t i = 0; i < iters; i++)
			pp_send(p, ba, how, pp_recv(p, ab, how));
		_exit(0);
	}
	while (atomic_load(&s->ready) < 2)
		usleep(100);
	atomic_store(&s->go, 1);
	int st;
	waitpid(a, &st, 0);
	waitpid(b, NULL, 0);
	bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	if (ok) {
		/* drop the first tenth: warm-up */
		uint64_t skip = iters / 10;
		qsort(s->lat + skip, iters - skip, sizeof(int64_t), cmp_i64);
		out[0] = (double)s->lat[skip + (iters - skip) / 2];
		out[1] = (double)s->lat[skip + (iters - skip) * 99 / 100];
	}
	if (p->blocking) {
		fd_close(ab);
		fd_close(ba);
	}
	munmap(q, 2 * qsz);
	munmap(s, ssz);
	return ok;
}

/* ---- sporadic (idle wake) ----------------------------------------------------- */

enum { SP_PAREX, SP_PARKED, SP_PIPE, SP_PEERS };
static const char *const sp_name[SP_PEERS] = {"parex", "parex_parked", "pipe"};

/* The ring's server: parks in px_ring_pop() between requests. */
static void sp_server(void *ab, void *ba)
{
	pin(1);
	for (;;) {
		uint64_t v;
		if (px_ring_pop(ab, &v, -1) != 0 || v == STOP)
			_exit(0);
		v++;
		if (px_ring_push(ba, &v, -1) != 0)
			_exit(1);
	}
}

/* One ring round trip: its duration in ns, or -1 on a wrong answer. */
static int64_t sp_ring_rtt(void *ab, void *ba, uint64_t v)
{
	uint64_t answer = 0;
	int64_t t = now_ns();
	if (px_ring_push(ab, &v, -1) != 0 || px_ring_pop(ba, &answer, -1) != 0)
		return -1;
	int64_t d = now_ns() - t;
	return answer == v + 1 ? d : -1;
}

/* One round: per gap, n ring round trips to a parked reader, n more with
 * spinning off on both sides, and n pipe round trips to a blocked reader,
 * interleaved, each after the gap. Fills out[peer][gap][0 p50, 1 p99] in
 * ns; false when a side failed. */
static bool run_sporadic(uint64_t n, double out[SP_PEERS][PX_BENCH_NGAPS][2])
{
	size_t qsz = (px_memsize(SPSC) + 4095) & ~(size_t)4095;
	size_t nl = (size_t)SP_PEERS * PX_BENCH_NGAPS * n;
	size_t ssz = sizeof(struct shared) + nl * sizeof(int64_t);
	char *q = mmap(NULL, 4 * qsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct shared *s = mmap(NULL, ssz, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct px_bench_echo echo;
	if (q == MAP_FAILED || s == MAP_FAILED)
		return false;
	/* ab/ba: default spin; pab/pba: spinning off (parex_parked) */
	void *ab = q, *ba = q + qsz, *pab = q + 2 * qsz, *pba = q + 3 * qsz;
	if (px_init(ab, SPSC) != 0 || px_init(ba, SPSC) != 0 || px_init(pab, SPSC) != 0 ||
	    px_init(pba, SPSC) != 0 || px_bench_echo_start(&echo) != 0)
		return false;
	px_ring_set_spin(pab, 0);
	px_ring_set_spin(pba, 0);
	if (g_ncpus > 0) {
		/* the pipe's server on the ring servers' CPU: all wait alike */
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(g_cpus[1 % g_ncpus], &set);
		sched_setaffinity(echo.pid, sizeof set, &set);
	}
	pid_t b = fork();
	if (b == 0)
		sp_server(ab, ba);
	pid_t b2 = b > 0 ? fork() : -1;
	if (b2 == 0)
		sp_server(pab, pba);
	pid_t a = b2 > 0 ? fork() : -1;
	if (a == 0) {
		pin(0);
		for (int g = 0; g < PX_BENCH_NGAPS; g++) {
			int64_t *l[SP_PEERS];
			for (int k = 0; k < SP_PEERS; k++)
				l[k] = s->lat + ((size_t)g * SP_PEERS + (size_t)k) * n;
			for (uint64_t i = 0; i < n; i++) {
				px_bench_sleep_us(px_bench_gap_us(g));
				l[SP_PAREX][i] = sp_ring_rtt(ab, ba, i + 1);
				px_bench_sleep_us(px_bench_gap_us(g));
				l[SP_PARKED][i] = sp_ring_rtt(pab, pba, i + 1);
				px_bench_sleep_us(px_bench_gap_us(g));
				l[SP_PIPE][i] = px_bench_echo_rtt(&echo, (int64_t)i);
				for (int k = 0; k < SP_PEERS; k++)
					if (l[k][i] < 0)
						_exit(2 + k);
			}
		}
		uint64_t stop = STOP;
		px_ring_push(ab, &stop, -1);
		px_ring_push(pab, &stop, -1);
		_exit(0);
	}
	int st;
	bool ok = a > 0 && b > 0 && b2 > 0;
	if (a > 0) {
		waitpid(a, &st, 0);
		ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	/* the client died without its stop markers: end the servers */
	if (!ok && b > 0)
		kill(b, SIGKILL);
	if (!ok && b2 > 0)
		kill(b2, SIGKILL);
	if (b > 0)
		waitpid(b, NULL, 0);
	if (b2 > 0)
		waitpid(b2, NULL, 0);
	px_bench_echo_stop(&echo);
	for (int g = 0; ok && g < PX_BENCH_NGAPS; g++)
		for (int k = 0; k < SP_PEERS; k++) {
			int64_t *l = s->lat + ((size_t)g * SP_PEERS + (size_t)k) * n;
			out[k][g][0] = (double)px_bench_quantile(l, n, 0.50);
			out[k][g][1] = (double)px_bench_quantile(l, n, 0.99);
		}
	munmap(q, 4 * qsz);
	munmap(s, ssz);
	return ok;
}

/* ---- driver ----------------------------------------------------------------- */

struct tcase {
	const char *peer;
	int mode, np;
	bool burst;
	double v[MAXR];
};

struct pcase {
	const char *peer;
	int how;
	double p50[MAXR], p99[MAXR];
};

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double t[MAXR];
	int k = 0;
	for (int i = 0; i < n; i++)
		if (v[i] >= 0)
			t[k++] = v[i];
	if (k == 0)
		return -1;
	qsort(t, (size_t)k, sizeof t[0], cmp_d);
	return k % 2 ? t[k / 2] : (t[k / 2 - 1] + t[k / 2]) / 2;
}

static struct tcase tcases[] = {
	{"parex", SPSC, 1, false, {0}},    {"ck_ring", SPSC, 1, false, {0}},
	{"rte_ring", SPSC, 1, false, {0}}, {"pipe", SPSC, 1, false, {0}},
	{"socketpair", SPSC, 1, false, {0}},
	{"parex", SPSC, 1, true, {0}},     {"rte_ring", SPSC, 1, true, {0}},
	{"parex", MPMC, 1, false, {0}},    {"ck_ring", MPMC, 1, false, {0}},
	{"rte_ring", MPMC, 1, false, {0}},
	{"parex", MPMC, 1, true, {0}},     {"rte_ring", MPMC, 1, true, {0}},
	{"parex", MPMC, 2, false, {0}},    {"ck_ring", MPMC, 2, false, {0}},
	{"rte_ring", MPMC, 2, false, {0}}, {"pipe", MPMC, 2, false, {0}},
	{"parex", MPMC, 2, true, {0}},     {"rte_ring", MPMC, 2, true, {0}},
};
#define NT (sizeof tcases / sizeof tcases[0])

static struct pcase pcases[] = {
	{"parex", PP_SPIN, {0}, {0}},   {"ck_ring", PP_SPIN, {0}, {0}},
	{"rte_ring", PP_SPIN, {0}, {0}}, {"parex", PP_FUTEX, {0}, {0}},
	{"pipe", PP_SPIN, {0}, {0}},    {"socketpair", PP_SPIN, {0}, {0}},
};
#define NPC (sizeof pcases / sizeof pcases[0])

static double tmed(const char *peer, int mode, int np, bool burst)
{
	for (size_t i = 0; i < NT; i++)
		if (!strcmp(tcases[i].peer, peer) && tcases[i].mode == mode &&
		    tcases[i].np == np && tcases[i].burst == burst)
			return tcases[i].v[MAXR - 1];
	return -1;
}

static double pmed(const char *peer, int how)
{
	for (size_t i = 0; i < NPC; i++)
		if (!strcmp(pcases[i].peer, peer) && pcases[i].how == how)
			return pcases[i].p50[MAXR - 1];
	return -1;
}

static double pmed99(const char *peer, int how)
{
	for (size_t i = 0; i < NPC; i++)
		if (!strcmp(pcases[i].peer, peer) && pcases[i].how == how)
			return pcases[i].p99[MAXR - 1];
	return -1;
}

/* The lower (faster) of two medians, ignoring missing ones. */
static double best_of(double a, double b)
{
	return a > 0 && (b <= 0 || a < b) ? a : b;
}

static void ratio_line(const char *what, double ours, double theirs, double target,
		       bool higher_is_better, const char *unit)
{
	if (ours <= 0 || theirs <= 0) {
		printf("  %-52s n/a (peer missing)\n", what);
		return;
	}
	double r = higher_is_better ? theirs / ours : ours / theirs;
	bool met = higher_is_better ? r >= target : r <= target;
	if (target <= 0) { /* for information: no target */
		printf("  %-52s %6.2fx (%.1f vs %.1f %s)\n", what, r, ours, theirs, unit);
		return;
	}
	printf("  %-52s %6.2fx (%.1f vs %.1f %s; target %s %.2fx) %s\n", what, r, ours,
	       theirs, unit, higher_is_better ? ">=" : "<=", target, met ? "MET" : "MISSED");
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	if (rounds < 1)
		rounds = 1;
	if (rounds > MAXR - 1)
		rounds = MAXR - 1;
	uint64_t n = getenv("PX_BENCH_N") ? strtoull(getenv("PX_BENCH_N"), NULL, 10) : 4000000;
	uint64_t pings = getenv("PX_BENCH_PINGS") ? strtoull(getenv("PX_BENCH_PINGS"), NULL, 10)
						  : 20000;
	uint64_t spor = getenv("PX_BENCH_SPORADIC")
				? strtoull(getenv("PX_BENCH_SPORADIC"), NULL, 10) : 200;
	if (spor > 100000)
		spor = 100000;
	/* per peer and gap: p50 and p99 per round (ns) */
	static double sp50[SP_PEERS][PX_BENCH_NGAPS][MAXR], sp99[SP_PEERS][PX_BENCH_NGAPS][MAXR];
	int sp_runs = 0;
	pick_cpus();
	printf("bench_ring: %d rounds, %llu messages per throughput case, %llu round trips "
	       "per latency case\nCPUs:", rounds, (unsigned long long)n,
	       (unsigned long long)pings);
	for (int i = 0; i < g_ncpus; i++)
		printf(" %d", g_cpus[i]);
	printf("%s\n", g_ncpus ? "" : " (not pinned)");
#ifndef PX_BENCH_HAVE_CK
	printf("ck_ring: not built in (libck-dev / ck.pc not found), skipped\n");
#endif
#ifndef PX_BENCH_HAVE_RTE
	printf("rte_ring: not built in (libdpdk-dev / libdpdk.pc not found), skipped\n");
#endif
	if (g_ncpus < 4)
		printf("fewer than 4 CPUs: 2P/2C cases skipped\n");
	fflush(stdout);

	for (int r = 0; r < rounds; r++) {
		for (size_t i = 0; i < NT; i++) {
			const struct peer *p = peer_by_name(tcases[i].peer);
			if (getenv("PX_BENCH_VERBOSE"))
				fprintf(stderr, "  %s %s %dP %s\n", tcases[i].peer,
					tcases[i].mode == SPSC ? "spsc" : "mpmc", tcases[i].np,
					tcases[i].burst ? "burst" : "single");
			tcases[i].v[r] = p ? run_throughput(p, tcases[i].mode, tcases[i].np,
							    tcases[i].burst, n)
					   : -1;
			if (tcases[i].v[r] > 0) {
				char m[64];
				snprintf(m, sizeof m, "ring.%s_%dp_%s",
					 tcases[i].mode == SPSC ? "spsc" : "mpmc", tcases[i].np,
					 tcases[i].burst ? "burst" : "single");
				px_bench_result(m, tcases[i].peer, 1000.0 / tcases[i].v[r], "M/s");
			}
		}
		for (size_t i = 0; i < NPC; i++) {
			const struct peer *p = peer_by_name(pcases[i].peer);
			if (getenv("PX_BENCH_VERBOSE"))
				fprintf(stderr, "  ping-pong %s %d\n", pcases[i].peer, pcases[i].how);
			double o[2] = {-1, -1};
			uint64_t it = pcases[i].how == PP_FUTEX || (p && p->blocking)
					      ? pings / 4 : pings;
			if (!p || !run_pingpong(p, pcases[i].how, it, o))
				o[0] = o[1] = -1;
			pcases[i].p50[r] = o[0];
			pcases[i].p99[r] = o[1];
			if (o[0] > 0) {
				char m[64];
				const char *how = pcases[i].how == PP_FUTEX ? "futex"
						  : p->blocking		  ? "kernel"
									  : "spin";
				snprintf(m, sizeof m, "ring.pingpong_%s_p50", how);
				px_bench_result(m, pcases[i].peer, o[0] / 1e3, "us");
				snprintf(m, sizeof m, "ring.pingpong_%s_p99", how);
				px_bench_result(m, pcases[i].peer, o[1] / 1e3, "us");
			}
		}
		double so[SP_PEERS][PX_BENCH_NGAPS][2];
		if (spor && g_ncpus < 2) {
			if (r == 0)
				printf("sporadic: skipped (fewer than 2 CPUs to pin to)\n");
		} else if (spor && !run_sporadic(spor, so)) {
			fprintf(stderr, "bench_ring: sporadic case failed\n");
			return 1;
		} else if (spor) {
			for (int g = 0; g < PX_BENCH_NGAPS; g++)
				for (int k = 0; k < SP_PEERS; k++) {
					char m[64];
					sp50[k][g][sp_runs] = so[k][g][0];
					sp99[k][g][sp_runs] = so[k][g][1];
					snprintf(m, sizeof m, "ring.idle_wake_%dus_p50",
						 px_bench_gap_us(g));
					px_bench_result(m, sp_name[k], so[k][g][0] / 1e3, "us");
					snprintf(m, sizeof m, "ring.idle_wake_%dus_p99",
						 px_bench_gap_us(g));
					px_bench_result(m, sp_name[k], so[k][g][1] / 1e3, "us");
				}
			sp_runs++;
		}
		fprintf(stderr, "round %d/%d done\n", r + 1, rounds);
	}

	printf("\nthroughput, ns per 8-byte message (median of %d; lower is better)\n", rounds);
	printf("  %-12s %-5s %-6s %-6s %10s   %s\n", "peer", "mode", "P/C", "ops", "median",
	       "all rounds");
	for (size_t i = 0; i < NT; i++) {
		struct tcase *t = &tcases[i];
		double m = median(t->v, rounds);
		t->v[MAXR - 1] = m;
		if (!peer_by_name(t->peer))
			continue;
		printf("  %-12s %-5s %dP/%dC  %-6s ", t->peer, t->mode == SPSC ? "SPSC" : "MPMC",
		       t->np, t->np, t->burst ? "burst" : "single");
		if (m < 0)
			printf("%10s  ", "n/a");
		else
			printf("%10.1f  ", m);
		for (int r = 0; r < rounds; r++)
			printf(" %.1f", t->v[r]);
		printf("\n");
	}
	printf("\nping-pong round trip, ns (median over rounds of each round's p50 / p99)\n");
	for (size_t i = 0; i < NPC; i++) {
		struct pcase *c = &pcases[i];
		double m50 = median(c->p50, rounds), m99 = median(c->p99, rounds);
		c->p50[MAXR - 1] = m50;
		c->p99[MAXR - 1] = m99;
		if (!peer_by_name(c->peer))
			continue;
		const struct peer *p = peer_by_name(c->peer);
		printf("  %-12s %-14s p50 %9.0f   p99 %9.0f\n", c->peer,
		       c->how == PP_FUTEX ? "futex-parked" : (p->blocking ? "kernel" : "spinning"),
		       m50, m99);
	}

	if (sp_runs) {
		printf("\nidle wake: one round trip after each gap, %llu per gap and round, ns "
		       "(median over rounds of each round's p50 / p99)\n", (unsigned long long)spor);
		for (int g = 0; g < PX_BENCH_NGAPS; g++)
			for (int k = 0; k < SP_PEERS; k++)
				printf("  %-12s gap %5d us   p50 %9.0f   p99 %9.0f\n", sp_name[k],
				       px_bench_gap_us(g), median(sp50[k][g], sp_runs),
				       median(sp99[k][g], sp_runs));
	}

	printf("\ntargets (ratios within this run)\n");
	ratio_line("SPSC single: parex throughput vs ck_ring", tmed("parex", SPSC, 1, false),
		   tmed("ck_ring", SPSC, 1, false), 1.0, true, "ns/msg");
	ratio_line("SPSC burst-32: parex vs rte_ring burst", tmed("parex", SPSC, 1, true),
		   tmed("rte_ring", SPSC, 1, true), 1.0, true, "ns/msg");
	ratio_line("MPMC 1P/1C single: parex vs best of ck/rte", tmed("parex", MPMC, 1, false),
		   best_of(tmed("ck_ring", MPMC, 1, false), tmed("rte_ring", MPMC, 1, false)),
		   1.0, true, "ns/msg");
	ratio_line("spinning ping-pong p50: parex vs ck_ring", pmed("parex", PP_SPIN),
		   pmed("ck_ring", PP_SPIN), 2.0, false, "ns");
	ratio_line("(info) futex ping-pong p50: parex / pipe round trip",
		   pmed("parex", PP_FUTEX), pmed("pipe", PP_SPIN), 0, false, "ns");
	ratio_line("(info) futex ping-pong p99: parex / pipe round trip",
		   pmed99("parex", PP_FUTEX), pmed99("pipe", PP_SPIN), 0, false, "ns");
	ratio_line("(info) SPSC single: parex speed-up over a pipe",
		   tmed("parex", SPSC, 1, false), tmed("pipe", SPSC, 1, false), 0, true, "ns/msg");
	ratio_line("(info) MPMC 2P/2C single: parex vs best of ck/rte",
		   tmed("parex", MPMC, 2, false),
		   best_of(tmed("ck_ring", MPMC, 2, false), tmed("rte_ring", MPMC, 2, false)),
		   0, true, "ns/msg");
	ratio_line("(info) MPMC 1P/1C burst-32: parex vs rte_ring burst",
		   tmed("parex", MPMC, 1, true), tmed("rte_ring", MPMC, 1, true), 0, true, "ns/msg");
	for (int g = 0; sp_runs && g < PX_BENCH_NGAPS; g++) {
		char what[96];
		snprintf(what, sizeof what, "idle wake %d us p50: parex / pipe round trip",
			 px_bench_gap_us(g));
		ratio_line(what, median(sp50[SP_PAREX][g], sp_runs),
			   median(sp50[SP_PIPE][g], sp_runs), 1.0, false, "ns");
		snprintf(what, sizeof what, "idle wake %d us p99: parex / pipe round trip",
			 px_bench_gap_us(g));
		ratio_line(what, median(sp99[SP_PAREX][g], sp_runs),
			   median(sp99[SP_PIPE][g], sp_runs), 1.0, false, "ns");
	}
	for (int g = 0; sp_runs && g < PX_BENCH_NGAPS; g++) {
		char what[96];
		snprintf(what, sizeof what, "(info) idle wake %d us p50: parked / pipe",
			 px_bench_gap_us(g));
		ratio_line(what, median(sp50[SP_PARKED][g], sp_runs),
			   median(sp50[SP_PIPE][g], sp_runs), 0, false, "ns");
		snprintf(what, sizeof what, "(info) idle wake %d us p99: parked / pipe",
			 px_bench_gap_us(g));
		ratio_line(what, median(sp99[SP_PARKED][g], sp_runs),
			   median(sp99[SP_PIPE][g], sp_runs), 0, false, "ns");
	}
	return 0;
}
