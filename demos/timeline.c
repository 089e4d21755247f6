/*
 * demos/timeline.c - reading parex's task timelines back and drawing them.
 * See timeline.h. The trace format is lib/trace.c's: complete events ("X")
 * per task on tid = worker + 1, or async begin/end pairs ("b"/"e", id = the
 * operation's number) for an I/O context; args.worker names the worker, -1
 * for tasks that never ran.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common.h"
#include "timeline.h"

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		demo_err("out of memory");
		exit(1);
	}
	return p;
}

int demo_tl_tmpname(char *buf, size_t len)
{
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	snprintf(buf, len, "%s/parex-trace-XXXXXX.json", dir);
	int fd = mkstemps(buf, 5);
	if (fd < 0) {
		demo_err("--timeline: cannot create a temporary file in %s: %s", dir,
			 strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

static void add_task(demo_tl *tl, size_t *cap, int worker, double s, double e)
{
	if ((size_t)tl->n == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		tl->tasks = xrealloc(tl->tasks, *cap * sizeof(*tl->tasks));
	}
	tl->tasks[tl->n++] = (demo_tl_task){ worker, s, e };
	if (worker + 1 > tl->workers)
		tl->workers = worker + 1;
	if (tl->n == 1 || s < tl->first_ms)
		tl->first_ms = s;
}

/* An async begin waiting for its end, by operation number. */
typedef struct open_op {
	double start;
	int worker;
	int open;
} open_op;

int demo_tl_read(const char *path, const char *label, demo_tl *tl)
{
	memset(tl, 0, sizeof(*tl));
	snprintf(tl->label, sizeof(tl->label), "%s", label);
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr);
	json_t *evs = doc ? json_object_get(doc, "traceEvents") : NULL;
	if (!json_is_array(evs)) {
		demo_err("--timeline: %s: not a parex trace (%s)", path,
			 doc ? "no traceEvents" : jerr.text);
		json_decref(doc);
		return -1;
	}
	size_t cap = 0, nops = 0, i;
	open_op *ops = NULL;
	json_t *ev;
	json_array_foreach(evs, i, ev) {
		const char *ph = json_string_value(json_object_get(ev, "ph"));
		json_t *args = json_object_get(ev, "args");
		double ts = json_number_value(json_object_get(ev, "ts")) / 1e3;
		if (!ph)
			continue;
		if (!strcmp(ph, "X")) {
			int w = (int)json_integer_value(json_object_get(args, "worker"));
			double dur = json_number_value(json_object_get(ev, "dur")) / 1e3;
			if (w >= 0 && w < 4096)
				add_task(tl, &cap, w, ts, ts + dur);
		} else if (!strcmp(ph, "b") || !strcmp(ph, "e")) {
			json_int_t id = json_integer_value(json_object_get(ev, "id"));
			if (id < 0 || id > (1 << 24))
				continue;
			if ((size_t)id >= nops) {
				size_t n = (size_t)id * 2 + 64;
				ops = xrealloc(ops, n * sizeof(*ops));
				memset(ops + nops, 0, (n - nops) * sizeof(*ops));
				nops = n;
			}
			open_op *op = &ops[id];
			if (ph[0] == 'b') {
				op->start = ts;
				op->worker = (int)json_integer_value(json_object_get(args, "worker"));
				op->open = 1;
			} else if (op->open && op->worker >= 0 && op->worker < 4096) {
				add_task(tl, &cap, op->worker, op->start, ts);
				op->open = 0;
			}
		}
	}
	free(ops);
	json_decref(doc);
	unlink(path);
	return 0;
}

void demo_tl_free(demo_tl *tl)
{
	free(tl->tasks);
	memset(tl, 0, sizeof(*tl));
}

/* A growing string. */
typedef struct sbuf {
	char *s;
	size_t n, cap;
} sbuf;

static void __attribute__((format(printf, 2, 3))) sb_printf(sbuf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int w = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0,
				  fmt, ap);
		va_end(ap);
		if (w < 0)
			return;
		if (b->s && b->n + (size_t)w < b->cap) {
			b->n += (size_t)w;
			return;
		}
		b->cap = (b->cap + (size_t)w + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
}

/* A label gnuplot can take between single quotes. */
static void quote_free(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
	for (char *p = dst; *p; p++)
		if (*p == '\'' || *p == '\\' || *p == '\n')
			*p = '_';
}

int demo_tl_plot_lanes(const char *png, const char *title, const demo_tl *tls,
		       int n)
{
	/* Lanes from the top: run 0's workers first, a blank lane between
	 * runs. y counts down so that run 0 is at the top. */
	int total = 0;
	for (int i = 0; i < n; i++)
		total += tls[i].workers + (i + 1 < n);
	if (total == 0) {
		demo_err("--timeline: no task ran in the traced runs; %s not written", png);
		return -1;
	}
	sbuf data = { 0 }, script = { 0 };
	char t[160];
	quote_free(t, sizeof(t), title);
	sb_printf(&script,
		  "set terminal pngcairo noenhanced size 1000,%d\nset output '$OUT'\n"
		  "set title '%s'\nset xlabel 'ms from the run''s first task'\n"
		  "set yrange [-0.7:%d]\nset grid xtics\nset key outside right top\n"
		  "set ytics (",
		  160 + 26 * total, t, total);
	int lane = 0;
	for (int i = 0; i < n; i++) {
		char l[64];
		quote_free(l, sizeof(l), tls[i].label);
		for (int w = 0; w < tls[i].workers; w++, lane++)
			sb_printf(&script, "%s'%s w%d' %d", lane ? ", " : "", l, w,
				  total - 1 - lane);
		lane += i + 1 < n;
	}
	sb_printf(&script, ")\nplot ");
	lane = 0;
	int blocks = 0;
	for (int i = 0; i < n; i++) {
		const demo_tl *tl = &tls[i];
		if (tl->n) {
			for (int k = 0; k < tl->n; k++) {
				const demo_tl_task *x = &tl->tasks[k];
				double s = x->start_ms - tl->first_ms, e = x->end_ms - tl->first_ms;
				sb_printf(&data, "%.4f %d %.4f 0.38\n", (s + e) / 2,
					  total - 1 - (lane + x->worker), (e - s) / 2);
			}
			sb_printf(&data, "\n\n");
			char l[64];
			quote_free(l, sizeof(l), tl->label);
			sb_printf(&script,
				  "%s'$DATA' index %d using 1:2:3:4 with boxxyerror "
				  "fs solid 0.75 border lc rgb 'white' lc %d title '%s'",
				  blocks ? ", " : "", blocks, i + 1, l);
			blocks++;
		}
		lane += tl->workers + (i + 1 < n);
	}
	sb_printf(&script, "\n");
	int rc = demo_plot(png, script.s, data.s);
	free(script.s);
	free(data.s);
	return rc;
}

static int cmp_edge(const void *a, const void *b)
{
	const double *x = a, *y = b;
	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] < y[1] ? -1 : x[1] > y[1]; /* ends (-1) before starts */
}

int demo_tl_plot_inflight(const char *png, const char *title,
			  const demo_tl *tls, int n)
{
	sbuf data = { 0 }, script = { 0 };
	char t[160];
	quote_free(t, sizeof(t), title);
	sb_printf(&script,
		  "set terminal pngcairo noenhanced size 1000,500\nset output '$OUT'\n"
		  "set title '%s'\nset xlabel 'ms from the run''s first request'\n"
		  "set ylabel 'requests in flight'\nset yrange [0:*]\nset grid\n"
		  "set key left top\nplot ",
		  t);
	int blocks = 0;
	for (int i = 0; i < n; i++) {
		const demo_tl *tl = &tls[i];
		if (!tl->n)
			continue;
		double *edges = xrealloc(NULL, (size_t)tl->n * 4 * sizeof(double));
		for (int k = 0; k < tl->n; k++) {
			edges[4 * k] = tl->tasks[k].start_ms - tl->first_ms;
			edges[4 * k + 1] = 1;
			edges[4 * k + 2] = tl->tasks[k].end_ms - tl->first_ms;
			edges[4 * k + 3] = -1;
		}
		qsort(edges, (size_t)tl->n * 2, 2 * sizeof(double), cmp_edge);
		long cur = 0;
		sb_printf(&data, "0 0\n");
		for (int k = 0; k < 2 * tl->n; k++) {
			cur += (long)edges[2 * k + 1];
			sb_printf(&data, "%.4f %ld\n", edges[2 * k], cur);
		}
		sb_printf(&data, "\n\n");
		free(edges);
		char l[64];
		quote_free(l, sizeof(l), tl->label);
		sb_printf(&script, "%s'$DATA' index %d using 1:2 with steps lw 2 title '%s'",
			  blocks ? ", " : "", blocks, l);
		blocks++;
	}
	if (!blocks) {
		free(script.s);
		free(data.s);
		demo_err("--timeline: nothing ran in the traced runs; %s not written", png);
		return -1;
	}
	sb_printf(&script, "\n");
	int rc = demo_plot(png, script.s, data.s);
	free(script.s);
	free(data.s);
	return rc;
}
