/*
 * demos/demo_cpu.c - which backend suits CPU-bound work? Measured here.
 *
 * Run:   ./build/demos/demo_cpu                  (about 10-20 s on 2 CPUs)
 *        ./build/demos/demo_cpu --seconds 1 --csv cpu.csv --plot cpu.png
 *        PAREX_EXECUTOR=process ./build/demos/demo_cpu   (one backend, by config)
 *        ./build/demos/demo_cpu --backend thread:gil=1 --workers 2
 *
 * The seed's exercise 4 ("CPU vs I/O"), CPU half: a CPU-bound kernel (a
 * splitmix64 hash chain summed over a range of integers: the sum is checked,
 * so the compiler cannot drop the work) is split into tasks and run
 *   - inline (the sequential baseline, in the calling thread),
 *   - on the thread pool,
 *   - on the process pool,
 *   - on the thread pool with CPython's GIL emulated (thread:gil=1),
 * for workers 1..CPUs and twice the CPUs, and at two task granularities: a
 * few large tasks and many tiny ones. It reports wall time, speedup over
 * sequential, efficiency, CPU time, peak RSS of the process tree and the CPU
 * each task costs beyond its work, then a verdict computed from those
 * numbers. In Python the rule is "processes for CPU work" because of the
 * GIL; this demo shows what the rule becomes in C.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parex/executor.h>

#include "common.h"

static const char about[] =
	"demo_cpu: run a CPU-bound kernel inline, on the thread pool, on the process\n"
	"pool and on the thread pool with GIL emulation; sweep workers and task size;\n"
	"print a table and a verdict computed from the measurements.\n"
	"Usage: demo_cpu [options]\n";

/* The kernel: a chain of splitmix64 finalisers per element, summed. */
static inline uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t kernel(uint64_t lo, uint64_t hi, uint32_t rounds)
{
	uint64_t s = 0;
	for (uint64_t i = lo; i < hi; i++) {
		uint64_t x = i;
		for (uint32_t r = 0; r < rounds; r++)
			x = mix(x);
		s += x;
	}
	return s;
}

typedef struct cpu_arg {
	uint64_t lo, hi;
	uint32_t rounds;
} cpu_arg;

/* A task's result: its part of the sum and the worker that ran it. */
typedef struct cpu_res {
	uint64_t sum;
	int64_t worker;
} cpu_res;

static int cpu_task(px_task *t, const void *arg, size_t len)
{
	cpu_arg a;
	if (len != sizeof(a))
		return px_task_fail(t, -EINVAL, "bad argument size %zu", len);
	memcpy(&a, arg, sizeof(a));
	cpu_res r = { kernel(a.lo, a.hi, a.rounds), px_task_worker_id(t) };
	return px_task_return(t, &r, sizeof(r));
}

#define ROUNDS 8

/* One measured run. */
typedef struct run {
	const char *label;
	int workers;
	int tasks;
	int skipped; /* PX_ENOBACKEND */
	double start_ms;
	demo_usage u;
	uint64_t sum;
	double balance; /* most tasks on one worker / fair share (1: even) */
} run;

static int64_t opt_tiny = 20000;
static double opt_seconds = 0.4;
static int64_t opt_repeat = 1;

/* Runs ntasks tasks covering [0, elems) on the executor spec opens. Returns
 * 0, 1 when the backend is not built in, or exits on other errors. */
static int run_once(const char *spec, const char *label, int workers,
		    int ntasks, uint64_t elems, const char *prog, run *out)
{
	memset(out, 0, sizeof(*out));
	out->label = label;
	out->workers = workers;
	out->tasks = ntasks;
	px_future **fs = calloc((size_t)ntasks, sizeof(*fs));
	if (!fs) {
		demo_err("out of memory");
		exit(1);
	}
	char err[512] = "";
	px_executor *ex;
	demo_usage_begin(&out->u);
	int r = px_executor_open(&ex, spec, err, sizeof(err));
	if (r == PX_ENOBACKEND) {
		free(fs);
		out->skipped = 1;
		return 1;
	}
	if (r) {
		demo_progress_clear();
		demo_err("cannot open executor '%s': %s", spec ? spec : "(config)",
			 *err ? err : px_strerror(r));
		exit(1);
	}
	double t0 = demo_now();
	out->start_ms = (t0 - out->u.t0) * 1e3;
	char plabel[160];
	snprintf(plabel, sizeof(plabel), "%s %s, %d workers, %d tasks", prog,
		 label, workers, ntasks);
	for (int i = 0; i < ntasks; i++) {
		cpu_arg a = {
			.lo = elems * (uint64_t)i / (uint64_t)ntasks,
			.hi = elems * (uint64_t)(i + 1) / (uint64_t)ntasks,
			.rounds = ROUNDS,
		};
		r = px_executor_submit(ex, cpu_task, &a, sizeof(a), NULL, &fs[i]);
		if (r) {
			demo_progress_clear();
			demo_err("submit on %s: %s", label, px_strerror(r));
			exit(1);
		}
		if ((i & 255) == 0)
			demo_progress(plabel, 0, (size_t)ntasks);
	}
	uint64_t sum = 0;
	int *per = calloc((size_t)workers + 1, sizeof(int));
	for (int i = 0; i < ntasks; i++) {
		size_t rl = 0;
		const cpu_res *res = NULL;
		r = px_future_wait(fs[i], PX_FOREVER);
		if (!r)
			r = px_future_error(fs[i]);
		if (!r && (!(res = px_future_result(fs[i], &rl)) || rl != sizeof(*res)))
			r = -EMSGSIZE;
		if (r) {
			demo_progress_clear();
			demo_err("task %d on %s failed: %s", i, label,
				 px_future_message(fs[i]) ? px_future_message(fs[i])
							  : px_strerror(r));
			exit(1);
		}
		sum += res->sum;
		if (per && res->worker >= 0 && res->worker < workers)
			per[res->worker]++;
		px_future_release(fs[i]);
		if ((i & 255) == 0)
			demo_progress(plabel, (size_t)i + 1, (size_t)ntasks);
	}
	out->u.wall = demo_now() - t0;
	demo_usage_sample(&out->u, NULL, 0);
	px_executor_destroy(ex);
	demo_usage_end_cpu(&out->u);
	out->sum = sum;
	int most = 0;
	for (int w = 0; per && w < workers; w++)
		most = per[w] > most ? per[w] : most;
	int fair = (ntasks + workers - 1) / workers;
	out->balance = per ? (double)most / fair : NAN;
	free(per);
	free(fs);
	return 0;
}

/* Best (least wall time) of opt_repeat runs. */
static int run_best(const char *spec, const char *label, int workers,
		    int ntasks, uint64_t elems, const char *prog, run *out)
{
	for (int k = 0; k < opt_repeat; k++) {
		run r;
		if (run_once(spec, label, workers, ntasks, elems, prog, &r))
			return (*out = r), 1;
		if (k == 0 || r.u.wall < out->u.wall)
			*out = r;
	}
	return 0;
}

/* Elements the kernel hashes per second on this machine (one thread). */
static double calibrate(void)
{
	uint64_t n = 1000;
	for (;;) {
		double t0 = demo_now();
		volatile uint64_t s = kernel(1, 1 + n, ROUNDS);
		(void)s;
		double dt = demo_now() - t0;
		if (dt > 0.02)
			return (double)n / dt;
		n *= 4;
	}
}

static const demo_col cols[] = {
	{ "backend", 's', 0 },    { "workers", 'i', 0 },
	{ "tasks", 'i', 0 },      { "task_us", 'f', 1 },
	{ "wall_s", 'f', 3 },     { "speedup", 'f', 2 },
	{ "efficiency", 'f', 2 }, { "cpu_s", 'f', 3 },
	{ "ovh_us", 'f', 2 },     { "peak_rss_mb", 'f', 1 },
	{ "procs", 'i', 0 },      { "threads", 'i', 0 },
	{ "start_ms", 'f', 1 },    { "balance", 'f', 2 },
};
#define NCOLS ((int)(sizeof(cols) / sizeof(cols[0])))

/* Index of the row for (label, workers, tasks), or -1. */
static int find(const demo_table *t, const char *label, int workers, int tasks)
{
	for (int r = 0; r < demo_table_rows(t); r++)
		if (!strcmp(demo_table_str(t, r, "backend"), label) &&
		    demo_table_num(t, r, "workers") == workers &&
		    demo_table_num(t, r, "tasks") == tasks)
			return r;
	return -1;
}

static double num(const demo_table *t, int row, const char *col)
{
	return row < 0 ? NAN : demo_table_num(t, row, col);
}

/* Words for a speedup sp with `usable` CPUs' worth of workers. */
static const char *how_scaled(double sp, int usable)
{
	if (usable <= 1)
		return "had one CPU to use";
	return sp >= 0.75 * usable ? "scaled" : sp >= 1.2 ? "scaled partly"
							  : "did not scale";
}

int main(int argc, char **argv)
{
	const demo_option extra[] = {
		{ "seconds", "S", "sequential run time to aim for (default 0.4)",
		  DEMO_OPT_DOUBLE, &opt_seconds, 0.001, 60 },
		{ "tiny", "N", "tasks at the fine granularity (default 20000)",
		  DEMO_OPT_INT, &opt_tiny, 1, 1000000 },
		{ "repeat", "R", "runs per point, keeping the fastest (default 1)",
		  DEMO_OPT_INT, &opt_repeat, 1, 100 },
	};
	demo_opts o;
	int pr = demo_parse(argc, argv, about, extra, 3, &o);
	if (pr)
		return pr > 0 ? 0 : 2;
	demo_envcfg env;
	if (demo_envcfg_get(&env))
		return 2;

	const char *defaults[] = { "thread", "process", "thread:gil=1" };
	const char *entries[8];
	int nent = demo_backend_list(&o, &env, defaults, 3, entries);
	int cpus = demo_cpus();

	/* The workers sweep: 1, 2, 4, ... up to the CPUs, the CPUs, 2x. */
	int sweep[32], nsw = 0;
	if (o.workers) {
		sweep[nsw++] = o.workers;
	} else if (nent == 1 && !entries[0] && env.workers) {
		sweep[nsw++] = env.workers; /* the configuration sets it */
	} else {
		for (int w = 1; w < cpus && nsw < 28; w *= 2)
			sweep[nsw++] = w;
		sweep[nsw++] = cpus;
		sweep[nsw++] = 2 * cpus;
	}
	int maxw = sweep[nsw - 1];
	for (int i = 0; i < nsw; i++)
		if (sweep[i] > maxw)
			maxw = sweep[i];

	double rate = calibrate();
	uint64_t elems = (uint64_t)(rate * opt_seconds);
	int coarse = 2 * maxw;
	int fine = (int)opt_tiny;
	if ((uint64_t)fine > elems)
		elems = (uint64_t)fine; /* at least one element per task */
	if ((uint64_t)coarse > elems)
		elems = (uint64_t)coarse;
	int grans[2] = { coarse, fine };
	int ngran = fine == coarse ? 1 : 2;

	printf("demo_cpu: %d CPUs online; kernel: %d splitmix64 rounds per element,\n"
	       "%llu elements (about %.2f s sequentially), split into %d large or %d tiny tasks\n",
	       cpus, ROUNDS, (unsigned long long)elems, (double)elems / rate,
	       coarse, fine);
	if (nent == 1 && !entries[0])
		printf("executor from %s: %s%s (--backend all compares every backend)\n",
		       env.source, env.backend, env.gil ? ":gil=1" : "");
	printf("\n");
	fflush(stdout);

	demo_table *t = demo_table_new(cols, NCOLS);
	bool skipped[8] = { false };
	char labels[8][96];
	for (int b = 0; b < nent; b++)
		demo_label(labels[b], sizeof(labels[b]), entries[b], &env);
	uint64_t expect = 0;
	bool have_expect = false;
	double seq_wall[2] = { 0, 0 }, seq_cpu[2] = { 0, 0 };

	for (int g = 0; g < ngran; g++) {
		int nt = grans[g];
		run base = { 0 };
		run_best("inline:gil=0", "inline", 1, nt, elems, demo_prog, &base);
		if (!have_expect) {
			expect = base.sum;
			have_expect = true;
		} else if (base.sum != expect) {
			demo_err("inline run gave a different sum: %llx vs %llx",
				 (unsigned long long)base.sum,
				 (unsigned long long)expect);
			return 1;
		}
		seq_wall[g] = base.u.wall;
		seq_cpu[g] = base.u.cpu;
		demo_table_add(t, "inline", (int64_t)1, (int64_t)nt,
			       base.u.wall / nt * 1e6, base.u.wall, 1.0, 1.0,
			       base.u.cpu, 0.0, base.u.peak_rss_mb,
			       (int64_t)base.u.procs, (int64_t)base.u.threads,
			       base.start_ms, base.balance);
		for (int i = 0; i < nsw; i++) {
			for (int b = 0; b < nent; b++) {
				if (skipped[b])
					continue;
				char sbuf[256];
				const char *spec = demo_spec(sbuf, sizeof(sbuf),
							     entries[b], sweep[i]);
				run r = { 0 };
				if (run_best(spec, labels[b], sweep[i], nt, elems,
					     demo_prog, &r)) {
					skipped[b] = true;
					demo_note("%s: the process backend is not built into this parex (PX_ENOBACKEND); its rows are skipped",
						  labels[b]);
					continue;
				}
				if (r.sum != expect) {
					demo_progress_clear();
					demo_err("%s with %d workers computed a wrong sum",
						 labels[b], sweep[i]);
					return 1;
				}
				double sp = seq_wall[g] / r.u.wall;
				int usable = sweep[i] < cpus ? sweep[i] : cpus;
				demo_table_add(t, labels[b], (int64_t)sweep[i],
					       (int64_t)nt, seq_wall[g] / nt * 1e6,
					       r.u.wall, sp, sp / usable, r.u.cpu,
					       (r.u.cpu - seq_cpu[g]) / nt * 1e6,
					       r.u.peak_rss_mb, (int64_t)r.u.procs,
					       (int64_t)r.u.threads, r.start_ms,
					       r.balance);
			}
		}
	}
	demo_progress_clear();
	demo_table_print(t);
	printf("\ntask_us: work per task (sequential time / tasks); speedup: sequential wall /\n"
	       "wall at the same granularity; efficiency: speedup / min(workers, CPUs);\n"
	       "cpu_s: user+system CPU of the process and its children, pool start and stop\n"
	       "included; ovh_us: CPU per task beyond the sequential run's; peak_rss_mb: sum of\n"
	       "peak RSS over the process tree (shared pages count in every process);\n"
	       "balance: most tasks run by one worker / ceil(tasks / workers) (1.00: even).\n");

	/* ---- verdict: every statement below is computed from the table ---- */
	int wref = 0; /* the largest swept workers count <= CPUs */
	for (int i = 0; i < nsw; i++)
		if (sweep[i] <= cpus && sweep[i] > wref)
			wref = sweep[i];
	if (!wref)
		wref = sweep[0];
	int usable = wref < cpus ? wref : cpus;
	const char *thr = NULL, *proc = NULL, *gil = NULL;
	for (int b = 0; b < nent; b++) {
		if (skipped[b])
			continue;
		const char *l = labels[b];
		if (!strncmp(l, "process", 7))
			proc = proc ? proc : l;
		else if (!strncmp(l, "thread", 6) &&
			 (strstr(l, "gil=1") != NULL))
			gil = gil ? gil : l;
		else if (!strncmp(l, "thread", 6))
			thr = thr ? thr : l;
	}
	/* How much of a CPU did the sequential run get? Other load shows here. */
	double share = seq_cpu[0] / seq_wall[0];
	if (share < 0.9)
		demo_note("the sequential run got %.0f%% of a CPU (CPU time %.3f s in %.3f s): other programs are using this machine, so every wall time here is inflated and speedups are noisy; compare rows of one run only",
			  share * 100, seq_cpu[0], seq_wall[0]);
	if (cpus == 1)
		demo_verdict("this machine has 1 CPU online: no backend can run CPU work in parallel here, so speedups above 1 are impossible");
	const char *scal[2] = { thr, proc };
	double sp_ref[2] = { NAN, NAN };
	for (int k = 0; k < 2; k++) {
		if (!scal[k])
			continue;
		int r = find(t, scal[k], wref, coarse);
		sp_ref[k] = num(t, r, "speedup");
		double eff = num(t, r, "efficiency");
		if (r >= 0)
			demo_verdict("%s, %d large tasks: %.2fx over sequential with %d workers on %d CPUs (efficiency %.0f%%): CPU-bound C work %s on %s",
				     scal[k], coarse, sp_ref[k], wref, cpus,
				     eff * 100, how_scaled(sp_ref[k], usable),
				     k ? "processes" : "threads");
		double bal = num(t, r, "balance");
		if (r >= 0 && usable > 1 && bal > 1.05 && eff < 0.75)
			demo_verdict("%s spread the %d large tasks unevenly: one worker ran %.0f%% more than its fair share (balance %.2f), which caps the speedup at about %.2fx",
				     scal[k], coarse, (bal - 1) * 100, bal,
				     (double)wref / bal < usable ? (double)wref / bal
								 : (double)usable);
	}
	if (thr && proc && !isnan(sp_ref[0]) && !isnan(sp_ref[1])) {
		double ratio = sp_ref[0] / sp_ref[1];
		if (fabs(ratio - 1) < 0.15)
			demo_verdict("with large tasks threads and processes are equally fast here (%.2fx vs %.2fx): without a GIL, threads need no process pool to use every CPU",
				     sp_ref[0], sp_ref[1]);
		else
			demo_verdict("with large tasks %s was %.0f%% faster than %s (%.2fx vs %.2fx)",
				     ratio > 1 ? "the thread pool" : "the process pool",
				     (ratio > 1 ? ratio - 1 : 1 / ratio - 1) * 100,
				     ratio > 1 ? "the process pool" : "the thread pool",
				     sp_ref[0], sp_ref[1]);
	}
	if (ngran == 2) {
		const char *who[2] = { thr, proc };
		double ovh[2] = { NAN, NAN }, eff[2] = { NAN, NAN };
		for (int k = 0; k < 2; k++) {
			if (!who[k])
				continue;
			int r = find(t, who[k], wref, fine);
			ovh[k] = num(t, r, "ovh_us");
			eff[k] = num(t, r, "efficiency");
		}
		double task_us = seq_wall[1] / fine * 1e6;
		if (!isnan(ovh[0]) && !isnan(ovh[1]))
			demo_verdict("with %d tiny tasks of %.1f us each, a task cost %.2f us of extra CPU on the thread pool and %.2f us on the process pool; efficiency %.0f%% vs %.0f%% (%s)",
				     fine, task_us, ovh[0], ovh[1], eff[0] * 100,
				     eff[1] * 100,
				     fabs(ovh[1] - ovh[0]) < 0.5
					     ? "the difference is within this machine's noise"
				     : ovh[1] > ovh[0] ? "processes pay more per task: each one crosses shared memory and wakes another process"
						       : "the thread pool paid more on this run");
		else
			for (int k = 0; k < 2; k++)
				if (!isnan(ovh[k]))
					demo_verdict("%s with %d tiny tasks of %.1f us: %.2f us of extra CPU per task, efficiency %.0f%%",
						     who[k], fine, task_us, ovh[k],
						     eff[k] * 100);
	}
	if (thr && proc) {
		int rt = find(t, thr, wref, coarse), rp = find(t, proc, wref, coarse);
		if (rt >= 0 && rp >= 0)
			demo_verdict("memory: the process pool's tree peaked at %.1f MiB of RSS over %.0f processes, the thread pool at %.1f MiB in 1 process; the process pool took %.1f ms to start, the thread pool %.1f ms",
				     num(t, rp, "peak_rss_mb"), num(t, rp, "procs"),
				     num(t, rt, "peak_rss_mb"), num(t, rp, "start_ms"),
				     num(t, rt, "start_ms"));
	}
	if (gil && wref > 1) {
		int r = find(t, gil, wref, coarse);
		double sg = num(t, r, "speedup");
		/* The process pool's best point with 2+ workers, any granularity. */
		int best = -1;
		for (int i = 0; proc && i < demo_table_rows(t); i++)
			if (!strcmp(demo_table_str(t, i, "backend"), proc) &&
			    demo_table_num(t, i, "workers") >= 2 &&
			    (best < 0 || demo_table_num(t, i, "speedup") >
						 demo_table_num(t, best, "speedup")))
				best = i;
		double sp = num(t, best, "speedup");
		if (r >= 0 && sg < 1.3)
			demo_verdict("under GIL emulation (%s) threads stopped scaling: %.2fx with %d workers",
				     gil, sg, wref);
		else if (r >= 0)
			demo_verdict("under GIL emulation (%s) threads still reached %.2fx with %d workers: unexpected, the emulated GIL should serialise computing tasks",
				     gil, sg, wref);
		if (r >= 0 && sg < 1.3 && best >= 0 && sp >= 1.3)
			demo_verdict("while the process pool reached %.2fx (%.0f workers, %.0f tasks): every process has its own interpreter, hence its own GIL; that is why Python needs multiprocessing for CPU-bound work, and why C, with no GIL, does not",
				     sp, num(t, best, "workers"), num(t, best, "tasks"));
		else if (r >= 0 && best >= 0)
			demo_verdict("the process pool did not scale either on this run (best %.2fx), so this run cannot show processes escaping the GIL",
				     sp);
	}
	if (thr && 2 * cpus <= maxw && wref == cpus) {
		int r1 = find(t, thr, cpus, coarse), r2 = find(t, thr, 2 * cpus, coarse);
		double a = num(t, r1, "speedup"), b2 = num(t, r2, "speedup");
		if (r1 >= 0 && r2 >= 0)
			demo_verdict("more workers than CPUs bought %s: %.2fx with %d workers vs %.2fx with %d",
				     b2 > a * 1.1 ? "more speed" : "nothing",
				     b2, 2 * cpus, a, cpus);
	}
	if (!thr && !proc && !gil) {
		/* Only a configured or odd backend: report its best point. */
		for (int b = 0; b < nent; b++) {
			if (skipped[b])
				continue;
			int r = find(t, labels[b], wref, coarse);
			if (r >= 0)
				demo_verdict("%s: %.2fx over sequential with %d workers, %d large tasks (efficiency %.0f%%): %s",
					     labels[b], num(t, r, "speedup"), wref,
					     coarse, num(t, r, "efficiency") * 100,
					     how_scaled(num(t, r, "speedup"), usable));
		}
	}
	demo_print_verdict();

	int rc = demo_write_outputs(&o, t) ? 1 : 0;
	if (o.plot) {
		/* One data block per backend and granularity: workers speedup. */
		size_t cap = 1 << 16, n = 0;
		char *data = calloc(cap, 1), script[8192];
		int blocks = 0;
		int len = snprintf(script, sizeof(script),
				   "set terminal pngcairo noenhanced size 900,600\n"
				   "set output '$OUT'\n"
				   "set title 'demo_cpu: speedup over sequential (%d CPUs)'\n"
				   "set xlabel 'workers'\nset ylabel 'speedup'\n"
				   "set key left top\nset grid\nset yrange [0:%d]\nset xtics 1\n"
				   "plot x < %d ? x : %d title 'ideal' dt 2 lc 'gray'",
				   cpus, cpus + 1, cpus, cpus);
		for (int b = 0; b < nent && data; b++) {
			for (int g = 0; g < ngran; g++) {
				int any = 0;
				for (int i = 0; i < nsw; i++) {
					int r = find(t, labels[b], sweep[i], grans[g]);
					if (r < 0 || n + 64 > cap)
						continue;
					n += (size_t)snprintf(data + n, cap - n, "%d %.4f\n",
							      sweep[i], num(t, r, "speedup"));
					any = 1;
				}
				if (!any)
					continue;
				n += (size_t)snprintf(data + n, cap - n, "\n\n");
				len += snprintf(script + len, sizeof(script) - (size_t)len,
						", '$DATA' index %d using 1:2 with linespoints title '%s, %d tasks'",
						blocks++, labels[b], grans[g]);
			}
		}
		snprintf(script + len, sizeof(script) - (size_t)len, "\n");
		if (data && blocks && demo_plot(o.plot, script, data) == 0)
			printf("\npicture: %s\n", o.plot);
		free(data);
	}
	demo_table_free(t);
	return rc;
}
