/*
 * demos/demo_pipeline.c - the seed's exercise 3: producers -> queue ->
 * consumers, shut down cleanly.
 *
 * Run:   ./build/demos/demo_pipeline                   (2 producers, 2 consumers)
 *        ./build/demos/demo_pipeline --producers 4 --consumers 1 --items 1000000
 *        ./build/demos/demo_pipeline --size 1000 --backend process --csv pipe.csv
 *
 * Producers put numbered items on a px_queue; consumers take them until the
 * queue says PX_EEOF. Python's version puts a sentinel (None) per consumer;
 * here the sentinel is built in: once every producer is done the main
 * program calls px_queue_close(), consumers drain what is still queued and
 * then get PX_EEOF. It runs once with threads (the queue in ordinary memory)
 * and once with processes (the queue in an anonymous px_shm segment,
 * fork()), reports items per second, and checks that every item arrived
 * exactly once and in order per producer.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <parex/queue.h>
#include <parex/shm.h>

#include "common.h"

static const char about[] =
	"demo_pipeline: producers put numbered items on a px_queue, consumers take\n"
	"them until the queue is closed and drained (PX_EEOF); with threads and with\n"
	"processes. Reports items/s and checks every item arrived exactly once.\n"
	"Usage: demo_pipeline [options]   (--backend thread|process|all;\n"
	"       --workers N sets producers and consumers to N)\n";

static int64_t opt_prod = 2, opt_cons = 2, opt_items = 200000, opt_size = 16,
	       opt_cap = 1024;

/* The head of every item; the rest of its opt_size bytes is filler. */
typedef struct item {
	uint32_t producer;
	uint32_t check; /* producer ^ low bits of seq: catches torn items */
	uint64_t seq;
} item;

/* Shared between the workers (threads or processes) and the main program. */
typedef struct pipe_shared {
	_Atomic uint64_t consumed;      /* items taken */
	_Atomic uint64_t bad;           /* malformed items */
	_Atomic uint64_t out_of_order;  /* a producer's items seen out of order */
	_Atomic uint32_t producers_done;
	_Atomic int32_t error;          /* first unexpected error code */
	_Atomic uint32_t left_at_close; /* queued when the last producer closed */
	/* followed by: seen[producers * items] counters, then the queue */
} pipe_shared;

static pipe_shared *sh;
static _Atomic uint8_t *seen; /* times each item arrived */
static px_queue *q;

static void set_error(int err)
{
	int32_t zero = 0;
	/* Relaxed: the main program reads it after joining or reaping. */
	atomic_compare_exchange_strong_explicit(&sh->error, &zero, err,
						memory_order_relaxed,
						memory_order_relaxed);
}

static int produce(uint32_t id)
{
	unsigned char *buf = calloc(1, (size_t)opt_size);
	if (!buf)
		return -ENOMEM;
	int r = 0;
	for (int64_t s = 0; s < opt_items; s++) {
		item it = { id, id ^ (uint32_t)s, (uint64_t)s };
		memcpy(buf, &it, sizeof(it));
		r = px_queue_put(q, buf, (size_t)opt_size, PX_FOREVER);
		if (r)
			break;
	}
	free(buf);
	/* The last producer out closes the queue at once: consumers then drain
	 * what is still queued and get PX_EEOF. Acq_rel: the closer sees every
	 * other producer's puts finished before their increments. */
	if (atomic_fetch_add_explicit(&sh->producers_done, 1, memory_order_acq_rel) ==
	    (uint32_t)opt_prod - 1) {
		atomic_store_explicit(&sh->left_at_close, px_queue_count(q),
				      memory_order_relaxed);
		px_queue_close(q);
	}
	return r;
}

static int consume(void)
{
	size_t cap = px_queue_max_msg(q);
	unsigned char *buf = malloc(cap);
	int64_t *last = malloc((size_t)opt_prod * sizeof(*last));
	if (!buf || !last) {
		free(buf);
		free(last);
		return -ENOMEM;
	}
	for (int64_t p = 0; p < opt_prod; p++)
		last[p] = -1;
	int r = 0;
	for (;;) {
		ssize_t n = px_queue_get(q, buf, cap, PX_FOREVER);
		if (n == PX_EEOF)
			break; /* closed and drained: the built-in sentinel */
		if (n < 0) {
			r = (int)n;
			break;
		}
		item it;
		memcpy(&it, buf, sizeof(it));
		if (n != opt_size || it.producer >= (uint64_t)opt_prod ||
		    it.seq >= (uint64_t)opt_items ||
		    it.check != (it.producer ^ (uint32_t)it.seq)) {
			atomic_fetch_add_explicit(&sh->bad, 1, memory_order_relaxed);
			continue;
		}
		/* FIFO per producer holds for each consumer's own view. */
		if ((int64_t)it.seq <= last[it.producer])
			atomic_fetch_add_explicit(&sh->out_of_order, 1,
						  memory_order_relaxed);
		last[it.producer] = (int64_t)it.seq;
		atomic_fetch_add_explicit(&seen[it.producer * (uint64_t)opt_items + it.seq],
					  1, memory_order_relaxed);
		atomic_fetch_add_explicit(&sh->consumed, 1, memory_order_relaxed);
	}
	free(buf);
	free(last);
	return r;
}

static void *thread_main(void *arg)
{
	intptr_t role = (intptr_t)arg; /* >= 0: producer id; -1: consumer */
	int r = role >= 0 ? produce((uint32_t)role) : consume();
	if (r)
		set_error(r);
	return NULL;
}

typedef struct outcome {
	double wall;
	double cpu;
	uint64_t consumed, missing, dup, bad, order;
	uint32_t left_at_close; /* queued when closed, drained after */
	int error;
} outcome;

/* Lays out the shared block in mem: counters, seen[], then the queue. */
static size_t layout_size(size_t *qoff, size_t *qsize)
{
	px_queue_config qc = { .capacity = (uint32_t)opt_cap,
			       .max_msg = (uint32_t)opt_size };
	ssize_t qs = px_queue_memsize(&qc);
	if (qs < 0)
		return 0;
	size_t seen_bytes = (size_t)opt_prod * (size_t)opt_items;
	*qoff = (sizeof(pipe_shared) + seen_bytes + 127) & ~(size_t)127;
	*qsize = (size_t)qs;
	return *qoff + (size_t)qs;
}

static int layout_init(void *mem, size_t qoff, size_t qsize)
{
	sh = mem;
	seen = (_Atomic uint8_t *)((char *)mem + sizeof(pipe_shared));
	px_queue_config qc = { .capacity = (uint32_t)opt_cap,
			       .max_msg = (uint32_t)opt_size };
	int r = px_queue_init((char *)mem + qoff, qsize, &qc);
	if (!r)
		r = px_queue_attach(&q, (char *)mem + qoff, qsize);
	return r;
}

/* Waits for the producers while drawing progress; makes sure the queue is
 * closed. */
static void close_when_produced(outcome *out, const char *label, pid_t *prods,
				int nprod)
{
	uint64_t total = (uint64_t)opt_prod * (uint64_t)opt_items;
	int reaped = 0;
	while (atomic_load_explicit(&sh->producers_done, memory_order_acquire) <
	       (uint32_t)opt_prod) {
		demo_progress(label, atomic_load_explicit(&sh->consumed,
							  memory_order_relaxed),
			      total);
		usleep(20000);
		/* A producer process that died never counts itself done:
		 * notice it here rather than wait forever. */
		for (int i = 0; prods && i < nprod; i++) {
			int st;
			if (prods[i] > 0 && waitpid(prods[i], &st, WNOHANG) == prods[i]) {
				prods[i] = -1;
				reaped++;
				if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
					set_error(-ECHILD);
			}
		}
		if (atomic_load_explicit(&sh->error, memory_order_relaxed) ||
		    (prods && reaped == nprod))
			break;
	}
	/* Normally the last producer has closed it; after a failure this
	 * close (idempotent) lets the consumers finish. */
	px_queue_close(q);
	out->left_at_close = atomic_load_explicit(&sh->left_at_close,
						  memory_order_relaxed);
}

static void check(outcome *o)
{
	uint64_t total = (uint64_t)opt_prod * (uint64_t)opt_items;
	for (uint64_t i = 0; i < total; i++) {
		uint8_t c = atomic_load_explicit(&seen[i], memory_order_relaxed);
		if (c == 0)
			o->missing++;
		else if (c > 1)
			o->dup += c - 1u;
	}
	o->consumed = atomic_load_explicit(&sh->consumed, memory_order_relaxed);
	o->bad = atomic_load_explicit(&sh->bad, memory_order_relaxed);
	o->order = atomic_load_explicit(&sh->out_of_order, memory_order_relaxed);
	o->error = atomic_load_explicit(&sh->error, memory_order_relaxed);
}

static int run_threads(outcome *o)
{
	size_t qoff, qsize, size = layout_size(&qoff, &qsize);
	if (!size)
		return -EINVAL;
	void *mem = aligned_alloc(128, (size + 127) & ~(size_t)127);
	if (!mem)
		return -ENOMEM;
	memset(mem, 0, size);
	int r = layout_init(mem, qoff, qsize);
	if (r) {
		free(mem);
		return r;
	}
	int n = (int)(opt_prod + opt_cons);
	pthread_t *th = calloc((size_t)n, sizeof(*th));
	if (!th) {
		free(mem);
		return -ENOMEM;
	}
	demo_usage u;
	demo_usage_begin(&u);
	int started = 0;
	for (; started < n; started++) {
		intptr_t role = started < opt_prod ? started : -1;
		if ((r = pthread_create(&th[started], NULL, thread_main, (void *)role))) {
			set_error(-r);
			break;
		}
	}
	close_when_produced(o, "threads", NULL, 0);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	demo_usage_stop_wall(&u);
	demo_usage_end_cpu(&u);
	o->wall = u.wall;
	o->cpu = u.cpu;
	check(o);
	free(th);
	free(mem);
	return 0;
}

static int run_procs(outcome *o)
{
	size_t qoff, qsize, size = layout_size(&qoff, &qsize);
	if (!size)
		return -EINVAL;
	px_shm *seg;
	int r = px_shm_create_anon(&seg, size);
	if (r)
		return r;
	if ((r = layout_init(px_shm_data(seg), qoff, qsize))) {
		px_shm_close(seg);
		return r;
	}
	int n = (int)(opt_prod + opt_cons);
	pid_t *pids = calloc((size_t)n, sizeof(*pids));
	if (!pids) {
		px_shm_close(seg);
		return -ENOMEM;
	}
	demo_usage u;
	demo_usage_begin(&u);
	fflush(NULL);
	int started = 0;
	for (; started < n; started++) {
		pid_t p = fork();
		if (p == 0) {
			int rr = started < opt_prod ? produce((uint32_t)started)
						    : consume();
			if (rr)
				set_error(rr);
			_exit(rr ? 1 : 0); /* the child reports through its status */
		}
		if (p < 0) {
			set_error(-errno);
			break;
		}
		pids[started] = p;
	}
	int nprod = started < opt_prod ? started : (int)opt_prod;
	close_when_produced(o, "processes", pids, nprod);
	/* Consumers end at PX_EEOF; if one is stuck (it should not be), do not
	 * hang: give them 30 s after the close, then kill. */
	double deadline = demo_now() + 30;
	for (int i = 0; i < started; i++) {
		if (pids[i] <= 0)
			continue;
		int st;
		pid_t w;
		while ((w = waitpid(pids[i], &st, WNOHANG)) == 0 && demo_now() < deadline)
			usleep(5000);
		if (w == 0) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], &st, 0);
			set_error(-ETIMEDOUT);
		} else if (w > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			set_error(-ECHILD);
		}
	}
	demo_usage_stop_wall(&u);
	demo_usage_end_cpu(&u);
	o->wall = u.wall;
	o->cpu = u.cpu;
	check(o);
	free(pids);
	px_shm_close(seg);
	return 0;
}

static const demo_col cols[] = {
	{ "workers_kind", 's', 0 }, { "producers", 'i', 0 }, { "consumers", 'i', 0 },
	{ "items", 'i', 0 },        { "item_bytes", 'i', 0 }, { "wall_s", 'f', 3 },
	{ "items_per_s", 'f', 0 },  { "mb_per_s", 'f', 1 },   { "cpu_s", 'f', 3 },
	{ "received", 'i', 0 },     { "missing", 'i', 0 },    { "duplicates", 'i', 0 },
	{ "malformed", 'i', 0 },    { "out_of_order", 'i', 0 },
	{ "queued_at_close", 'i', 0 },
};

int main(int argc, char **argv)
{
	const demo_option extra[] = {
		{ "producers", "N", "producer threads or processes (default 2)",
		  DEMO_OPT_INT, &opt_prod, 1, 256 },
		{ "consumers", "N", "consumer threads or processes (default 2)",
		  DEMO_OPT_INT, &opt_cons, 1, 256 },
		{ "items", "N", "items per producer (default 200000)",
		  DEMO_OPT_INT, &opt_items, 1, 1e8 },
		{ "size", "BYTES", "bytes per item, 16.. (default 16; over 48 they go through the arena)",
		  DEMO_OPT_INT, &opt_size, 16, 1 << 20 },
		{ "capacity", "N", "queue capacity in items (default 1024)",
		  DEMO_OPT_INT, &opt_cap, 1, 1 << 20 },
	};
	demo_opts o;
	int pr = demo_parse(argc, argv, about, extra, 5, &o);
	if (pr)
		return pr > 0 ? 0 : 2;
	demo_envcfg env;
	if (demo_envcfg_get(&env))
		return 2;
	bool do_thr = true, do_proc = true;
	if (demo_pick_kinds(&o, &env, &do_thr, &do_proc))
		return 2;
	if (!o.nbackends && env.active) {
		if (env.workers)
			opt_prod = opt_cons = env.workers;
		printf("backend from %s: %s\n", env.source, do_thr ? "threads" : "processes");
	}
	if (o.workers) {
		if (o.workers > 256) {
			demo_err("--workers at most 256 here (producers and consumers each)");
			return 2;
		}
		opt_prod = opt_cons = o.workers;
	}
	uint64_t total = (uint64_t)opt_prod * (uint64_t)opt_items;
	printf("demo_pipeline: %lld producers x %lld items of %lld bytes -> px_queue (capacity %lld) -> %lld consumers, on %d CPUs\n\n",
	       (long long)opt_prod, (long long)opt_items, (long long)opt_size,
	       (long long)opt_cap, (long long)opt_cons, demo_cpus());
	fflush(stdout);

	/* Processes first, while this process is single-threaded (see
	 * demo_race.c: forking before any thread exists is the safe order). */
	outcome res[2];
	memset(res, 0, sizeof(res));
	for (int kind = 1; kind >= 0; kind--) {
		if ((kind && !do_proc) || (!kind && !do_thr))
			continue;
		int r = kind ? run_procs(&res[kind]) : run_threads(&res[kind]);
		if (r) {
			demo_progress_clear();
			demo_err("%s: %s", kind ? "processes" : "threads", px_strerror(r));
			return 1;
		}
	}
	demo_progress_clear();

	demo_table *t = demo_table_new(cols, (int)(sizeof(cols) / sizeof(cols[0])));
	int bad = 0;
	for (int kind = 0; kind < 2; kind++) {
		if ((kind && !do_proc) || (!kind && !do_thr))
			continue;
		outcome *x = &res[kind];
		const char *kn = kind ? "processes" : "threads";
		double ips = (double)x->consumed / x->wall;
		demo_table_add(t, kn, opt_prod, opt_cons, (int64_t)total, opt_size,
			       x->wall, ips, ips * (double)opt_size / 1e6, x->cpu,
			       (int64_t)x->consumed, (int64_t)x->missing,
			       (int64_t)x->dup, (int64_t)x->bad, (int64_t)x->order,
			       (int64_t)x->left_at_close);
		if (x->error) {
			demo_verdict("%s: a worker failed: %s", kn, px_strerror(x->error));
			bad = 1;
		}
		if (!x->missing && !x->dup && !x->bad && x->consumed == total) {
			demo_verdict("%s: every one of the %llu items arrived exactly once, intact%s, at %.0f items/s (%.1f MB/s)",
				     kn, (unsigned long long)total,
				     x->order ? "" : " and in order per producer",
				     ips, ips * (double)opt_size / 1e6);
		} else {
			demo_verdict("%s: %llu of %llu items received; %llu missing, %llu duplicated, %llu malformed: WRONG",
				     kn, (unsigned long long)x->consumed,
				     (unsigned long long)total,
				     (unsigned long long)x->missing,
				     (unsigned long long)x->dup,
				     (unsigned long long)x->bad);
			bad = 1;
		}
		if (x->order) {
			demo_verdict("%s: %llu items reached a consumer before an earlier item of the same producer: WRONG",
				     kn, (unsigned long long)x->order);
			bad = 1;
		}
		if (!x->error)
			demo_verdict("%s: shut down by close: the last producer closed the queue with %u items still in it; the consumers drained %s and stopped at PX_EEOF, no sentinel items needed",
				     kn, x->left_at_close,
				     x->left_at_close ? "them" : "nothing more");
	}
	if (do_thr && do_proc && res[0].wall > 0 && res[1].wall > 0) {
		double a = (double)res[0].consumed / res[0].wall,
		       b = (double)res[1].consumed / res[1].wall;
		demo_verdict("the same queue moved %.0f items/s between threads and %.0f between processes (%s): it keeps only offsets, so it works unchanged in shared memory",
			     a, b,
			     a > b * 1.15 ? "threads faster" :
			     b > a * 1.15 ? "processes faster" : "about the same");
	}
	demo_table_print(t);
	printf("\nqueued_at_close: items still in the queue when it was closed (then drained).\n");
	demo_print_verdict();
	int rc = demo_write_outputs(&o, t) ? 1 : bad;
	if (o.plot) {
		char data[512];
		size_t len = 0;
		for (int i = 0; i < demo_table_rows(t); i++)
			len += (size_t)snprintf(data + len, sizeof(data) - len,
						"%s %.0f\n",
						demo_table_str(t, i, "workers_kind"),
						demo_table_num(t, i, "items_per_s"));
		demo_plot_bars(o.plot, "demo_pipeline: items per second through px_queue",
			       NULL, false, data);
	}
	demo_table_free(t);
	return rc;
}
