/*
 * io/core.h - the bottom layer of io/: the I/O context, the operation record,
 * and the services both backends call (completing a future, bracketing a
 * cancel hook against destroy, the per-thread plug, fork detection).
 * Private.
 *
 * io/ has three layers and calls go down only: the front end (io.c, the
 * public px_io_* API) calls a backend (backend.h: uring.c, threads.c) and
 * the core; a backend calls the core; the core (core.c) calls nothing in
 * io/.
 */
#ifndef PX_IO_CORE_H
#define PX_IO_CORE_H

#include <parex/io.h>
#include <stdatomic.h>

#include "future_internal.h"
#include "gil.h"

enum px__io_kind {
	PX__IO_NOP = 0,
	PX__IO_READ,
	PX__IO_WRITE,
	PX__IO_READV,
	PX__IO_WRITEV,
	PX__IO_FSYNC,
	PX__IO_OPENAT,
	PX__IO_CLOSE,
	PX__IO_ACCEPT,
	PX__IO_CONNECT,
	PX__IO_SEND,
	PX__IO_RECV,
	PX__IO_POLL,
	PX__IO_SLEEP,
};

/* One operation as the caller described it; backends copy what they keep. */
struct px__io_req {
	int kind;
	int fd;           /* also dirfd for openat */
	void *buf;        /* read, write, send, recv */
	size_t len;
	int64_t off;      /* read/write family; PX_IO_CUR */
	const struct iovec *iov;
	int iovcnt;
	int flags;        /* msg flags, open flags, accept flags, fsync flags */
	unsigned events;  /* poll */
	mode_t mode;      /* openat */
	const char *path; /* openat */
	const struct sockaddr *addr; /* connect */
	socklen_t addrlen;
	struct sockaddr *aaddr;      /* accept outputs */
	socklen_t *aaddrlen;
	int64_t ns;       /* sleep */
	int64_t timeout_ns; /* deadline; 0: none */
};

/*
 * f->backend_data of an I/O future: the kind in the low byte and the flags
 * below. Written with an atomic store before the operation is published and
 * read with atomic loads by the completing thread: the hand-off goes through
 * the kernel, which ThreadSanitizer cannot see.
 */
#define PX__IO_KIND_MASK 0xffu
#define PX__IO_F_DEADLINE (1u << 8) /* a deadline was set */
#define PX__IO_F_CANCEL (1u << 9)   /* px_future_cancel(RUNNING) was called */

static inline uint64_t px__io_meta(const px_future *f)
{
	return __atomic_load_n(&f->backend_data, __ATOMIC_RELAXED);
}

/* A backend's entry points (backend.h); the core only stores the pointer. */
struct px__io_backend_ops;

struct px_io {
	px_io_backend backend;
	uint64_t fork_gen;   /* px__io_fork_gen at creation */
	const struct px__io_backend_ops *ops;
	void *impl;
	_Atomic bool stopping;
	/* Task timelines (lib/trace.h), from $PAREX_TRACE: NULL when off. Set
	 * by px_io_create before the context is returned; written by
	 * px_io_destroy once the backend's threads are gone. */
	struct px__trace *trace;
	/* Counters: relaxed, read only by px_io_stats_get (in flight is
	 * their difference). Starting threads write n_ops, the completing
	 * thread n_completed and n_enters: on separate cache lines (by
	 * padding: the context is calloc'd), so an operation does not bounce
	 * one line between them. */
	char pad_before_[64];
	_Atomic uint64_t n_ops;
	char pad_between_[64];
	_Atomic uint64_t n_completed, n_enters;
	char pad_after_[48];
};

/* Fork detection ---------------------------------------------------------- */

/* Bumped in every child after fork() (pthread_atfork). */
extern _Atomic uint64_t px__io_fork_gen;

/* Installs the fork handler that bumps px__io_fork_gen, once per process. */
void px__io_fork_init(void);

/* Whether io was inherited through fork() (this process did not make it). */
bool px__io_forked(const px_io *io);

/* Cancel hooks against destroy -------------------------------------------- */

/*
 * A backend's cancel hook (px_promise_on_cancel) starts with this: it returns
 * 1 when the hook may use io (it must then call px__io_cancel_leave when done
 * with io), 0 when f is done already (the hook returns 0 and leaves io
 * alone: the context may be gone), or PX_EFORKED in a forked child.
 */
int px__io_cancel_enter(px_io *io, px_future *f);
void px__io_cancel_leave(void);

/* A destroying backend calls this after every future of its context is done
 * and before freeing anything a cancel hook touches. */
void px__io_cancels_drain(void);

/* The per-thread plug ----------------------------------------------------- */

/* Whether this thread holds io's submissions back (a batch, or a reap). */
bool px__io_plugged(const px_io *io);

/* Plugs io in this thread for the span of a reap; returns the old state to
 * pass to px__io_unplug_reap. */
unsigned px__io_plug_reap(px_io *io, px_io **saved_io);
void px__io_unplug_reap(unsigned saved_depth, px_io *saved_io);

/* px_io_batch_begin's plug: 0, or -EBUSY if this thread has another context
 * plugged. */
int px__io_plug_batch(px_io *io);

/* px_io_batch_end's unplug: 1 when the outermost plug ended (the caller then
 * flushes the backend), 0 when an outer one remains, -EINVAL when io is not
 * plugged in this thread. */
int px__io_unplug_batch(px_io *io);

/* Completing -------------------------------------------------------------- */

/* Completes f from a backend with a kernel-style result (>= 0 or -errno),
 * then drops the backend's reference. The backend counts it first, with
 * px__io_count_completed. */
void px__io_complete(px_io *io, px_future *f, int64_t res);

/* Counts n operations as completed, before completing them (so whoever sees
 * one done sees it counted): one atomic add per batch of completions. */
void px__io_count_completed(px_io *io, unsigned n);

#endif /* PX_IO_CORE_H */
