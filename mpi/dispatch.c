/*
 * mpi/dispatch.c - rank 0's credits and slots: which rank gets the next
 * queued task, the slot that names it on the wire until its result comes,
 * and the end of a task's life on rank 0.
 *
 * A serving rank holds at most its credits (PX__MPI_CREDITS_PER_WORKER per
 * worker, plus PX__MPI_CREDITS_EXTRA) of tasks; the next task goes to the
 * rank with the most free credits, so an idle rank gets work and a slow
 * one does not collect it. There are as many slots as credits in all.
 */
#include <errno.h>
#include <stdio.h>

#include "mpi_internal.h"
#include "trace.h"

int px__mpi_best_rank(void)
{
	int best = -1, most = 0;
	for (int r = 1; r < px__mpi.size; r++) {
		int free_c = px__mpi.ranks[r].credits - px__mpi.ranks[r].used;
		if (free_c > most) {
			most = free_c;
			best = r;
		}
	}
	return best;
}

void px__mpi_slot_free(struct px__mpi_ex *m, uint32_t i)
{
	struct px__mpi_slot *sl = &m->slots[i];
	px__mpi.ranks[sl->rank].used--;
	if (sl->cancel_req)
		m->ncancel--;
	sl->f = NULL;
	sl->cancel_req = false;
	sl->gen++;
	sl->next_free = m->free_head;
	m->free_head = i;
	m->inflight--;
}

uint32_t px__mpi_dispatch_one(struct px__mpi_ex *m)
{
	if (!m->qh || m->free_head == PX__MPI_NO_SLOT)
		return PX__MPI_NO_SLOT;
	int r = px__mpi_best_rank();
	if (r < 0)
		return PX__MPI_NO_SLOT;
	px_future *f = m->qh;
	m->qh = f->qnext;
	if (!m->qh)
		m->qt = NULL;
	m->nq--;
	uint32_t i = m->free_head;
	struct px__mpi_slot *sl = &m->slots[i];
	m->free_head = sl->next_free;
	sl->f = f;
	sl->rank = r;
	px__mpi.ranks[r].used++;
	m->inflight++;
	f->backend_data = (uint64_t)sl->gen << 32 | i;
	return i;
}

/* Counted first, so that a waiter woken by the completion finds it in the
 * stats (the release of the completion pairs with the waiter's acquire).
 * Once started, only px-mpi completes a task: a cancel of a running one
 * only asks its rank (px__mpi_cancel_running). */
void px__mpi_task_finished(struct px__mpi_ex *m, px_future *f, int err,
			   bool complete, const struct px__mpi_ran *ran)
{
	px__counts_record(&m->counts, err);
	if (m->ex.trace) {
		unsigned flags = ran ? 0 : PX__TRACE_NOT_RUN;
		if (ran && err == PX_EWORKERDIED)
			flags |= PX__TRACE_CRASHED;
		px__trace_task(m->ex.trace, f->trace_submit_ns, f->trace_task,
			       ran ? ran->track : -1, 0, ran ? ran->start_ns : 0,
			       ran ? ran->end_ns : 0, err, flags);
	}
	if (complete)
		px__future_complete(f, err);
	px_future_release(f);
	pthread_mutex_lock(&px__mpi.lock);
	if (--m->outstanding == 0 && m->closed)
		pthread_cond_broadcast(&px__mpi.cond); /* a waited shutdown */
	pthread_mutex_unlock(&px__mpi.lock);
}

/* PX_CANCEL_RUNNING on a task sent to a rank: marks it for the px-mpi
 * thread to send CANCEL (its local pool kills the worker if it runs). */
int px__mpi_cancel_running(px_future *f, void *arg)
{
	struct px__mpi_ex *m = arg;
	uint64_t bd = f->backend_data;
	uint32_t idx = (uint32_t)bd, gen = (uint32_t)(bd >> 32);
	int r = -EBUSY;
	pthread_mutex_lock(&px__mpi.lock);
	if (idx < m->nslots && m->slots[idx].f == f && m->slots[idx].gen == gen) {
		if (!m->slots[idx].cancel_req) {
			m->slots[idx].cancel_req = true;
			m->ncancel++;
			pthread_cond_signal(&px__mpi.wake);
		}
		r = 0;
	}
	pthread_mutex_unlock(&px__mpi.lock);
	return r;
}

void px__mpi_track_name(void *arg, int track, char *buf, size_t len)
{
	(void)arg;
	for (int r = 1; r < px__mpi.size; r++) {
		const struct px__mpi_rank *k = &px__mpi.ranks[r];
		if (track >= k->track_base && track < k->track_base + k->credits) {
			snprintf(buf, len, "rank %d (%s) slot %d", r, k->host,
				 track - k->track_base);
			return;
		}
	}
	snprintf(buf, len, "track %d", track);
}
