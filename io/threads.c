/*
 * io/threads.c - the fallback backend, for where io_uring is unavailable:
 * the same operations as system calls on a small pool of worker threads,
 * with one poller thread (epoll plus a timer heap) for everything that
 * waits.
 *
 * Workers never wait for readiness: an operation on a socket, pipe or other
 * stream first tries its call without blocking (MSG_DONTWAIT), or, where the
 * call cannot be made non-blocking, goes straight to the poller; the poller
 * watches it with epoll (EPOLLONESHOT on a dup of its fd, so several
 * operations on one fd each have their own registration) and hands it back
 * to a worker once the fd is ready. So thousands of connections can wait at
 * once on 16 workers, as with io_uring, and a bounded pool cannot deadlock
 * on operations that wait for each other. Sleeps and deadlines live in the
 * poller's timer heap; cancels and px_io_destroy reach a waiting operation
 * through the poller. Regular files are read and written directly and cannot
 * be interrupted, again as with io_uring.
 *
 * The operation record lives in the future (f->arg, freed with it). The
 * backend holds one reference until px__io_complete, which runs exactly
 * once per operation (the caller first moves the state to OP_DONE under
 * tp->lock); the timer heap and the cancel list hold references of their
 * own, so an entry never outlives its record.
 *
 * Lock order: tp->lock is a leaf; futures are completed (and callbacks run)
 * with no lock held.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "timer_heap.h"

enum {
	OP_QUEUED,  /* in the worker queue */
	OP_RUNNING, /* a worker runs its call */
	OP_PARKED,  /* the poller waits for its fd */
	OP_TIMER,   /* a sleep in the timer heap */
	OP_DONE,    /* completed (or about to be, by whoever set this) */
};

#define PARK INT64_MIN /* run_op: "wait for readiness, then run again" */

struct top {
	struct px__io_req r;
	px_future *f;
	struct top *next;  /* worker queue */
	struct top *cnext; /* cancel list */
	struct top *pprev, *pnext; /* parked list */
	int64_t deadline;  /* px__now_ns() clock; PX__NO_DEADLINE: none */
	int state;         /* OP_*, under tp->lock */
	int pfd;           /* dup of the fd, taken when it first parks, or -1 */
	size_t done_io;    /* MSG_WAITALL: bytes moved so far */
	short pevents;     /* what to wait for when parking */
	bool ready;        /* the poller saw the fd ready */
	bool connecting;   /* connect() said EINPROGRESS */
	bool on_clist;
	struct sockaddr_storage sa; /* connect's copy */
	char path[];       /* openat's copy */
};

struct tpool {
	pthread_mutex_t lock;
	pthread_cond_t cv; /* workers wait for operations */
	struct top *head, *tail;
	unsigned nq;       /* queued */
	unsigned n, idle, max;
	pthread_t *tids;
	bool stopping;
	/* The poller. */
	pthread_t poller;
	int ep, efd;
	struct px__io_theap heap; /* of struct top */
	struct top *clist;  /* cancels for the poller */
	struct top *parked; /* parked list */
};

static inline struct tpool *T(px_io *io)
{
	return io->impl;
}

static void block_signals(void)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
}

static void wake_poller(struct tpool *tp)
{
	uint64_t one = 1;
	if (write(tp->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, a wake is pending */
	}
}

/* The timer heap (under tp->lock); each entry holds a future reference. */
static int heap_push(struct tpool *tp, int64_t when, struct top *op)
{
	int e = px__io_theap_push(&tp->heap, when, op);
	if (!e)
		px_future_retain(op->f);
	return e;
}

/* Parking (under tp->lock) ----------------------------------------------------- */

/*
 * The descriptor an operation works on. Once it has parked it holds a dup of
 * its fd and uses that from then on, as io_uring holds the file once it has
 * issued a request: if the caller closes the fd and the number is reused
 * meanwhile, the operation still reads the file it started on, not the
 * newcomer's data.
 */
static int op_fd(const struct top *op)
{
	return op->pfd >= 0 ? op->pfd : op->r.fd;
}

static int park(struct tpool *tp, struct top *op)
{
	op->ready = false;
	if (op->pfd < 0)
		op->pfd = fcntl(op->r.fd, F_DUPFD_CLOEXEC, 0);
	if (op->pfd < 0)
		return -errno;
	struct epoll_event ev = { .events = (uint32_t)op->pevents | EPOLLONESHOT,
				  .data.ptr = op };
	if (epoll_ctl(tp->ep, EPOLL_CTL_ADD, op->pfd, &ev)) {
		int e = -errno;
		close(op->pfd);
		op->pfd = -1;
		return e;
	}
	op->state = OP_PARKED;
	op->pprev = NULL;
	op->pnext = tp->parked;
	if (tp->parked)
		tp->parked->pprev = op;
	tp->parked = op;
	return 0;
}

/* Off epoll and the parked list; the dup stays until done_add. */
static void unpark(struct tpool *tp, struct top *op)
{
	epoll_ctl(tp->ep, EPOLL_CTL_DEL, op->pfd, NULL);
	if (op->pprev)
		op->pprev->pnext = op->pnext;
	else
		tp->parked = op->pnext;
	if (op->pnext)
		op->pnext->pprev = op->pprev;
}

static void enqueue(px_io *io, struct tpool *tp, struct top *op);

/* Completions collected under the lock, run after it. */
struct done {
	struct top *op;
	int64_t res;
};

struct donev {
	struct done *v;
	size_t n, cap;
	px_future **rel; /* references to drop after completing */
	size_t nrel, caprel;
};

static void done_add(struct donev *d, struct top *op, int64_t res)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct done *v = realloc(d->v, cap * sizeof(*v));
		if (!v)
			abort(); /* cannot drop a completion */
		d->v = v;
		d->cap = cap;
	}
	op->state = OP_DONE;
	if (op->pfd >= 0) {
		close(op->pfd);
		op->pfd = -1;
	}
	d->v[d->n++] = (struct done){ op, res };
}

static void rel_add(struct donev *d, px_future *f)
{
	if (d->nrel == d->caprel) {
		size_t cap = d->caprel ? d->caprel * 2 : 64;
		px_future **v = realloc(d->rel, cap * sizeof(*v));
		if (!v)
			abort();
		d->rel = v;
		d->caprel = cap;
	}
	d->rel[d->nrel++] = f;
}

static void done_run(px_io *io, struct donev *d)
{
	if (d->n)
		px__io_count_completed(io, (unsigned)d->n);
	for (size_t i = 0; i < d->n; i++)
		px__io_complete(io, d->v[i].op->f, d->v[i].res);
	for (size_t i = 0; i < d->nrel; i++)
		px_future_release(d->rel[i]);
	d->n = d->nrel = 0;
}

/* The poller ------------------------------------------------------------------ */

/* tp->lock held: the cancels px_future_cancel() left for the poller. */
static void poll_cancels(struct tpool *tp, struct donev *d)
{
	while (tp->clist) {
		struct top *op = tp->clist;
		tp->clist = op->cnext;
		op->on_clist = false;
		if (op->state == OP_PARKED) {
			unpark(tp, op);
			done_add(d, op, -ECANCELED);
		} else if (op->state == OP_TIMER) {
			done_add(d, op, -ECANCELED);
		}
		rel_add(d, op->f);
	}
}

/* tp->lock held: sleeps end, deadlines of parked operations pass. Returns
 * the epoll_wait timeout until the next timer (ms; -1: none). */
static int poll_timers(struct tpool *tp, struct donev *d)
{
	int64_t now = px__now_ns();
	while (tp->heap.n && tp->heap.v[0].when <= now) {
		struct top *op = px__io_theap_pop(&tp->heap);
		if (op->state == OP_TIMER) {
			done_add(d, op, 0);
		} else if (op->state == OP_PARKED) {
			unpark(tp, op);
			done_add(d, op, -ETIMEDOUT);
		}
		rel_add(d, op->f);
	}
	int timeout = -1;
	if (tp->heap.n && tp->heap.v[0].when != PX__NO_DEADLINE) {
		/* Rounded up, and capped at what epoll takes: the loop comes
		 * round again and recomputes. */
		int64_t left = tp->heap.v[0].when - now;
		int64_t ms = left / PX_MSEC + (left % PX_MSEC != 0);
		timeout = ms > INT_MAX ? INT_MAX : (int)ms;
	}
	return timeout;
}

/* tp->lock held: the n events epoll_wait returned. A ready operation goes
 * back to a worker; a poll completes with the events. */
static void poll_ready(px_io *io, struct tpool *tp,
		       const struct epoll_event *evs, int n, struct donev *d)
{
	for (int i = 0; i < n; i++) {
		if (!evs[i].data.ptr) {
			uint64_t v;
			if (read(tp->efd, &v, sizeof(v)) < 0) {
				/* drained already */
			}
			continue;
		}
		struct top *op = evs[i].data.ptr;
		if (op->state != OP_PARKED)
			continue;
		unpark(tp, op);
		if (tp->stopping) {
			/* The workers may be gone already. */
			done_add(d, op, -ECANCELED);
		} else if (op->r.kind == PX__IO_POLL) {
			uint32_t e = evs[i].events;
			done_add(d, op, (int64_t)(e & ~(uint32_t)EPOLLONESHOT));
		} else {
			op->ready = true;
			enqueue(io, tp, op);
		}
	}
}

/* tp->lock held, stopping: every waiting operation is cancelled. */
static void poll_stop(struct tpool *tp, struct donev *d)
{
	while (tp->parked) {
		struct top *op = tp->parked;
		unpark(tp, op);
		done_add(d, op, -ECANCELED);
	}
	while (tp->heap.n) {
		struct top *op = px__io_theap_pop(&tp->heap);
		if (op->state == OP_TIMER)
			done_add(d, op, -ECANCELED);
		rel_add(d, op->f);
	}
}

static void *poller_main(void *arg)
{
	pthread_setname_np(pthread_self(), "px-io-poller");
	px_io *io = arg;
	struct tpool *tp = T(io);
	struct donev d = { 0 };
	block_signals();
	pthread_mutex_lock(&tp->lock);
	for (;;) {
		poll_cancels(tp, &d);
		int timeout = poll_timers(tp, &d);
		if (tp->stopping)
			break;
		pthread_mutex_unlock(&tp->lock);
		done_run(io, &d);

		struct epoll_event evs[64];
		int n = epoll_wait(tp->ep, evs, 64, timeout);

		pthread_mutex_lock(&tp->lock);
		poll_ready(io, tp, evs, n, &d);
	}
	poll_stop(tp, &d);
	pthread_mutex_unlock(&tp->lock);
	done_run(io, &d);
	free(d.v);
	free(d.rel);
	return NULL;
}

/* Running one operation (a worker, no lock held) ------------------------------- */

/* Whether fd is a stream (not a regular file or block device): 1, 0, or
 * -errno. */
static int is_stream(int fd)
{
	struct stat st;
	if (fstat(fd, &st))
		return -errno;
	return !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
}

static bool again(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK;
}

static int64_t wait_for(struct top *op, short events)
{
	op->pevents = events;
	return PARK;
}

static int64_t do_rw(struct top *op)
{
	const struct px__io_req *r = &op->r;
	int fd = op_fd(op);
	int s = is_stream(fd);
	if (s < 0)
		return s;
	bool rd = r->kind == PX__IO_READ || r->kind == PX__IO_READV;
	if (s && !op->ready)
		return wait_for(op, rd ? POLLIN : POLLOUT);
	bool pos = !s && r->off >= 0;
	ssize_t n;
	switch (r->kind) {
	case PX__IO_READ:
		n = pos ? pread(fd, r->buf, r->len, r->off)
			: read(fd, r->buf, r->len);
		break;
	case PX__IO_WRITE:
		n = pos ? pwrite(fd, r->buf, r->len, r->off)
			: write(fd, r->buf, r->len);
		break;
	case PX__IO_READV:
		n = pos ? preadv(fd, r->iov, r->iovcnt, r->off)
			: readv(fd, r->iov, r->iovcnt);
		break;
	default:
		n = pos ? pwritev(fd, r->iov, r->iovcnt, r->off)
			: writev(fd, r->iov, r->iovcnt);
		break;
	}
	if (n >= 0)
		return n;
	if (s && (again() || errno == EINTR))
		return wait_for(op, rd ? POLLIN : POLLOUT);
	return -errno;
}

static int64_t do_connect(struct top *op)
{
	const struct px__io_req *r = &op->r;
	if (op->connecting) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(op_fd(op), SOL_SOCKET, SO_ERROR, &err, &el))
			return -errno;
		return -err;
	}
	/* connect() on a blocking socket would hold the worker: make it
	 * non-blocking for the call only (the connection goes on in the
	 * kernel), then wait for writability. */
	int fl = fcntl(r->fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (!(fl & O_NONBLOCK) && fcntl(r->fd, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	int64_t res = connect(r->fd, r->addr, r->addrlen) ? -errno : 0;
	if (!(fl & O_NONBLOCK))
		fcntl(r->fd, F_SETFL, fl);
	if (res == -EINPROGRESS) {
		op->connecting = true;
		return wait_for(op, POLLOUT);
	}
	return res;
}

/*
 * send/recv without blocking. MSG_WAITALL on a stream socket keeps going
 * until len bytes or end of file, as io_uring does (the non-blocking call
 * alone would return what is there); an error after some progress reports
 * the progress, again as io_uring does.
 */
static int64_t do_sendrecv(struct top *op)
{
	const struct px__io_req *r = &op->r;
	int fd = op_fd(op);
	bool rd = r->kind == PX__IO_RECV;
	bool all = false;
	if (r->flags & MSG_WAITALL) {
		int type = 0;
		socklen_t tl = sizeof(type);
		all = !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) &&
		      (type == SOCK_STREAM || type == SOCK_SEQPACKET);
	}
	for (;;) {
		char *p = (char *)r->buf + op->done_io;
		size_t len = r->len - op->done_io;
		ssize_t n = rd ? recv(fd, p, len, r->flags | MSG_DONTWAIT)
			       : send(fd, p, len, r->flags | MSG_DONTWAIT);
		if (n > 0) {
			op->done_io += (size_t)n;
			if (all && op->done_io < r->len)
				continue;
			return (int64_t)op->done_io;
		}
		if (n == 0)
			return (int64_t)op->done_io;
		if (again() || errno == EINTR)
			return wait_for(op, rd ? POLLIN : POLLOUT);
		return op->done_io ? (int64_t)op->done_io : -errno;
	}
}

static int64_t run_op(struct top *op)
{
	const struct px__io_req *r = &op->r;
	ssize_t n;
	switch (r->kind) {
	case PX__IO_NOP:
		return 0;
	case PX__IO_READ:
	case PX__IO_WRITE:
	case PX__IO_READV:
	case PX__IO_WRITEV:
		return do_rw(op);
	case PX__IO_FSYNC:
		if ((r->flags & PX_IO_DATASYNC) ? fdatasync(r->fd) : fsync(r->fd))
			return -errno;
		return 0;
	case PX__IO_OPENAT:
		n = openat(r->fd, r->path, r->flags, r->mode);
		return n < 0 ? -errno : n;
	case PX__IO_CLOSE:
		return close(r->fd) ? -errno : 0;
	case PX__IO_ACCEPT:
		/* Only once ready: on a blocking socket accept4 would block. */
		if (!op->ready)
			return wait_for(op, POLLIN);
		n = accept4(op_fd(op), r->aaddr, r->aaddrlen, r->flags);
		if (n < 0 && (again() || errno == EINTR))
			return wait_for(op, POLLIN);
		return n < 0 ? -errno : n;
	case PX__IO_CONNECT:
		return do_connect(op);
	case PX__IO_SEND:
	case PX__IO_RECV:
		return do_sendrecv(op);
	case PX__IO_POLL:
		return wait_for(op, (short)r->events);
	}
	return -EINVAL;
}

/* Workers ------------------------------------------------------------------------ */

static bool cancelled(px_io *io, struct top *op)
{
	return (px__io_meta(op->f) & PX__IO_F_CANCEL) ||
	       atomic_load(&io->stopping);
}

static void *worker_main(void *arg)
{
	pthread_setname_np(pthread_self(), "px-io-worker");
	px_io *io = arg;
	struct tpool *tp = T(io);
	struct donev d = { 0 };
	block_signals();
	pthread_mutex_lock(&tp->lock);
	for (;;) {
		while (!tp->head && !tp->stopping) {
			tp->idle++;
			pthread_cond_wait(&tp->cv, &tp->lock);
			tp->idle--;
		}
		struct top *op = tp->head;
		if (!op)
			break;
		tp->head = op->next;
		if (!tp->head)
			tp->tail = NULL;
		tp->nq--;
		if (cancelled(io, op)) {
			done_add(&d, op, -ECANCELED);
		} else {
			op->state = OP_RUNNING;
			pthread_mutex_unlock(&tp->lock);
			int64_t res = run_op(op);
			pthread_mutex_lock(&tp->lock);
			if (res != PARK)
				done_add(&d, op, res);
			else if (cancelled(io, op))
				done_add(&d, op, -ECANCELED);
			else if (px__deadline_passed(op->deadline))
				done_add(&d, op, -ETIMEDOUT);
			else if ((res = park(tp, op)) == -EPERM &&
				 op->r.kind == PX__IO_POLL)
				/* A regular file: always ready, as io_uring
				 * reports it. */
				done_add(&d, op, op->r.events & (POLLIN | POLLOUT));
			else if (res < 0)
				done_add(&d, op, res);
		}
		if (d.n) {
			pthread_mutex_unlock(&tp->lock);
			done_run(io, &d);
			pthread_mutex_lock(&tp->lock);
		}
	}
	pthread_mutex_unlock(&tp->lock);
	free(d.v);
	free(d.rel);
	return NULL;
}

/* tp->lock held. */
static void enqueue(px_io *io, struct tpool *tp, struct top *op)
{
	op->state = OP_QUEUED;
	op->next = NULL;
	if (tp->tail)
		tp->tail->next = op;
	else
		tp->head = op;
	tp->tail = op;
	/* More queued than idle workers to take them (a signalled worker stays
	 * counted idle until it runs): start one. If that fails, a running
	 * worker gets to it. */
	if (++tp->nq > tp->idle && tp->n < tp->max &&
	    pthread_create(&tp->tids[tp->n], NULL, worker_main, io) == 0)
		tp->n++;
	pthread_cond_signal(&tp->cv);
}

/* Backend entry points --------------------------------------------------------- */

static int threads_cancel(px_future *f, void *arg)
{
	px_io *io = arg;
	/* The context may be being destroyed by another thread. */
	int e = px__io_cancel_enter(io, f);
	if (e <= 0)
		return e;
	struct tpool *tp = T(io);
	struct top *op = f->arg;
	/* Relaxed: the worker or poller reads it under tp->lock, which the
	 * lock below orders. */
	__atomic_fetch_or(&f->backend_data, PX__IO_F_CANCEL, __ATOMIC_RELAXED);
	pthread_mutex_lock(&tp->lock);
	bool wake = false;
	/* A queued or running operation sees the flag in its worker; a
	 * waiting one is the poller's to cancel. */
	if ((op->state == OP_PARKED || op->state == OP_TIMER) && !op->on_clist) {
		op->on_clist = true;
		op->cnext = tp->clist;
		tp->clist = op;
		px_future_retain(f);
		wake = true;
	}
	pthread_mutex_unlock(&tp->lock);
	if (wake)
		wake_poller(tp);
	px__io_cancel_leave();
	return 0;
}

static int threads_submit(px_io *io, const struct px__io_req *r, px_future *f)
{
	struct tpool *tp = T(io);
	size_t extra = r->kind == PX__IO_OPENAT ? strlen(r->path) + 1 : 0;
	struct top *op = calloc(1, sizeof(*op) + extra);
	if (!op)
		return -ENOMEM;
	op->r = *r;
	op->f = f;
	op->pfd = -1;
	if (r->kind == PX__IO_CONNECT) {
		memcpy(&op->sa, r->addr, r->addrlen);
		op->r.addr = (const struct sockaddr *)&op->sa;
	} else if (r->kind == PX__IO_OPENAT) {
		memcpy(op->path, r->path, extra);
		op->r.path = op->path;
	}
	/* Saturating: a timeout too large to add to the clock is none. */
	op->deadline = r->timeout_ns ? px__deadline_after(r->timeout_ns)
				     : PX__NO_DEADLINE;
	/* The future owns the record from here: future_free() frees f->arg. */
	f->arg = op;
	f->arg_len = (uint32_t)(sizeof(*op) + extra);
	px_promise_on_cancel(f, threads_cancel, io);
	int e = px_promise_start(f);
	if (e)
		return e;

	pthread_mutex_lock(&tp->lock);
	if (tp->stopping) {
		pthread_mutex_unlock(&tp->lock);
		return PX_ESHUTDOWN;
	}
	/* A sleep always goes on the heap (destroy cancels it from there),
	 * even one that never ends (PX__NO_DEADLINE never comes due). */
	bool timer = r->kind == PX__IO_SLEEP || op->deadline != PX__NO_DEADLINE;
	int64_t when = r->kind == PX__IO_SLEEP ? px__deadline_after(r->ns)
					       : op->deadline;
	if (timer) {
		e = heap_push(tp, when, op);
		if (e) {
			pthread_mutex_unlock(&tp->lock);
			return e;
		}
	}
	/* The backend's reference, dropped by px__io_complete. */
	px_future_retain(f);
	if (r->kind == PX__IO_SLEEP)
		op->state = OP_TIMER;
	else
		enqueue(io, tp, op);
	bool first = timer && tp->heap.v[0].item == op;
	pthread_mutex_unlock(&tp->lock);
	if (first)
		wake_poller(tp); /* an earlier timer than it sleeps for */
	return 0;
}

static void threads_flush(px_io *io)
{
	(void)io; /* every operation is queued at once; nothing held back */
}

static void threads_free(struct tpool *tp)
{
	free(tp->tids);
	px__io_theap_free(&tp->heap);
	free(tp);
}

static void threads_destroy(px_io *io)
{
	struct tpool *tp = T(io);
	pthread_mutex_lock(&tp->lock);
	tp->stopping = true;
	pthread_cond_broadcast(&tp->cv);
	unsigned n = tp->n;
	pthread_mutex_unlock(&tp->lock);
	wake_poller(tp);
	void *tok = px__blocking_enter();
	/* Workers first: they may still park operations, which the poller
	 * then cancels on its way out. */
	for (unsigned i = 0; i < n; i++)
		pthread_join(tp->tids[i], NULL);
	wake_poller(tp);
	pthread_join(tp->poller, NULL);
	/* Every future is done now; cancel hooks still inside may touch tp. */
	px__io_cancels_drain();
	px__blocking_leave(tok);
	/* Cancels queued after the poller's last look hold references. */
	while (tp->clist) {
		struct top *op = tp->clist;
		tp->clist = op->cnext;
		px_future_release(op->f);
	}
	close(tp->ep);
	close(tp->efd);
	pthread_mutex_destroy(&tp->lock);
	pthread_cond_destroy(&tp->cv);
	threads_free(tp);
}

static void threads_destroy_forked(px_io *io)
{
	/* No threads here, and the lock may be held by one that is gone:
	 * close the descriptors and free the arrays, leave the rest. */
	struct tpool *tp = T(io);
	close(tp->ep);
	close(tp->efd);
	threads_free(tp);
}

static const struct px__io_backend_ops threads_ops = {
	.name = "threads",
	.submit = threads_submit,
	.flush = threads_flush,
	.destroy = threads_destroy,
	.destroy_forked = threads_destroy_forked,
};

int px__io_threads_create(px_io *io, const px_io_config *cfg)
{
	unsigned max = cfg && cfg->threads ? cfg->threads : 16;
	if (max > 4096)
		return -EINVAL;
	struct tpool *tp = calloc(1, sizeof(*tp));
	if (!tp)
		return -ENOMEM;
	tp->max = max;
	tp->tids = calloc(max, sizeof(*tp->tids));
	if (!tp->tids) {
		threads_free(tp);
		return -ENOMEM;
	}
	tp->ep = epoll_create1(EPOLL_CLOEXEC);
	tp->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (tp->ep < 0 || tp->efd < 0 ||
	    epoll_ctl(tp->ep, EPOLL_CTL_ADD, tp->efd, &ev)) {
		int e = -errno;
		if (tp->ep >= 0)
			close(tp->ep);
		if (tp->efd >= 0)
			close(tp->efd);
		threads_free(tp);
		return e;
	}
	pthread_mutex_init(&tp->lock, NULL);
	pthread_cond_init(&tp->cv, NULL);
	io->impl = tp;
	io->ops = &threads_ops;
	int r = -pthread_create(&tp->poller, NULL, poller_main, io);
	if (r) {
		close(tp->ep);
		close(tp->efd);
		pthread_mutex_destroy(&tp->lock);
		pthread_cond_destroy(&tp->cv);
		threads_free(tp);
		io->impl = NULL;
	}
	return r;
}
