/*
 * mpi/client.c - rank 0's px-mpi thread: sends queued tasks to the serving
 * ranks, receives their results and completes the futures (so done
 * callbacks run in this thread), forwards cancels; at exit it releases the
 * serving ranks.
 *
 * Each round takes its work from the executor under px__mpi.lock (struct
 * round), then makes the MPI calls without it, holding px__mpi.mpi_lock.
 * Rounds are run by the px-mpi thread, and, where MPI grants
 * MPI_THREAD_SERIALIZED, by threads of the program: a submit sends its
 * task at once if MPI is free, and a thread waiting for a future polls
 * MPI itself (ops->wait_help) while the px-mpi thread sleeps. Done
 * callbacks therefore run in whichever of these completes the future.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <parex/executor.h>

#include "mpi_internal.h"

#define ROUND_MAX 64 /* tasks (and cancels) sent per round, at most */

/* What one round took from the executor, to act on without the lock. */
struct round {
	struct px__mpi_ex *m;
	px_future *dropped; /* queued tasks of a cancel_pending shutdown */
	bool drop;          /* tell every rank to drop what has not started */
	size_t nsend, ncancel;
	px_future *send_f[ROUND_MAX];
	uint32_t send_slot[ROUND_MAX];
	uint64_t cancel_id[ROUND_MAX];
	int cancel_rank[ROUND_MAX];
};

/* The px-mpi thread's own state. */
struct client {
	struct px__mpi_sends sends;
	unsigned char *buf; /* the message being read */
	size_t bcap;
	unsigned char *scratch; /* a separate result nothing waits for */
	size_t scap;
	struct px__mpi_idle idle; /* the px-mpi thread's */
};

/* ---- taking a round's work (under px__mpi.lock) ---------------------------- */

static void take_shutdown(struct px__mpi_ex *m, struct round *rd)
{
	if (!m->cancel_pending)
		return;
	if (m->qh) {
		rd->dropped = m->qh;
		m->qh = m->qt = NULL;
		m->nq = 0;
	}
	if (!m->drop_sent)
		m->drop_sent = rd->drop = true;
}

static void take_cancels(struct px__mpi_ex *m, struct round *rd)
{
	for (uint32_t i = 0; m->ncancel && i < m->nslots && rd->ncancel < ROUND_MAX;
	     i++) {
		struct px__mpi_slot *sl = &m->slots[i];
		if (!sl->f || !sl->cancel_req)
			continue;
		sl->cancel_req = false;
		m->ncancel--;
		rd->cancel_id[rd->ncancel] = (uint64_t)sl->gen << 32 | i;
		rd->cancel_rank[rd->ncancel++] = sl->rank;
	}
}

/* Whether m has nothing out and nothing to send. Under px__mpi.lock. */
static bool quiet(const struct px__mpi_ex *m)
{
	return !m || (!m->qh && !m->inflight && !m->ncancel &&
		      !(m->cancel_pending && !m->drop_sent));
}

/* Takes the round's work, if any. Under px__mpi.lock. */
static void take_round(struct round *rd)
{
	memset(rd, 0, offsetof(struct round, send_f));
	struct px__mpi_ex *m = rd->m = px__mpi.cur;
	if (!m)
		return;
	take_shutdown(m, rd);
	while (rd->nsend < ROUND_MAX) {
		px_future *f = m->qh;
		uint32_t i = px__mpi_dispatch_one(m);
		if (i == PX__MPI_NO_SLOT)
			break;
		rd->send_f[rd->nsend] = f;
		rd->send_slot[rd->nsend++] = i;
	}
	take_cancels(m, rd);
	if (rd->nsend || rd->dropped)
		pthread_cond_broadcast(&px__mpi.cond); /* queue room */
}

/* ---- acting on it (no lock held) ----------------------------------------- */

/* Packs the task of slot idx for its rank; a task that cannot be named
 * across ranks fails here. */
static void send_task(struct px__mpi_ex *m, struct px__mpi_sends *s,
		      px_future *f, uint32_t idx)
{
	struct px__mpi_task h = { .timeout_ns = f->timeout_ns,
				  .arg_len = f->arg_len };
	if (m->ex.trace)
		h.flags |= PX__MPI_T_TRACE;
	int r = px__mpi_fn_encode((const void *)f->fn, &h.fn);
	if (!r && f->fn == px__map_chunk_task() &&
	    f->arg_len >= sizeof(px_task_fn)) {
		px_task_fn inner;
		memcpy(&inner, f->arg, sizeof(inner));
		h.flags |= PX__MPI_T_CHUNK;
		r = px__mpi_fn_encode((const void *)inner, &h.inner);
	}
	pthread_mutex_lock(&px__mpi.lock);
	struct px__mpi_slot *sl = &m->slots[idx];
	h.id = (uint64_t)sl->gen << 32 | idx;
	int rank = sl->rank;
	if (m->ex.trace)
		sl->sent_ns = px__now_ns();
	pthread_mutex_unlock(&px__mpi.lock);
	/* A large argument goes as its own message, from f's memory (the
	 * chunk's raw record function included: the serving rank writes its
	 * own over it). */
	bool separate = f->arg_len >= PX__MPI_SEPARATE_MIN &&
			px__mpi_sends_reserve(s);
	if (separate)
		h.flags |= PX__MPI_T_SEPARATE;
	unsigned char *b = r ? NULL
			     : px__mpi_pack_room(s, rank, PX__MPI_TAG_TASK,
						 sizeof(h) +
							 (separate ? 0 : f->arg_len));
	if (!b) {
		pthread_mutex_lock(&px__mpi.lock);
		px__mpi_slot_free(m, idx);
		pthread_mutex_unlock(&px__mpi.lock);
		px__future_store_message(
			f, r == -ENOTSUP ? "the task's function is in a module "
					   "without a build-id"
			   : r ? "the task's function is not in a loaded module"
			       : NULL);
		px__mpi_task_finished(m, f, r ? r : -ENOMEM, true, NULL);
		return;
	}
	memcpy(b, &h, sizeof(h));
	if (separate) {
		/* The record first: the rank receives with MPI_ANY_TAG. */
		px__mpi_pack_flush(s, rank);
		px__mpi_send_held(s, f->arg, f->arg_len, rank, PX__MPI_TAG_ARG, f);
		return;
	}
	memcpy(b + sizeof(h), f->arg, f->arg_len);
	if (h.flags & PX__MPI_T_CHUNK)
		memset(b + sizeof(h), 0, sizeof(px_task_fn)); /* no raw pointer */
}

/* Starts (PENDING -> RUNNING) and packs the round's tasks. */
static void send_tasks(struct client *c, struct round *rd)
{
	struct px__mpi_ex *m = rd->m;
	for (size_t k = 0; k < rd->nsend; k++) {
		px_future *f = rd->send_f[k];
		px_promise_on_cancel(f, px__mpi_cancel_running, m);
		if (px_promise_start(f)) {
			/* Cancelled while queued: its canceller completed it. */
			pthread_mutex_lock(&px__mpi.lock);
			px__mpi_slot_free(m, rd->send_slot[k]);
			pthread_mutex_unlock(&px__mpi.lock);
			px__mpi_task_finished(m, f, -ECANCELED, false, NULL);
			continue;
		}
		send_task(m, &c->sends, f, rd->send_slot[k]);
	}
}

/* Acts on a round. Returns true if it did anything. */
static bool run_round(struct client *c, struct round *rd)
{
	struct px__mpi_sends *s = &c->sends;
	bool did = rd->dropped || rd->nsend || rd->ncancel;
	while (rd->dropped) {
		px_future *f = rd->dropped;
		rd->dropped = f->qnext;
		px_future_cancel(f, 0); /* 0 also if already cancelled */
		px__mpi_task_finished(rd->m, f, -ECANCELED, false, NULL);
	}
	if (rd->drop)
		px__mpi_send_all(s, PX__MPI_TAG_DROP);
	send_tasks(c, rd);
	px__mpi_packs_flush(s); /* before any CANCEL that could name them */
	for (size_t k = 0; k < rd->ncancel; k++) {
		uint64_t *b = malloc(sizeof(*b));
		if (!b)
			continue;
		*b = rd->cancel_id[k];
		px__mpi_send_owned(s, b, sizeof(*b), rd->cancel_rank[k],
				   PX__MPI_TAG_CANCEL);
	}
	return did;
}

/* ---- results ------------------------------------------------------------------- */

/*
 * A PX__MPI_R_SEPARATE record's result: the next RESDATA message from its
 * rank, received straight into f's result buffer (f NULL: a stale record,
 * the message is received and dropped). The outcome.
 */
static int receive_result(struct client *c, px_future *f,
			  const struct px__mpi_result *h, int src, int err)
{
	uint32_t max = f ? f->ex->cfg.max_result : 0;
	void *dst = f && !err && h->res_len <= max
		? px__future_result_buffer(f, h->res_len) : NULL;
	MPI_Status st;
	MPI_Probe(src, PX__MPI_TAG_RESDATA, px__mpi.comm, &st);
	int n = 0;
	MPI_Get_count(&st, MPI_BYTE, &n);
	if (dst && n == (int)h->res_len) {
		MPI_Recv(dst, n, MPI_BYTE, src, PX__MPI_TAG_RESDATA, px__mpi.comm,
			 MPI_STATUS_IGNORE);
		return err;
	}
	long got = px__mpi_recv_probed(&st, &c->scratch, &c->scap);
	if (err)
		return err;
	if (!f || got != (long)h->res_len)
		return -EPROTO;
	return h->res_len > max ? -EMSGSIZE : -ENOMEM;
}

/* Stores a result record's result (inline, unless separate) and message
 * into f; the outcome. */
static int store_result(px_future *f, const struct px__mpi_result *h,
			const unsigned char *body, int err, bool separate)
{
	uint32_t inline_len = separate ? 0 : h->res_len;
	if (!err && !separate) {
		uint32_t max = f->ex->cfg.max_result;
		void *dst = h->res_len > max
			? NULL : px__future_result_buffer(f, h->res_len);
		if (!dst)
			err = h->res_len > max ? -EMSGSIZE : -ENOMEM;
		else if (h->res_len)
			memcpy(dst, body, h->res_len);
	}
	if (h->msg_len) {
		char *msg = malloc(h->msg_len + 1);
		if (msg) {
			memcpy(msg, body + inline_len, h->msg_len);
			msg[h->msg_len] = 0;
			px__future_store_message(f, msg);
			free(msg);
		}
	}
	return err;
}

/*
 * Where and when the task of a result ran, in rank 0's clock and tracks:
 * false if it never reached the local pool. The serving rank's times are
 * moved by its clock offset (0 on rank 0's host; else measured at start-up)
 * and clamped into [sent, now]: with one offset per rank, tasks that ran
 * one after the other on a lane stay so, as check_trace.py wants.
 */
static bool ran_where(const struct px__mpi_result *h,
		      const struct px__mpi_slot *sent, struct px__mpi_ran *ran)
{
	const struct px__mpi_rank *k = &px__mpi.ranks[sent->rank];
	if (h->lane < 0 || h->lane >= k->credits)
		return false;
	int64_t now = px__now_ns();
	int64_t s = h->start_ns - k->clock_off, e = h->end_ns - k->clock_off;
	s = s < sent->sent_ns ? sent->sent_ns : s > now ? now : s;
	e = e > now ? now : e < s ? s : e;
	*ran = (struct px__mpi_ran){ s, e, k->track_base + h->lane };
	return true;
}

/* One result record of n bytes from rank src (at most: a record's fields
 * may claim more than the message holds, which fails the task with
 * -EPROTO). Returns the record's length as claimed. */
static size_t take_result(struct client *c, struct px__mpi_ex *m,
			  const unsigned char *buf, size_t n, int src)
{
	struct px__mpi_result h;
	memcpy(&h, buf, sizeof(h));
	bool separate = h.flags & PX__MPI_R_SEPARATE;
	size_t claimed = sizeof(h) + (separate ? 0 : (size_t)h.res_len) +
			 h.msg_len;
	uint32_t idx = (uint32_t)h.id, gen = (uint32_t)(h.id >> 32);
	pthread_mutex_lock(&px__mpi.lock);
	px_future *f = NULL;
	struct px__mpi_slot sent = { 0 };
	if (m && px__mpi.cur == m && idx < m->nslots && m->slots[idx].f &&
	    m->slots[idx].gen == gen) {
		f = m->slots[idx].f;
		sent = m->slots[idx];
		px__mpi_slot_free(m, idx);
	}
	pthread_mutex_unlock(&px__mpi.lock);
	int err = h.err > 0 ? -h.err : h.err;
	if (separate)
		err = receive_result(c, f, &h, src, err);
	if (!f)
		return claimed; /* stale or foreign: nothing waits for it */
	if (claimed > n) {
		err = -EPROTO;
		h.res_len = h.msg_len = 0;
	}
	err = store_result(f, &h, buf + sizeof(h), err, separate);
	struct px__mpi_ran ran;
	bool traced = m->ex.trace && ran_where(&h, &sent, &ran);
	px__mpi_task_finished(m, f, err, true, traced ? &ran : NULL);
	return claimed;
}

/* A RESULT message: one or more {struct px__mpi_result, result, message}
 * records. */
static void take_results(struct client *c, struct px__mpi_ex *m,
			 const unsigned char *buf, size_t n, int src)
{
	size_t off = 0;
	while (n - off >= sizeof(struct px__mpi_result)) {
		size_t len = take_result(c, m, buf + off, n - off, src);
		if (len > n - off)
			return; /* malformed: the records after it are lost */
		off = px__mpi_next_record(off, len, n);
	}
}

/* Receives every result message there is, or until `until` (if not NULL)
 * is finished: an empty MPI_Iprobe may give the core away (Open MPI yields
 * in it when oversubscribed), which a waiter whose result came need not
 * pay. Returns true if any came. */
static bool receive_results(struct client *c, struct px__mpi_ex *m,
			    px_future *until)
{
	bool did = false;
	while (!until || !px_future_is_done(until)) {
		int flag = 0;
		MPI_Status st;
		MPI_Iprobe(MPI_ANY_SOURCE, PX__MPI_TAG_RESULT, px__mpi.comm,
			   &flag, &st);
		if (!flag)
			return did;
		long n = px__mpi_recv_probed(&st, &c->buf, &c->bcap);
		if (n >= 0) /* m NULL: stale, but separate results drained */
			take_results(c, m, c->buf, (size_t)n, st.MPI_SOURCE);
		did = true;
	}
	return did;
}

/* The last time a round did anything (relaxed: a hint for parking). */
static _Atomic int64_t last_event;

static void note_event(void)
{
	atomic_store_explicit(&last_event, px__now_ns(), memory_order_relaxed);
}

/* The one client: whoever holds px__mpi.mpi_lock runs its rounds. */
static struct client client;

/* Set while this thread runs a round: done callbacks run inside it, and a
 * wait_help from one of them must not take mpi_lock again. */
static _Thread_local bool in_round;

/* One round: sends what is queued, receives what came back (stopping
 * once `until`, if not NULL, is finished), retires sends. Returns true if
 * it did anything. Under mpi_lock, not lock. */
static bool client_round(px_future *until)
{
	struct round rd;
	in_round = true;
	pthread_mutex_lock(&px__mpi.lock);
	take_round(&rd);
	pthread_mutex_unlock(&px__mpi.lock);
	bool did = run_round(&client, &rd);
	did |= receive_results(&client, rd.m, until);
	if (!until || !px_future_is_done(until))
		did |= px__mpi_sends_poll(&client.sends);
	in_round = false;
	if (did)
		note_event();
	return did;
}

/*
 * How the px-mpi thread parks while there is nothing out (or a waiting
 * thread drives MPI): in naps of PARK_NAP_NS for PARK_LIGHT_NS after the
 * last event anyone saw, then until woken (deep). A submit wakes it only
 * from a deep park: within a burst of round trips the submitter sends the
 * task and its waiter receives the result, and the px-mpi thread, never
 * woken, stays off the CPUs they need; a task nobody waits for is looked
 * at within a nap.
 */
#define PARK_NAP_NS 100000
#define PARK_LIGHT_NS 2000000

/* Parks the px-mpi thread once: a nap or a deep park. Under lock. */
static void park(void)
{
	int64_t now = px__now_ns();
	int64_t last = atomic_load_explicit(&last_event, memory_order_relaxed);
	px__mpi.idle = true;
	if (!px__mpi.callers_drive || now - last > PARK_LIGHT_NS) {
		px__mpi.deep = true;
		pthread_cond_wait(&px__mpi.wake, &px__mpi.lock);
		px__mpi.deep = false;
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts); /* wake's clock */
		int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec +
			    PARK_NAP_NS;
		ts.tv_sec = t / 1000000000;
		ts.tv_nsec = t % 1000000000;
		pthread_cond_timedwait(&px__mpi.wake, &px__mpi.lock, &ts);
	}
	px__mpi.idle = false;
}

/* Whether the px-mpi thread should run a round now: not while there is
 * nothing out or to send, nor while a waiting thread drives MPI itself
 * (helpers). False once the process exits. */
static bool progress_wanted(bool sending)
{
	pthread_mutex_lock(&px__mpi.lock);
	bool nap = !px__mpi.exit_req &&
		   ((quiet(px__mpi.cur) && !sending) || px__mpi.helpers);
	if (nap)
		park();
	bool go = !px__mpi.exit_req;
	pthread_mutex_unlock(&px__mpi.lock);
	return go;
}

/* After EXIT: takes (and drops) every message from the serving ranks until
 * each has said BYE. Messages from one rank that match one receive arrive
 * in order, so after its BYE nothing of it is left in flight. */
static void drain_until_bye(struct client *c)
{
	for (int left = px__mpi.size - 1; left > 0;) {
		MPI_Status st;
		MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, px__mpi.comm, &st);
		if (px__mpi_recv_probed(&st, &c->buf, &c->bcap) >= 0 &&
		    st.MPI_TAG == PX__MPI_TAG_BYE)
			left--;
	}
}

void px__mpi_progress(void)
{
	bool sending = false;
	note_event();
	while (progress_wanted(sending)) {
		bool did = false;
		if (!pthread_mutex_trylock(&px__mpi.mpi_lock)) {
			did = client_round(NULL);
			sending = client.sends.n > 0;
			pthread_mutex_unlock(&px__mpi.mpi_lock);
		} /* else a submitter runs a round: look again shortly */
		if (did)
			px__mpi_idle_reset(&client.idle);
		else
			px__mpi_idle_wait(&client.idle, true);
	}
	pthread_mutex_lock(&px__mpi.mpi_lock);
	px__mpi.mpi_closed = true; /* no thread calls MPI after this */
	px__mpi_send_all(&client.sends, PX__MPI_TAG_EXIT);
	drain_until_bye(&client);
	free(client.buf);
	free(client.scratch);
	px__mpi_sends_finish(&client.sends);
	pthread_mutex_unlock(&px__mpi.mpi_lock);
}

void px__mpi_submit_drive(void)
{
	if (in_round || pthread_mutex_trylock(&px__mpi.mpi_lock))
		return;
	if (!px__mpi.mpi_closed)
		client_round(NULL);
	pthread_mutex_unlock(&px__mpi.mpi_lock);
}

/* How long a waiting thread polls MPI after the last event before it
 * leaves the waiting to the px-mpi thread (and sleeps on its future). */
#define HELP_SPIN_NS 50000

/* Rounds until f is finished, the deadline passes or HELP_SPIN_NS pass
 * without an event. Under mpi_lock. */
static void drive_until(px_future *f, int64_t deadline)
{
	struct px__spin spin;
	px__spin_init(&spin, HELP_SPIN_NS);
	while (!px_future_is_done(f) && !px__deadline_passed(deadline)) {
		if (client_round(f))
			px__spin_init(&spin, HELP_SPIN_NS);
		else if (!px__spin_step(&spin))
			break;
	}
}

/*
 * The waiting thread polls MPI and completes futures itself, sparing the
 * round trip the hand-offs to and from the px-mpi thread, which sleeps
 * meanwhile (helpers). It announces itself first, so that the px-mpi
 * thread parks after its current round and frees mpi_lock.
 */
int px__mpi_wait_help(px_executor *ex, px_future *f, int64_t deadline)
{
	(void)ex;
	if (!px__mpi.callers_drive || in_round)
		return 0;
	pthread_mutex_lock(&px__mpi.lock);
	px__mpi.helpers++;
	pthread_mutex_unlock(&px__mpi.lock);
	struct px__spin spin;
	px__spin_init(&spin, HELP_SPIN_NS);
	bool locked;
	while (!(locked = !pthread_mutex_trylock(&px__mpi.mpi_lock)) &&
	       !px_future_is_done(f) && px__spin_step(&spin))
		;
	if (locked) {
		if (!px__mpi.mpi_closed)
			drive_until(f, deadline);
		pthread_mutex_unlock(&px__mpi.mpi_lock);
	}
	pthread_mutex_lock(&px__mpi.lock);
	/* The rest is px-mpi's. With f finished, from a nap it looks soon
	 * enough (and the caller may wait again at once: a wake would only
	 * be in the way); with f still out, the caller is about to sleep, so
	 * px-mpi takes over now. */
	bool done = locked && px_future_is_done(f);
	if (--px__mpi.helpers == 0 && px__mpi.idle && !quiet(px__mpi.cur) &&
	    (px__mpi.deep || !done))
		pthread_cond_signal(&px__mpi.wake);
	pthread_mutex_unlock(&px__mpi.lock);
	return done ? 1 : 0;
}
