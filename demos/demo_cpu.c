/*
 * demos/demo_cpu.c - which backend suits CPU-bound work? Measured here.
 *
 * Run:   ./build/demos/demo_cpu                  (about 20-25 s on 2 CPUs)
 *        ./build/demos/demo_cpu --budget 60 --csv cpu.csv --plot cpu.png
 *        PAREX_EXECUTOR=process ./build/demos/demo_cpu   (one backend, by config)
 *        ./build/demos/demo_cpu --backend thread:gil=1 --workers 2
 *        ./build/demos/demo_cpu --timeline cpu-timeline.png
 *
 * The seed's exercise 4 ("CPU vs I/O"), CPU half: a CPU-bound kernel (a
 * splitmix64 hash chain summed over a range of integers: the sum is checked,
 * so the compiler cannot drop the work) is split into tasks and run
 *   - inline (the sequential baseline, in the calling thread),
 *   - on the thread pool,
 *   - on the process pool,
 *   - on the thread pool with CPython's GIL emulated (thread:gil=1),
 * for workers 1..CPUs and twice the CPUs, and at two task granularities: a
 * few large tasks and many tiny ones. Every configuration runs several
 * times, in rounds that visit every configuration once (so a burst of
 * other load hits all of them alike), until the medians settle or the time
 * budget is spent. It reports median wall time, speedup over sequential with
 * its spread, the CPUs actually used (CPU time / wall time), CPU time, peak
 * RSS of the process tree and the CPU each task costs beyond its work, and
 * how much CPU other programs took meanwhile (/proc/stat). When python3 is
 * present it runs the same kernel in pure Python (cpython_cpu.py, next to
 * this program) on ThreadPoolExecutor and ProcessPoolExecutor. The verdict
 * states a conclusion only when the measurements support it beyond their
 * spread, and says "inconclusive" with the reason otherwise. In Python the
 * rule is "processes for CPU work" because of the GIL; this demo shows what
 * the rule becomes in C, and whether the emulated GIL behaves as CPython's.
 * With --timeline PNG it also runs threads, threads under the GIL and
 * processes once more with parex's task tracing on (trace=FILE) and draws
 * which worker ran which task when, one lane per worker, on one time axis:
 * under the GIL the bars never overlap.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <parex/executor.h>

#include "common.h"
#include "timeline.h"

static const char about[] =
	"demo_cpu: run a CPU-bound kernel inline, on the thread pool, on the process\n"
	"pool and on the thread pool with GIL emulation; sweep workers and task size;\n"
	"print a table and a verdict computed from repeated measurements.\n"
	"Usage: demo_cpu [options]\n";

static const char env_extra[] =
	"  PAREX_DEMO_PYTHON  Python interpreter for the CPython comparison\n"
	"                     (default: python3 on PATH; empty: skip it)\n";

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
	double total; /* wall seconds from pool start to pool gone */
	demo_usage u;
	uint64_t sum;
	double balance; /* most tasks on one worker / fair share (1: even) */
} run;

static int64_t opt_tiny = 20000;
static double opt_seconds = 0.2;
static double opt_budget = 16;
static int64_t opt_min_rounds = 3, opt_max_rounds = 30;
static const char *opt_timeline;

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
	out->total = demo_now() - out->u.t0;
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

/*
 * One short run each on threads, threads under the GIL and processes, with
 * task tracing on, drawn as one lane per worker on one time axis. Returns
 * 0 when png was written, else -1 (said on stderr).
 */
static __attribute__((noinline)) int draw_timeline(const char *png, uint64_t elems,
						  int cpus)
{
	static const char *const which[] = { "thread", "thread:gil=1", "process" };
	int workers = cpus < 2 ? 2 : cpus > 8 ? 8 : cpus;
	int ntasks = 3 * workers;
	demo_tl tls[3];
	int n = 0;
	for (int i = 0; i < 3; i++) {
		char tmp[256], base[128], spec[512];
		if (demo_tl_tmpname(tmp, sizeof(tmp)))
			break;
		demo_spec(base, sizeof(base), which[i], workers);
		snprintf(spec, sizeof(spec), "%s,trace=%s", base, tmp);
		run r;
		if (run_once(spec, which[i], workers, ntasks, elems, "timeline", &r)) {
			unlink(tmp); /* the backend is not built in */
			continue;
		}
		if (demo_tl_read(tmp, which[i], &tls[n]) == 0)
			n++;
		else
			unlink(tmp);
	}
	demo_progress_clear();
	char title[160];
	snprintf(title, sizeof(title),
		 "demo_cpu: which worker ran which task when (%d workers, %d tasks per run)",
		 workers, ntasks);
	int rc = n ? demo_tl_plot_lanes(png, title, tls, n) : -1;
	for (int i = 0; i < n; i++)
		demo_tl_free(&tls[i]);
	return rc;
}

/* Draws --timeline if asked; returns the JSON member timeline_png: the
 * picture's name (the report finds it beside the JSON), or null. */
static __attribute__((noinline)) json_t *timeline(uint64_t elems, int cpus)
{
	if (!opt_timeline || draw_timeline(opt_timeline, elems, cpus) != 0)
		return json_null();
	printf("\ntimeline: %s\n", opt_timeline);
	const char *slash = strrchr(opt_timeline, '/');
	return demo_json_str(slash ? slash + 1 : opt_timeline);
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


/* ---- repeated, interleaved measurements --------------------------------- */

#define MAXR 64

/* One configuration: a backend, a workers count, a granularity; its samples
 * (one per round) and what its last run saw of the process tree. */
typedef struct conf {
	const char *label;
	char spec[256];
	int workers, tasks, gran;
	bool base;    /* the sequential baseline of its granularity */
	bool skipped; /* backend not built in */
	int n;
	double wall[MAXR], cpu[MAXR], total[MAXR];
	double start_ms[MAXR], rss, procs, threads, balance;
	double last_median;
} conf;

/* A speedup over the baseline, with its spread. */
typedef struct sp_est {
	int n;          /* rounds */
	double med;     /* median baseline wall / median wall */
	double lo, hi;  /* quartiles of the per-round ratios */
	double par;     /* median CPUs used: CPU time / wall (pool start and stop in) */
} sp_est;

static sp_est estimate(const conf *base, const conf *c)
{
	sp_est e = { .med = NAN, .lo = NAN, .hi = NAN, .par = NAN };
	int n = base->n < c->n ? base->n : c->n;
	if (!n)
		return e;
	double ratio[MAXR], par[MAXR];
	for (int i = 0; i < n; i++) {
		/* Same round: the two ran back to back in one load episode. */
		ratio[i] = base->wall[i] / c->wall[i];
		par[i] = c->cpu[i] / c->total[i];
	}
	e.n = n;
	e.med = demo_median(base->wall, base->n) / demo_median(c->wall, c->n);
	e.lo = demo_quantile(ratio, n, 0.25);
	e.hi = demo_quantile(ratio, n, 0.75);
	if (e.med < e.lo)
		e.lo = e.med;
	if (e.med > e.hi)
		e.hi = e.med;
	e.par = demo_median(par, n);
	return e;
}

/* Machine-wide conditions a verdict needs. */
typedef struct cond {
	int cpus;
	double avail; /* CPUs left to the demo by other programs and the quota */
	double quota; /* CPUs a cgroup quota allows, NaN: no quota */
} cond;

/*
 * Does a backend scale CPU work with `usable` CPUs' worth of workers?
 * "yes": the middle half of the per-round speedups (its lower quartile)
 * and the CPUs used (CPU time / wall) clear 1 + 0.3 per extra CPU. "no",
 * only while /proc/stat shows the CPUs free: the upper quartile stays
 * below 1 + 0.15 per extra CPU, or it stays below the "yes" bar while the
 * CPUs used stay below 1 + 0.15 per extra CPU (the work ran on one CPU at a
 * time). Anything else is inconclusive, and why
 * goes into reason. Three rounds at least, or nothing is concluded.
 */
static const char *classify(sp_est e, int usable, const cond *m,
			    char *reason, size_t rlen)
{
	double yes = 1 + 0.3 * (usable - 1), no = 1 + 0.15 * (usable - 1);
	/* Free CPUs, for a "no": only /proc/stat's measure counts. Another
	 * backend that scaled on this run proves nothing about the rounds of
	 * this one, which may have waited for a CPU meanwhile. */
	bool free_cpus = !isnan(m->avail) && m->avail >= usable - 0.25;
	*reason = 0;
	if (usable < 2) {
		snprintf(reason, rlen, "one CPU: nothing to scale onto");
		return "inconclusive";
	}
	if (e.n < 3) {
		snprintf(reason, rlen, "only %d run(s) per configuration (raise --budget)",
			 e.n);
		return "inconclusive";
	}
	if (e.lo >= yes && e.par >= yes)
		return "yes";
	if (free_cpus && (e.hi < no || (e.hi < yes && e.par < no)))
		return "no";
	if (!free_cpus && !isnan(m->quota) && m->quota < usable - 0.25)
		snprintf(reason, rlen,
			 "a CPU quota (cgroup) allows this demo only %.2f CPUs (run it outside the quota)",
			 m->quota);
	else if (!free_cpus)
		snprintf(reason, rlen,
			 "other programs kept %.1f of the %d CPUs busy, so only %.1f were free (rerun when the machine is idle)",
			 m->cpus - m->avail, m->cpus, m->avail);
	else if (e.lo < yes && e.hi >= yes)
		snprintf(reason, rlen, "the speedup spread %.2fx..%.2fx straddles %.2fx (raise --budget, or rerun when the machine is idle)",
			 e.lo, e.hi, yes);
	else
		snprintf(reason, rlen,
			 "%.2fx (%.2f..%.2f) with %.2f CPUs in use lies between 'no' (< %.2fx) and 'yes' (>= %.2fx) (rerun when the machine is idle)",
			 e.med, e.lo, e.hi, e.par, no, yes);
	return "inconclusive";
}

/* ---- CPython beside the emulation ------------------------------------------ */

typedef struct pyres {
	bool ran;
	char why[512];    /* why not, when !ran */
	char version[64];
	int workers, tasks;
	long long elems;
	conf seq, thr, proc; /* samples, as for the C backends */
} pyres;

static void samples_from(json_t *obj, conf *c)
{
	json_t *w = json_object_get(obj, "wall"), *cp = json_object_get(obj, "cpu");
	c->n = 0;
	for (size_t i = 0; i < json_array_size(w) && i < MAXR; i++) {
		c->wall[c->n] = json_number_value(json_array_get(w, i));
		c->cpu[c->n] = json_number_value(json_array_get(cp, i));
		c->total[c->n] = c->wall[c->n];
		c->n++;
	}
}

/* Runs cpython_cpu.py; fills r, or says in r->why why it did not run. */
static void run_cpython(int workers, double seconds, double budget, pyres *r)
{
	memset(r, 0, sizeof(*r));
	char a_w[16], a_s[32], a_b[32], a_r[16];
	snprintf(a_w, sizeof(a_w), "%d", workers);
	snprintf(a_s, sizeof(a_s), "%g", seconds);
	snprintf(a_b, sizeof(a_b), "%g", budget);
	snprintf(a_r, sizeof(a_r), "%lld", (long long)opt_min_rounds);
	const char *args[] = { "--workers", a_w, "--seconds", a_s, "--budget",
			       a_b, "--min-rounds", a_r, NULL };
	json_t *doc = demo_python_run("cpython_cpu.py", args, r->why, sizeof(r->why));
	if (!doc)
		return;
	snprintf(r->version, sizeof(r->version), "%s",
		 json_string_value(json_object_get(doc, "python")) ?: "?");
	r->workers = (int)json_integer_value(json_object_get(doc, "workers"));
	r->tasks = (int)json_integer_value(json_object_get(doc, "tasks"));
	r->elems = json_integer_value(json_object_get(doc, "elems"));
	samples_from(json_object_get(doc, "sequential"), &r->seq);
	samples_from(json_object_get(doc, "thread"), &r->thr);
	samples_from(json_object_get(doc, "process"), &r->proc);
	json_decref(doc);
	r->ran = r->seq.n && r->thr.n && r->proc.n;
	if (!r->ran)
		snprintf(r->why, sizeof(r->why), "cpython_cpu.py gave no samples");
}

/* ---- the table and the verdict ------------------------------------------- */

static const demo_col cols[] = {
	{ "backend", 's', 0 },      { "workers", 'i', 0 },
	{ "tasks", 'i', 0 },        { "task_us", 'f', 1 },
	{ "runs", 'i', 0 },         { "wall_s", 'f', 3 },
	{ "speedup", 'f', 2 },      { "speedup_lo", 'f', 2 },
	{ "speedup_hi", 'f', 2 },   { "cpus_used", 'f', 2 },
	{ "efficiency", 'f', 2 },   { "cpu_s", 'f', 3 },
	{ "ovh_us", 'f', 2 },       { "ovh_noise_us", 'f', 2 },
	{ "peak_rss_mb", 'f', 1 },  { "procs", 'i', 0 },
	{ "threads", 'i', 0 },      { "start_ms", 'f', 1 },
	{ "balance", 'f', 2 },
};
#define NCOLS ((int)(sizeof(cols) / sizeof(cols[0])))

static void add_row(demo_table *t, const char *label, const conf *base,
		    const conf *c, int cpus)
{
	sp_est e = estimate(base, c);
	int usable = c->workers < cpus ? c->workers : cpus;
	double cpu = demo_median(c->cpu, c->n), bcpu = demo_median(base->cpu, base->n);
	/* CPU per task beyond the baseline's; the noise is half the sum of
	 * the two CPU ranges. Below the noise it is not a measurement. */
	double ovh = NAN, noise = NAN;
	/* (CPython rows count only the tasks' own CPU: no overhead to show.) */
	if (c != base && strncmp(label, "cpython", 7)) {
		double rc = demo_quantile(c->cpu, c->n, 1) - demo_quantile(c->cpu, c->n, 0);
		double rb = demo_quantile(base->cpu, base->n, 1) -
			    demo_quantile(base->cpu, base->n, 0);
		noise = (rc + rb) / 2 / c->tasks * 1e6;
		ovh = (cpu - bcpu) / c->tasks * 1e6;
		if (ovh <= noise)
			ovh = NAN;
	}
	demo_table_add(t, label, (int64_t)c->workers, (int64_t)c->tasks,
		       demo_median(base->wall, base->n) / c->tasks * 1e6,
		       (int64_t)c->n, demo_median(c->wall, c->n), e.med, e.lo, e.hi,
		       e.par, e.med / usable, cpu, ovh, noise, c->rss,
		       (int64_t)c->procs, (int64_t)c->threads,
		       c->start_ms[0] >= 0 ? demo_median(c->start_ms, c->n) : NAN,
		       c->balance);
}

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

static conf *find_conf(conf *cs, int n, const char *label, int workers, int tasks)
{
	for (int i = 0; i < n; i++)
		if (!cs[i].skipped && cs[i].label && !strcmp(cs[i].label, label) &&
		    cs[i].workers == workers && cs[i].tasks == tasks)
			return &cs[i];
	return NULL;
}

/* Reports one scaling verdict: a sentence and the machine-readable field. */
static const char *say_scaling(const char *field, const char *who,
			       const char *what, sp_est e, int workers, int usable,
			       const cond *m)
{
	char why[256];
	const char *v = classify(e, usable, m, why, sizeof(why));
	demo_verdict_field(field, v);
	if (!strcmp(v, "yes"))
		demo_verdict("%s: %.2fx over sequential with %d workers (middle half of the runs %.2f..%.2fx, %.2f CPUs busy on average): %s scales",
			     who, e.med, workers, e.lo, e.hi, e.par, what);
	else if (!strcmp(v, "no"))
		demo_verdict("%s: %.2fx over sequential with %d workers (%.2f..%.2fx, %.2f CPUs busy) although %d CPUs were free: %s does not scale",
			     who, e.med, workers, e.lo, e.hi, e.par, usable, what);
	else
		demo_verdict("%s: %.2fx with %d workers (%.2f..%.2fx, %.2f CPUs busy): inconclusive on this run: %s",
			     who, e.med, workers, e.lo, e.hi, e.par, why);
	return v;
}

int main(int argc, char **argv)
{
	const demo_option extra[] = {
		{ "seconds", "S", "sequential run time of one measurement (default 0.2)",
		  DEMO_OPT_DOUBLE, &opt_seconds, 0.001, 60 },
		{ "tiny", "N", "tasks at the fine granularity (default 20000)",
		  DEMO_OPT_INT, &opt_tiny, 1, 1000000 },
		{ "budget", "S", "time for the repeated rounds; more gives steadier medians (default 16)",
		  DEMO_OPT_DOUBLE, &opt_budget, 0, 3600 },
		{ "min-rounds", "R", "rounds before the medians may be called stable (default 3)",
		  DEMO_OPT_INT, &opt_min_rounds, 1, MAXR },
		{ "max-rounds", "R", "rounds at most (default 30)",
		  DEMO_OPT_INT, &opt_max_rounds, 1, MAXR },
		{ "timeline", "PNG", "also draw which worker ran which task when, for threads, "
		  "threads under the GIL and processes (traced runs; gnuplot)",
		  DEMO_OPT_STR, &opt_timeline, 0, 0 },
	};
	demo_env_extra = env_extra;
	demo_opts o;
	int pr = demo_parse(argc, argv, about, extra, 6, &o);
	if (pr)
		return pr > 0 ? 0 : 2;
	if (opt_max_rounds < opt_min_rounds)
		opt_max_rounds = opt_min_rounds;
	demo_envcfg env;
	if (demo_envcfg_get(&env))
		return 2;
	demo_machine mach;
	demo_machine_begin(&mach);

	const char *defaults[] = { "thread", "process", "thread:gil=1" };
	const char *entries[8];
	int nent = demo_backend_list(&o, &env, defaults, 3, entries);
	/* mpi (libparex-mpi, under mpirun): every rank runs main() up to its
	 * first open, which only rank 0 leaves; open it before any output. */
	for (int b = 0; b < nent; b++)
		if (entries[b] && !strncmp(entries[b], "mpi", 3) &&
		    (!entries[b][3] || entries[b][3] == ':')) {
			px_executor *ex;
			if (!px_executor_open(&ex, entries[b], NULL, 0))
				px_executor_destroy(ex);
			break;
		}
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
	       "%llu elements (about %.2f s sequentially), split into %d large or %d tiny tasks;\n"
	       "every configuration repeated in interleaved rounds (at least %lld, budget %g s)\n",
	       cpus, ROUNDS, (unsigned long long)elems, (double)elems / rate,
	       coarse, fine, (long long)opt_min_rounds, opt_budget);
	if (nent == 1 && !entries[0])
		printf("executor from %s: %s%s (--backend all compares every backend)\n",
		       env.source, env.backend, env.gil ? ":gil=1" : "");
	printf("\n");
	fflush(stdout);

	char labels[8][96];
	for (int b = 0; b < nent; b++)
		demo_label(labels[b], sizeof(labels[b]), entries[b], &env);

	/* The configurations: per granularity, the baseline, then every
	 * backend at every workers count. */
	int ncf = 0, maxcf = ngran * (1 + nsw * nent);
	conf *cs = calloc((size_t)maxcf, sizeof(conf));
	if (!cs) {
		demo_err("out of memory");
		return 1;
	}
	int base_of[2] = { 0, 0 };
	for (int g = 0; g < ngran; g++) {
		conf *c = &cs[ncf];
		base_of[g] = ncf++;
		c->label = "inline";
		snprintf(c->spec, sizeof(c->spec), "inline:gil=0");
		c->workers = 1;
		c->tasks = grans[g];
		c->gran = g;
		c->base = true;
		for (int i = 0; i < nsw; i++)
			for (int b = 0; b < nent; b++) {
				c = &cs[ncf++];
				c->label = labels[b];
				demo_spec(c->spec, sizeof(c->spec), entries[b], sweep[i]);
				c->workers = sweep[i];
				c->tasks = grans[g];
				c->gran = g;
			}
	}

	/* Rounds: each visits every configuration once, starting one further
	 * along each time, so no configuration always follows the same one. */
	uint64_t expect = 0;
	bool have_expect = false;
	double t_start = demo_now();
	int rounds = 0;
	for (; rounds < opt_max_rounds; rounds++) {
		for (int k = 0; k < ncf; k++) {
			conf *c = &cs[(k + rounds) % ncf];
			if (c->skipped)
				continue;
			const char *spec = c->spec[0] ? c->spec : NULL;
			if (!c->base && !strcmp(c->spec, ":workers=0"))
				spec = NULL;
			run r;
			char plabel[64];
			snprintf(plabel, sizeof(plabel), "round %d", rounds + 1);
			if (run_once(spec, c->label, c->workers, c->tasks, elems,
				     plabel, &r)) {
				for (int j = 0; j < ncf; j++)
					if (cs[j].label == c->label)
						cs[j].skipped = true;
				demo_note("%s: the process backend is not built into this parex (PX_ENOBACKEND); its rows are skipped",
					  c->label);
				continue;
			}
			if (!have_expect) {
				expect = r.sum;
				have_expect = true;
			} else if (r.sum != expect) {
				demo_progress_clear();
				demo_err("%s with %d workers computed a wrong sum",
					 c->label, c->workers);
				return 1;
			}
			c->wall[c->n] = r.u.wall;
			c->cpu[c->n] = r.u.cpu;
			c->total[c->n] = r.total;
			c->start_ms[c->n] = r.start_ms;
			c->n++;
			c->rss = r.u.peak_rss_mb > c->rss ? r.u.peak_rss_mb : c->rss;
			c->procs = r.u.procs;
			c->threads = r.u.threads;
			c->balance = r.balance;
		}
		/* Stable: no median moved by 3% or more in this round. */
		bool stable = true;
		for (int k = 0; k < ncf; k++) {
			conf *c = &cs[k];
			if (c->skipped || !c->n)
				continue;
			double m = demo_median(c->wall, c->n);
			if (c->n < 2 || fabs(m - c->last_median) >= 0.03 * m)
				stable = false;
			c->last_median = m;
		}
		if (rounds + 1 >= opt_min_rounds && stable)
			break;
		if (demo_now() - t_start >= opt_budget) {
			rounds++;
			break;
		}
	}
	demo_progress_clear();
	int nrounds = cs[0].n;

	/* CPython, same kernel in pure Python, on as many workers as CPUs. */
	int wref = 0; /* the largest swept workers count <= CPUs */
	for (int i = 0; i < nsw; i++)
		if (sweep[i] <= cpus && sweep[i] > wref)
			wref = sweep[i];
	if (!wref)
		wref = sweep[0];
	int usable = wref < cpus ? wref : cpus;
	demo_machine mach_c = mach; /* the C rounds alone */
	demo_machine_end(&mach_c);
	pyres py;
	demo_machine mach_py; /* the CPython runs alone */
	demo_machine_begin(&mach_py);
	bool want_py = false;
	for (int b = 0; b < nent; b++)
		want_py |= strstr(labels[b], "gil=1") != NULL;
	if (want_py && wref < 2) {
		memset(&py, 0, sizeof(py));
		snprintf(py.why, sizeof(py.why), "one worker only: nothing to compare");
	} else if (want_py) {
		/* Up to 4 workers show the GIL as well as 64 would, and pure
		 * Python is ~100x slower: keep the tasks long enough that a
		 * pool's own costs do not hide its speedup. */
		int pw = wref < 4 ? wref : 4;
		run_cpython(pw, opt_seconds * (pw > 2 ? pw / 2.0 : 1), opt_budget / 4, &py);
	} else {
		memset(&py, 0, sizeof(py));
		snprintf(py.why, sizeof(py.why), "no thread:gil=1 backend to compare with");
	}
	demo_machine_end(&mach_py);
	demo_machine_end(&mach);

	demo_table *t = demo_table_new(cols, NCOLS);
	for (int k = 0; k < ncf; k++)
		if (!cs[k].skipped && cs[k].n)
			add_row(t, cs[k].label, &cs[base_of[cs[k].gran]], &cs[k], cpus);
	if (py.ran) {
		py.seq.workers = 1;
		py.thr.workers = py.proc.workers = py.workers;
		py.seq.tasks = py.thr.tasks = py.proc.tasks = py.tasks;
		py.seq.start_ms[0] = py.thr.start_ms[0] = py.proc.start_ms[0] = -1;
		py.seq.rss = py.thr.rss = py.proc.rss = NAN;
		py.seq.balance = py.thr.balance = py.proc.balance = NAN;
		add_row(t, "cpython:sequential", &py.seq, &py.seq, cpus);
		add_row(t, "cpython:ThreadPoolExecutor", &py.seq, &py.thr, cpus);
		add_row(t, "cpython:ProcessPoolExecutor", &py.seq, &py.proc, cpus);
	}
	demo_table_print(t);
	printf("\nEvery figure is a median over the rounds (runs). speedup: median sequential\n"
	       "wall / median wall at the same granularity; speedup_lo/hi: the middle half of\n"
	       "the per-round ratios; cpus_used: CPU time / wall time, which other programs\n"
	       "cannot inflate; efficiency: speedup / min(workers, CPUs); cpu_s: user+system\n"
	       "CPU of the process and its children, pool start and stop included; ovh_us:\n"
	       "CPU per task beyond the sequential run's, '-' when below ovh_noise_us (the\n"
	       "runs' CPU spread per task); peak_rss_mb: sum of peak RSS over the process\n"
	       "tree; balance: most tasks run by one worker / ceil(tasks / workers).\n");
	if (py.ran)
		printf("cpython:* rows: the same kernel in pure Python %s (%lld elements,\n"
		       "%d tasks), from cpython_cpu.py; cpus_used there: CPU time of the tasks / wall.\n",
		       py.version, py.elems, py.tasks);

	/* ---- verdict: every statement below is computed from the table ---- */
	cond m = { .cpus = cpus, .avail = mach_c.available_cpus,
		   .quota = mach_c.quota_cpus };
	cond mpy = { .cpus = cpus, .avail = mach_py.available_cpus,
		     .quota = mach_py.quota_cpus };
	if (!isnan(mach.others_cpus) && mach.others_cpus >= 0.25)
		demo_note("other programs used %.2f of the %d CPUs on average while this demo ran (from /proc/stat; %.2f stolen by the hypervisor; %.2f during the C rounds, %.2f during the CPython runs): wall times are inflated; for a clean run, stop other jobs or rerun on an idle machine",
			  mach.others_cpus, cpus, mach.steal_cpus,
			  mach_c.others_cpus, mach_py.others_cpus);
	demo_note("%d rounds in %.1f s%s", nrounds, demo_now() - t_start,
		  nrounds >= opt_min_rounds ? "" : ": fewer than --min-rounds, budget spent");
	if (!py.ran)
		demo_note("CPython comparison skipped: %s", py.why);
	if (cpus == 1)
		demo_verdict("this process may use 1 CPU (%ld online%s): no backend can run CPU work in parallel here, so speedups above 1 are impossible",
			     sysconf(_SC_NPROCESSORS_ONLN),
			     sysconf(_SC_NPROCESSORS_ONLN) > 1 ? ", the others masked by its CPU affinity" : "");

	const char *thr = NULL, *proc = NULL, *gil = NULL;
	for (int b = 0; b < nent; b++) {
		const char *l = labels[b];
		if (find_conf(cs, ncf, l, wref, coarse) == NULL)
			continue;
		if (!strncmp(l, "process", 7))
			proc = proc ? proc : l;
		else if (!strncmp(l, "thread", 6) && strstr(l, "gil=1"))
			gil = gil ? gil : l;
		else if (!strncmp(l, "thread", 6))
			thr = thr ? thr : l;
	}
	conf *bc = &cs[base_of[0]], *bf = ngran == 2 ? &cs[base_of[1]] : NULL;
	conf *ct = thr ? find_conf(cs, ncf, thr, wref, coarse) : NULL;
	conf *cp = proc ? find_conf(cs, ncf, proc, wref, coarse) : NULL;
	conf *cg = gil ? find_conf(cs, ncf, gil, wref, coarse) : NULL;
	sp_est et = ct ? estimate(bc, ct) : (sp_est){ 0 };
	sp_est ep = cp ? estimate(bc, cp) : (sp_est){ 0 };
	sp_est eg = cg ? estimate(bc, cg) : (sp_est){ 0 };
	const char *vt = NULL, *vp = NULL, *vg = NULL;
	char who[sizeof(labels) + 64]; /* gcc cannot tell which label thr is */
	if (ct) {
		snprintf(who, sizeof(who), "%s, %d large tasks", thr, coarse);
		vt = say_scaling("threads_scale", who, "CPU-bound C work on threads",
				 et, wref, usable, &m);
	}
	if (cp) {
		snprintf(who, sizeof(who), "%s, %d large tasks", proc, coarse);
		vp = say_scaling("processes_scale", who,
				 "CPU-bound C work on processes", ep, wref, usable,
				 &m);
	}
	if (ct && cp && !strcmp(vt, "yes") && !strcmp(vp, "yes")) {
		bool overlap = et.lo <= ep.hi && ep.lo <= et.hi;
		if (overlap)
			demo_verdict("threads and processes were equally fast with large tasks within the runs' spread (%.2fx vs %.2fx): without a GIL, threads need no process pool to use every CPU",
				     et.med, ep.med);
		else
			demo_verdict("with large tasks %s was faster beyond the runs' spread (%.2fx vs %.2fx)",
				     et.lo > ep.hi ? "the thread pool" : "the process pool",
				     et.med, ep.med);
	}
	if (cg && wref > 1) {
		snprintf(who, sizeof(who), "under GIL emulation (%s), %d large tasks",
			 gil, coarse);
		vg = say_scaling("gil_scales", who, "the emulated GIL", eg, wref,
				 usable, &m);
		if (!strcmp(vg, "yes"))
			demo_verdict("that is unexpected: the emulated GIL should serialise computing tasks");
		else if (!strcmp(vg, "no") && vp && !strcmp(vp, "yes"))
			demo_verdict("threads under the emulated GIL stopped scaling while the process pool reached %.2fx: every process has its own interpreter, hence its own GIL; that is why Python needs multiprocessing for CPU-bound work, and why C, with no GIL, does not",
				     ep.med);
		else if (!strcmp(vg, "no"))
			demo_verdict("threads under the emulated GIL stopped scaling; this run cannot show processes escaping the GIL (the process pool's verdict: %s)",
				     vp ? vp : "not run");
	}
	if (bf) {
		const char *whos[2] = { thr, proc };
		for (int k = 0; k < 2; k++) {
			conf *c = whos[k] ? find_conf(cs, ncf, whos[k], wref, fine) : NULL;
			if (!c)
				continue;
			int r = find(t, whos[k], wref, fine);
			double ovh = num(t, r, "ovh_us"), noise = num(t, r, "ovh_noise_us");
			double task_us = demo_median(bf->wall, bf->n) / fine * 1e6;
			if (isnan(ovh))
				demo_verdict("%s with %d tiny tasks of %.1f us: extra CPU per task below the noise (%.2f us per task across the runs), efficiency %.0f%%",
					     whos[k], fine, task_us, noise,
					     num(t, r, "efficiency") * 100);
			else
				demo_verdict("%s with %d tiny tasks of %.1f us: %.2f us of extra CPU per task (noise %.2f us), efficiency %.0f%%",
					     whos[k], fine, task_us, ovh, noise,
					     num(t, r, "efficiency") * 100);
		}
	}
	if (thr && proc) {
		int rt = find(t, thr, wref, coarse), rp = find(t, proc, wref, coarse);
		if (rt >= 0 && rp >= 0)
			demo_verdict("memory: the process pool's tree peaked at %.1f MiB of RSS over %.0f processes, the thread pool at %.1f MiB in 1 process; the process pool took %.1f ms to start, the thread pool %.1f ms",
				     num(t, rp, "peak_rss_mb"), num(t, rp, "procs"),
				     num(t, rt, "peak_rss_mb"), num(t, rp, "start_ms"),
				     num(t, rt, "start_ms"));
	}
	if (ct && 2 * cpus <= maxw && wref == cpus) {
		conf *c2 = find_conf(cs, ncf, thr, 2 * cpus, coarse);
		if (c2) {
			sp_est e2 = estimate(bc, c2);
			demo_verdict("more workers than CPUs bought %s: %.2fx (%.2f..%.2f) with %d workers vs %.2fx (%.2f..%.2f) with %d",
				     e2.lo > et.hi ? "more speed" : e2.hi < et.lo ? "less speed" : "nothing beyond the runs' spread",
				     e2.med, e2.lo, e2.hi, 2 * cpus, et.med, et.lo, et.hi, cpus);
		}
	}
	/* CPython beside the emulation. */
	if (py.ran && wref > 1) {
		sp_est pt = estimate(&py.seq, &py.thr), pp = estimate(&py.seq, &py.proc);
		char wt[256], wp[256];
		int pu = py.workers < cpus ? py.workers : cpus;
		const char *cvp = classify(pp, pu, &mpy, wp, sizeof(wp));
		const char *cvt = classify(pt, pu, &mpy, wt, sizeof(wt));
		demo_verdict_field("cpython_threads_scale", cvt);
		demo_verdict_field("cpython_processes_scale", cvp);
		/* parex beside CPython at CPython's workers count (at most 4),
		 * not at wref, which is larger on more than 4 CPUs. */
		conf *cgw = gil ? find_conf(cs, ncf, gil, py.workers, coarse) : NULL;
		conf *cpw = proc ? find_conf(cs, ncf, proc, py.workers, coarse) : NULL;
		double gw = cgw ? estimate(bc, cgw).med : NAN;
		double pw = cpw ? estimate(bc, cpw).med : NAN;
		demo_verdict("CPython %s, same kernel: ThreadPoolExecutor %.2fx (%.2f..%.2f; thread:gil=1 %.2fx), ProcessPoolExecutor %.2fx (%.2f..%.2f; process pool %.2fx), %d workers",
			     py.version, pt.med, pt.lo, pt.hi, gw, pp.med, pp.lo,
			     pp.hi, pw, py.workers);
		const char *match = "inconclusive";
		char why[600] = "";
		if (vg && vp && strcmp(vg, "inconclusive") && strcmp(vp, "inconclusive") &&
		    strcmp(cvt, "inconclusive") && strcmp(cvp, "inconclusive"))
			match = !strcmp(vg, cvt) && !strcmp(vp, cvp) ? "yes" : "no";
		else if ((vg && strcmp(vg, "inconclusive") && strcmp(cvt, "inconclusive") &&
			  strcmp(vg, cvt)) ||
			 (vp && strcmp(vp, "inconclusive") && strcmp(cvp, "inconclusive") &&
			  strcmp(vp, cvp)))
			match = "no";
		else if (!strcmp(cvt, "inconclusive"))
			snprintf(why, sizeof(why), ": CPython threads: %s", wt);
		else if (!strcmp(cvp, "inconclusive"))
			snprintf(why, sizeof(why), ": CPython processes: %s", wp);
		else
			snprintf(why, sizeof(why), ": a parex verdict above was inconclusive");
		demo_verdict_field("emulation_matches_cpython", match);
		if (!strcmp(match, "yes"))
			demo_verdict("the emulation reproduced CPython on this run: threads under a GIL %s, processes %s, in both",
				     !strcmp(cvt, "yes") ? "scaled" : "did not scale",
				     !strcmp(cvp, "yes") ? "scaled" : "did not scale");
		else if (!strcmp(match, "no"))
			demo_verdict("the emulation did NOT reproduce CPython on this run: CPython threads scale: %s, thread:gil=1: %s; CPython processes scale: %s, process pool: %s",
				     cvt, vg ? vg : "not run", cvp, vp ? vp : "not run");
		else
			demo_verdict("whether the emulation reproduced CPython is inconclusive on this run%s",
				     why);
	}
	if (!thr && !proc && !gil) {
		/* Only a configured or odd backend: report it. */
		for (int b = 0; b < nent; b++) {
			conf *c = find_conf(cs, ncf, labels[b], wref, coarse);
			if (c) {
				snprintf(who, sizeof(who), "%s, %d large tasks", labels[b],
					 coarse);
				say_scaling("scales", who, "this backend",
					    estimate(bc, c), wref, usable, &m);
			}
		}
	}
	demo_print_verdict();

	demo_json_set("machine", demo_machine_json(&mach));
	demo_json_set("rounds", json_integer(nrounds));
	demo_json_set("timeline_png", timeline(elems, cpus));
	if (py.ran)
		demo_json_set("cpython", json_pack("{s:s, s:i, s:i, s:I}", "version",
						   py.version, "workers", py.workers,
						   "tasks", py.tasks, "elems",
						   (json_int_t)py.elems));
	else
		demo_json_set("cpython_skipped", demo_json_str(py.why));
	int rc = demo_write_outputs(&o, t) ? 1 : 0;
	if (o.plot) {
		/* One data block per backend and granularity: workers, median
		 * speedup and the middle half of the rounds as an error bar. */
		size_t cap = 1 << 16, n = 0;
		char *data = calloc(cap, 1), script[8192];
		int blocks = 0;
		int len = snprintf(script, sizeof(script),
				   "set terminal pngcairo noenhanced size 900,600\n"
				   "set output '$OUT'\n"
				   "set title 'demo_cpu: median speedup over sequential, %d rounds (%d CPUs)'\n"
				   "set xlabel 'workers'\nset ylabel 'speedup'\n"
				   "set key left top\nset grid\nset yrange [0:%d]\nset xtics 1\n"
				   "plot x < %d ? x : %d title 'ideal' dt 2 lc 'gray'",
				   nrounds, cpus, cpus + 1, cpus, cpus);
		for (int b = 0; b < nent && data; b++) {
			for (int g = 0; g < ngran; g++) {
				int any = 0;
				for (int i = 0; i < nsw; i++) {
					int r = find(t, labels[b], sweep[i], grans[g]);
					if (r < 0 || n + 96 > cap)
						continue;
					n += (size_t)snprintf(data + n, cap - n, "%d %.4f %.4f %.4f\n",
							      sweep[i], num(t, r, "speedup"),
							      num(t, r, "speedup_lo"),
							      num(t, r, "speedup_hi"));
					any = 1;
				}
				if (!any)
					continue;
				n += (size_t)snprintf(data + n, cap - n, "\n\n");
				len += snprintf(script + len, sizeof(script) - (size_t)len,
						", '$DATA' index %d using 1:2:3:4 with yerrorlines title '%s, %d tasks'",
						blocks++, labels[b], grans[g]);
			}
		}
		snprintf(script + len, sizeof(script) - (size_t)len, "\n");
		if (data && blocks && demo_plot(o.plot, script, data) == 0)
			printf("\npicture: %s\n", o.plot);
		free(data);
	}
	demo_table_free(t);
	free(cs);
	return rc;
}
