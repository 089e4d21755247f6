/*
 * mpi/serve.c - a serving rank (>= 1): receives tasks from rank 0, runs
 * them on the rank's local pool (px__mpi.local), sends their results back,
 * until rank 0 sends EXIT.
 *
 * Only the px-mpi thread runs here; the state is its own (struct server).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parex/executor.h>

#include "mpi_internal.h"

/* A task running on the local pool, and its id on rank 0; traced: its
 * lane (a track in rank 0's trace: lanes are reused only once free, so a
 * lane's tasks never overlap) and when it went to the pool. */
struct job {
	px_future *lf;
	uint64_t id;
	int lane; /* -1: not traced */
	int64_t start_ns;
};

struct server {
	struct px__mpi_sends sends;
	struct job *jobs;
	size_t njobs, cap;
	unsigned char *buf; /* the message being read */
	size_t bcap;
	unsigned char *arg; /* a PX__MPI_T_SEPARATE task's argument */
	size_t acap;
	bool *lane_busy;    /* traced tasks' lanes */
	size_t nlanes;
	bool stop;          /* EXIT received */
};

/* Where a result's task ran: its lane and times, or none (lane -1). */
struct ran_here {
	int lane;
	int64_t start_ns, end_ns;
};

static const struct ran_here not_run = { -1, 0, 0 };

/* A result record to rank 0. With held (a future whose memory res is)
 * and a large result, the result follows as its own message, sent from
 * that memory. */
static void send_result(struct px__mpi_sends *s, uint64_t id, int err,
			const void *res, size_t res_len, const char *msg,
			const struct ran_here *ran, px_future *held)
{
	size_t ml = msg ? strlen(msg) : 0;
	if (ml > 4096)
		ml = 4096;
	bool separate = held && res_len >= PX__MPI_SEPARATE_MIN &&
			px__mpi_sends_reserve(s);
	unsigned char *b = px__mpi_pack_room(
		s, 0, PX__MPI_TAG_RESULT,
		sizeof(struct px__mpi_result) + (separate ? 0 : res_len) + ml);
	if (!b) {
		/* Report the failure itself: a result never goes missing. */
		struct px__mpi_result r = { .id = id, .err = -ENOMEM,
					    .lane = -1 };
		b = px__mpi_pack_room(s, 0, PX__MPI_TAG_RESULT, sizeof(r));
		if (b)
			memcpy(b, &r, sizeof(r));
		return; /* else rank 0 would wait: out of memory here */
	}
	struct px__mpi_result h = { .id = id, .err = err,
				    .res_len = (uint32_t)res_len,
				    .msg_len = (uint32_t)ml, .lane = ran->lane,
				    .flags = separate ? PX__MPI_R_SEPARATE : 0,
				    .start_ns = ran->start_ns,
				    .end_ns = ran->end_ns };
	memcpy(b, &h, sizeof(h));
	size_t inline_len = separate ? 0 : res_len;
	if (inline_len)
		memcpy(b + sizeof(h), res, inline_len);
	if (ml)
		memcpy(b + sizeof(h) + inline_len, msg, ml);
	if (separate)
		px__mpi_send_held(s, res, res_len, 0, PX__MPI_TAG_RESDATA, held);
}

/* An error result naming this rank and host. */
static void send_error(struct px__mpi_sends *s, uint64_t id, int err,
		       const char *what, const struct ran_here *ran)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "rank %d (%s): %s", px__mpi.rank,
		 px__mpi.ranks[px__mpi.rank].host, what ? what : px_strerror(err));
	send_result(s, id, err, NULL, 0, msg, ran, NULL);
}

/* The lowest free lane; -1 when out of memory (the task goes untraced). */
static int lane_take(struct server *sv)
{
	size_t i = 0;
	while (i < sv->nlanes && sv->lane_busy[i])
		i++;
	if (i == sv->nlanes) {
		size_t n = sv->nlanes ? 2 * sv->nlanes : 16;
		bool *b = realloc(sv->lane_busy, n * sizeof(*b));
		if (!b)
			return -1;
		memset(b + sv->nlanes, 0, (n - sv->nlanes) * sizeof(*b));
		sv->lane_busy = b;
		sv->nlanes = n;
	}
	sv->lane_busy[i] = true;
	return (int)i;
}

/* The task's function (and a map chunk's record function, written over
 * the chunk argument's first bytes) in this process. 0, or the error
 * already answered to rank 0. */
static int decode_task(struct server *sv, const struct px__mpi_task *h,
		       unsigned char *arg, px_task_fn *fn)
{
	void *f = NULL, *inner = NULL;
	int r = px__mpi_fn_decode(&h->fn, &f);
	if (!r && (h->flags & PX__MPI_T_CHUNK)) {
		r = h->arg_len >= sizeof(px_task_fn)
			? px__mpi_fn_decode(&h->inner, &inner) : -EPROTO;
		if (!r) {
			px_task_fn tf = (px_task_fn)inner;
			memcpy(arg, &tf, sizeof(tf));
		}
	}
	if (!r) {
		*fn = (px_task_fn)f;
		return 0;
	}
	char hex[2 * PX__MPI_ID_MAX + 1], what[256];
	px__mpi_id_hex((h->flags & PX__MPI_T_CHUNK) && f ? &h->inner : &h->fn,
		       hex, sizeof(hex));
	snprintf(what, sizeof(what),
		 r == PX_EVERSION
			 ? "the task's function is in a module this rank "
			   "has not loaded (build-id %s)"
			 : "the task's function is not code of its module "
			   "(build-id %s)",
		 hex);
	send_error(&sv->sends, h->id, r, what, &not_run);
	return r;
}

/* One task of a TASK message: h, then its argument at arg, onto the local
 * pool. */
static void start_task(struct server *sv, const struct px__mpi_task *h,
		       unsigned char *arg)
{
	px_task_fn fn;
	if (decode_task(sv, h, arg, &fn))
		return;
	if (sv->njobs == sv->cap) {
		size_t c = sv->cap ? sv->cap * 2 : 64;
		struct job *j = realloc(sv->jobs, c * sizeof(*j));
		if (!j) {
			send_error(&sv->sends, h->id, -ENOMEM, NULL, &not_run);
			return;
		}
		sv->jobs = j;
		sv->cap = c;
	}
	px_submit_opts o = { .timeout_ns = h->timeout_ns > 0 ? h->timeout_ns : 0 };
	px_future *lf;
	int r = px_executor_submit(px__mpi.local, fn, arg, h->arg_len, &o, &lf);
	if (r) {
		send_error(&sv->sends, h->id, r, NULL, &not_run);
		return;
	}
	struct job j = { lf, h->id, -1, 0 };
	if (h->flags & PX__MPI_T_TRACE) {
		j.lane = lane_take(sv);
		j.start_ns = px__now_ns();
	}
	sv->jobs[sv->njobs++] = j;
}

/* A TASK message: one or more {struct px__mpi_task, argument} records. */
static void take_tasks(struct server *sv, unsigned char *buf, size_t n)
{
	size_t off = 0;
	while (n - off >= sizeof(struct px__mpi_task)) {
		struct px__mpi_task h;
		memcpy(&h, buf + off, sizeof(h));
		if (h.flags & PX__MPI_T_SEPARATE) {
			/* Its argument is the next ARG message from rank 0. */
			long a = px__mpi_recv_next(0, PX__MPI_TAG_ARG, &sv->arg,
						   &sv->acap);
			if (a != (long)h.arg_len)
				send_error(&sv->sends, h.id, -EPROTO,
					   "malformed task argument", &not_run);
			else
				start_task(sv, &h, sv->arg);
			off = px__mpi_next_record(off, sizeof(h), n);
			continue;
		}
		if (h.arg_len > n - off - sizeof(h)) {
			send_error(&sv->sends, h.id, -EPROTO,
				   "malformed task message", &not_run);
			return; /* the records after it cannot be found */
		}
		start_task(sv, &h, buf + off + sizeof(h));
		off = px__mpi_next_record(off, sizeof(h) + h.arg_len, n);
	}
	/* Fewer bytes left than a header: no id to answer, dropped. */
}

static void cancel_one(struct server *sv, const unsigned char *buf, size_t n)
{
	uint64_t id;
	if (n != sizeof(id))
		return;
	memcpy(&id, buf, sizeof(id));
	for (size_t i = 0; i < sv->njobs; i++)
		if (sv->jobs[i].id == id)
			px_future_cancel(sv->jobs[i].lf, PX_CANCEL_RUNNING);
}

/* Receives and handles what rank 0 sent. Returns true if anything came. */
static bool take_messages(struct server *sv)
{
	bool did = false;
	while (!sv->stop) {
		int flag = 0;
		MPI_Status st;
		MPI_Iprobe(0, MPI_ANY_TAG, px__mpi.comm, &flag, &st);
		if (!flag)
			break;
		did = true;
		long n = px__mpi_recv_probed(&st, &sv->buf, &sv->bcap);
		if (n < 0)
			continue;
		switch (st.MPI_TAG) {
		case PX__MPI_TAG_TASK:
			take_tasks(sv, sv->buf, (size_t)n);
			break;
		case PX__MPI_TAG_CANCEL:
			cancel_one(sv, sv->buf, (size_t)n);
			break;
		case PX__MPI_TAG_DROP:
			for (size_t i = 0; i < sv->njobs; i++)
				px_future_cancel(sv->jobs[i].lf, 0);
			break;
		case PX__MPI_TAG_EXIT:
			sv->stop = true;
			break;
		default:
			break; /* unknown tags are ignored */
		}
	}
	return did;
}

/* A finished local task's result (or error, with where it happened) to
 * rank 0; frees its lane. */
static void answer(struct server *sv, struct job *j)
{
	struct px__mpi_sends *s = &sv->sends;
	struct ran_here ran = { j->lane, j->start_ns,
				j->lane >= 0 ? px__now_ns() : 0 };
	int err = px_future_error(j->lf);
	const char *m = px_future_message(j->lf);
	if (err == PX_EWORKERDIED || err == -ETIMEDOUT) {
		/* The pool's own report (a worker died or was killed):
		 * where it happened. A task's own messages pass unchanged. */
		send_error(s, j->id, err, m && *m ? m : NULL, &ran);
	} else {
		size_t len = 0;
		const void *res = err ? NULL : px_future_result(j->lf, &len);
		send_result(s, j->id, err, res, len, m && *m ? m : NULL, &ran,
			    j->lf);
	}
	if (j->lane >= 0)
		sv->lane_busy[j->lane] = false;
	px_future_release(j->lf);
}

/* Answers every finished local task. Returns true if any was. */
static bool answer_finished(struct server *sv)
{
	bool did = false;
	for (size_t i = 0; i < sv->njobs;) {
		if (!px_future_is_done(sv->jobs[i].lf)) {
			i++;
			continue;
		}
		answer(sv, &sv->jobs[i]);
		/* Kept in arrival order: jobs[0] is the oldest. */
		memmove(&sv->jobs[i], &sv->jobs[i + 1],
			(--sv->njobs - i) * sizeof(sv->jobs[0]));
		did = true;
	}
	return did;
}

/* Rank 0 left: what still runs here has no one to report to. BYE tells
 * rank 0 that nothing follows it: rank 0 takes every message until then,
 * so that the large ones this rank still sends (results, which need
 * their receiver) complete and the finish below returns. */
static void serve_end(struct server *sv)
{
	void *bye = malloc(1);
	if (bye)
		px__mpi_send_owned(&sv->sends, bye, 0, 0, PX__MPI_TAG_BYE);
	else
		MPI_Send(NULL, 0, MPI_BYTE, 0, PX__MPI_TAG_BYE, px__mpi.comm);
	px_executor_shutdown(px__mpi.local, false, true);
	for (size_t i = 0; i < sv->njobs; i++) {
		px_future_cancel(sv->jobs[i].lf, PX_CANCEL_RUNNING);
		px_future_release(sv->jobs[i].lf);
	}
	free(sv->jobs);
	free(sv->buf);
	free(sv->arg);
	free(sv->lane_busy);
	px__mpi_sends_finish(&sv->sends);
}

/* How long one empty round waits on a local future, while the spin after
 * the last event lasts: short, since no message from rank 0 is seen
 * meanwhile. */
#define LOCAL_WAIT_NS 4000

/* How long it sleeps on the oldest local future while every local worker
 * has a task queued behind it. */
#define BACKLOG_WAIT_NS 200000

/*
 * An empty round. While tasks run here, it waits on the oldest one's
 * future instead of probing MPI (an empty MPI_Iprobe yields the core when
 * Open MPI runs oversubscribed): px_future_wait sees the completion at
 * once, and lends this thread to the local pool where the pool can use it
 * (ops->wait_help: e.g. collecting replies itself). While the spin after
 * the last event lasts it waits briefly, so that rank 0's next message is
 * seen soon. With more tasks here than workers, every worker is busy until
 * the oldest task ends, and no result is due before: it sleeps on that
 * future (up to BACKLOG_WAIT_NS), leaving the CPU to the workers.
 */
static void wait_a_little(struct server *sv, struct px__mpi_idle *idle)
{
	int workers = px__mpi.ranks[px__mpi.rank].workers;
	if (sv->njobs > (size_t)(workers > 0 ? workers : 1))
		(void)px_future_wait(sv->jobs[0].lf, BACKLOG_WAIT_NS);
	else if (sv->njobs && px__mpi_idle_spinning(idle))
		(void)px_future_wait(sv->jobs[0].lf, LOCAL_WAIT_NS);
	else
		px__mpi_idle_wait(idle, sv->njobs > 0);
}

void px__mpi_serve(void)
{
	struct server sv = { 0 };
	struct px__mpi_idle idle = { 0 };
	while (!sv.stop) {
		bool did = take_messages(&sv);
		did |= answer_finished(&sv);
		px__mpi_packs_flush(&sv.sends);
		did |= px__mpi_sends_poll(&sv.sends);
		if (did)
			px__mpi_idle_reset(&idle);
		else if (!sv.stop)
			wait_a_little(&sv, &idle);
	}
	serve_end(&sv);
}
