/*
 * mpi/backend.c - the `mpi` backend: the executor API over the ranks of an
 * MPI job launched as `mpirun -n N ./app` (mpi/README.md has the long form).
 *
 * Who runs what:
 *  - Every rank runs the program up to px_executor_open(). There, each rank
 *    starts one px-mpi thread (startup.c), which alone makes MPI calls (so
 *    MPI_THREAD_FUNNELED suffices: it is the thread that initialised MPI).
 *  - Rank 0 gets the executor (these ops). Its px-mpi thread (client.c)
 *    sends queued tasks to the rank with the most free credits
 *    (dispatch.c), receives results and completes the futures.
 *  - Ranks >= 1 never return from px_executor_open(): their px-mpi thread
 *    serves tasks on a local parex process pool (serve.c), created before
 *    MPI_Init so that no worker is forked from a process holding MPI state,
 *    until rank 0 leaves (its atexit handler sends EXIT); then they exit(0).
 * A task that crashes kills a worker of a local pool, never a rank: its
 * future fails with PX_EWORKERDIED and the job goes on.
 *
 * Locking: px__mpi.lock guards px__mpi and the attached executor's queue,
 * slot table and flags (mpi_internal.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parex/executor.h>

#include "mpi_internal.h"
#include "trace.h"

struct px__mpi_state px__mpi = { .lock = PTHREAD_MUTEX_INITIALIZER,
				 .cond = PTHREAD_COND_INITIALIZER,
				 .wake = PTHREAD_COND_INITIALIZER,
				 .mpi_lock = PTHREAD_MUTEX_INITIALIZER };

void px__mpi_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "parex mpi: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static const struct px__backend_ops mpi_ops;

/* Rank 0's executor, attached as px__mpi.cur. Under px__mpi.lock. */
static int attach_executor(px_executor **out, const struct px__config *cfg)
{
	if (px__mpi.cur || px__mpi.exit_req)
		return -EBUSY;
	struct px__mpi_ex *m = calloc(1, sizeof(*m));
	uint32_t n = 0;
	for (int k = 1; k < px__mpi.size; k++)
		n += (uint32_t)px__mpi.ranks[k].credits;
	if (m)
		m->slots = calloc(n, sizeof(*m->slots));
	if (!m || !m->slots) {
		free(m);
		return -ENOMEM;
	}
	px__executor_init(&m->ex, &mpi_ops, cfg);
	m->ex.cfg.workers = px__mpi.total_workers;
	m->cap = cfg->queue;
	m->nslots = n;
	for (uint32_t i = 0; i < n; i++)
		m->slots[i].next_free = i + 1 < n ? i + 1 : PX__MPI_NO_SLOT;
	m->free_head = 0;
	for (int k = 1; k < px__mpi.size; k++)
		px__mpi.ranks[k].used = 0;
	px__mpi.cur = m;
	*out = &m->ex;
	return 0;
}

static int mpi_create(px_executor **out, const struct px__config *cfg)
{
	pthread_mutex_lock(&px__mpi.lock);
	bool first = !px__mpi.started;
	int r = px__mpi_start(cfg);
	if (r || px__mpi.rank != 0) {
		pthread_mutex_unlock(&px__mpi.lock);
		if (r)
			return r;
		/* A serving rank: px-mpi serves until rank 0 leaves. */
		pthread_join(px__mpi.thr, NULL);
		px_executor_destroy(px__mpi.local);
		exit(0);
	}
	if (first)
		atexit(px__mpi_atexit);
	r = attach_executor(out, cfg);
	pthread_mutex_unlock(&px__mpi.lock);
	return r;
}

static int mpi_submit(px_executor *ex, px_future *f, unsigned flags,
		      int64_t timeout_ns)
{
	(void)timeout_ns; /* f->timeout_ns travels with the task */
	struct px__mpi_ex *m = (struct px__mpi_ex *)ex;
	pthread_mutex_lock(&px__mpi.lock);
	for (;;) {
		if (m->closed || px__mpi.exit_req) {
			pthread_mutex_unlock(&px__mpi.lock);
			return PX_ESHUTDOWN;
		}
		if (m->nq < m->cap)
			break;
		if (flags & PX_SUBMIT_NOWAIT) {
			pthread_mutex_unlock(&px__mpi.lock);
			return -EAGAIN;
		}
		pthread_cond_wait(&px__mpi.cond, &px__mpi.lock);
	}
	if (ex->trace && !ex->trace->track_name) {
		/* Before the first task's event: the file names tracks by
		 * rank and host. Read by px__trace_finish() after the waited
		 * shutdown, which took this lock. */
		ex->trace->track_arg = NULL;
		ex->trace->track_name = px__mpi_track_name;
	}
	f->qnext = NULL;
	if (m->qt)
		m->qt->qnext = f;
	else
		m->qh = f;
	m->qt = f;
	m->nq++;
	m->outstanding++;
	/* The first task out: this thread sends it itself if it can. A
	 * thread waiting for a task drives MPI itself, and px-mpi, napping
	 * since the last event (client.c), looks within a nap: it is woken
	 * only from a deep park, so that it stays off the CPUs a burst of
	 * round trips needs. With tasks out already, px-mpi or a waiting
	 * thread sends the task, batched with others. */
	bool drive = px__mpi.callers_drive && !m->inflight && m->nq == 1;
	if (px__mpi.idle && (px__mpi.deep || !px__mpi.callers_drive))
		pthread_cond_signal(&px__mpi.wake);
	pthread_mutex_unlock(&px__mpi.lock);
	if (drive)
		px__mpi_submit_drive();
	return 0;
}

static void mpi_shutdown(px_executor *ex, bool wait, bool cancel_pending)
{
	struct px__mpi_ex *m = (struct px__mpi_ex *)ex;
	pthread_mutex_lock(&px__mpi.lock);
	m->closed = true;
	if (cancel_pending)
		m->cancel_pending = true;
	pthread_cond_broadcast(&px__mpi.cond);
	pthread_cond_signal(&px__mpi.wake);
	while (wait && m->outstanding && !px__mpi.exit_req)
		pthread_cond_wait(&px__mpi.cond, &px__mpi.lock);
	pthread_mutex_unlock(&px__mpi.lock);
}

static void mpi_destroy(px_executor *ex)
{
	struct px__mpi_ex *m = (struct px__mpi_ex *)ex;
	pthread_mutex_lock(&px__mpi.lock);
	if (px__mpi.cur == m)
		px__mpi.cur = NULL;
	pthread_mutex_unlock(&px__mpi.lock);
	px__executor_fini(&m->ex); /* its task timeline, if traced */
	free(m->slots);
	free(m);
}

static void mpi_stats(px_executor *ex, px_executor_stats *out)
{
	struct px__mpi_ex *m = (struct px__mpi_ex *)ex;
	pthread_mutex_lock(&px__mpi.lock);
	out->queued = m->nq;
	out->running = m->inflight;
	out->workers = (uint32_t)px__mpi.total_workers;
	pthread_mutex_unlock(&px__mpi.lock);
	px__counts_add(out, &m->counts);
}

/* Memory tasks share in place cannot span hosts: tasks get copies only. */
static int mpi_alloc(px_executor *ex, size_t size, void **out)
{
	(void)ex;
	(void)size;
	if (out)
		*out = NULL;
	return -ENOTSUP;
}

static void mpi_free(px_executor *ex, void *p)
{
	(void)ex;
	(void)p;
}

static const struct px__backend_ops mpi_ops = {
	.create = mpi_create,
	.submit = mpi_submit,
	.shutdown = mpi_shutdown,
	.destroy = mpi_destroy,
	.stats = mpi_stats,
	.alloc = mpi_alloc,
	.free = mpi_free,
	.wait_help = px__mpi_wait_help,
};

static const struct px__backend mpi_backend = {
	"mpi", &mpi_ops,
	"workers_per_rank local queue block max_arg max_result spin_us "
	"task_timeout_ms max_tasks_per_worker shm_size",
};

/* Linking libparex-mpi is what makes the `mpi` backend available. */
__attribute__((constructor)) static void mpi_register(void)
{
	int r = px__backend_register(&mpi_backend);
	if (r && r != -EEXIST)
		px__mpi_fatal("cannot register the mpi backend: %s",
			      px_strerror(r));
}
