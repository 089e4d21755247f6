/*
 * mpi/pack.c - messages between ranks: sends kept in flight until MPI is
 * done with their buffers, records packed per destination rank, and the
 * receive of a probed message.
 *
 * Messages to one rank are packed: the records (tasks one way, results the
 * other) that one round of a px-mpi loop has for a rank travel as one
 * message, each record padded to 8 bytes, up to PX__MPI_PACK_MAX bytes (a
 * larger record goes alone). One message per record cost a send, a probe
 * and a receive each, which bounded the submit rate.
 *
 * Used by one px-mpi thread at a time (rank 0's or a serving rank's), which
 * owns its struct px__mpi_sends; no locks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <parex/future.h>

#include "mpi_internal.h"

bool px__mpi_sends_reserve(struct px__mpi_sends *s)
{
	if (s->n < s->cap)
		return true;
	size_t cap = s->cap ? s->cap * 2 : 64;
	MPI_Request *r = realloc(s->req, cap * sizeof(*r));
	if (!r)
		return false;
	s->req = r;
	void **b = realloc(s->buf, cap * sizeof(*b));
	if (!b)
		return false;
	s->buf = b;
	px_future **h = realloc(s->hold, cap * sizeof(*h));
	if (!h)
		return false;
	s->hold = h;
	s->cap = cap;
	return true;
}

/* What a finished send leaves: its buffer freed, or its future released. */
static void send_done(struct px__mpi_sends *s, size_t i)
{
	if (s->hold[i])
		px_future_release(s->hold[i]);
	else
		free(s->buf[i]);
}

void px__mpi_send_owned(struct px__mpi_sends *s, void *buf, size_t len,
			int rank, int tag)
{
	if (!px__mpi_sends_reserve(s)) {
		/* Rare: send it synchronously rather than lose it. */
		MPI_Send(buf, (int)len, MPI_BYTE, rank, tag, px__mpi.comm);
		free(buf);
		return;
	}
	MPI_Isend(buf, (int)len, MPI_BYTE, rank, tag, px__mpi.comm,
		  &s->req[s->n]);
	s->hold[s->n] = NULL;
	s->buf[s->n++] = buf;
}

void px__mpi_send_held(struct px__mpi_sends *s, const void *buf, size_t len,
		       int rank, int tag, px_future *hold)
{
	if (!px__mpi_sends_reserve(s)) {
		MPI_Send(buf, (int)len, MPI_BYTE, rank, tag, px__mpi.comm);
		return;
	}
	MPI_Isend(buf, (int)len, MPI_BYTE, rank, tag, px__mpi.comm,
		  &s->req[s->n]);
	s->hold[s->n] = px_future_retain(hold);
	s->buf[s->n++] = (void *)buf;
}

void px__mpi_send_all(struct px__mpi_sends *s, int tag)
{
	for (int r = 1; r < px__mpi.size; r++) {
		void *b = malloc(1);
		if (b)
			px__mpi_send_owned(s, b, 0, r, tag);
		else
			MPI_Send(NULL, 0, MPI_BYTE, r, tag, px__mpi.comm);
	}
}

bool px__mpi_sends_poll(struct px__mpi_sends *s)
{
	bool any = false;
	for (size_t i = 0; i < s->n;) {
		int done = 0;
		MPI_Test(&s->req[i], &done, MPI_STATUS_IGNORE);
		if (!done) {
			i++;
			continue;
		}
		send_done(s, i);
		s->n--;
		s->req[i] = s->req[s->n];
		s->buf[i] = s->buf[s->n];
		s->hold[i] = s->hold[s->n];
		any = true;
	}
	return any;
}

void px__mpi_pack_flush(struct px__mpi_sends *s, int rank)
{
	struct px__mpi_pack *p = s->pk ? &s->pk[rank] : NULL;
	if (!p || !p->len)
		return;
	px__mpi_send_owned(s, p->b, p->len, rank, p->tag);
	p->b = NULL;
	p->len = p->cap = 0;
}

void px__mpi_packs_flush(struct px__mpi_sends *s)
{
	for (int r = 0; s->pk && r < px__mpi.size; r++)
		px__mpi_pack_flush(s, r);
}

unsigned char *px__mpi_pack_room(struct px__mpi_sends *s, int rank, int tag,
				 size_t len)
{
	if (!s->pk && !(s->pk = calloc((size_t)px__mpi.size, sizeof(*s->pk))))
		return NULL;
	struct px__mpi_pack *p = &s->pk[rank];
	size_t padded = (len + 7) & ~(size_t)7;
	if (p->len && (p->tag != tag || p->len + padded > PX__MPI_PACK_MAX))
		px__mpi_pack_flush(s, rank);
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

size_t px__mpi_next_record(size_t off, size_t len, size_t n)
{
	size_t padded = (len + 7) & ~(size_t)7;
	return padded > n - off ? n : off + padded;
}

void px__mpi_sends_finish(struct px__mpi_sends *s)
{
	px__mpi_packs_flush(s);
	free(s->pk);
	/* One MPI_Wait each: MPICH's mpi.h declares MPI_Waitall's statuses
	 * with a size that gcc checks against MPI_STATUSES_IGNORE. */
	for (size_t i = 0; i < s->n; i++) {
		MPI_Wait(&s->req[i], MPI_STATUS_IGNORE);
		send_done(s, i);
	}
	free(s->req);
	free(s->buf);
	free(s->hold);
	memset(s, 0, sizeof(*s));
}

long px__mpi_recv_probed(MPI_Status *st, unsigned char **buf, size_t *cap)
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
				 px__mpi.comm, MPI_STATUS_IGNORE);
			return -1;
		}
		*buf = b;
		*cap = (size_t)n;
	}
	MPI_Recv(*buf, n, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, px__mpi.comm,
		 MPI_STATUS_IGNORE);
	return n;
}

long px__mpi_recv_next(int rank, int tag, unsigned char **buf, size_t *cap)
{
	MPI_Status st;
	MPI_Probe(rank, tag, px__mpi.comm, &st);
	return px__mpi_recv_probed(&st, buf, cap);
}
