/*
 * io/backend.h - what the front end (io.c) asks of a backend: the entry
 * points each one fills in, and the two constructors. Private.
 *
 * uring.c and threads.c implement it and call down into the core (core.h)
 * only. The core never includes this header: it calls no backend.
 */
#ifndef PX_IO_BACKEND_H
#define PX_IO_BACKEND_H

#include "core.h"

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

/* The two backends: fill io->ops and io->impl. 0 or a negative errno. */
int px__io_uring_create(px_io *io, const px_io_config *cfg);
int px__io_threads_create(px_io *io, const px_io_config *cfg);

/* io_uring probe, cached per process and redone in a forked child
 * (px_io_uring_probe). */
int px__io_uring_probe_once(void);

#endif /* PX_IO_BACKEND_H */
