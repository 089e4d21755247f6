/*
 * io/io.c - the I/O context's front end: backend choice (configuration,
 * $PAREX_IO, the io_uring probe), the public operations, which all funnel
 * into io_start(), and the batch calls. It calls down into a backend
 * (backend.h) and the core (core.h); neither calls back up.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "trace.h"

/* Batches ------------------------------------------------------------------ */

PX_API int px_io_batch_begin(px_io *io)
{
	if (!io)
		return -EINVAL;
	return px__io_plug_batch(io);
}

PX_API int px_io_batch_end(px_io *io)
{
	if (!io)
		return -EINVAL;
	int r = px__io_unplug_batch(io);
	if (r < 0)
		return r;
	if (r == 1 && !px__io_forked(io))
		io->ops->flush(io);
	return 0;
}

/* Backend choice ----------------------------------------------------------- */

static pthread_once_t fallback_once = PTHREAD_ONCE_INIT;
static int fallback_reason;

static void say_fallback(void)
{
	fprintf(stderr,
		"parex io: io_uring unavailable (%s); using the threads backend\n",
		px_strerror(fallback_reason));
}

PX_API int px_io_uring_probe(void)
{
	/* The answer is cached per process: the fork handler makes a child
	 * probe again (it may run under a stricter seccomp profile). */
	px__io_fork_init();
	return px__io_uring_probe_once();
}

static int pick_backend(const px_io_config *cfg, px_io_backend *out)
{
	px_io_backend b = cfg ? cfg->backend : PX_IO_AUTO;
	if (b != PX_IO_AUTO && b != PX_IO_URING && b != PX_IO_THREADS)
		return -EINVAL;
	if (b == PX_IO_AUTO) {
		const char *env = getenv("PAREX_IO");
		if (env && *env) {
			if (!strcmp(env, "uring"))
				b = PX_IO_URING;
			else if (!strcmp(env, "threads"))
				b = PX_IO_THREADS;
			else
				return -EINVAL;
		}
	}
	if (b == PX_IO_AUTO) {
		int r = px_io_uring_probe();
		if (r) {
			fallback_reason = r;
			pthread_once(&fallback_once, say_fallback);
			b = PX_IO_THREADS;
		} else {
			b = PX_IO_URING;
		}
	} else if (b == PX_IO_URING) {
		int r = px_io_uring_probe();
		if (r)
			return r;
	}
	*out = b;
	return 0;
}

PX_API int px_io_create(px_io **out, const px_io_config *cfg)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	px_io_backend b;
	int r = pick_backend(cfg, &b);
	if (r)
		return r;
	px__io_fork_init();
	px_io *io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->backend = b;
	io->fork_gen = atomic_load_explicit(&px__io_fork_gen,
					    memory_order_relaxed);
	r = b == PX_IO_URING ? px__io_uring_create(io, cfg)
			     : px__io_threads_create(io, cfg);
	if (r) {
		free(io);
		return r;
	}
	char label[48];
	snprintf(label, sizeof(label), "parex io (%s)", io->ops->name);
	r = px__trace_open(&io->trace, NULL, label, "px-io-");
	if (r) {
		px_io_destroy(io);
		return r;
	}
	if (io->trace)
		io->trace->async = true;
	*out = io;
	return 0;
}

PX_API void px_io_destroy(px_io *io)
{
	if (!io)
		return;
	if (px__io_forked(io)) {
		io->ops->destroy_forked(io);
		px__trace_discard(io->trace); /* the parent's file */
		free(io);
		return;
	}
	/* Later starts fail; the backend cancels what is in flight. seq_cst
	 * store pairs with the loads in io_start and the reaper. */
	atomic_store(&io->stopping, true);
	io->ops->destroy(io);
	(void)px__trace_finish(io->trace); /* created already; nothing to say */
	free(io);
}

PX_API px_io_backend px_io_backend_get(const px_io *io)
{
	return io ? io->backend : PX_IO_AUTO;
}

PX_API const char *px_io_backend_name(const px_io *io)
{
	return io ? io->ops->name : "none";
}

PX_API int px_io_stats_get(const px_io *io, px_io_stats *out)
{
	if (!io || !out)
		return -EINVAL;
	out->ops = atomic_load_explicit(&io->n_ops, memory_order_relaxed);
	out->completed =
		atomic_load_explicit(&io->n_completed, memory_order_relaxed);
	out->enters = atomic_load_explicit(&io->n_enters, memory_order_relaxed);
	/* Completed first: ops only grows, so it is read no smaller. */
	uint64_t ops = atomic_load_explicit(&io->n_ops, memory_order_relaxed);
	out->inflight = ops > out->completed ? ops - out->completed : 0;
	return 0;
}

/* Starting ------------------------------------------------------------------ */

/*
 * Starts an operation. A done callback in opts is registered before the
 * backend sees the operation, so it never runs in this call's frame and is
 * never missed; if registering it fails, nothing starts.
 */
static int io_start(px_io *io, struct px__io_req *r, const px_io_opts *opts,
		    px_future **out)
{
	*out = NULL;
	if (!io)
		return -EINVAL;
	if (px__io_forked(io))
		return PX_EFORKED;
	if (atomic_load(&io->stopping))
		return PX_ESHUTDOWN;
	/* r is the calling px_io_*'s own record: completed in place rather
	 * than copied (a wide copy of fields just stored stalls on store
	 * forwarding, on every operation). */
	struct px__io_req *req = r;
	req->timeout_ns = 0;
	if (opts && opts->timeout_ns > 0)
		req->timeout_ns = opts->timeout_ns;
	px_future *f;
	int e = px_promise_create(&f);
	if (e)
		return e;
	if (io->trace) {
		f->trace_submit_ns = px__now_ns();
		f->trace_task = px__trace_task_id(io->trace);
	}
	uint64_t meta = (uint64_t)req->kind |
			(req->timeout_ns ? PX__IO_F_DEADLINE : 0);
	__atomic_store_n(&f->backend_data, meta, __ATOMIC_RELAXED);
	if (opts && opts->done &&
	    (e = px_future_on_done(f, opts->done, opts->done_arg))) {
		px_future_release(f);
		return e;
	}
	/* Counted before the backend can complete it (px_io_stats_get's
	 * inflight is ops less completed; relaxed: statistics only). */
	atomic_fetch_add_explicit(&io->n_ops, 1, memory_order_relaxed);
	e = io->ops->submit(io, req, f);
	if (e) {
		atomic_fetch_sub_explicit(&io->n_ops, 1, memory_order_relaxed);
		/* Never started: a future that never completes frees its
		 * callbacks unrun, so opts->done does not run for an
		 * operation whose start failed. */
		px_future_release(f);
		return e;
	}
	*out = f;
	return 0;
}

/* The operations -------------------------------------------------------------- */

#define START(io, req, opts, out)                                  \
	do {                                                       \
		if (!(out))                                        \
			return -EINVAL;                            \
		return io_start((io), &(req), (opts), (out));      \
	} while (0)

PX_API int px_io_read(px_io *io, int fd, void *buf, size_t len, int64_t off,
		      const px_io_opts *opts, px_future **out)
{
	if (!buf && len)
		return -EINVAL;
	struct px__io_req r = { .kind = PX__IO_READ, .fd = fd, .buf = buf,
				.len = len, .off = off };
	START(io, r, opts, out);
}

PX_API int px_io_write(px_io *io, int fd, const void *buf, size_t len,
		       int64_t off, const px_io_opts *opts, px_future **out)
{
	if (!buf && len)
		return -EINVAL;
	struct px__io_req r = { .kind = PX__IO_WRITE, .fd = fd,
				.buf = (void *)buf, .len = len, .off = off };
	START(io, r, opts, out);
}

PX_API int px_io_readv(px_io *io, int fd, const struct iovec *iov, int iovcnt,
		       int64_t off, const px_io_opts *opts, px_future **out)
{
	if ((!iov && iovcnt) || iovcnt < 0)
		return -EINVAL;
	struct px__io_req r = { .kind = PX__IO_READV, .fd = fd, .iov = iov,
				.iovcnt = iovcnt, .off = off };
	START(io, r, opts, out);
}

PX_API int px_io_writev(px_io *io, int fd, const struct iovec *iov, int iovcnt,
			int64_t off, const px_io_opts *opts, px_future **out)
{
	if ((!iov && iovcnt) || iovcnt < 0)
		return -EINVAL;
	struct px__io_req r = { .kind = PX__IO_WRITEV, .fd = fd, .iov = iov,
				.iovcnt = iovcnt, .off = off };
	START(io, r, opts, out);
}

PX_API int px_io_fsync(px_io *io, int fd, unsigned flags,
		       const px_io_opts *opts, px_future **out)
{
	if (flags & ~(unsigned)PX_IO_DATASYNC)
		return -EINVAL;
	struct px__io_req r = { .kind = PX__IO_FSYNC, .fd = fd,
				.flags = (int)flags };
	START(io, r, opts, out);
}

PX_API int px_io_openat(px_io *io, int dirfd, const char *path, int flags,
			mode_t mode, const px_io_opts *opts, px_future **out)
{
	if (!path)
		return -EINVAL;
	struct px__io_req r = { .kind = PX__IO_OPENAT, .fd = dirfd,
				.path = path, .flags = flags, .mode = mode };
	START(io, r, opts, out);
}

PX_API int px_io_close(px_io *io, int fd, const px_io_opts *opts,
		       px_future **out)
{
	struct px__io_req r = { .kind = PX__IO_CLOSE, .fd = fd };
	START(io, r, opts, out);
}

PX_API int px_io_accept(px_io *io, int fd, struct sockaddr *addr,
			socklen_t *addrlen, int flags, const px_io_opts *opts,
			px_future **out)
{
	if (!addr != !addrlen)
		return -EINVAL;
	struct px__io_req r = { .kind = PX__IO_ACCEPT, .fd = fd, .aaddr = addr,
				.aaddrlen = addrlen, .flags = flags };
	START(io, r, opts, out);
}

PX_API int px_io_connect(px_io *io, int fd, const struct sockaddr *addr,
			 socklen_t addrlen, const px_io_opts *opts,
			 px_future **out)
{
	if (!addr || addrlen == 0 || addrlen > sizeof(struct sockaddr_storage))
		return -EINVAL;
	struct px__io_req r = { .kind = PX__IO_CONNECT, .fd = fd, .addr = addr,
				.addrlen = addrlen };
	START(io, r, opts, out);
}

PX_API int px_io_send(px_io *io, int fd, const void *buf, size_t len,
		      int flags, const px_io_opts *opts, px_future **out)
{
	if (!buf && len)
		return -EINVAL;
	struct px__io_req r = { .kind = PX__IO_SEND, .fd = fd,
				.buf = (void *)buf, .len = len, .flags = flags };
	START(io, r, opts, out);
}

PX_API int px_io_recv(px_io *io, int fd, void *buf, size_t len, int flags,
		      const px_io_opts *opts, px_future **out)
{
	if (!buf && len)
		return -EINVAL;
	struct px__io_req r = { .kind = PX__IO_RECV, .fd = fd, .buf = buf,
				.len = len, .flags = flags };
	START(io, r, opts, out);
}

PX_API int px_io_poll(px_io *io, int fd, unsigned events,
		      const px_io_opts *opts, px_future **out)
{
	if (!events)
		return -EINVAL;
	struct px__io_req r = { .kind = PX__IO_POLL, .fd = fd,
				.events = events };
	START(io, r, opts, out);
}

PX_API int px_io_sleep(px_io *io, int64_t ns, px_future **out)
{
	if (ns < 0)
		return -EINVAL;
	struct px__io_req r = { .kind = PX__IO_SLEEP, .ns = ns };
	START(io, r, NULL, out);
}

PX_API int px_io_nop(px_io *io, px_future **out)
{
	struct px__io_req r = { .kind = PX__IO_NOP };
	START(io, r, NULL, out);
}
