/*
 * io/uring.c - the io_uring backend: one ring per context, shared by every
 * thread, and one reaper thread that alone enters the kernel.
 *
 * Why only the reaper calls io_uring_enter: a request belongs to the task
 * that submitted it. Its poll-driven completions run as task_work on that
 * thread, and if that thread exits first, its pending requests complete with
 * -ECANCELED. A pool worker that starts a recv and then exits would lose it.
 * So user threads only fill SQEs; the reaper, which lives as long as the
 * context, submits them and reaps every CQE.
 *
 * Submitting. A thread fills SQEs under sq_lock and publishes the ring's
 * tail (a release store; the reaper reads it before entering). If the
 * reaper sleeps in io_uring_enter, the thread wakes it by writing to an
 * eventfd the reaper always has an IORING_OP_READ pending on; only the
 * thread that flips `state` from SLEEPING writes, so a burst of operations
 * costs one write(). A busy reaper needs no wake at all: it submits whatever
 * was published with its next enter, so under load operations from every
 * thread go to the kernel together, with no system call per operation. A
 * batch (px_io_batch_begin/end) only holds the wake back until its end, so
 * its operations normally go in one enter.
 *
 * Completing. The reaper consumes CQEs under cq_lock and completes the
 * futures, running their done callbacks in its thread. Operations those
 * callbacks start are published at once and submitted by the reaper's next
 * enter, together with its wait for completions: a callback-driven loop
 * (read, completion, next read) costs one io_uring_enter per round, as a
 * hand-written liburing loop does.
 *
 * Lock order: cq_lock before sq_lock (callbacks submit while reaping). The
 * reaper is the only thread taking cq_lock, except px_io_destroy after the
 * join.
 *
 * user_data: an operation's future (the backend holds a reference until its
 * CQE); a future with bit 0 set for a cancel request (holding a reference,
 * so the future cannot be freed and reused by another operation before the
 * kernel matches the cancel); WAKE_UD for the eventfd read; 0 for linked
 * timeouts and destroy's cancel, which are ignored. Futures are 64-byte
 * aligned, so bit 0 is free.
 */
#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "executor_internal.h"

#define UD_CANCEL 1u
#define WAKE_UD 2u

/*
 * The reaper's state, for submitters (whether to wake it) and waiters
 * (whether to spin). R_SLEEPING and R_SUBMITTING both mean "in or about to
 * be in io_uring_enter, maybe waiting": R_SUBMITTING when that enter also
 * submits, so a waiter may expect completions soon.
 */
enum { R_AWAKE = 0, R_SLEEPING = 1, R_WOKEN = 2, R_SUBMITTING = 3 };

/* How long the reaper spins after a round of work, watching for new SQEs
 * and CQEs, before it sleeps in the kernel: a caller that waits for a batch
 * and then starts the next one (bench_io (c)) finds it awake and pays no
 * wake. The thread pool's workers spin as long by default (spin_us). */
#define REAPER_SPIN_NS 50000

/* How long a thread waiting on an I/O future spins while the reaper works
 * on the ring, rather than sleeping and needing a futex wake (about 22 us
 * on a 2-vCPU VM, as much as 32 cached reads take). */
#define HELP_SPIN_NS 100000

struct uring {
	struct io_uring ring;
	pthread_mutex_t sq_lock; /* SQE allocation and the published tail */
	pthread_mutex_t cq_lock; /* CQE consumption (the reaper) */
	pthread_t reaper;
	int efd;                 /* the reaper's wake-up eventfd */
	uint64_t efd_buf;        /* target of the pending eventfd read */
	bool wake_armed;         /* reaper only: the eventfd read is pending */
	/* Operations published (under sq_lock) and reaped (under cq_lock):
	 * the reaper exits once they match and the context stops. Plain
	 * counters under the locks the paths take anyway, so an operation
	 * costs no shared atomic for them. */
	uint64_t published;
	uint64_t reaped;
	/* Bumped (release) after each reap that completed futures: a waiter
	 * spinning in uring_wait_help stops when a round ends without its
	 * future. */
	_Atomic uint32_t reap_seq;
	/* The CPU the reaper last ran on, and the one the last batch was
	 * published from (relaxed, hints only): a spinner on the CPU of the
	 * thread it waits for yields at every turn instead of every 2 us, or
	 * it would hold back the very work it waits for. */
	_Atomic int reaper_cpu;
	_Atomic int batch_cpu;
	/* R_*: whether the reaper sleeps in io_uring_enter. seq_cst, as a
	 * Dekker pair with the SQ tail: see reaper_main and wake_reaper. */
	_Atomic uint32_t state;
	/* Submitters waiting for SQ space sleep on sq_seq, which the reaper
	 * bumps after each enter when sq_waiters is not 0. */
	_Atomic uint32_t sq_seq;
	_Atomic uint32_t sq_waiters;
	bool stopped; /* under sq_lock: no publishes after the final cancel */
	/* What every future of this context points to (f->ex), so waiters
	 * reach uring_wait_help through px__future_help. Only ops and
	 * helping are used; destroy waits for helping to drop to 0. */
	struct px_executor helper;
};

/* The arg_inline area of an I/O future: the timespec of a deadline or a
 * sleep, then small copied payloads (path, address). */
#define TS_OFF 0
#define PAYLOAD_OFF 16
#define PAYLOAD_MAX (PX__ARG_INLINE - PAYLOAD_OFF)

/* The reaper thread of the context this thread reaps for, if any. */
static PX__TLS struct uring *reaper_of;

static inline struct uring *U(px_io *io)
{
	return io->impl;
}

/* Published SQEs the kernel has not consumed yet. */
static unsigned sq_unconsumed(struct uring *u)
{
	unsigned tail = __atomic_load_n(u->ring.sq.ktail, __ATOMIC_ACQUIRE);
	unsigned head = __atomic_load_n(u->ring.sq.khead, __ATOMIC_ACQUIRE);
	return tail - head;
}

/* CQEs posted and not yet reaped. Unlike liburing's io_uring_cq_ready,
 * safe from a thread other than the reaper: the head is the reaper's,
 * written with a release store (io_uring_cq_advance), read atomically. */
static unsigned cq_pending(struct uring *u)
{
	unsigned tail = __atomic_load_n(u->ring.cq.ktail, __ATOMIC_ACQUIRE);
	unsigned head = __atomic_load_n(u->ring.cq.khead, __ATOMIC_RELAXED);
	return tail - head;
}

/* sq_lock held: makes every filled SQE visible. The release pairs with the
 * kernel's smp_load_acquire of the SQ tail (and the reaper's load). */
static void sq_publish(struct uring *u)
{
	__atomic_store_n(u->ring.sq.ktail, u->ring.sq.sqe_tail, __ATOMIC_RELEASE);
	u->ring.sq.sqe_head = u->ring.sq.sqe_tail;
}

static int do_enter(px_io *io, struct uring *u, unsigned to_submit,
		    unsigned min_complete, unsigned flags)
{
	atomic_fetch_add_explicit(&io->n_enters, 1, memory_order_relaxed);
	int r = io_uring_enter(u->ring.ring_fd, to_submit, min_complete, flags,
			       NULL);
	/* Space came back in the SQ ring: let waiting submitters retry.
	 * seq_cst pairs with their increment of sq_waiters then load of
	 * sq_seq. */
	if (atomic_load(&u->sq_waiters)) {
		atomic_fetch_add(&u->sq_seq, 1);
		px__futex_wake_private(&u->sq_seq, INT_MAX);
	}
	return r;
}

/*
 * After publishing: wakes the reaper if it sleeps in the kernel. The fence
 * orders our tail store before the load of state; the reaper stores state
 * then (fence) loads the tail, so one of us sees the other.
 */
static void wake_reaper(struct uring *u)
{
	atomic_thread_fence(memory_order_seq_cst);
	uint32_t s = atomic_load(&u->state);
	/* Retried while the reaper is still on its way into the kernel: it
	 * moves SLEEPING to SUBMITTING after it read the tail, so a single CAS
	 * expecting SLEEPING could fail on exactly the enter that did not see
	 * our SQE, and nobody would wake it (a 10 s hang in
	 * test_io_adversarial's submitters_wake_sleeping_reaper). */
	while (s == R_SLEEPING || s == R_SUBMITTING) {
		if (atomic_compare_exchange_strong(&u->state, &s, R_WOKEN)) {
			uint64_t one = 1;
			if (write(u->efd, &one, sizeof(one)) < 0) {
				/* Only EAGAIN (counter saturated): a wake
				 * is pending. */
			}
			return;
		}
	}
}

/* A batch's end: publishes what the batch filled and wakes the reaper. */
static void uring_flush(px_io *io)
{
	struct uring *u = U(io);
	int cpu = sched_getcpu();
	if (atomic_load_explicit(&u->batch_cpu, memory_order_relaxed) != cpu)
		atomic_store_explicit(&u->batch_cpu, cpu, memory_order_relaxed);
	pthread_mutex_lock(&u->sq_lock);
	sq_publish(u);
	pthread_mutex_unlock(&u->sq_lock);
	wake_reaper(u);
}

/*
 * sq_lock held: an SQE with `need` free slots (an operation and its linked
 * timeout are published together). When the ring is full of SQEs the
 * reaper has not submitted yet: the reaper itself submits; another thread
 * wakes it and sleeps until it has entered, dropping sq_lock meanwhile.
 * NULL if that takes too long, or if the context stopped (checked after
 * every wait: destroy's cancel-everything SQE must be the last one
 * published, or an operation queued behind it would never be cancelled and
 * destroy would wait for it forever). `last` is destroy's own request, which
 * neither gives up nor minds `stopped`.
 */
static struct io_uring_sqe *sqe_get(px_io *io, struct uring *u, unsigned need,
				    bool last)
{
	for (int tries = 0;; tries++) {
		if (u->stopped && !last)
			return NULL;
		if (io_uring_sq_space_left(&u->ring) >= need)
			break;
		if (tries > 2000 && !last)
			return NULL;
		/* A batch held its SQEs back: the reaper can only make room
		 * by submitting them, so they go now, in pieces. */
		sq_publish(u);
		if (reaper_of == u) {
			int r = do_enter(io, u, sq_unconsumed(u), 0, 0);
			if (r == -EAGAIN || r == -EBUSY) {
				struct timespec ts = { 0, 50000 };
				nanosleep(&ts, NULL);
			}
			continue;
		}
		atomic_fetch_add(&u->sq_waiters, 1);
		uint32_t seq = atomic_load(&u->sq_seq);
		pthread_mutex_unlock(&u->sq_lock);
		wake_reaper(u);
		px__futex_wait_private(&u->sq_seq, seq,
				       px__deadline_after(10 * PX_MSEC));
		pthread_mutex_lock(&u->sq_lock);
		atomic_fetch_sub(&u->sq_waiters, 1);
	}
	return io_uring_get_sqe(&u->ring);
}

/* cq_lock held (the reaper): completes every CQE there is. */
static unsigned reap_all(px_io *io, struct uring *u)
{
	unsigned total = 0, ops = 0;
	for (;;) {
		struct io_uring_cqe *cqes[64];
		uint64_t ud[64];
		int32_t res[64];
		unsigned n = io_uring_peek_batch_cqe(&u->ring, cqes, 64);
		if (!n)
			break;
		for (unsigned i = 0; i < n; i++) {
			ud[i] = cqes[i]->user_data;
			res[i] = cqes[i]->res;
			/* The futures' lines were last written by the threads
			 * that started them: fetch them all at once rather than
			 * miss on each in turn (for writing: finish() locks). */
			__builtin_prefetch((void *)(uintptr_t)(ud[i] & ~(uint64_t)3),
					   1);
		}
		/* Free the CQ slots before callbacks run. */
		io_uring_cq_advance(&u->ring, n);
		/* Counted before any of them completes (see core.h). */
		unsigned k = 0;
		for (unsigned i = 0; i < n; i++)
			k += ud[i] != WAKE_UD && ud[i] && !(ud[i] & UD_CANCEL);
		if (k)
			px__io_count_completed(io, k);
		u->reaped += k;
		ops += k;
		for (unsigned i = 0; i < n; i++) {
			if (ud[i] == WAKE_UD) {
				u->wake_armed = false;
			} else if (ud[i] & UD_CANCEL) {
				px_future_release(
					(px_future *)(uintptr_t)(ud[i] & ~(uint64_t)UD_CANCEL));
			} else if (ud[i]) {
				px__io_complete(io, (px_future *)(uintptr_t)ud[i],
						res[i]);
			}
		}
		total += n;
	}
	/* release: a waiter that sees the bump sees the completions too. */
	if (ops)
		atomic_fetch_add_explicit(&u->reap_seq, 1, memory_order_release);
	return total;
}

static int uring_cancel(px_future *f, void *arg)
{
	px_io *io = arg;
	/* The context may be being destroyed by another thread. */
	int e = px__io_cancel_enter(io, f);
	if (e <= 0)
		return e;
	struct uring *u = U(io);
	/* Relaxed: the reaper reads it after the cancel's CQE, which the
	 * kernel orders after this store's publication (sq_publish). */
	__atomic_fetch_or(&f->backend_data, PX__IO_F_CANCEL, __ATOMIC_RELAXED);
	pthread_mutex_lock(&u->sq_lock);
	struct io_uring_sqe *sqe = sqe_get(io, u, 1, false);
	if (!sqe) {
		/* Stopped: px_io_destroy cancels everything already. */
		e = u->stopped ? 0 : -EAGAIN;
		pthread_mutex_unlock(&u->sq_lock);
		px__io_cancel_leave();
		return e;
	}
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)f, 0);
	/* The cancel's reference, dropped when its CQE is reaped (or by
	 * uring_destroy if the reaper exits before submitting it). */
	sqe->user_data = (uint64_t)(uintptr_t)px_future_retain(f) | UD_CANCEL;
	sq_publish(u);
	pthread_mutex_unlock(&u->sq_lock);
	wake_reaper(u);
	px__io_cancel_leave();
	return 0;
}

static void prep(struct io_uring_sqe *sqe, const struct px__io_req *r,
		 px_future *f)
{
	void *payload = f->arg ? f->arg : f->arg_inline + PAYLOAD_OFF;
	/* SQE lengths are 32 bits: a bigger len would wrap (4 GiB + 10 would
	 * send 10 bytes). Clamp to what one read(2) moves at most; the result
	 * says how much moved, as for any partial transfer. */
	unsigned len = r->len > 0x7ffff000u ? 0x7ffff000u : (unsigned)r->len;
	switch (r->kind) {
	case PX__IO_NOP:
		io_uring_prep_nop(sqe);
		break;
	case PX__IO_READ:
		io_uring_prep_read(sqe, r->fd, r->buf, len, (uint64_t)r->off);
		break;
	case PX__IO_WRITE:
		io_uring_prep_write(sqe, r->fd, r->buf, len, (uint64_t)r->off);
		break;
	case PX__IO_READV:
		io_uring_prep_readv(sqe, r->fd, r->iov, (unsigned)r->iovcnt,
				    (uint64_t)r->off);
		break;
	case PX__IO_WRITEV:
		io_uring_prep_writev(sqe, r->fd, r->iov, (unsigned)r->iovcnt,
				     (uint64_t)r->off);
		break;
	case PX__IO_FSYNC:
		io_uring_prep_fsync(sqe, r->fd,
				    (r->flags & PX_IO_DATASYNC) ?
					    IORING_FSYNC_DATASYNC : 0);
		break;
	case PX__IO_OPENAT:
		io_uring_prep_openat(sqe, r->fd, payload, r->flags, r->mode);
		break;
	case PX__IO_CLOSE:
		io_uring_prep_close(sqe, r->fd);
		break;
	case PX__IO_ACCEPT:
		io_uring_prep_accept(sqe, r->fd, r->aaddr, r->aaddrlen, r->flags);
		break;
	case PX__IO_CONNECT:
		io_uring_prep_connect(sqe, r->fd, payload, r->addrlen);
		break;
	case PX__IO_SEND:
		io_uring_prep_send(sqe, r->fd, r->buf, len, r->flags);
		break;
	case PX__IO_RECV:
		io_uring_prep_recv(sqe, r->fd, r->buf, len, r->flags);
		break;
	case PX__IO_POLL:
		io_uring_prep_poll_add(sqe, r->fd, r->events);
		break;
	case PX__IO_SLEEP:
		io_uring_prep_timeout(sqe,
				      (struct __kernel_timespec *)(f->arg_inline +
								   TS_OFF),
				      0, 0);
		break;
	}
}

static void set_ts(px_future *f, int64_t ns)
{
	struct __kernel_timespec ts = { .tv_sec = ns / PX_SEC,
					.tv_nsec = ns % PX_SEC };
	memcpy(f->arg_inline + TS_OFF, &ts, sizeof(ts));
}

static int uring_submit(px_io *io, const struct px__io_req *r, px_future *f)
{
	struct uring *u = U(io);
	/* Copies the kernel reads at submission: the future carries them, so
	 * they live at least until the CQE. Big ones go to f->arg, which
	 * the future frees. */
	const void *src = NULL;
	size_t plen = 0;
	if (r->kind == PX__IO_OPENAT) {
		src = r->path;
		plen = strlen(r->path) + 1;
	} else if (r->kind == PX__IO_CONNECT) {
		src = r->addr;
		plen = r->addrlen;
	}
	if (plen > PAYLOAD_MAX) {
		f->arg = malloc(plen);
		if (!f->arg)
			return -ENOMEM;
		f->arg_len = (uint32_t)plen;
		memcpy(f->arg, src, plen);
	} else if (plen) {
		memcpy(f->arg_inline + PAYLOAD_OFF, src, plen);
	}
	if (r->kind == PX__IO_SLEEP)
		set_ts(f, r->ns);
	else if (r->timeout_ns)
		set_ts(f, r->timeout_ns);

	px_promise_on_cancel(f, uring_cancel, io);
	int e = px_promise_start(f);
	if (e)
		return e;
	unsigned need = r->timeout_ns ? 2 : 1;

	pthread_mutex_lock(&u->sq_lock);
	struct io_uring_sqe *sqe = sqe_get(io, u, need, false);
	if (!sqe) {
		e = u->stopped ? PX_ESHUTDOWN : -EAGAIN;
		pthread_mutex_unlock(&u->sq_lock);
		return e;
	}
	prep(sqe, r, f);
	/* The backend's reference, dropped by px__io_complete. */
	px_future_retain(f);
	/* Waiters help through u->helper (px__future_help reads f->ex under
	 * f's lock bit; the caller gets f only after this returns). */
	f->ex = &u->helper;
	sqe->user_data = (uint64_t)(uintptr_t)f;
	if (r->timeout_ns) {
		sqe->flags |= IOSQE_IO_LINK;
		struct io_uring_sqe *t = io_uring_get_sqe(&u->ring);
		io_uring_prep_link_timeout(
			t, (struct __kernel_timespec *)(f->arg_inline + TS_OFF), 0);
		t->user_data = 0;
	}
	/* Before the publish, so no reaper can see the CQE first. */
	u->published++;
	/* A batch (or a reap, for operations its callbacks start) publishes
	 * at its end: a reaper spinning in reaper_spin would otherwise
	 * submit the batch one operation at a time as it is filled. A big
	 * batch goes in quarters of the ring, so that the kernel takes one
	 * while the caller fills the next (10,000 sleeps: bench_io (a)). */
	bool kick = !px__io_plugged(io) ||
		    u->ring.sq.sqe_tail - *u->ring.sq.ktail >=
			    u->ring.sq.ring_entries / 4;
	if (kick)
		sq_publish(u);
	pthread_mutex_unlock(&u->sq_lock);

	if (kick && reaper_of != u)
		wake_reaper(u);
	return 0;
}

/* The reaper: sq_lock held. Queues the eventfd read that wakes it. */
static void arm_wake(px_io *io, struct uring *u)
{
	struct io_uring_sqe *sqe = sqe_get(io, u, 1, false);
	if (!sqe)
		return; /* retried on the next round */
	io_uring_prep_read(sqe, u->efd, &u->efd_buf, sizeof(u->efd_buf), 0);
	sqe->user_data = WAKE_UD;
	sq_publish(u);
	u->wake_armed = true;
}

/* The reaper, after a round of work: spins until there is something to
 * submit or reap, a submitter waits for SQ space, or REAPER_SPIN_NS pass.
 * It stays R_AWAKE meanwhile, so submitters publish without a wake. */
static void reaper_spin(struct uring *u)
{
	struct px__spin spin;
	px__spin_init(&spin, REAPER_SPIN_NS);
	int cpu = sched_getcpu();
	atomic_store_explicit(&u->reaper_cpu, cpu, memory_order_relaxed);
	bool shared = atomic_load_explicit(&u->batch_cpu,
					   memory_order_relaxed) == cpu;
	while (!sq_unconsumed(u) && !io_uring_cq_ready(&u->ring) &&
	       !atomic_load_explicit(&u->sq_waiters, memory_order_relaxed) &&
	       px__spin_step(&spin))
		if (shared)
			sched_yield();
}

/* The reaper: whether every published operation has been reaped. */
static bool drained(struct uring *u)
{
	pthread_mutex_lock(&u->sq_lock);
	bool idle = u->published == u->reaped;
	pthread_mutex_unlock(&u->sq_lock);
	return idle;
}

static void *reaper_main(void *arg)
{
	pthread_setname_np(pthread_self(), "px-io-reaper");
	px_io *io = arg;
	struct uring *u = U(io);
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	reaper_of = u;
	bool worked = false;
	for (;;) {
		px_io *saved_io;
		unsigned saved = px__io_plug_reap(io, &saved_io);
		pthread_mutex_lock(&u->cq_lock);
		bool reaped = reap_all(io, u) > 0;
		pthread_mutex_unlock(&u->cq_lock);
		px__io_unplug_reap(saved, saved_io);
		if (reaped) {
			/* What the done callbacks started (held back by the
			 * reap's plug) goes with the next enter. */
			pthread_mutex_lock(&u->sq_lock);
			sq_publish(u);
			pthread_mutex_unlock(&u->sq_lock);
			worked = true;
		}

		bool stopping = atomic_load(&io->stopping);
		if (stopping && drained(u))
			break;
		/* Re-armed until destroy has published its cancel (`stopped`,
		 * which arm_wake's sqe_get checks), not merely until stopping:
		 * px_io_destroy sets stopping before it publishes that cancel,
		 * and a reaper that slept without a read pending in between
		 * would never see the wake and never submit it. */
		if (!u->wake_armed) {
			pthread_mutex_lock(&u->sq_lock);
			arm_wake(io, u);
			pthread_mutex_unlock(&u->sq_lock);
		}
		if (worked && !stopping)
			reaper_spin(u);
		/* Dekker with wake_reaper: state, fence, then the tail and
		 * sq_waiters. A submitter waiting for SQ space must not wait
		 * for this enter's completions too: it would sleep until the
		 * next CQE (20 ms for a burst of sleeps) or its own 10 ms
		 * timeout, when all it needs is the submission. So with a
		 * waiter the enter only submits (do_enter then wakes it), and
		 * the loop comes back here to wait. */
		atomic_store(&u->state, R_SLEEPING);
		atomic_thread_fence(memory_order_seq_cst);
		unsigned n = sq_unconsumed(u);
		unsigned wait = io_uring_cq_ready(&u->ring) ||
					atomic_load(&u->sq_waiters) ? 0 : 1;
		if (n) {
			/* Tells waiters completions may be on their way; a
			 * submitter may have flipped it to R_WOKEN already. */
			uint32_t s = R_SLEEPING;
			atomic_compare_exchange_strong(&u->state, &s,
						       R_SUBMITTING);
		}
		int r = do_enter(io, u, n, wait, IORING_ENTER_GETEVENTS);
		atomic_store(&u->state, R_AWAKE);
		worked = r > 0;
		if (r == -EAGAIN || r == -ENOMEM) {
			struct timespec ts = { 0, 100000 };
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

/*
 * px__future_help's hook for a future of this context (f->ex is u->helper):
 * the waiting thread spins while the reaper works on the ring (it is awake,
 * or in an enter that submits, or SQEs or CQEs wait for it), because then f
 * is likely to complete within about what a futex wake costs. Returns 1
 * once f is done; 0 when the reaper sleeps in the kernel with nothing to
 * submit (f waits for the device, a timer or a peer), when a reap ended
 * without f, or after HELP_SPIN_NS, and the waiter then sleeps as usual.
 * The waiter never reaps or submits: only the reaper enters the kernel.
 */
static int uring_wait_help(px_executor *ex, px_future *f, int64_t deadline)
{
	struct uring *u = (struct uring *)((char *)ex -
					   offsetof(struct uring, helper));
	if (reaper_of == u)
		return 0; /* a done callback waiting: it must not */
	int64_t ns = HELP_SPIN_NS;
	if (deadline != PX__NO_DEADLINE) {
		int64_t left = px__deadline_left(deadline);
		if (left < ns)
			ns = left;
	}
	/* acquire pairs with reap_all's release bump. */
	uint32_t seq = atomic_load_explicit(&u->reap_seq, memory_order_acquire);
	struct px__spin spin;
	px__spin_init(&spin, ns);
	int cpu = sched_getcpu();
	bool shared = false;
	for (unsigned i = 0;; i++) {
		if (px_future_is_done(f))
			return 1;
		/* The reaper's lines, less often: every poll of a line it
		 * writes slows its work on the ring down. */
		if ((i & 7) == 0) {
			if (atomic_load_explicit(&u->reap_seq,
						 memory_order_acquire) != seq)
				return px_future_is_done(f) ? 1 : 0;
			if (atomic_load_explicit(&u->state,
						 memory_order_relaxed) ==
				    R_SLEEPING &&
			    !sq_unconsumed(u) && !cq_pending(u))
				return 0;
			shared = atomic_load_explicit(&u->reaper_cpu,
						      memory_order_relaxed) ==
				 cpu;
		}
		if (shared)
			sched_yield();
		if (!px__spin_step(&spin))
			return 0;
	}
}

static const struct px__backend_ops uring_help_ops = {
	.wait_help = uring_wait_help,
};

/* After the reaper is gone: drops the references of cancel SQEs that were
 * published but never submitted. */
static void release_unsubmitted(struct uring *u)
{
	unsigned head = *u->ring.sq.khead, tail = *u->ring.sq.ktail;
	unsigned mask = u->ring.sq.ring_mask;
	for (; head != tail; head++) {
		/* liburing fills the index array 1:1 at setup. */
		uint64_t ud = u->ring.sq.sqes[head & mask].user_data;
		if (ud != WAKE_UD && (ud & UD_CANCEL))
			px_future_release(
				(px_future *)(uintptr_t)(ud & ~(uint64_t)UD_CANCEL));
	}
}

static void uring_destroy(px_io *io)
{
	struct uring *u = U(io);
	pthread_mutex_lock(&u->sq_lock);
	u->stopped = true;
	/* Never gives up: without this request the reaper would wait for
	 * operations nobody cancels. */
	struct io_uring_sqe *sqe = sqe_get(io, u, 1, true);
	/* Cancel everything in flight (the wake read included). */
	io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY |
					       IORING_ASYNC_CANCEL_ALL);
	sqe->user_data = 0;
	sq_publish(u);
	pthread_mutex_unlock(&u->sq_lock);
	wake_reaper(u);
	void *tok = px__blocking_enter();
	pthread_join(u->reaper, NULL);
	/* Every future is done now; cancel hooks still inside may touch u,
	 * and so may waiters still inside uring_wait_help (pinned by
	 * px__future_help before their future completed; acquire pairs with
	 * its release decrement). */
	px__io_cancels_drain();
	while (atomic_load_explicit(&u->helper.helping, memory_order_acquire))
		sched_yield();
	px__blocking_leave(tok);
	/* Cancel CQEs may still hold future references. */
	pthread_mutex_lock(&u->cq_lock);
	reap_all(io, u);
	pthread_mutex_unlock(&u->cq_lock);
	/* So may cancel SQEs published after the reaper's last enter. */
	release_unsubmitted(u);
	io_uring_queue_exit(&u->ring);
	close(u->efd);
	pthread_mutex_destroy(&u->sq_lock);
	pthread_mutex_destroy(&u->cq_lock);
	free(u);
}

static void uring_destroy_forked(px_io *io)
{
	/* The rings were not inherited (MADV_DONTFORK) and the reaper does not
	 * exist here; the locks may be held by threads that are gone. Close
	 * the descriptors and leave the rest. */
	struct uring *u = U(io);
	close(u->ring.ring_fd);
	close(u->efd);
	free(u);
}

static const struct px__io_backend_ops uring_ops = {
	.name = "uring",
	.submit = uring_submit,
	.flush = uring_flush,
	.destroy = uring_destroy,
	.destroy_forked = uring_destroy_forked,
};

static int ring_init(struct io_uring *ring, unsigned entries)
{
	unsigned cq = entries * 16;
	if (cq < 16384)
		cq = 16384;
	if (cq > 65536)
		cq = 65536;
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
	p.cq_entries = cq;
	int r = io_uring_queue_init_params(entries, ring, &p);
	if (r == -EINVAL) {
		/* SUBMIT_ALL is 5.18; without it the kernel stops at a bad
		 * SQE, and submit_pending's loop submits the rest. */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = cq;
		r = io_uring_queue_init_params(entries, ring, &p);
	}
	return r;
}

int px__io_uring_create(px_io *io, const px_io_config *cfg)
{
	unsigned entries = cfg && cfg->entries ? cfg->entries : 4096;
	if (entries > 32768)
		return -EINVAL;
	struct uring *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	int r = ring_init(&u->ring, entries);
	if (r) {
		free(u);
		return r;
	}
	/* The rings are MAP_SHARED with the kernel: a child must not get them,
	 * or its writes would land in the parent's ring. */
	io_uring_ring_dontfork(&u->ring);
	u->efd = eventfd(0, EFD_CLOEXEC);
	if (u->efd < 0) {
		r = -errno;
		io_uring_queue_exit(&u->ring);
		free(u);
		return r;
	}
	pthread_mutex_init(&u->sq_lock, NULL);
	pthread_mutex_init(&u->cq_lock, NULL);
	atomic_init(&u->reaper_cpu, -1);
	atomic_init(&u->batch_cpu, -2);
	u->helper.ops = &uring_help_ops;
	atomic_init(&u->helper.helping, 0);
	io->impl = u;
	io->ops = &uring_ops;
	r = -pthread_create(&u->reaper, NULL, reaper_main, io);
	if (r) {
		io_uring_queue_exit(&u->ring);
		close(u->efd);
		pthread_mutex_destroy(&u->sq_lock);
		pthread_mutex_destroy(&u->cq_lock);
		free(u);
		io->impl = NULL;
		return r;
	}
	return 0;
}

/* Probe --------------------------------------------------------------------- */

/* The cached answer, tagged with the fork generation it was computed in (a
 * child may have installed a seccomp filter since). Atomics, no lock: racing
 * probes compute the same answer. */
static _Atomic uint64_t probe_gen = UINT64_MAX;
static _Atomic int probe_result;

static int probe_now(void)
{
	FILE *fp = fopen("/proc/sys/kernel/io_uring_disabled", "re");
	if (fp) {
		int v = 0;
		if (fscanf(fp, "%d", &v) != 1)
			v = 0;
		fclose(fp);
		if (v == 2)
			return -EPERM;
	}
	struct io_uring ring;
	int r = io_uring_queue_init(4, &ring, 0);
	if (r)
		return r;
	struct io_uring_probe *p = io_uring_get_probe_ring(&ring);
	if (!p) {
		io_uring_queue_exit(&ring);
		return -EOPNOTSUPP;
	}
	/* Every opcode parex issues, and IORING_OP_SOCKET as the sign of
	 * Linux 5.19, whose IORING_ASYNC_CANCEL_ANY px_io_destroy relies on. */
	static const int need[] = {
		IORING_OP_NOP,	    IORING_OP_READ,	    IORING_OP_WRITE,
		IORING_OP_READV,    IORING_OP_WRITEV,	    IORING_OP_FSYNC,
		IORING_OP_OPENAT,   IORING_OP_CLOSE,	    IORING_OP_ACCEPT,
		IORING_OP_CONNECT,  IORING_OP_SEND,	    IORING_OP_RECV,
		IORING_OP_POLL_ADD, IORING_OP_TIMEOUT,	    IORING_OP_LINK_TIMEOUT,
		IORING_OP_ASYNC_CANCEL, IORING_OP_SOCKET,
	};
	r = 0;
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!io_uring_opcode_supported(p, need[i]))
			r = -EOPNOTSUPP;
	io_uring_free_probe(p);
	io_uring_queue_exit(&ring);
	return r;
}

int px__io_uring_probe_once(void)
{
	uint64_t gen = atomic_load(&px__io_fork_gen);
	/* acquire pairs with the release store of probe_gen below, which
	 * follows the store of probe_result. */
	if (atomic_load_explicit(&probe_gen, memory_order_acquire) == gen)
		return atomic_load_explicit(&probe_result, memory_order_relaxed);
	int r = probe_now();
	atomic_store_explicit(&probe_result, r, memory_order_relaxed);
	atomic_store_explicit(&probe_gen, gen, memory_order_release);
	return r;
}
