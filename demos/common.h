/*
 * demos/common.h - what the demos share: command-line options, the executor
 * specs a demo runs (from --backend, $PAREX_EXECUTOR and parex.conf), clocks
 * and resource usage of the whole process tree, a result table printed as
 * text, CSV and JSON, a verdict, a progress line, and gnuplot pictures.
 *
 * Not part of the parex library: these helpers exit the program on
 * programming errors (out of memory) because a demo has nothing better to do.
 */
#ifndef PAREX_DEMOS_COMMON_H
#define PAREX_DEMOS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

/* Options every demo takes. */
typedef struct demo_opts {
	const char *backends[8]; /* --backend, repeatable */
	int nbackends;
	int workers;             /* --workers; 0: the demo's default */
	const char *csv;         /* --csv FILE */
	const char *json;        /* --json FILE */
	const char *plot;        /* --plot FILE.png */
	FILE *csv_f, *json_f;    /* opened by demo_parse, before any run */
} demo_opts;

typedef enum demo_opt_kind {
	DEMO_OPT_INT,    /* int64_t *dst, within [min, max] */
	DEMO_OPT_DOUBLE, /* double *dst, within [min, max] */
	DEMO_OPT_STR,    /* const char **dst */
	DEMO_OPT_FLAG,   /* bool *dst, set to true; takes no value */
} demo_opt_kind;

/* A demo-specific option, --name VALUE or --name=VALUE (getopt_long: long
 * options may be abbreviated to any unambiguous prefix). */
typedef struct demo_option {
	const char *name;
	const char *metavar; /* "N", "MS", ... (unused for flags) */
	const char *help;
	demo_opt_kind kind;
	void *dst;
	double min, max;
} demo_option;

/*
 * Parses argv with getopt_long: the common options (-b/--backend,
 * -w/--workers, --csv, --json, --plot, -h/--help, -V/--version), then the
 * demo's own (extra, n of them). about is printed first by --help (what the
 * demo does and how to run it), demo_env_extra (may be NULL) after the
 * common environment variables. The --csv and --json files are created here,
 * so that a name that cannot be written fails before any measuring.
 * Returns 0 to go on, 1 after printing help or the version (exit 0), or -1
 * after printing a one-line error to stderr (exit 2).
 */
int demo_parse(int argc, char **argv, const char *about,
	       const demo_option *extra, int n, demo_opts *o);

/* Lines "  NAME   what" for the environment variables the demo alone reads. */
extern const char *demo_env_extra;

/* The program's name for messages ("demo_cpu"). */
extern const char *demo_prog;

/* Prints "demo_x: message" on stderr. */
void demo_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic clock, seconds. */
double demo_now(void);

/* CPUs this process may run on: px_available_parallelism() (the affinity
 * mask, capped by a cgroup v2 CPU quota); at least 1. */
int demo_cpus(void);

/* The CPUs a cgroup CPU quota (v2 cpu.max, v1 cfs_quota_us) allows this
 * process, the tightest up the hierarchy; NaN when there is none. */
double demo_cpu_quota(void);

/*
 * What the environment's configuration layers ($PAREX_CONFIG or
 * ./parex.conf, then $PAREX_EXECUTOR) say. active: one of them is present.
 * backend: the backend they select ("thread" when they do not say);
 * gil: gil=1 set; workers: the workers they set, 0 when they set none.
 * Returns 0, or -1 after printing the configuration's error message.
 */
typedef struct demo_envcfg {
	bool active;
	char backend[16];
	bool gil;
	int workers;
	char source[96]; /* "PAREX_EXECUTOR=...", "parex.conf", ... */
} demo_envcfg;
int demo_envcfg_get(demo_envcfg *e);

/*
 * The executor specs a demo compares: --backend values if given ("all":
 * the defaults), else, when the environment configures parex, one entry
 * NULL meaning "as configured", else the defaults. Stores up to 8 entries in
 * out and returns their count.
 */
int demo_backend_list(const demo_opts *o, const demo_envcfg *e,
		      const char *const *defaults, int ndefaults,
		      const char **out);

/*
 * Builds the spec for px_executor_open(): entry plus workers, and gil=0
 * unless the entry names gil ("thread" -> "thread:gil=0,workers=4",
 * "thread:gil=1" -> "thread:gil=1,workers=4", NULL -> ":workers=4");
 * workers 0 leaves workers to the configuration (a NULL entry then gives
 * NULL: the configuration alone).
 */
const char *demo_spec(char *buf, size_t len, const char *entry, int workers);

/* A row label for an entry: the entry itself, or the configured backend. */
const char *demo_label(char *buf, size_t len, const char *entry,
		       const demo_envcfg *e);

/* ---- resource usage of this process and its descendants ---------------- */

/*
 * For the demos that run workers as threads or as processes (demo_race,
 * demo_pipeline): which kinds to run, from --backend (thread/inline,
 * process, all), else from the configured executor in env, else both.
 * Returns 0, or 2 after a one-line error for an unknown --backend.
 */
int demo_pick_kinds(const demo_opts *o, const demo_envcfg *env, bool *threads,
		    bool *processes);

typedef struct demo_usage {
	double t0;            /* internal */
	double cpu0;          /* internal */
	double wall;          /* seconds */
	double cpu;           /* user + system seconds, self + reaped children */
	double peak_rss_mb;   /* peak RSS of self + live descendants, MiB */
	int threads;          /* threads of self + live descendants */
	int procs;            /* processes: self + live descendants */
} demo_usage;

/* Starts measuring: resets this process's peak RSS, notes CPU and time. */
void demo_usage_begin(demo_usage *u);

/*
 * Samples threads, processes and peak RSS of this process and its live
 * descendants, leaving out the nx subtrees rooted at exclude[] (helpers
 * such as a demo's own server), keeping maxima. Call while the workers are
 * still alive.
 */
void demo_usage_sample(demo_usage *u, const pid_t *exclude, int nx);

/* Stops the wall clock (call when the work is done). */
void demo_usage_stop_wall(demo_usage *u);

/* Adds CPU time up to now (call after the workers are reaped). */
void demo_usage_end_cpu(demo_usage *u);

/* ---- repeated measurements and the machine's load ------------------------ */

/* The q-quantile (0..1, linear between order statistics) of n values, and
 * the median; NaN when n is 0. */
double demo_quantile(const double *v, int n, double q);
double demo_median(const double *v, int n);

/*
 * How busy the machine was while a demo ran: from /proc/stat, the CPUs that
 * other programs used on average (all busy time minus this process tree's
 * CPU time), the part the hypervisor stole, what remained for the demo, and
 * the load average before and after. NaN where /proc/stat is unreadable.
 */
typedef struct demo_machine {
	double t0, own0, busy0, total0, steal0; /* internal */
	bool ok;                                /* internal */
	double wall;                            /* seconds measured */
	double others_cpus;    /* CPUs other programs used, on average */
	double steal_cpus;     /* CPUs stolen by the hypervisor, on average */
	double available_cpus; /* online CPUs - others_cpus, capped by
				* demo_cpus() and the CPU quota */
	double quota_cpus;     /* demo_cpu_quota(), NaN: none */
	double load_before[3], load_after[3];
} demo_machine;

void demo_machine_begin(demo_machine *m);
void demo_machine_end(demo_machine *m);

/* {"cpus", "online_cpus", "model", "kernel", "load_before", "load_after",
 * "run_wall_s", "others_cpus", "steal_cpus", "available_cpus",
 * "quota_cpus"} for the JSON output. */
json_t *demo_machine_json(const demo_machine *m);

/* ---- CPython beside the demos -------------------------------------------- */

/*
 * Runs a Python script shipped with the demos (found next to the program,
 * else in the source folder) with args (NULL-terminated), under
 * $PAREX_DEMO_PYTHON (empty: none) or python3 from PATH, and parses the JSON
 * object it prints. Returns it (the caller owns it), or NULL with a one-line
 * reason in why (no interpreter, no script, the script failed: its last
 * stderr line).
 */
json_t *demo_python_run(const char *script, const char *const *args, char *why,
			size_t len);

/* ---- the result table ---------------------------------------------------- */

/* A column: name (also the CSV/JSON key), kind 's' string, 'i' integer,
 * 'f' real shown with prec decimals; NaN reals print as "-" (CSV: empty,
 * JSON: null). */
typedef struct demo_col {
	const char *name;
	char kind;
	int prec;
} demo_col;

typedef struct demo_table demo_table;

/* A table with n columns (the array must outlive the table). */
demo_table *demo_table_new(const demo_col *cols, int n);

/* Adds a row: one value per column, const char *, int64_t or double. */
void demo_table_add(demo_table *t, ...);

/* Prints the table to stdout, aligned. */
void demo_table_print(const demo_table *t);

/* Lines said after the table ("Verdict" / "Notes"). */
void demo_verdict(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void demo_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the notes and the verdict to stdout. */
void demo_print_verdict(void);

/*
 * Machine-readable verdicts: key -> "yes", "no", "inconclusive", ...,
 * written as the JSON member "verdicts".
 */
void demo_verdict_field(const char *key, const char *value);

/* Sets a top-level member of the JSON output (steals value; NULL: null). */
void demo_json_set(const char *key, json_t *value);

/* A JSON string for any C string (bytes that are not UTF-8 become '?'). */
json_t *demo_json_str(const char *s);

/*
 * Writes --csv and --json if asked, into the files demo_parse opened (JSON,
 * through jansson: {"demo", "cpus", "parex", members set by demo_json_set,
 * "rows", "notes", "verdict", "verdicts"}). Numbers keep full precision.
 * Returns 0, or -1 after printing an error.
 */
int demo_write_outputs(demo_opts *o, const demo_table *t);

void demo_table_free(demo_table *t);

/* Row count, and a numeric cell (NaN for strings or missing). */
int demo_table_rows(const demo_table *t);
double demo_table_num(const demo_table *t, int row, const char *col);
const char *demo_table_str(const demo_table *t, int row, const char *col);

/* ---- progress line --------------------------------------------------------- */

/*
 * Shows "label done/total" on stderr, redrawn at most 10 times a second,
 * only when stderr is a terminal and the demo has run for over a second.
 */
void demo_progress(const char *label, size_t done, size_t total);

/* Erases the progress line, if one is shown. */
void demo_progress_clear(void);

/* ---- pictures ---------------------------------------------------------------- */

/*
 * Draws a picture with gnuplot: writes data to a temporary file and runs
 * script, in which "$DATA" names that file and "$OUT" the PNG. If gnuplot
 * is not installed, says so plainly on stderr. Returns 0 when the PNG was
 * written, -1 otherwise.
 */
int demo_plot(const char *png, const char *script, const char *data);

/*
 * A bar chart of data ("label value" lines; quote labels with spaces) with
 * a title and a y-axis label (NULL: none), log-scaled if asked. Prints
 * "picture: PNG" when written. Returns as demo_plot().
 */
int demo_plot_bars(const char *png, const char *title, const char *ylabel,
		   bool logscale, const char *data);

#endif /* PAREX_DEMOS_COMMON_H */
