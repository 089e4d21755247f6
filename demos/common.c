/*
 * demos/common.c - shared helpers of the demos (see common.h).
 */
#include "common.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <parex/executor.h>
#if defined(__has_include)
#if __has_include(<parex/version.h>)
#include <parex/version.h>
#endif
#endif

const char *demo_prog = "demo";

void demo_err(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* One line, whatever the user typed: control characters in a quoted
	 * argument are shown as \xHH. */
	fprintf(stderr, "%s: ", demo_prog);
	for (const char *p = buf; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f)
			fprintf(stderr, "\\x%02x", c);
		else
			fputc(c, stderr);
	}
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
	/* The CPUs this process may run on (affinity mask), capped by a
	 * cgroup CPU quota: what parex itself sizes its pools by. */
	return px_available_parallelism();
}

/* quota/period from a cgroup file: v2 cpu.max ("max 100000" or "50000
 * 100000"), or v1's two files. NaN when unlimited or unreadable. */
static double quota_at(const char *dir)
{
	char path[4200];
	double q = NAN, p = NAN;
	snprintf(path, sizeof(path), "%s/cpu.max", dir);
	FILE *f = fopen(path, "re");
	if (f) {
		char qs[32] = "";
		if (fscanf(f, "%31s %lf", qs, &p) == 2 && strcmp(qs, "max"))
			q = atof(qs);
		fclose(f);
	} else {
		snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
		if ((f = fopen(path, "re"))) {
			if (fscanf(f, "%lf", &q) != 1 || q <= 0)
				q = NAN;
			fclose(f);
		}
		snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
		if ((f = fopen(path, "re"))) {
			if (fscanf(f, "%lf", &p) != 1)
				p = NAN;
			fclose(f);
		}
	}
	return q > 0 && p > 0 ? q / p : NAN;
}

/* Whether a comma-separated list of cgroup v1 controllers names name. */
static bool has_controller(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, name, n) && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

double demo_cpu_quota(void)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return NAN;
	char line[4096], rel[4096] = "";
	const char *root = NULL;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = 0;
		if (!strcmp(c1 + 1, "")) { /* v2: "0::/path" */
			root = "/sys/fs/cgroup";
			snprintf(rel, sizeof(rel), "%s", c2 + 1);
		} else if (has_controller(c1 + 1, "cpu")) {
			root = access("/sys/fs/cgroup/cpu", F_OK) ? "/sys/fs/cgroup/cpu,cpuacct"
								    : "/sys/fs/cgroup/cpu";
			snprintf(rel, sizeof(rel), "%s", c2 + 1);
			break; /* v1's cpu controller wins over the v2 line */
		}
	}
	fclose(f);
	if (!root)
		return NAN;
	/* The tightest quota on the way up to the root. */
	double best = NAN;
	for (;;) {
		char dir[4200];
		snprintf(dir, sizeof(dir), "%s%s", root, rel);
		double q = quota_at(dir);
		if (!isnan(q) && (isnan(best) || q < best))
			best = q;
		char *slash = strrchr(rel, '/');
		if (!slash || slash == rel)
			break;
		*slash = 0;
	}
	double q = quota_at(root);
	if (!isnan(q) && (isnan(best) || q < best))
		best = q;
	return best;
}

/* ---- options ------------------------------------------------------------- */

const char *demo_env_extra;

/* Prints "  left   help" with help wrapped to 79 columns at column indent. */
static void help_line(const char *left, const char *help, int indent)
{
	int col = printf("  %s", left);
	if (col + 2 > indent) {
		printf("\n");
		col = 0;
	}
	printf("%*s", indent - col, "");
	col = indent;
	const char *p = help;
	while (*p) {
		size_t w = strcspn(p, " ");
		if (col > indent && col + 1 + (int)w > 79) {
			printf("\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			putchar(' ');
			col++;
		}
		printf("%.*s", (int)w, p);
		col += (int)w;
		p += w;
		while (*p == ' ')
			p++;
	}
	putchar('\n');
}

typedef struct help_item {
	char left[48];
	const char *help;
} help_item;

static const struct {
	const char *left, *help;
} common_items[] = {
	{ "-b, --backend=SPEC",
	  "executor to run (repeatable; 'all': every default one); a parex spec: "
	  "thread, process, inline, thread:gil=1, process:shm_size=128M ... "
	  "Without it the demo runs the executor that $PAREX_EXECUTOR or the "
	  "configuration file configure, or, when neither is set, compares its "
	  "default backends" },
	{ "-w, --workers=N", "workers (threads or processes), 1..4096" },
	{ "--csv=FILE", "write the result table as CSV" },
	{ "--json=FILE", "write the results, notes and verdict as JSON" },
	{ "--plot=FILE.png", "draw a picture with gnuplot (if installed)" },
	{ "-h, --help", "this text" },
	{ "-V, --version", "print the parex version and exit" },
};
#define NCOMMON ((int)(sizeof(common_items) / sizeof(common_items[0])))

static const char env_help[] =
	"Environment:\n"
	"  PAREX_EXECUTOR     executor spec used when no --backend is given\n"
	"                     (e.g. thread:workers=2, thread:gil=1, process)\n"
	"  PAREX_CONFIG       configuration file read instead of ./parex.conf\n"
	"                     (the demos opt in to ./parex.conf; the library\n"
	"                     itself reads no file unless a program asks)\n"
	"  PAREX_IO           io backend of parex io: uring or threads\n"
	"  PATH               where gnuplot (--plot) and python3 are looked for\n";

static void usage(const char *about, const demo_option *extra, int n)
{
	help_item *items = xcalloc((size_t)(NCOMMON + n), sizeof(*items));
	int width = 0;
	for (int i = 0; i < NCOMMON + n; i++) {
		if (i < NCOMMON) {
			snprintf(items[i].left, sizeof(items[i].left), "%s",
				 common_items[i].left);
			items[i].help = common_items[i].help;
		} else {
			const demo_option *x = &extra[i - NCOMMON];
			if (x->kind == DEMO_OPT_FLAG)
				snprintf(items[i].left, sizeof(items[i].left),
					 "--%s", x->name);
			else
				snprintf(items[i].left, sizeof(items[i].left),
					 "--%s=%s", x->name, x->metavar);
			items[i].help = x->help;
		}
		int l = (int)strlen(items[i].left);
		if (l > width && l <= 24)
			width = l;
	}
	printf("%s\nCommon options (long options may be abbreviated):\n", about);
	for (int i = 0; i < NCOMMON + n; i++) {
		if (i == NCOMMON)
			printf("Options of %s:\n", demo_prog);
		help_line(items[i].left, items[i].help, width + 4);
	}
	printf("\n%s%s", env_help, demo_env_extra ? demo_env_extra : "");
	printf("\nExit status: 0 done, 1 run-time error, 2 usage error.\n");
	free(items);
}

static void version(void)
{
#ifdef PX_VERSION_STRING
	printf("%s (parex) %s\n", demo_prog, PX_VERSION_STRING);
#else
	printf("%s (parex) %s\n", demo_prog, px_version());
#endif
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

/* Output files created by demo_parse and not yet written: removed when the
 * demo exits early, so that no empty CSV or JSON is left behind. */
static const char *unfinished[3];

static void remove_unfinished(void)
{
	for (int i = 0; i < 3; i++)
		if (unfinished[i])
			unlink(unfinished[i]);
}

/* Opens an output file named on the command line, before any measuring:
 * a name that cannot be written fails the run at once (usage error). */
static int open_output(const char *opt, const char *path, FILE **f)
{
	static bool registered;
	if (!registered) {
		atexit(remove_unfinished);
		registered = true;
	}
	if (!*path) {
		demo_err("--%s needs a file name", opt);
		return -1;
	}
	if (*f)
		fclose(*f);
	*f = fopen(path, "w");
	if (!*f) {
		demo_err("cannot create %s (--%s): %s", path, opt, strerror(errno));
		return -1;
	}
	unfinished[opt[0] == 'c' ? 0 : opt[0] == 'j' ? 1 : 2] = path;
	return 0;
}

enum { OPT_CSV = 1000, OPT_JSON, OPT_PLOT, OPT_EXTRA = 2000 };

/* How many long options start with prefix (getopt_long does not say why it
 * rejected an option; this tells "ambiguous" from "unknown"). */
static int prefix_matches(const struct option *lo, const char *arg)
{
	size_t n = strcspn(arg, "=");
	int k = 0;
	for (; lo->name; lo++)
		if (!strncmp(lo->name, arg, n))
			k++;
	return k;
}

int demo_parse(int argc, char **argv, const char *about,
	       const demo_option *extra, int n, demo_opts *o)
{
	const char *slash = strrchr(argv[0], '/');
	demo_prog = slash ? slash + 1 : argv[0];
	memset(o, 0, sizeof(*o));
	struct option *lo = xcalloc((size_t)n + 8, sizeof(*lo));
	int k = 0;
	lo[k++] = (struct option){ "backend", required_argument, NULL, 'b' };
	lo[k++] = (struct option){ "workers", required_argument, NULL, 'w' };
	lo[k++] = (struct option){ "csv", required_argument, NULL, OPT_CSV };
	lo[k++] = (struct option){ "json", required_argument, NULL, OPT_JSON };
	lo[k++] = (struct option){ "plot", required_argument, NULL, OPT_PLOT };
	lo[k++] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[k++] = (struct option){ "version", no_argument, NULL, 'V' };
	for (int i = 0; i < n; i++)
		lo[k++] = (struct option){ extra[i].name,
					   extra[i].kind == DEMO_OPT_FLAG ? no_argument
									  : required_argument,
					   NULL, OPT_EXTRA + i };
	int rc = 0, c;
	opterr = 0;
	optind = 1;
	while (!rc && (c = getopt_long(argc, argv, ":b:w:hV", lo, NULL)) != -1) {
		const char *v = optarg;
		const char *bad = argv[optind - 1];
		double d;
		switch (c) {
		case 'h':
			usage(about, extra, n);
			rc = 1;
			break;
		case 'V':
			version();
			rc = 1;
			break;
		case 'b':
			if (!*v) {
				demo_err("--backend needs a spec (try --help)");
				rc = -1;
			} else if (o->nbackends == 8) {
				demo_err("at most 8 --backend options");
				rc = -1;
			} else {
				o->backends[o->nbackends++] = v;
			}
			break;
		case 'w':
			if (parse_num(v, true, 1, 4096, &d)) {
				demo_err("bad value '%s' for --workers (expected an integer 1..4096)", v);
				rc = -1;
			} else {
				o->workers = (int)d;
			}
			break;
		case OPT_CSV:
			o->csv = v;
			rc = open_output("csv", v, &o->csv_f);
			break;
		case OPT_JSON:
			o->json = v;
			rc = open_output("json", v, &o->json_f);
			break;
		case OPT_PLOT: {
			FILE *f = NULL;
			o->plot = v;
			rc = open_output("plot", v, &f);
			if (f)
				fclose(f);
			break;
		}
		case ':':
			if (optopt >= OPT_EXTRA)
				demo_err("option --%s needs a value (try --help)",
					 extra[optopt - OPT_EXTRA].name);
			else
				demo_err("option '%s' needs a value (try --help)", bad);
			rc = -1;
			break;
		case '?':
			if (optopt >= OPT_EXTRA)
				demo_err("option --%s takes no value",
					 extra[optopt - OPT_EXTRA].name);
			else if (optopt)
				demo_err("unknown option '-%c' (try --help)", optopt);
			else if (!strncmp(bad, "--", 2) &&
				 prefix_matches(lo, bad + 2) > 1)
				demo_err("ambiguous option '%s' (try --help)", bad);
			else
				demo_err("unknown option '%s' (try --help)", bad);
			rc = -1;
			break;
		default: {
			const demo_option *opt = &extra[c - OPT_EXTRA];
			if (opt->kind == DEMO_OPT_FLAG) {
				*(bool *)opt->dst = true;
				break;
			}
			if (opt->kind == DEMO_OPT_STR) {
				*(const char **)opt->dst = v;
				break;
			}
			bool integer = opt->kind == DEMO_OPT_INT;
			if (parse_num(v, integer, opt->min, opt->max, &d)) {
				if (integer)
					demo_err("bad value '%s' for --%s (expected an integer %.0f..%.0f)",
						 v, opt->name, opt->min, opt->max);
				else
					demo_err("bad value '%s' for --%s (expected a number %g..%g)",
						 v, opt->name, opt->min, opt->max);
				rc = -1;
			} else if (integer) {
				*(int64_t *)opt->dst = (int64_t)d;
			} else {
				*(double *)opt->dst = d;
			}
			break;
		}
		}
	}
	if (!rc && optind < argc) {
		demo_err("unexpected argument '%s' (try --help)", argv[optind]);
		rc = -1;
	}
	/* A --backend that does not parse is a usage error, found before any
	 * measuring. */
	for (int i = 0; !rc && i < o->nbackends; i++) {
		px_config *cfg;
		if (!strcmp(o->backends[i], "all") || px_config_create(&cfg))
			continue;
		if (px_config_apply(cfg, o->backends[i], "--backend")) {
			demo_err("%s", px_config_error(cfg));
			rc = -1;
		}
		px_config_destroy(cfg);
	}
	free(lo);
	return rc;
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

/* ---- repeated measurements and the machine's load ---------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double demo_quantile(const double *v, int n, double q)
{
	if (n <= 0)
		return NAN;
	double *s = xcalloc((size_t)n, sizeof(double));
	memcpy(s, v, (size_t)n * sizeof(double));
	qsort(s, (size_t)n, sizeof(double), cmp_double);
	double pos = q * (n - 1);
	int i = (int)floor(pos);
	double r = i + 1 < n ? s[i] + (pos - i) * (s[i + 1] - s[i]) : s[i];
	free(s);
	return r;
}

double demo_median(const double *v, int n)
{
	return demo_quantile(v, n, 0.5);
}

/* Busy and total jiffies over all CPUs, and the steal part, /proc/stat. */
static int proc_stat(double *busy, double *total, double *steal)
{
	FILE *f = fopen("/proc/stat", "re");
	if (!f)
		return -1;
	unsigned long long v[10] = { 0 };
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
		       &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
		       &v[8], &v[9]);
	fclose(f);
	if (n < 4)
		return -1;
	/* user nice system idle iowait irq softirq steal guest guest_nice;
	 * guest time is already inside user. */
	double t = 0;
	for (int i = 0; i < 8 && i < n; i++)
		t += (double)v[i];
	*total = t;
	*busy = t - (double)v[3] - (double)v[4];
	*steal = n > 7 ? (double)v[7] : 0;
	return 0;
}

static void loadavg(double out[3])
{
	out[0] = out[1] = out[2] = NAN;
	FILE *f = fopen("/proc/loadavg", "re");
	if (!f)
		return;
	if (fscanf(f, "%lf %lf %lf", &out[0], &out[1], &out[2]) != 3)
		out[0] = out[1] = out[2] = NAN;
	fclose(f);
}

void demo_machine_begin(demo_machine *m)
{
	memset(m, 0, sizeof(*m));
	loadavg(m->load_before);
	m->ok = proc_stat(&m->busy0, &m->total0, &m->steal0) == 0;
	m->own0 = cpu_seconds();
	m->t0 = demo_now();
}

void demo_machine_end(demo_machine *m)
{
	double busy, total, steal;
	m->wall = demo_now() - m->t0;
	loadavg(m->load_after);
	m->others_cpus = m->steal_cpus = NAN;
	m->available_cpus = NAN;
	if (!m->ok || proc_stat(&busy, &total, &steal) || m->wall <= 0)
		return;
	double hz = (double)sysconf(_SC_CLK_TCK);
	double own = cpu_seconds() - m->own0;
	double others = (busy - m->busy0) / hz - own;
	m->others_cpus = others > 0 ? others / m->wall : 0;
	m->steal_cpus = (steal - m->steal0) / hz / m->wall;
	/* Others may run on CPUs this process may not use (an affinity mask),
	 * and a CPU quota caps what is left. */
	double online = (double)sysconf(_SC_NPROCESSORS_ONLN);
	m->available_cpus = online - m->others_cpus;
	if (m->available_cpus > demo_cpus())
		m->available_cpus = demo_cpus();
	m->quota_cpus = demo_cpu_quota();
	if (!isnan(m->quota_cpus) && m->available_cpus > m->quota_cpus)
		m->available_cpus = m->quota_cpus;
	if (m->available_cpus < 0)
		m->available_cpus = 0;
}

json_t *demo_machine_json(const demo_machine *m)
{
	json_t *j = json_object();
	char model[256] = "", line[512];
	FILE *f = fopen("/proc/cpuinfo", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');
		if (!strncmp(line, "model name", 10) && c) {
			snprintf(model, sizeof(model), "%s", c + 2);
			model[strcspn(model, "\n")] = 0;
			break;
		}
	}
	if (f)
		fclose(f);
	struct utsname u;
	char kernel[400] = "";
	if (!uname(&u))
		snprintf(kernel, sizeof(kernel), "%s %s %s", u.sysname, u.release,
			 u.machine);
	json_object_set_new(j, "cpus", json_integer(demo_cpus()));
	json_object_set_new(j, "online_cpus",
			    json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_set_new(j, "model", demo_json_str(model));
	json_object_set_new(j, "kernel", demo_json_str(kernel));
	json_t *lb = json_array(), *la = json_array();
	for (int i = 0; i < 3; i++) {
		json_array_append_new(lb, isnan(m->load_before[i]) ? json_null()
								  : json_real(m->load_before[i]));
		json_array_append_new(la, isnan(m->load_after[i]) ? json_null()
								 : json_real(m->load_after[i]));
	}
	json_object_set_new(j, "load_before", lb);
	json_object_set_new(j, "load_after", la);
	json_object_set_new(j, "run_wall_s", json_real(m->wall));
#define NUM_OR_NULL(x) (isnan(x) ? json_null() : json_real(x))
	json_object_set_new(j, "others_cpus", NUM_OR_NULL(m->others_cpus));
	json_object_set_new(j, "steal_cpus", NUM_OR_NULL(m->steal_cpus));
	json_object_set_new(j, "available_cpus", NUM_OR_NULL(m->available_cpus));
	json_object_set_new(j, "quota_cpus", NUM_OR_NULL(m->quota_cpus));
#undef NUM_OR_NULL
	return j;
}

/* ---- CPython beside the demos ------------------------------------------------ */

/* The script: next to this program, else in the source tree. */
static int find_script(const char *name, char *out, size_t len)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			snprintf(out, len, "%s/%s", exe, name);
			if (!access(out, R_OK))
				return 0;
		}
	}
#ifdef PX_DEMO_SOURCE_DIR
	snprintf(out, len, "%s/%s", PX_DEMO_SOURCE_DIR, name);
	if (!access(out, R_OK))
		return 0;
#endif
	return -1;
}

/* The interpreter: $PAREX_DEMO_PYTHON (empty: none), else python3 on PATH. */
static const char *python_path(char *why, size_t len)
{
	const char *p = getenv("PAREX_DEMO_PYTHON");
	if (p && !*p) {
		snprintf(why, len, "PAREX_DEMO_PYTHON is empty");
		return NULL;
	}
	if (!p)
		p = "python3";
	if (strchr(p, '/')) {
		if (access(p, X_OK)) {
			snprintf(why, len, "%s is not an executable", p);
			return NULL;
		}
		return p;
	}
	const char *path = getenv("PATH");
	char dup[4096];
	snprintf(dup, sizeof(dup), "%s", path ? path : "/usr/bin:/bin");
	char *save = NULL;
	static char full[4096 + 64];
	for (char *d = strtok_r(dup, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(full, sizeof(full), "%s/%s", *d ? d : ".", p);
		if (!access(full, X_OK))
			return full;
	}
	snprintf(why, len, "%s is not installed", p);
	return NULL;
}

json_t *demo_python_run(const char *script, const char *const *args, char *why,
			size_t len)
{
	char path[4200];
	const char *py = python_path(why, len);
	if (!py)
		return NULL;
	if (find_script(script, path, sizeof(path))) {
		snprintf(why, len, "%s not found next to %s", script, demo_prog);
		return NULL;
	}
	const char *argv[32] = { py, path };
	int n = 2;
	for (int i = 0; args && args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	/* stdout through a pipe; stderr into a temporary file, so that a long
	 * traceback cannot fill a second pipe while this side reads the first. */
	int fd[2];
	FILE *errf = tmpfile();
	if (!errf || pipe(fd)) {
		snprintf(why, len, "cannot run %s: %s", script, strerror(errno));
		if (errf)
			fclose(errf);
		return NULL;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 1);
		dup2(fileno(errf), 2);
		close(fd[0]);
		close(fd[1]);
		execv(py, (char *const *)argv);
		_exit(127);
	}
	close(fd[1]);
	if (pid < 0) {
		close(fd[0]);
		fclose(errf);
		snprintf(why, len, "fork: %s", strerror(errno));
		return NULL;
	}
	FILE *f = fdopen(fd[0], "r");
	json_error_t jerr;
	json_t *doc = f ? json_loadf(f, JSON_DISABLE_EOF_CHECK, &jerr) : NULL;
	if (f) {
		char sink[4096];
		while (fread(sink, 1, sizeof(sink), f) > 0)
			;
		fclose(f);
	} else {
		close(fd[0]);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	/* The script's last stderr line says why it failed. */
	char err[4096] = "", *last = err;
	long size = (fseek(errf, 0, SEEK_END), ftell(errf));
	long from = size > (long)sizeof(err) - 1 ? size - (long)sizeof(err) + 1 : 0;
	fseek(errf, from, SEEK_SET);
	size_t total = fread(err, 1, sizeof(err) - 1, errf);
	fclose(errf);
	err[total] = 0;
	while (total > 0 && (err[total - 1] == '\n' || err[total - 1] == '\r'))
		err[--total] = 0;
	char *nl = strrchr(err, '\n');
	if (nl)
		last = nl + 1;
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		snprintf(why, len, "%s failed (exit %d)%s%.300s", script,
			 WIFEXITED(st) ? WEXITSTATUS(st) : -1, *last ? ": " : "",
			 last);
		json_decref(doc);
		return NULL;
	}
	if (!doc)
		snprintf(why, len, "%s printed no valid JSON: %s", script, jerr.text);
	return doc;
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

/* The JSON document's extra members (demo_json_set) and verdict fields. */
static json_t *extra_doc, *verdict_fields;

json_t *demo_json_str(const char *s)
{
	json_t *j = json_string(s ? s : "");
	if (j)
		return j;
	/* Not UTF-8 (a URL given on the command line may hold any byte):
	 * keep the ASCII and replace the rest, so the document stays valid. */
	char *c = xstrdup(s);
	for (char *p = c; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(c);
	free(c);
	return j ? j : json_null();
}

void demo_json_set(const char *key, json_t *value)
{
	if (!extra_doc)
		extra_doc = json_object();
	json_object_set_new(extra_doc, key, value ? value : json_null());
}

void demo_verdict_field(const char *key, const char *value)
{
	if (!verdict_fields)
		verdict_fields = json_object();
	json_object_set_new(verdict_fields, key, demo_json_str(value));
}

/* CSV field (RFC 4180): quoted when it holds a separator, a quote, a line
 * break or leading/trailing blanks. */
static void csv_str(FILE *f, const char *s)
{
	size_t n = strlen(s);
	if (!strpbrk(s, ",\"\r\n") && !(n && (isspace((unsigned char)s[0]) ||
					     isspace((unsigned char)s[n - 1])))) {
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

/* The shortest decimal that reads back as exactly v. */
static void num_out(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		return;
	char buf[40];
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, f);
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

static json_t *lines_json(const lines *l)
{
	json_t *a = json_array();
	for (int i = 0; i < l->n; i++)
		json_array_append_new(a, demo_json_str(l->v[i]));
	return a;
}

static json_t *cell_json(const demo_table *t, int r, int c)
{
	const cell *x = &t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
	if (t->cols[c].kind == 's')
		return demo_json_str(x->s);
	if (isnan(x->v) || isinf(x->v))
		return json_null();
	if (t->cols[c].kind == 'i')
		return json_integer((json_int_t)x->v);
	return json_real(x->v);
}

int demo_write_outputs(demo_opts *o, const demo_table *t)
{
	int rc = 0;
	if (o->csv_f) {
		FILE *f = o->csv_f;
		o->csv_f = NULL;
		unfinished[0] = NULL;
		for (int c = 0; c < t->ncols; c++) {
			if (c)
				fputc(',', f);
			csv_str(f, t->cols[c].name);
		}
		fputc('\n', f);
		for (int r = 0; r < t->nrows; r++) {
			for (int c = 0; c < t->ncols; c++) {
				const cell *x = &t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
				if (c)
					fputc(',', f);
				if (t->cols[c].kind == 's')
					csv_str(f, x->s);
				else
					num_out(f, x->v);
			}
			fputc('\n', f);
		}
		rc |= close_checked(f, o->csv);
	}
	if (o->json_f) {
		FILE *f = o->json_f;
		o->json_f = NULL;
		unfinished[1] = NULL;
		json_t *doc = json_object();
		json_object_set_new(doc, "demo", demo_json_str(demo_prog));
		json_object_set_new(doc, "cpus", json_integer(demo_cpus()));
#ifdef PX_VERSION_STRING
		json_object_set_new(doc, "parex", demo_json_str(PX_VERSION_STRING));
#else
		json_object_set_new(doc, "parex", demo_json_str(px_version()));
#endif
		if (extra_doc)
			json_object_update(doc, extra_doc);
		json_t *rows = json_array();
		for (int r = 0; r < t->nrows; r++) {
			json_t *row = json_object();
			for (int c = 0; c < t->ncols; c++)
				json_object_set_new(row, t->cols[c].name,
						    cell_json(t, r, c));
			json_array_append_new(rows, row);
		}
		json_object_set_new(doc, "rows", rows);
		json_object_set_new(doc, "notes", lines_json(&note_lines));
		json_object_set_new(doc, "verdict", lines_json(&verdict_lines));
		json_object_set_new(doc, "verdicts",
				    verdict_fields ? json_incref(verdict_fields)
						   : json_object());
		if (json_dumpf(doc, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) ||
		    fputc('\n', f) == EOF)
			rc |= -1;
		json_decref(doc);
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
	if (unfinished[2] && !strcmp(unfinished[2], png))
		unfinished[2] = NULL; /* written: keep it */
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
