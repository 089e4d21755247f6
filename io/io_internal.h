/*
 * io/io_internal.h - the I/O context, the operation record the front end
 * hands to a backend, and the backends' entry points. Private.
 */
#ifndef PX_IO_INTERNAL_H
#define PX_IO_INTERNAL_H

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

struct px__io_backend_ops {
	const char *name;
	/* Starts r for f (RUNNING, one reference for the caller already
	 * taken elsewhere); takes its own reference. 0 or negative. */
	int (*submit)(px_io *io, const struct px__io_req *r, px_future *f);
	/* Submits what a batch held back. */
	void (*flush)(px_io *io);
	/* Cancels everything, joins threads, frees the backend state. */
	void (*destroy)(px_io *io);
	/* Frees what can be freed in a forked child. */
	void (*destroy_forked)(px_io *io);
};

struct px_io {
	px_io_backend backend;
	uint64_t fork_gen;   /* px__io_fork_gen at creation */
	const struct px__io_backend_ops *ops;
	void *impl;
	_Atomic bool stopping;
	/* Counters: relaxed, read only by px_io_stats_get. */
	_Atomic uint64_t n_ops, n_completed, n_enters;
	_Atomic int64_t n_inflight;
};

/* Bumped in every child after fork() (pthread_atfork). */
extern _Atomic uint64_t px__io_fork_gen;

/* Whether io was inherited through fork() (this process did not make it). */
bool px__io_forked(const px_io *io);

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

/* Whether this thread holds io's submissions back (a batch, or a reap). */
bool px__io_plugged(const px_io *io);

/* Plugs io in this thread for the span of a reap; returns the old state to
 * pass to px__io_unplug_reap. */
unsigned px__io_plug_reap(px_io *io, px_io **saved_io);
void px__io_unplug_reap(unsigned saved_depth, px_io *saved_io);

/*
 * Starts an operation; if fn is not NULL it is registered as a done callback
 * before the operation can complete (so it never runs in this call's frame
 * for io_uring completions). out may be NULL when only fn needs the future.
 */
int px__io_start(px_io *io, const struct px__io_req *r,
		 const px_io_opts *opts, px_done_fn fn, void *arg,
		 px_future **out);

/* Completes f from a backend with a kernel-style result (>= 0 or -errno),
 * then drops the backend's reference. */
void px__io_complete(px_io *io, px_future *f, int64_t res);

/*
 * A chain of operations (a request/response exchange, one accept slot, one
 * server connection): one operation in flight at a time, each started from
 * the previous one's done callback, and cancellable as a whole.
 */
struct px__io_chain {
	_Atomic uint32_t lock; /* spinlock over cur and cancelled */
	px_future *cur;        /* the operation in flight (a reference) */
	bool cancelled;
};

/*
 * Starts r (deadline timeout_ns, 0: none) with fn(f, arg) as its done
 * callback and records it as the chain's current operation. fn cannot run
 * before the record is made. Returns 0, -ECANCELED if the chain was
 * cancelled (nothing started), or px__io_start's error.
 */
int px__io_chain_start(px_io *io, struct px__io_chain *c,
		       const struct px__io_req *r, int64_t timeout_ns,
		       px_done_fn fn, void *arg);

/* In fn: forgets f as the current operation and drops the chain's
 * reference to it (f stays valid for the rest of the callback). */
void px__io_chain_done(struct px__io_chain *c, px_future *f);

/* Marks the chain cancelled and returns its current operation with a new
 * reference (or NULL): cancel it with PX_CANCEL_RUNNING, then release it,
 * without holding locks a callback may take. */
px_future *px__io_chain_grab(struct px__io_chain *c);

/* The two backends. create returns 0 or a negative errno. */
int px__io_uring_create(px_io *io, const px_io_config *cfg);
int px__io_threads_create(px_io *io, const px_io_config *cfg);

/* io_uring probe, cached (px_io_uring_probe). */
int px__io_uring_probe_once(void);

#endif /* PX_IO_INTERNAL_H */
