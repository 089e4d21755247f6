/*
 * demos/common.c - shared helpers of the demos (see common.h).
 */
#include "common.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <parex/executor.h>

const char *demo_prog = "demo";

void demo_err(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", demo_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);
	if (!p) {
		demo_err("out of memory");
		exit(1);
	}
	return p;
}

static void *xrealloc(void *p, size_t sz)
{
	p = realloc(p, sz);
	if (!p) {
		demo_err("out of memory");
		exit(1);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d) {
		demo_err("out of memory");
		exit(1);
	}
	return d;
}

double demo_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int demo_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

/* ---- options ------------------------------------------------------------- */

static const char common_help[] =
	"Common options:\n"
	"  --backend SPEC   executor to run (repeatable; 'all' = every default one);\n"
	"                   a parex spec: thread, process, inline, thread:gil=1,\n"
	"                   process:shm_size=128M ... Without it the demo runs the\n"
	"                   executor that $PAREX_EXECUTOR / parex.conf configure, or,\n"
	"                   when neither is set, compares its default backends\n"
	"  --workers N      workers (threads or processes), 1..4096\n"
	"  --csv FILE       write the result table as CSV\n"
	"  --json FILE      write the results, notes and verdict as JSON\n"
	"  --plot FILE.png  draw a picture with gnuplot (if installed)\n"
	"  --help           this text\n";

static void usage(const char *about, const demo_option *extra, int n)
{
	printf("%s\n%s", about, common_help);
	if (n)
		printf("Options of %s:\n", demo_prog);
	for (int i = 0; i < n; i++) {
		char left[64];
		if (extra[i].kind == DEMO_OPT_FLAG)
			snprintf(left, sizeof(left), "--%s", extra[i].name);
		else
			snprintf(left, sizeof(left), "--%s %s", extra[i].name,
				 extra[i].metavar);
		printf("  %-16s %s\n", left, extra[i].help);
	}
}

/* Strict number parsing: the whole string, finite, in range. */
static int parse_num(const char *s, bool integer, double min, double max,
		     double *out)
{
	char *end;
	errno = 0;
	double v;
	if (integer) {
		long long x = strtoll(s, &end, 10);
		v = (double)x;
	} else {
		v = strtod(s, &end);
	}
	if (!*s || *end || errno || !isfinite(v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static const char *take_value(int argc, char **argv, int *i, const char *eq,
			      const char *name)
{
	if (eq)
		return eq + 1;
	if (*i + 1 >= argc) {
		demo_err("option --%s needs a value (try --help)", name);
		return NULL;
	}
	return argv[++*i];
}

int demo_parse(int argc, char **argv, const char *about,
	       const demo_option *extra, int n, demo_opts *o)
{
	const char *slash = strrchr(argv[0], '/');
	demo_prog = slash ? slash + 1 : argv[0];
	memset(o, 0, sizeof(*o));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(about, extra, n);
			return 1;
		}
		if (strncmp(a, "--", 2) || !a[2]) {
			demo_err("unexpected argument '%s' (try --help)", a);
			return -1;
		}
		const char *eq = strchr(a, '=');
		size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		char name[64];
		if (nl >= sizeof(name)) {
			demo_err("unknown option '%s' (try --help)", a);
			return -1;
		}
		memcpy(name, a + 2, nl);
		name[nl] = 0;
		const char *v;
		if (!strcmp(name, "backend")) {
			if (!(v = take_value(argc, argv, &i, eq, name)))
				return -1;
			if (!*v) {
				demo_err("--backend needs a spec (try --help)");
				return -1;
			}
			if (o->nbackends == 8) {
				demo_err("at most 8 --backend options");
				return -1;
			}
			o->backends[o->nbackends++] = v;
			continue;
		}
		if (!strcmp(name, "workers")) {
			double d;
			if (!(v = take_value(argc, argv, &i, eq, name)))
				return -1;
			if (parse_num(v, true, 1, 4096, &d)) {
				demo_err("bad value '%s' for --workers (expected an integer 1..4096)", v);
				return -1;
			}
			o->workers = (int)d;
			continue;
		}
		if (!strcmp(name, "csv") || !strcmp(name, "json") ||
		    !strcmp(name, "plot")) {
			if (!(v = take_value(argc, argv, &i, eq, name)))
				return -1;
			if (!*v) {
				demo_err("--%s needs a file name", name);
				return -1;
			}
			if (name[0] == 'c')
				o->csv = v;
			else if (name[0] == 'j')
				o->json = v;
			else
				o->plot = v;
			continue;
		}
		const demo_option *opt = NULL;
		for (int k = 0; k < n && !opt; k++)
			if (!strcmp(extra[k].name, name))
				opt = &extra[k];
		if (!opt) {
			demo_err("unknown option '%s' (try --help)", a);
			return -1;
		}
		if (opt->kind == DEMO_OPT_FLAG) {
			if (eq) {
				demo_err("option --%s takes no value", name);
				return -1;
			}
			*(bool *)opt->dst = true;
			continue;
		}
		if (!(v = take_value(argc, argv, &i, eq, name)))
			return -1;
		if (opt->kind == DEMO_OPT_STR) {
			*(const char **)opt->dst = v;
			continue;
		}
		double d;
		bool integer = opt->kind == DEMO_OPT_INT;
		if (parse_num(v, integer, opt->min, opt->max, &d)) {
			if (integer)
				demo_err("bad value '%s' for --%s (expected an integer %.0f..%.0f)",
					 v, name, opt->min, opt->max);
			else
				demo_err("bad value '%s' for --%s (expected a number %g..%g)",
					 v, name, opt->min, opt->max);
			return -1;
		}
		if (integer)
			*(int64_t *)opt->dst = (int64_t)d;
		else
			*(double *)opt->dst = d;
	}
	return 0;
}

/* ---- configuration ------------------------------------------------------- */

/* The value of key in a formatted spec "backend:k=v,k=v". */
static int spec_key(const char *spec, const char *key, char *out, size_t len)
{
	size_t kl = strlen(key);
	const char *p = strchr(spec, ':');
	while (p) {
		p++;
		if (!strncmp(p, key, kl) && p[kl] == '=') {
			p += kl + 1;
			size_t n = strcspn(p, ",");
			if (n >= len)
				n = len - 1;
			memcpy(out, p, n);
			out[n] = 0;
			return 0;
		}
		p = strchr(p, ',');
	}
	return -1;
}

/*
 * Formats the configuration that results from `probe` as the lowest layer
 * with the environment's layers on top: comparing two probes tells which
 * keys the environment sets.
 */
static int env_format(const char *probe, char *buf, size_t len)
{
	px_config *cfg;
	if (px_config_create(&cfg))
		return -1;
	int r = px_config_apply(cfg, probe, "probe");
	if (!r)
		r = px_config_load_env(cfg);
	if (r) {
		demo_err("configuration: %s", px_config_error(cfg));
		px_config_destroy(cfg);
		return -1;
	}
	px_config_format(cfg, buf, len);
	px_config_destroy(cfg);
	return 0;
}

int demo_envcfg_get(demo_envcfg *e)
{
	memset(e, 0, sizeof(*e));
	/* The demos opt in to ./parex.conf (parex reads no file on its own). */
	px_config_set_default_file("parex.conf");
	const char *ex = getenv("PAREX_EXECUTOR");
	const char *file = getenv("PAREX_CONFIG");
	if (ex && *ex)
		snprintf(e->source, sizeof(e->source), "PAREX_EXECUTOR=%.70s", ex);
	else if (file && *file)
		snprintf(e->source, sizeof(e->source), "PAREX_CONFIG=%.70s", file);
	else if (access("parex.conf", R_OK) == 0)
		snprintf(e->source, sizeof(e->source), "./parex.conf");
	e->active = e->source[0] != 0;

	char a[512], b[512], v[32];
	/* Two probes that differ in backend and workers: what stays different
	 * is what the environment leaves alone. */
	if (env_format("inline:workers=4095", a, sizeof(a)) ||
	    env_format("process:workers=4094", b, sizeof(b)))
		return -1;
	size_t bl = strcspn(a, ":");
	if (bl == strcspn(b, ":") && !strncmp(a, b, bl) && bl < sizeof(e->backend)) {
		memcpy(e->backend, a, bl);
		e->backend[bl] = 0;
	} else {
		strcpy(e->backend, "thread");
	}
	char wa[32] = "", wb[32] = "";
	spec_key(a, "workers", wa, sizeof(wa));
	spec_key(b, "workers", wb, sizeof(wb));
	if (!strcmp(wa, wb))
		e->workers = atoi(wa);
	if (!spec_key(a, "gil", v, sizeof(v)))
		e->gil = !strcmp(v, "1");
	return 0;
}

int demo_backend_list(const demo_opts *o, const demo_envcfg *e,
		      const char *const *defaults, int ndefaults,
		      const char **out)
{
	int n = 0;
	bool all = false;
	for (int i = 0; i < o->nbackends; i++)
		if (!strcmp(o->backends[i], "all"))
			all = true;
	if (o->nbackends && !all) {
		for (int i = 0; i < o->nbackends; i++)
			out[n++] = o->backends[i];
		return n;
	}
	if (!all && e->active) {
		out[0] = NULL;
		return 1;
	}
	for (int i = 0; i < ndefaults && n < 8; i++)
		out[n++] = defaults[i];
	return n;
}

const char *demo_spec(char *buf, size_t len, const char *entry, int workers)
{
	if (!entry) {
		if (!workers)
			return NULL;
		snprintf(buf, len, ":workers=%d", workers);
		return buf;
	}
	/* A named entry runs exactly what its label says: a gil=1 from the
	 * environment's layers must not leak into it (it would even make
	 * "inline" or "process" fail to open). */
	bool has_keys = strchr(entry, ':') != NULL;
	char extra[64] = "";
	if (!strstr(entry, "gil="))
		snprintf(extra, sizeof(extra), "gil=0");
	if (workers)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
			 "%sworkers=%d", extra[0] ? "," : "", workers);
	snprintf(buf, len, "%s%s%s", entry, extra[0] ? (has_keys ? "," : ":") : "",
		 extra);
	return buf;
}

const char *demo_label(char *buf, size_t len, const char *entry,
		       const demo_envcfg *e)
{
	if (entry)
		snprintf(buf, len, "%s", entry);
	else
		snprintf(buf, len, "%s%s (config)", e->backend,
			 e->gil && !strcmp(e->backend, "thread") ? ":gil=1" : "");
	return buf;
}

/* ---- resource usage ---------------------------------------------------------- */

static double cpu_seconds(void)
{
	struct rusage s, c;
	getrusage(RUSAGE_SELF, &s);
	getrusage(RUSAGE_CHILDREN, &c);
	double t = 0;
	t += (double)s.ru_utime.tv_sec + (double)s.ru_utime.tv_usec * 1e-6;
	t += (double)s.ru_stime.tv_sec + (double)s.ru_stime.tv_usec * 1e-6;
	t += (double)c.ru_utime.tv_sec + (double)c.ru_utime.tv_usec * 1e-6;
	t += (double)c.ru_stime.tv_sec + (double)c.ru_stime.tv_usec * 1e-6;
	return t;
}

void demo_usage_begin(demo_usage *u)
{
	memset(u, 0, sizeof(*u));
	/* "5" resets the peak RSS (VmHWM) to the current RSS (Linux 4.0+),
	 * so each measurement sees its own peak rather than the process's. */
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "5", 1) < 0) {
			/* older kernel: the peak then covers the whole run */
		}
		close(fd);
	}
	u->cpu0 = cpu_seconds();
	u->t0 = demo_now();
}

/* VmHWM (kB) and Threads of /proc/PID/status; 0 when gone. */
static void proc_status(pid_t pid, long *hwm_kb, int *threads)
{
	char path[64], line[256];
	*hwm_kb = 0;
	*threads = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "VmHWM:", 6))
			*hwm_kb = atol(line + 6);
		else if (!strncmp(line, "Threads:", 8))
			*threads = atoi(line + 8);
	}
	fclose(f);
}

static pid_t proc_ppid(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	/* The command name may hold spaces and ')': parse after the last ')'. */
	char *p = strrchr(buf, ')');
	int ppid;
	char st;
	if (!p || sscanf(p + 1, " %c %d", &st, &ppid) != 2)
		return -1;
	return ppid;
}

static bool excluded(pid_t p, const pid_t *exclude, int nx)
{
	for (int i = 0; i < nx; i++)
		if (exclude[i] > 0 && exclude[i] == p)
			return true;
	return false;
}

void demo_usage_sample(demo_usage *u, const pid_t *exclude, int nx)
{
	pid_t self = getpid();
	/* Collect (pid, ppid) of every process, then walk down from self. */
	size_t cap = 1024, n = 0;
	pid_t *pids = xcalloc(cap, sizeof(pid_t)), *pp = xcalloc(cap, sizeof(pid_t));
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (n == cap) {
			cap *= 2;
			pids = xrealloc(pids, cap * sizeof(pid_t));
			pp = xrealloc(pp, cap * sizeof(pid_t));
		}
		pids[n] = (pid_t)atoi(de->d_name);
		pp[n] = proc_ppid(pids[n]);
		n++;
	}
	if (d)
		closedir(d);
	pid_t *tree = xcalloc(n + 1, sizeof(pid_t));
	size_t nt = 0;
	tree[nt++] = self;
	for (size_t k = 0; k < nt; k++)
		for (size_t i = 0; i < n; i++)
			if (pp[i] == tree[k] && !excluded(pids[i], exclude, nx) &&
			    nt < n + 1)
				tree[nt++] = pids[i];
	long rss = 0;
	int threads = 0, procs = 0;
	for (size_t k = 0; k < nt; k++) {
		long h;
		int t;
		proc_status(tree[k], &h, &t);
		if (!t)
			continue;
		rss += h;
		threads += t;
		procs++;
	}
	free(tree);
	free(pids);
	free(pp);
	double mb = (double)rss / 1024.0;
	if (mb > u->peak_rss_mb)
		u->peak_rss_mb = mb;
	if (threads > u->threads)
		u->threads = threads;
	if (procs > u->procs)
		u->procs = procs;
}

void demo_usage_stop_wall(demo_usage *u)
{
	u->wall = demo_now() - u->t0;
}

void demo_usage_end_cpu(demo_usage *u)
{
	u->cpu = cpu_seconds() - u->cpu0;
}

/* ---- table --------------------------------------------------------------- */

typedef struct cell {
	char *s;  /* strings */
	double v; /* numbers */
} cell;

struct demo_table {
	const demo_col *cols;
	int ncols;
	int nrows, cap;
	cell *cells;
};

demo_table *demo_table_new(const demo_col *cols, int n)
{
	demo_table *t = xcalloc(1, sizeof(*t));
	t->cols = cols;
	t->ncols = n;
	return t;
}

void demo_table_add(demo_table *t, ...)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->cells = xrealloc(t->cells, (size_t)t->cap * (size_t)t->ncols *
						      sizeof(cell));
	}
	cell *row = &t->cells[(size_t)t->nrows * (size_t)t->ncols];
	va_list ap;
	va_start(ap, t);
	for (int c = 0; c < t->ncols; c++) {
		row[c].s = NULL;
		row[c].v = NAN;
		switch (t->cols[c].kind) {
		case 's':
			row[c].s = xstrdup(va_arg(ap, const char *));
			break;
		case 'i':
			row[c].v = (double)va_arg(ap, int64_t);
			break;
		default:
			row[c].v = va_arg(ap, double);
			break;
		}
	}
	va_end(ap);
	t->nrows++;
}

static void cell_text(const demo_table *t, int r, int c, char *buf, size_t len)
{
	const cell *x = &t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
	if (t->cols[c].kind == 's')
		snprintf(buf, len, "%s", x->s);
	else if (isnan(x->v))
		snprintf(buf, len, "-");
	else if (t->cols[c].kind == 'i')
		snprintf(buf, len, "%.0f", x->v);
	else
		snprintf(buf, len, "%.*f", t->cols[c].prec, x->v);
}

void demo_table_print(const demo_table *t)
{
	int w[32] = {0};
	char buf[256];
	for (int c = 0; c < t->ncols && c < 32; c++) {
		w[c] = (int)strlen(t->cols[c].name);
		for (int r = 0; r < t->nrows; r++) {
			cell_text(t, r, c, buf, sizeof(buf));
			if ((int)strlen(buf) > w[c])
				w[c] = (int)strlen(buf);
		}
	}
	for (int c = 0; c < t->ncols && c < 32; c++)
		printf(t->cols[c].kind == 's' ? "%-*s  " : "%*s  ", w[c],
		       t->cols[c].name);
	printf("\n");
	for (int c = 0; c < t->ncols && c < 32; c++) {
		for (int k = 0; k < w[c]; k++)
			putchar('-');
		printf("  ");
	}
	printf("\n");
	for (int r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncols && c < 32; c++) {
			cell_text(t, r, c, buf, sizeof(buf));
			printf(t->cols[c].kind == 's' ? "%-*s  " : "%*s  ", w[c],
			       buf);
		}
		printf("\n");
	}
	fflush(stdout);
}

int demo_table_rows(const demo_table *t)
{
	return t->nrows;
}

static int col_index(const demo_table *t, const char *col)
{
	for (int c = 0; c < t->ncols; c++)
		if (!strcmp(t->cols[c].name, col))
			return c;
	return -1;
}

double demo_table_num(const demo_table *t, int row, const char *col)
{
	int c = col_index(t, col);
	if (c < 0 || row < 0 || row >= t->nrows || t->cols[c].kind == 's')
		return NAN;
	return t->cells[(size_t)row * (size_t)t->ncols + (size_t)c].v;
}

const char *demo_table_str(const demo_table *t, int row, const char *col)
{
	int c = col_index(t, col);
	if (c < 0 || row < 0 || row >= t->nrows || t->cols[c].kind != 's')
		return "";
	return t->cells[(size_t)row * (size_t)t->ncols + (size_t)c].s;
}

void demo_table_free(demo_table *t)
{
	if (!t)
		return;
	for (int r = 0; r < t->nrows; r++)
		for (int c = 0; c < t->ncols; c++)
			free(t->cells[(size_t)r * (size_t)t->ncols + (size_t)c].s);
	free(t->cells);
	free(t);
}

/* Verdict and notes: lines kept for the text and JSON outputs. */
typedef struct lines {
	char **v;
	int n;
} lines;
static lines verdict_lines, note_lines;

static void lines_add(lines *l, const char *fmt, va_list ap)
{
	char buf[1024];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	l->v = xrealloc(l->v, (size_t)(l->n + 1) * sizeof(char *));
	l->v[l->n++] = xstrdup(buf);
}

void demo_verdict(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	lines_add(&verdict_lines, fmt, ap);
	va_end(ap);
}

void demo_note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	lines_add(&note_lines, fmt, ap);
	va_end(ap);
}

void demo_print_verdict(void)
{
	if (note_lines.n) {
		printf("\nNotes:\n");
		for (int i = 0; i < note_lines.n; i++)
			printf("  - %s\n", note_lines.v[i]);
	}
	printf("\nVerdict (computed from the measurements above):\n");
	for (int i = 0; i < verdict_lines.n; i++)
		printf("  * %s\n", verdict_lines.v[i]);
	fflush(stdout);
}

static void csv_str(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void num_out(FILE *f, double v, bool json)
{
	if (isnan(v) || isinf(v))
		fputs(json ? "null" : "", f);
	else if (v == floor(v) && fabs(v) < 1e15)
		fprintf(f, "%.0f", v);
	else
		fprintf(f, "%.6g", v);
}

static int close_checked(FILE *f, const char *path)
{
	int bad = ferror(f);
	if (fclose(f) || bad) {
		demo_err("cannot write %s", path);
		return -1;
	}
	return 0;
}

int demo_write_outputs(const demo_opts *o, const demo_table *t,
		       const char *extra_json)
{
	int rc = 0;
	if (o->csv) {
		FILE *f = fopen(o->csv, "w");
		if (!f) {
			demo_err("cannot create %s: %s", o->csv, strerror(errno));
			return -1;
		}
		for (int c = 0; c < t->ncols; c++)
			fprintf(f, "%s%s", c ? "," : "", t->cols[c].name);
		fputc('\n', f);
		for (int r = 0; r < t->nrows; r++) {
			for (int c = 0; c < t->ncols; c++) {
				const cell *x = &t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
				if (c)
					fputc(',', f);
				if (t->cols[c].kind == 's')
					csv_str(f, x->s);
				else
					num_out(f, x->v, false);
			}
			fputc('\n', f);
		}
		rc |= close_checked(f, o->csv);
	}
	if (o->json) {
		FILE *f = fopen(o->json, "w");
		if (!f) {
			demo_err("cannot create %s: %s", o->json, strerror(errno));
			return -1;
		}
		fprintf(f, "{\n  \"demo\": ");
		json_str(f, demo_prog);
		fprintf(f, ",\n  \"cpus\": %d,\n  \"parex\": ", demo_cpus());
		json_str(f, px_version());
		if (extra_json && *extra_json)
			fprintf(f, ",\n  %s", extra_json);
		fprintf(f, ",\n  \"rows\": [");
		for (int r = 0; r < t->nrows; r++) {
			fprintf(f, "%s\n    {", r ? "," : "");
			for (int c = 0; c < t->ncols; c++) {
				const cell *x = &t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
				fprintf(f, "%s", c ? ", " : "");
				json_str(f, t->cols[c].name);
				fputs(": ", f);
				if (t->cols[c].kind == 's')
					json_str(f, x->s);
				else
					num_out(f, x->v, true);
			}
			fputc('}', f);
		}
		fprintf(f, "\n  ],\n  \"notes\": [");
		for (int i = 0; i < note_lines.n; i++) {
			fprintf(f, "%s\n    ", i ? "," : "");
			json_str(f, note_lines.v[i]);
		}
		fprintf(f, "\n  ],\n  \"verdict\": [");
		for (int i = 0; i < verdict_lines.n; i++) {
			fprintf(f, "%s\n    ", i ? "," : "");
			json_str(f, verdict_lines.v[i]);
		}
		fprintf(f, "\n  ]\n}\n");
		rc |= close_checked(f, o->json);
	}
	return rc ? -1 : 0;
}

/* ---- progress ------------------------------------------------------------------- */

static double progress_start = -1, progress_last;
static int progress_shown = -1; /* -1: unknown, 0: no terminal, 1: ok */
static bool progress_drawn;

void demo_progress(const char *label, size_t done, size_t total)
{
	double now = demo_now();
	if (progress_shown < 0) {
		progress_shown = isatty(STDERR_FILENO) ? 1 : 0;
		progress_start = now;
	}
	if (!progress_shown || now - progress_start < 1.0 ||
	    (now - progress_last < 0.1 && done < total))
		return;
	progress_last = now;
	fprintf(stderr, "\r\033[K%s: %s %zu/%zu (%.0f s)", demo_prog, label,
		done, total, now - progress_start);
	progress_drawn = true;
}

void demo_progress_clear(void)
{
	if (progress_drawn) {
		fprintf(stderr, "\r\033[K");
		progress_drawn = false;
	}
}

/* ---- gnuplot --------------------------------------------------------------------- */

static bool have_program(const char *name)
{
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/bin:/bin";
	char *dup = xstrdup(path), *save = NULL;
	bool found = false;
	for (char *dir = strtok_r(dup, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char full[4096];
		snprintf(full, sizeof(full), "%s/%s", *dir ? dir : ".", name);
		found = access(full, X_OK) == 0;
	}
	free(dup);
	return found;
}

/* Replaces every "$DATA" and "$OUT" in script. */
static char *expand(const char *script, const char *data, const char *out)
{
	size_t cap = strlen(script) + 1, n = 0;
	char *s = xcalloc(cap, 1);
	for (const char *p = script; *p;) {
		const char *rep = NULL;
		size_t skip = 0;
		if (!strncmp(p, "$DATA", 5)) {
			rep = data;
			skip = 5;
		} else if (!strncmp(p, "$OUT", 4)) {
			rep = out;
			skip = 4;
		}
		size_t add = rep ? strlen(rep) : 1;
		if (n + add + 1 > cap) {
			cap = 2 * (n + add + 1);
			s = xrealloc(s, cap);
		}
		if (rep) {
			memcpy(s + n, rep, add);
			p += skip;
		} else {
			s[n] = *p++;
		}
		n += add;
		s[n] = 0;
	}
	return s;
}

int demo_plot(const char *png, const char *script, const char *data)
{
	if (!have_program("gnuplot")) {
		demo_err("--plot: gnuplot is not installed (Debian: apt-get install gnuplot-nox); %s not written",
			 png);
		return -1;
	}
	if (strpbrk(png, "'\"\\\n")) {
		demo_err("--plot: file name must not contain quotes or backslashes");
		return -1;
	}
	char tmpl[] = "/tmp/parex-demo-XXXXXX";
	int fd = mkstemp(tmpl);
	if (fd < 0) {
		demo_err("--plot: cannot create a temporary file: %s", strerror(errno));
		return -1;
	}
	size_t len = strlen(data);
	bool ok = write(fd, data, len) == (ssize_t)len;
	close(fd);
	char *s = expand(script, tmpl, png);
	int rc = -1;
	if (ok) {
		FILE *g = popen("gnuplot 2>&1", "w");
		if (g) {
			fputs(s, g);
			int st = pclose(g);
			rc = (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : -1;
		}
	}
	unlink(tmpl);
	free(s);
	struct stat sb;
	if (rc || stat(png, &sb) || sb.st_size == 0) {
		demo_err("--plot: gnuplot failed; %s not written", png);
		return -1;
	}
	return 0;
}

int demo_plot_bars(const char *png, const char *title, const char *ylabel,
		   bool logscale, const char *data)
{
	char script[1024];
	snprintf(script, sizeof(script),
		 "set terminal pngcairo noenhanced size 900,500\nset output '$OUT'\n"
		 "set title '%s'\n%s%s%s%s"
		 "set style fill solid 0.6\nset boxwidth 0.6\nset grid ytics\n"
		 "set xtics rotate by -20\n"
		 "plot '$DATA' using 0:2:xtic(1) with boxes notitle\n",
		 title, ylabel ? "set ylabel '" : "", ylabel ? ylabel : "",
		 ylabel ? "'\n" : "",
		 logscale ? "set logscale y\n" : "set yrange [0:*]\n");
	if (demo_plot(png, script, data) != 0)
		return -1;
	printf("\npicture: %s\n", png);
	return 0;
}

int demo_pick_kinds(const demo_opts *o, const demo_envcfg *env, bool *threads,
		    bool *processes)
{
	*threads = *processes = true;
	if (o->nbackends) {
		*threads = *processes = false;
		for (int i = 0; i < o->nbackends; i++) {
			const char *b = o->backends[i];
			if (!strcmp(b, "all"))
				*threads = *processes = true;
			else if (!strncmp(b, "thread", 6) || !strncmp(b, "inline", 6))
				*threads = true;
			else if (!strncmp(b, "process", 7))
				*processes = true;
			else {
				demo_err("unknown backend '%s' (expected thread, process or all)", b);
				return 2;
			}
		}
	} else if (env->active) {
		*threads = strcmp(env->backend, "process") != 0;
		*processes = !*threads;
	}
	return 0;
}
