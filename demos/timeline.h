/*
 * demos/timeline.h - task timelines in the demos: a run traced by parex
 * (the executor key trace=PATH, or $PAREX_TRACE for an I/O context) is read
 * back from its Chrome trace-event JSON and drawn with gnuplot: one lane per
 * worker (demo_cpu), or the requests in flight over time (demo_io).
 *
 * Not part of the parex library; like common.h, exits on out of memory.
 */
#ifndef PAREX_DEMOS_TIMELINE_H
#define PAREX_DEMOS_TIMELINE_H

#include <stddef.h>

/* One task (or I/O operation) that ran: its worker and when, in ms from
 * the trace's start. */
typedef struct demo_tl_task {
	int worker;
	double start_ms, end_ms;
} demo_tl_task;

/* One traced run. */
typedef struct demo_tl {
	char label[64];
	demo_tl_task *tasks; /* tasks that ran (not-run ones are left out) */
	int n;
	int workers;         /* lanes: highest worker + 1 */
	double first_ms;     /* earliest start */
} demo_tl;

/*
 * A fresh temporary file name for a trace (in $TMPDIR or /tmp, ending in
 * .json), created empty so the name is ours. Returns 0, or -1 after a
 * one-line error.
 */
int demo_tl_tmpname(char *buf, size_t len);

/*
 * Reads the trace parex wrote to path into tl, labelled label, then deletes
 * the file. Returns 0, or -1 after a one-line error (the file is left).
 */
int demo_tl_read(const char *path, const char *label, demo_tl *tl);

void demo_tl_free(demo_tl *tl);

/*
 * Draws the n timelines side by side on one time axis (ms from each run's
 * first start): one lane per worker, one bar per task, so that work
 * serialised by a GIL shows as bars that never overlap across lanes.
 * Returns 0 when png was written, else -1 (said on stderr).
 */
int demo_tl_plot_lanes(const char *png, const char *title, const demo_tl *tls,
		       int n);

/*
 * Draws, for each of the n timelines, how many tasks or operations were in
 * flight (started, not ended) over time, from each run's first start.
 * Returns as demo_tl_plot_lanes().
 */
int demo_tl_plot_inflight(const char *png, const char *title,
			  const demo_tl *tls, int n);

#endif /* PAREX_DEMOS_TIMELINE_H */
