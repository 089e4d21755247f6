/*
 * mpi/mpi.c - the `mpi` backend: the executor API over the ranks of an MPI
 * job launched as `mpirun -n N ./app`.
 *
 * Who runs what (mpi/README.md has the long form):
 *  - Every rank runs the program up to px_executor_open(). There, each rank
 *    starts one px-mpi thread, which alone makes MPI calls (so
 *    MPI_THREAD_FUNNELED suffices: it is the thread that initialised MPI).
 *  - Rank 0 gets the executor. Its px-mpi thread sends queued tasks to the
 *    rank with the most free credits, receives results and completes the
 *    futures.
 *  - Ranks >= 1 never return from px_executor_open(): their px-mpi thread
 *    serves tasks on a local parex process pool, created before MPI_Init so
 *    that no worker is forked from a process holding MPI state, until rank 0
 *    leaves (its atexit handler sends EXIT); then they exit(0).
 * A task that crashes kills a worker of a local pool, never a rank: its
 * future fails with PX_EWORKERDIED and the job goes on.
 *
 * Locking: one mutex, G.lock, guards G and the attached executor's queue,
 * slot table and flags; G.cond is broadcast on every change anyone waits
 * for (readiness, queue room, quiescence, work for the px-mpi thread). MPI
 * calls are made without it.
 */
#include <errno.h>
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <parex/executor.h>

#include "mpi_internal.h"
#include "px_clock.h"

/* A serving rank's window: enough queued behind each worker to cover a round
 * trip, small enough that an idle rank still finds work left to take. */
#define CREDITS_PER_WORKER 4
#define CREDITS_EXTRA 8
#define SEND_BATCH 64

struct rank_info {
	int workers;
	int credits, used;
	char host[64];
};

struct slot {
	px_future *f;      /* NULL when free */
	uint32_t gen;
	int rank;
	bool cancel_req;
	uint32_t next_free;
};

struct mpi_ex {
	px_executor ex; /* first */
	px_future *qh, *qt; /* not yet sent, linked by qnext */
	uint32_t nq, cap;
	uint64_t outstanding; /* submitted, not yet finished by px-mpi */
	bool closed, cancel_pending, drop_sent;
	struct slot *slots;
	uint32_t nslots, free_head, inflight, ncancel;
	struct px__counts counts; /* written by the px-mpi thread only */
};

#define NO_SLOT UINT32_MAX

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thr;
	bool started;
	int state; /* 0 starting, 1 ready, -1 failed */
	int err;
	bool exit_req, idle;
	MPI_Comm comm;
	int rank, size;
	struct rank_info *ranks;
	int total_workers;
	struct mpi_ex *cur;
	px_executor *local;       /* serving ranks: the local pool */
	struct px__config cfg;    /* of the first open, for the local pool */
} G = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "parex mpi: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

/* ---- sends in flight ------------------------------------------------------ */

/*
 * Messages to one rank are packed: the records (tasks one way, results the
 * other) that one round of a px-mpi loop has for a rank travel as one
 * message, each record padded to 8 bytes, up to PACK_MAX bytes (a larger
 * record goes alone). One message per record cost a send, a probe and a
 * receive each, which bounded the submit rate.
 */
#define PACK_MAX (64 * 1024)

struct pack {
	unsigned char *b;
	size_t len, cap;
	int tag;
};

struct sends {
	MPI_Request *req;
	void **buf;
	size_t n, cap;
	struct pack *pk; /* G.size packs, by destination rank */
};

/* Starts sending len bytes of buf (malloc'd; freed once sent) to rank. */
static int send_owned(struct sends *s, void *buf, size_t len, int rank, int tag)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		MPI_Request *r = realloc(s->req, cap * sizeof(*r));
		if (!r)
			goto nomem;
		s->req = r;
		void **b = realloc(s->buf, cap * sizeof(*b));
		if (!b)
			goto nomem;
		s->buf = b;
		s->cap = cap;
	}
	MPI_Isend(buf, (int)len, MPI_BYTE, rank, tag, G.comm, &s->req[s->n]);
	s->buf[s->n++] = buf;
	return 0;
nomem:
	/* Rare: send it synchronously rather than lose it. */
	MPI_Send(buf, (int)len, MPI_BYTE, rank, tag, G.comm);
	free(buf);
	return 0;
}

/* Retires completed sends. Returns true if any completed. */
static bool sends_poll(struct sends *s)
{
	bool any = false;
	for (size_t i = 0; i < s->n;) {
		int done = 0;
		MPI_Test(&s->req[i], &done, MPI_STATUS_IGNORE);
		if (!done) {
			i++;
			continue;
		}
		free(s->buf[i]);
		s->n--;
		s->req[i] = s->req[s->n];
		s->buf[i] = s->buf[s->n];
		any = true;
	}
	return any;
}

/* Starts sending the records packed for rank, if any. */
static void pack_flush(struct sends *s, int rank)
{
	struct pack *p = s->pk ? &s->pk[rank] : NULL;
	if (!p || !p->len)
		return;
	send_owned(s, p->b, p->len, rank, p->tag);
	p->b = NULL;
	p->len = p->cap = 0;
}

static void packs_flush(struct sends *s)
{
	for (int r = 0; s->pk && r < G.size; r++)
		pack_flush(s, r);
}

/* Room for a record of len bytes, tagged tag, in the next message to rank;
 * NULL when out of memory. Sends what was packed first when the record
 * would not fit or the tag differs. */
static unsigned char *pack_room(struct sends *s, int rank, int tag, size_t len)
{
	if (!s->pk && !(s->pk = calloc((size_t)G.size, sizeof(*s->pk))))
		return NULL;
	struct pack *p = &s->pk[rank];
	size_t padded = (len + 7) & ~(size_t)7;
	if (p->len && (p->tag != tag || p->len + padded > PACK_MAX))
		pack_flush(s, rank);
	if (p->len + padded > p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 4096;
		if (cap < p->len + padded)
			cap = p->len + padded; /* a large record: exactly */
		unsigned char *b = realloc(p->b, cap);
		if (!b)
			return NULL;
		p->b = b;
		p->cap = cap;
	}
	unsigned char *r = p->b + p->len;
	memset(r + len, 0, padded - len);
	p->len += padded;
	p->tag = tag;
	return r;
}

/* The next record in a packed message of n bytes at off: its length
 * rounded up as the sender padded it, clamped to what is left. */
static size_t next_record(size_t off, size_t len, size_t n)
{
	size_t padded = (len + 7) & ~(size_t)7;
	return padded > n - off ? n : off + padded;
}

static void sends_finish(struct sends *s)
{
	packs_flush(s);
	free(s->pk);
	/* One MPI_Wait each: MPICH's mpi.h declares MPI_Waitall's statuses
	 * with a size that gcc checks against MPI_STATUSES_IGNORE. */
	for (size_t i = 0; i < s->n; i++) {
		MPI_Wait(&s->req[i], MPI_STATUS_IGNORE);
		free(s->buf[i]);
	}
	free(s->req);
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

/* Receives the probed message into *buf (grown as needed). Its length, or
 * -1 (nothing could be received into memory: the message is dropped). */
static long recv_probed(MPI_Status *st, unsigned char **buf, size_t *cap)
{
	int n = 0;
	MPI_Get_count(st, MPI_BYTE, &n);
	if (n < 0)
		n = 0;
	if ((size_t)n > *cap) {
		unsigned char *b = realloc(*buf, (size_t)n);
		if (!b) {
			unsigned char sink;
			MPI_Recv(&sink, 0, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG,
				 G.comm, MPI_STATUS_IGNORE);
			return -1;
		}
		*buf = b;
		*cap = (size_t)n;
	}
	MPI_Recv(*buf, n, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, G.comm,
		 MPI_STATUS_IGNORE);
	return n;
}

/*
 * The px-mpi threads poll: MPI has no wait that also wakes on a local future
 * or a submit. How they wait between empty polls decides the round trip.
 * After the last message or completion a thread keeps polling for SPIN_NS
 * (px__spin: pauses, the core given away every couple of microseconds so
 * that a local worker sharing it still runs), then sleeps a little longer
 * each empty round: up to 16 us while tasks are out (busy), up to 512 us
 * otherwise. The thread's timer slack is 1 ns (set in mpi_main): with the
 * default 50 us a 2 us nanosleep lasts 50 us or more.
 */
#define SPIN_NS 50000

struct idle {
	struct px__spin spin;
	unsigned sleeps; /* empty rounds past the spin; 0: the spin not begun */
	bool spinning;
};

static void idle_reset(struct idle *d)
{
	d->spinning = false;
	d->sleeps = 0;
}

static void backoff(struct idle *d, bool busy)
{
	if (!d->spinning && !d->sleeps) {
		px__spin_init(&d->spin, SPIN_NS);
		d->spinning = true;
	}
	if (d->spinning) {
		if (px__spin_step(&d->spin))
			return;
		d->spinning = false;
	}
	unsigned max = busy ? 3 : 8;
	long ns = 2000L << (d->sleeps < max ? d->sleeps : max);
	if (d->sleeps < 8)
		d->sleeps++;
	struct timespec ts = { 0, ns };
	nanosleep(&ts, NULL);
}

/* ---- serving ranks ---------------------------------------------------------- */

struct job {
	px_future *lf;
	uint64_t id;
};

static void send_result(struct sends *s, uint64_t id, int err, const void *res,
			size_t res_len, const char *msg)
{
	size_t ml = msg ? strlen(msg) : 0;
	if (ml > 4096)
		ml = 4096;
	unsigned char *b = pack_room(s, 0, PX__MPI_TAG_RESULT,
				     sizeof(struct px__mpi_result) + res_len + ml);
	if (!b) {
		/* Report the failure itself: a result never goes missing. */
		struct px__mpi_result r = { .id = id, .err = -ENOMEM };
		b = pack_room(s, 0, PX__MPI_TAG_RESULT, sizeof(r));
		if (b)
			memcpy(b, &r, sizeof(r));
		return; /* else rank 0 would wait: out of memory here */
	}
	struct px__mpi_result h = { .id = id, .err = err,
				    .res_len = (uint32_t)res_len,
				    .msg_len = (uint32_t)ml };
	memcpy(b, &h, sizeof(h));
	if (res_len)
		memcpy(b + sizeof(h), res, res_len);
	if (ml)
		memcpy(b + sizeof(h) + res_len, msg, ml);
}

/* An error result naming this rank and host. */
static void send_error(struct sends *s, uint64_t id, int err, const char *what)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "rank %d (%s): %s", G.rank,
		 G.ranks[G.rank].host, what ? what : px_strerror(err));
	send_result(s, id, err, NULL, 0, msg);
}

/* One task of a TASK message: h, then its argument at arg. */
static void serve_one(struct sends *s, struct px__mpi_task h, unsigned char *arg,
		      struct job **jobs, size_t *njobs, size_t *cap)
{
	void *fn, *inner = NULL;
	int r = px__mpi_fn_decode(&h.fn, &fn);
	if (!r && (h.flags & PX__MPI_T_CHUNK)) {
		r = h.arg_len >= sizeof(px_task_fn)
			? px__mpi_fn_decode(&h.inner, &inner) : -EPROTO;
		if (!r) {
			px_task_fn tf = (px_task_fn)inner;
			memcpy(arg, &tf, sizeof(tf));
		}
	}
	if (r) {
		char hex[2 * PX__MPI_ID_MAX + 1], what[256];
		px__mpi_id_hex((h.flags & PX__MPI_T_CHUNK) && fn ? &h.inner : &h.fn,
			       hex, sizeof(hex));
		snprintf(what, sizeof(what),
			 r == PX_EVERSION
				 ? "the task's function is in a module this rank "
				   "has not loaded (build-id %s)"
				 : "the task's function is not code of its module "
				   "(build-id %s)",
			 hex);
		send_error(s, h.id, r, what);
		return;
	}
	if (*njobs == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct job *j = realloc(*jobs, c * sizeof(*j));
		if (!j) {
			send_error(s, h.id, -ENOMEM, NULL);
			return;
		}
		*jobs = j;
		*cap = c;
	}
	px_submit_opts o = { .timeout_ns = h.timeout_ns > 0 ? h.timeout_ns : 0 };
	px_future *lf;
	px_task_fn tfn = (px_task_fn)fn;
	r = px_executor_submit(G.local, tfn, arg, h.arg_len, &o, &lf);
	if (r) {
		send_error(s, h.id, r, NULL);
		return;
	}
	(*jobs)[(*njobs)++] = (struct job){ lf, h.id };
}

/* A TASK message: one or more {struct px__mpi_task, argument} records. */
static void serve_task(struct sends *s, unsigned char *buf, size_t n,
		       struct job **jobs, size_t *njobs, size_t *cap)
{
	size_t off = 0;
	while (n - off >= sizeof(struct px__mpi_task)) {
		struct px__mpi_task h;
		memcpy(&h, buf + off, sizeof(h));
		if (h.arg_len > n - off - sizeof(h)) {
			send_error(s, h.id, -EPROTO, "malformed task message");
			return; /* the records after it cannot be found */
		}
		serve_one(s, h, buf + off + sizeof(h), jobs, njobs, cap);
		off = next_record(off, sizeof(h) + h.arg_len, n);
	}
	/* Fewer bytes left than a header: no id to answer, dropped. */
}

static void serve_done(struct sends *s, struct job *j)
{
	int err = px_future_error(j->lf);
	const char *m = px_future_message(j->lf);
	if (err == PX_EWORKERDIED || err == -ETIMEDOUT) {
		/* The pool's own report (a worker died or was killed):
		 * where it happened. A task's own messages pass unchanged. */
		send_error(s, j->id, err, m && *m ? m : NULL);
	} else {
		size_t len = 0;
		const void *res = err ? NULL : px_future_result(j->lf, &len);
		send_result(s, j->id, err, res, len, m && *m ? m : NULL);
	}
	px_future_release(j->lf);
}

/* The serving loop of ranks >= 1: until rank 0 sends EXIT. */
static void serve(void)
{
	struct sends s = { 0 };
	struct job *jobs = NULL;
	size_t njobs = 0, cap = 0, bcap = 0;
	unsigned char *buf = NULL;
	struct idle idle = { 0 };
	bool stop = false;
	while (!stop) {
		bool did = false;
		int flag = 1;
		while (flag && !stop) {
			MPI_Status st;
			MPI_Iprobe(0, MPI_ANY_TAG, G.comm, &flag, &st);
			if (!flag)
				break;
			did = true;
			long n = recv_probed(&st, &buf, &bcap);
			if (n < 0)
				continue;
			switch (st.MPI_TAG) {
			case PX__MPI_TAG_TASK:
				serve_task(&s, buf, (size_t)n, &jobs, &njobs, &cap);
				break;
			case PX__MPI_TAG_CANCEL: {
				uint64_t id;
				if (n != sizeof(id))
					break;
				memcpy(&id, buf, sizeof(id));
				for (size_t i = 0; i < njobs; i++)
					if (jobs[i].id == id)
						px_future_cancel(jobs[i].lf,
								 PX_CANCEL_RUNNING);
				break;
			}
			case PX__MPI_TAG_DROP:
				for (size_t i = 0; i < njobs; i++)
					px_future_cancel(jobs[i].lf, 0);
				break;
			case PX__MPI_TAG_EXIT:
				stop = true;
				break;
			default:
				break; /* unknown tags are ignored */
			}
		}
		for (size_t i = 0; i < njobs;) {
			if (!px_future_is_done(jobs[i].lf)) {
				i++;
				continue;
			}
			serve_done(&s, &jobs[i]);
			jobs[i] = jobs[--njobs];
			did = true;
		}
		packs_flush(&s);
		did |= sends_poll(&s);
		if (did)
			idle_reset(&idle);
		else if (!stop)
			backoff(&idle, njobs > 0);
	}
	/* Rank 0 left: what still runs here has no one to report to. */
	px_executor_shutdown(G.local, false, true);
	for (size_t i = 0; i < njobs; i++) {
		px_future_cancel(jobs[i].lf, PX_CANCEL_RUNNING);
		px_future_release(jobs[i].lf);
	}
	free(jobs);
	free(buf);
	sends_finish(&s);
}

/* The local pool of a serving rank, configured by this rank's config:
 * `local` (process, or thread without crash isolation). */
static int local_pool_create(const struct px__config *c, px_executor **out)
{
	px_config *cfg;
	int r = px_config_create(&cfg);
	if (r)
		return r;
	char v[8][32];
	snprintf(v[0], 32, "%d", c->workers_per_rank);
	snprintf(v[1], 32, "%u", c->queue);
	snprintf(v[2], 32, "%u", c->max_arg);
	snprintf(v[3], 32, "%u", c->max_result);
	snprintf(v[4], 32, "%u", c->spin_us);
	snprintf(v[5], 32, "%lld", (long long)c->task_timeout_ms);
	snprintf(v[6], 32, "%llu", (unsigned long long)c->max_tasks_per_worker);
	snprintf(v[7], 32, "%llu", (unsigned long long)c->shm_size);
	const char *k[8] = { "workers", "queue", "max_arg", "max_result",
			     "spin_us", "task_timeout_ms", "max_tasks_per_worker",
			     "shm_size" };
	r = px_config_set(cfg, "backend", c->local, NULL);
	for (int i = 0; i < 8 && !r; i++)
		if (i || c->workers_per_rank > 0)
			r = px_config_set(cfg, k[i], v[i], NULL);
	px_config_set_initializer(cfg, c->init, c->init_arg);
	if (!r)
		r = px_executor_create(out, cfg);
	px_config_destroy(cfg);
	return r;
}

/* ---- rank 0 ------------------------------------------------------------------ */

static int mpi_cancel(px_future *f, void *arg);

/* Frees slot i (under G.lock). */
static void slot_free(struct mpi_ex *m, uint32_t i)
{
	struct slot *sl = &m->slots[i];
	G.ranks[sl->rank].used--;
	if (sl->cancel_req)
		m->ncancel--;
	sl->f = NULL;
	sl->cancel_req = false;
	sl->gen++;
	sl->next_free = m->free_head;
	m->free_head = i;
	m->inflight--;
}

/* The rank with the most free credits, or -1 (under G.lock). */
static int best_rank(void)
{
	int best = -1, most = 0;
	for (int r = 1; r < G.size; r++) {
		int free_c = G.ranks[r].credits - G.ranks[r].used;
		if (free_c > most) {
			most = free_c;
			best = r;
		}
	}
	return best;
}

/* One task finished by px-mpi: counts it, completes it (if complete), drops
 * the task's reference. Counted first, so that a waiter woken by the
 * completion finds it in the stats (the release of the completion pairs
 * with the waiter's acquire). Once started, only px-mpi completes a task: a
 * cancel of a running one only asks its rank (mpi_cancel). */
static void task_finished(struct mpi_ex *m, px_future *f, int err, bool complete)
{
	px__counts_record(&m->counts, err);
	if (complete)
		px__future_complete(f, err);
	px_future_release(f);
	pthread_mutex_lock(&G.lock);
	if (--m->outstanding == 0)
		pthread_cond_broadcast(&G.cond);
	pthread_mutex_unlock(&G.lock);
}

static void send_task(struct mpi_ex *m, struct sends *s, px_future *f,
		      uint32_t idx)
{
	struct px__mpi_task h = { .timeout_ns = f->timeout_ns,
				  .arg_len = f->arg_len };
	int r = px__mpi_fn_encode((const void *)f->fn, &h.fn);
	if (!r && f->fn == px__map_chunk_task() &&
	    f->arg_len >= sizeof(px_task_fn)) {
		px_task_fn inner;
		memcpy(&inner, f->arg, sizeof(inner));
		h.flags |= PX__MPI_T_CHUNK;
		r = px__mpi_fn_encode((const void *)inner, &h.inner);
	}
	pthread_mutex_lock(&G.lock);
	struct slot *sl = &m->slots[idx];
	h.id = (uint64_t)sl->gen << 32 | idx;
	int rank = sl->rank;
	pthread_mutex_unlock(&G.lock);
	unsigned char *b = r ? NULL
			     : pack_room(s, rank, PX__MPI_TAG_TASK,
					 sizeof(h) + f->arg_len);
	if (!b) {
		pthread_mutex_lock(&G.lock);
		slot_free(m, idx);
		pthread_mutex_unlock(&G.lock);
		px__future_store_message(
			f, r == -ENOTSUP ? "the task's function is in a module "
					   "without a build-id"
			   : r ? "the task's function is not in a loaded module"
			       : NULL);
		task_finished(m, f, r ? r : -ENOMEM, true);
		return;
	}
	memcpy(b, &h, sizeof(h));
	memcpy(b + sizeof(h), f->arg, f->arg_len);
	if (h.flags & PX__MPI_T_CHUNK)
		memset(b + sizeof(h), 0, sizeof(px_task_fn)); /* no raw pointer */
}

/* One result record of n bytes (at most: a record's fields may claim more
 * than the message holds, which fails the task with -EPROTO). Returns the
 * record's length as claimed. */
static size_t take_result(struct mpi_ex *m, const unsigned char *buf, size_t n)
{
	struct px__mpi_result h;
	memcpy(&h, buf, sizeof(h));
	size_t claimed = sizeof(h) + (size_t)h.res_len + h.msg_len;
	uint32_t idx = (uint32_t)h.id, gen = (uint32_t)(h.id >> 32);
	pthread_mutex_lock(&G.lock);
	px_future *f = NULL;
	if (G.cur == m && idx < m->nslots && m->slots[idx].f && m->slots[idx].gen == gen) {
		f = m->slots[idx].f;
		slot_free(m, idx);
	}
	pthread_mutex_unlock(&G.lock);
	if (!f)
		return claimed; /* stale or foreign: nothing waits for it */
	int err = h.err > 0 ? -h.err : h.err;
	if (claimed > n) {
		err = -EPROTO;
		h.res_len = h.msg_len = 0;
	}
	if (!err) {
		void *dst = h.res_len > f->ex->cfg.max_result
			? NULL : px__future_result_buffer(f, h.res_len);
		if (!dst)
			err = h.res_len > f->ex->cfg.max_result ? -EMSGSIZE : -ENOMEM;
		else if (h.res_len)
			memcpy(dst, buf + sizeof(h), h.res_len);
	}
	if (h.msg_len) {
		char *msg = malloc(h.msg_len + 1);
		if (msg) {
			memcpy(msg, buf + sizeof(h) + h.res_len, h.msg_len);
			msg[h.msg_len] = 0;
			px__future_store_message(f, msg);
			free(msg);
		}
	}
	task_finished(m, f, err, true);
	return claimed;
}

/* A RESULT message: one or more {struct px__mpi_result, result, message}
 * records. */
static void take_results(struct mpi_ex *m, const unsigned char *buf, size_t n)
{
	size_t off = 0;
	while (n - off >= sizeof(struct px__mpi_result)) {
		size_t len = take_result(m, buf + off, n - off);
		if (len > n - off)
			return; /* malformed: the records after it are lost */
		off = next_record(off, len, n);
	}
}

/* Sends EXIT to every serving rank and waits until they have it. */
static void release_ranks(struct sends *s)
{
	for (int r = 1; r < G.size; r++) {
		void *b = malloc(1);
		if (b)
			send_owned(s, b, 0, r, PX__MPI_TAG_EXIT);
		else
			MPI_Send(NULL, 0, MPI_BYTE, r, PX__MPI_TAG_EXIT, G.comm);
	}
	sends_finish(s);
}

/* The px-mpi thread's loop on rank 0, until the process exits. */
static void progress(void)
{
	struct sends s = { 0 };
	unsigned char *buf = NULL;
	size_t bcap = 0;
	struct idle idle = { 0 };
	px_future *batch_f[SEND_BATCH];
	uint32_t batch_i[SEND_BATCH];
	for (;;) {
		bool did = false;
		px_future *dropped = NULL;
		uint64_t cancel_ids[SEND_BATCH];
		int cancel_rank[SEND_BATCH];
		size_t nb = 0, nc = 0;
		bool drop = false;
		pthread_mutex_lock(&G.lock);
		if (G.exit_req) {
			pthread_mutex_unlock(&G.lock);
			break;
		}
		struct mpi_ex *m = G.cur;
		if (m && m->cancel_pending && m->qh) {
			dropped = m->qh;
			m->qh = m->qt = NULL;
			m->nq = 0;
		}
		if (m && m->cancel_pending && !m->drop_sent) {
			m->drop_sent = drop = true;
		}
		while (m && m->qh && nb < SEND_BATCH && m->free_head != NO_SLOT) {
			int r = best_rank();
			if (r < 0)
				break;
			px_future *f = m->qh;
			m->qh = f->qnext;
			if (!m->qh)
				m->qt = NULL;
			m->nq--;
			uint32_t i = m->free_head;
			struct slot *sl = &m->slots[i];
			m->free_head = sl->next_free;
			sl->f = f;
			sl->rank = r;
			G.ranks[r].used++;
			m->inflight++;
			f->backend_data = (uint64_t)sl->gen << 32 | i;
			batch_f[nb] = f;
			batch_i[nb++] = i;
		}
		if (m && m->ncancel) {
			for (uint32_t i = 0; i < m->nslots && nc < SEND_BATCH; i++) {
				struct slot *sl = &m->slots[i];
				if (!sl->f || !sl->cancel_req)
					continue;
				sl->cancel_req = false;
				m->ncancel--;
				cancel_ids[nc] = (uint64_t)sl->gen << 32 | i;
				cancel_rank[nc++] = sl->rank;
			}
		}
		if (nb || dropped)
			pthread_cond_broadcast(&G.cond); /* queue room */
		bool quiet = !m || (!m->qh && !m->inflight && !m->ncancel);
		if (!nb && !nc && !dropped && !drop && quiet && !s.n) {
			/* Nothing in flight: sleep until a submit or exit. */
			G.idle = true;
			pthread_cond_wait(&G.cond, &G.lock);
			G.idle = false;
			pthread_mutex_unlock(&G.lock);
			continue;
		}
		pthread_mutex_unlock(&G.lock);

		while (dropped) {
			px_future *f = dropped;
			dropped = f->qnext;
			px_future_cancel(f, 0); /* 0 also if already cancelled */
			task_finished(m, f, -ECANCELED, false);
			did = true;
		}
		for (int r = 1; drop && r < G.size; r++) {
			void *b = malloc(1);
			if (b)
				send_owned(&s, b, 0, r, PX__MPI_TAG_DROP);
		}
		for (size_t k = 0; k < nb; k++) {
			px_future *f = batch_f[k];
			px_promise_on_cancel(f, mpi_cancel, m);
			if (px_promise_start(f)) {
				/* Cancelled while queued: its canceller
				 * completed it. */
				pthread_mutex_lock(&G.lock);
				slot_free(m, batch_i[k]);
				pthread_mutex_unlock(&G.lock);
				task_finished(m, f, -ECANCELED, false);
				continue;
			}
			send_task(m, &s, f, batch_i[k]);
			did = true;
		}
		packs_flush(&s); /* before any CANCEL that could name them */
		for (size_t k = 0; k < nc; k++) {
			uint64_t *b = malloc(sizeof(*b));
			if (!b)
				continue;
			*b = cancel_ids[k];
			send_owned(&s, b, sizeof(*b), cancel_rank[k],
				   PX__MPI_TAG_CANCEL);
			did = true;
		}
		int flag = 1;
		while (flag) {
			MPI_Status st;
			MPI_Iprobe(MPI_ANY_SOURCE, PX__MPI_TAG_RESULT, G.comm, &flag,
				   &st);
			if (!flag)
				break;
			long n = recv_probed(&st, &buf, &bcap);
			if (n >= 0 && m)
				take_results(m, buf, (size_t)n);
			did = true;
		}
		did |= sends_poll(&s);
		if (did)
			idle_reset(&idle);
		else
			backoff(&idle, true);
	}
	free(buf);
	release_ranks(&s);
}

/* PX_CANCEL_RUNNING on a task sent to a rank: asks that rank to cancel it
 * (its local pool kills the worker if it runs). */
static int mpi_cancel(px_future *f, void *arg)
{
	struct mpi_ex *m = arg;
	uint64_t bd = f->backend_data;
	uint32_t idx = (uint32_t)bd, gen = (uint32_t)(bd >> 32);
	int r = -EBUSY;
	pthread_mutex_lock(&G.lock);
	if (idx < m->nslots && m->slots[idx].f == f && m->slots[idx].gen == gen) {
		if (!m->slots[idx].cancel_req) {
			m->slots[idx].cancel_req = true;
			m->ncancel++;
			pthread_cond_broadcast(&G.cond);
		}
		r = 0;
	}
	pthread_mutex_unlock(&G.lock);
	return r;
}

/* ---- start-up -------------------------------------------------------------- */

/* This rank's number from the launcher's environment, before MPI_Init; -1
 * if no known launcher set one. */
static int env_rank(void)
{
	static const char *const vars[] = { "OMPI_COMM_WORLD_RANK", "PMI_RANK",
					     "PMIX_RANK", "SLURM_PROCID" };
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);
		if (v && *v) {
			char *end;
			long r = strtol(v, &end, 10);
			if (!*end && r >= 0 && r < 1 << 30)
				return (int)r;
		}
	}
	return -1;
}

/* Every rank's hello, then the verdict all ranks reach alike. */
static int handshake(int local_status)
{
	struct px__mpi_hello me = { .status = local_status };
	px__mpi_program_id(&me.program);
	me.workers = G.local ? px_executor_workers(G.local) : 0;
	int hl = 0;
	char host[MPI_MAX_PROCESSOR_NAME];
	MPI_Get_processor_name(host, &hl);
	host[sizeof(me.host) - 1] = 0; /* longer names are cut */
	memcpy(me.host, host, strlen(host) + 1);
	struct px__mpi_hello *all = calloc((size_t)G.size, sizeof(*all));
	G.ranks = calloc((size_t)G.size, sizeof(*G.ranks));
	if (!all || !G.ranks) {
		/* Every rank must take part in the collective: abort. */
		fatal("out of memory at start-up");
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	MPI_Allgather(&me, sizeof(me), MPI_BYTE, all, sizeof(me), MPI_BYTE,
		      G.comm);
	int verdict = 0;
	char h0[2 * PX__MPI_ID_MAX + 1], hk[2 * PX__MPI_ID_MAX + 1];
	px__mpi_id_hex(&all[0].program, h0, sizeof(h0));
	if (G.size < 2) {
		verdict = -EINVAL;
		if (G.rank == 0)
			fatal("the mpi backend needs at least 2 ranks (rank 0 "
			      "submits, the others run tasks): launch with "
			      "mpirun -n N, N >= 2");
	}
	if (!all[0].program.id_len) {
		verdict = -ENOTSUP;
		if (G.rank == 0)
			fatal("the program has no build-id (link with "
			      "-Wl,--build-id): tasks cannot be named across "
			      "ranks");
	}
	for (int r = 1; r < G.size && verdict != -ENOTSUP; r++) {
		struct px__mpi_hello *h = &all[r];
		h->host[sizeof(h->host) - 1] = 0;
		if (h->program.id_len != all[0].program.id_len ||
		    memcmp(h->program.id, all[0].program.id, h->program.id_len)) {
			px__mpi_id_hex(&h->program, hk, sizeof(hk));
			if (G.rank == 0)
				fatal("rank %d (%s) runs a different program than "
				      "rank 0 (build-id %s, rank 0 has %s): "
				      "refusing to send it tasks",
				      r, h->host, hk, h0);
			verdict = PX_EVERSION;
		} else if (h->status && !verdict) {
			if (G.rank == 0)
				fatal("rank %d (%s) could not create its local "
				      "pool: %s", r, h->host,
				      px_strerror(h->status));
			verdict = h->status;
		}
	}
	G.total_workers = 0;
	for (int r = 0; r < G.size; r++) {
		G.ranks[r].workers = r ? all[r].workers : 0;
		G.ranks[r].credits =
			r ? all[r].workers * CREDITS_PER_WORKER + CREDITS_EXTRA : 0;
		snprintf(G.ranks[r].host, sizeof(G.ranks[r].host), "%s",
			 all[r].host);
		G.total_workers += G.ranks[r].workers;
	}
	free(all);
	return verdict;
}

static void set_state(int state, int err)
{
	pthread_mutex_lock(&G.lock);
	G.state = state;
	G.err = err;
	pthread_cond_broadcast(&G.cond);
	pthread_mutex_unlock(&G.lock);
}

static void *mpi_main(void *arg)
{
	(void)arg;
	/* Short sleeps in backoff() are meant as written (per thread). */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	int inited = 0;
	MPI_Initialized(&inited);
	if (inited) {
		/* The program uses MPI itself: its MPI_Finalize could come
		 * before the px-mpi thread is done with MPI. Not supported. */
		fatal("MPI is already initialised: the mpi backend must make "
		      "the program's first MPI calls itself");
		set_state(-1, -ENOTSUP);
		return NULL;
	} else {
		int prov = MPI_THREAD_SINGLE;
		if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &prov) !=
		    MPI_SUCCESS) {
			fatal("MPI_Init_thread failed");
			set_state(-1, -EIO);
			return NULL;
		}
	}
	MPI_Comm_dup(MPI_COMM_WORLD, &G.comm);
	MPI_Comm_rank(G.comm, &G.rank);
	MPI_Comm_size(G.comm, &G.size);
	int local_status = 0;
	if (G.rank != 0 && !G.local) /* the launcher gave no rank: late pool */
		local_status = local_pool_create(&G.cfg, &G.local);
	if (G.rank == 0 && G.local) {
		px_executor_destroy(G.local);
		G.local = NULL;
	}
	int v = handshake(local_status);
	if (v) {
		px_executor_destroy(G.local);
		G.local = NULL;
		MPI_Comm_free(&G.comm);
		MPI_Finalize();
		set_state(-1, v);
		return NULL;
	}
	set_state(1, 0);
	if (G.rank != 0) {
		serve();
		MPI_Comm_free(&G.comm);
		MPI_Finalize();
		return NULL;
	}
	progress();
	MPI_Comm_free(&G.comm);
	MPI_Finalize();
	return NULL;
}

/* Rank 0's exit: release the serving ranks, finalize MPI. */
static void mpi_atexit(void)
{
	pthread_mutex_lock(&G.lock);
	G.exit_req = true;
	pthread_cond_broadcast(&G.cond);
	pthread_mutex_unlock(&G.lock);
	pthread_join(G.thr, NULL);
}

/* Starts px-mpi once per process; waits for the handshake. Under G.lock. */
static int mpi_start(const struct px__config *cfg)
{
	if (!G.started) {
		G.cfg = *cfg;
		int er = env_rank();
		if (er > 0) {
			/* Before MPI_Init: no worker is forked from a process
			 * holding MPI state. A failure is reported to rank 0
			 * at the handshake. */
			int r = local_pool_create(cfg, &G.local);
			if (r)
				G.local = NULL;
		}
		int r = pthread_create(&G.thr, NULL, mpi_main, NULL);
		if (r)
			return -r;
		G.started = true;
	}
	while (G.state == 0)
		pthread_cond_wait(&G.cond, &G.lock);
	return G.state < 0 ? G.err : 0;
}

static const struct px__backend_ops mpi_ops;

static int mpi_create(px_executor **out, const struct px__config *cfg)
{
	pthread_mutex_lock(&G.lock);
	bool first = !G.started;
	int r = mpi_start(cfg);
	if (r || G.rank != 0) {
		pthread_mutex_unlock(&G.lock);
		if (r)
			return r;
		/* A serving rank: px-mpi serves until rank 0 leaves. */
		pthread_join(G.thr, NULL);
		px_executor_destroy(G.local);
		exit(0);
	}
	if (first)
		atexit(mpi_atexit);
	if (G.cur || G.exit_req) {
		pthread_mutex_unlock(&G.lock);
		return -EBUSY;
	}
	struct mpi_ex *m = calloc(1, sizeof(*m));
	uint32_t n = 0;
	for (int k = 1; k < G.size; k++)
		n += (uint32_t)G.ranks[k].credits;
	if (m)
		m->slots = calloc(n, sizeof(*m->slots));
	if (!m || !m->slots) {
		pthread_mutex_unlock(&G.lock);
		free(m);
		return -ENOMEM;
	}
	px__executor_init(&m->ex, &mpi_ops, cfg);
	m->ex.cfg.workers = G.total_workers;
	m->cap = cfg->queue;
	m->nslots = n;
	for (uint32_t i = 0; i < n; i++)
		m->slots[i].next_free = i + 1 < n ? i + 1 : NO_SLOT;
	m->free_head = 0;
	for (int k = 1; k < G.size; k++)
		G.ranks[k].used = 0;
	G.cur = m;
	pthread_mutex_unlock(&G.lock);
	*out = &m->ex;
	return 0;
}

static int mpi_submit(px_executor *ex, px_future *f, unsigned flags,
		      int64_t timeout_ns)
{
	(void)timeout_ns; /* f->timeout_ns travels with the task */
	struct mpi_ex *m = (struct mpi_ex *)ex;
	pthread_mutex_lock(&G.lock);
	for (;;) {
		if (m->closed || G.exit_req) {
			pthread_mutex_unlock(&G.lock);
			return PX_ESHUTDOWN;
		}
		if (m->nq < m->cap)
			break;
		if (flags & PX_SUBMIT_NOWAIT) {
			pthread_mutex_unlock(&G.lock);
			return -EAGAIN;
		}
		pthread_cond_wait(&G.cond, &G.lock);
	}
	f->qnext = NULL;
	if (m->qt)
		m->qt->qnext = f;
	else
		m->qh = f;
	m->qt = f;
	m->nq++;
	m->outstanding++;
	if (G.idle)
		pthread_cond_broadcast(&G.cond);
	pthread_mutex_unlock(&G.lock);
	return 0;
}

static void mpi_shutdown(px_executor *ex, bool wait, bool cancel_pending)
{
	struct mpi_ex *m = (struct mpi_ex *)ex;
	pthread_mutex_lock(&G.lock);
	m->closed = true;
	if (cancel_pending)
		m->cancel_pending = true;
	pthread_cond_broadcast(&G.cond);
	while (wait && m->outstanding && !G.exit_req)
		pthread_cond_wait(&G.cond, &G.lock);
	pthread_mutex_unlock(&G.lock);
}

static void mpi_destroy(px_executor *ex)
{
	struct mpi_ex *m = (struct mpi_ex *)ex;
	pthread_mutex_lock(&G.lock);
	if (G.cur == m)
		G.cur = NULL;
	pthread_mutex_unlock(&G.lock);
	px__executor_fini(&m->ex); /* its task timeline, if traced */
	free(m->slots);
	free(m);
}

static void mpi_stats(px_executor *ex, px_executor_stats *out)
{
	struct mpi_ex *m = (struct mpi_ex *)ex;
	pthread_mutex_lock(&G.lock);
	out->queued = m->nq;
	out->running = m->inflight;
	out->workers = (uint32_t)G.total_workers;
	pthread_mutex_unlock(&G.lock);
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
		fatal("cannot register the mpi backend: %s", px_strerror(r));
}
