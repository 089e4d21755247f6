/*
 * parex/io.h - asynchronous I/O whose operations complete as px_futures.
 *
 * An I/O context (px_io) runs operations on io_uring: each call queues one
 * operation and hands back a px_future that completes with the operation's
 * result as an int64_t (px_future_get_i64): bytes transferred, a new file
 * descriptor, a poll mask, or 0. A failed operation completes with the
 * kernel's negative errno as the future's error (-EBADF, -ECONNREFUSED...).
 * The futures are the same as those of the executors, so one px_wait() can
 * wait on I/O and tasks together.
 *
 * Threads: every function may be called from any thread, and waiting on an
 * I/O future blocks only the waiting thread. A reaper thread per context
 * completes the futures (on the threads fallback: its worker and poller
 * threads), so done callbacks (px_future_on_done) of I/O futures run there;
 * they must not block, and they may start further operations, which are
 * then submitted together (see io/README.md). On io_uring the reaper spins
 * up to 50 us after a round of work before it sleeps, and a thread waiting
 * on an I/O future spins up to 100 us while the reaper works on the ring,
 * so a loop that starts a batch and waits for it pays no thread wake-ups;
 * both then sleep (costing CPU time, not latency, when nothing comes).
 *
 * Batching: operations started between px_io_batch_begin() and
 * px_io_batch_end() in one thread go to the kernel in one system call (a
 * batch bigger than a quarter of the submission ring goes every quarter, so
 * the kernel works while the caller fills the rest). Operations started
 * from done callbacks are batched the same way.
 *
 * Backends: where io_uring is unavailable (an old kernel, a seccomp profile
 * answering EPERM, /proc/sys/kernel/io_uring_disabled), the same API runs on
 * a small pool of blocking threads; px_io_backend_get() says which one runs
 * and a line on stderr says so once per process. PAREX_IO=uring or
 * PAREX_IO=threads in the environment forces one.
 *
 * Memory: buffers, iovec arrays and accept's address outputs belong to the
 * caller and must stay valid until the operation's future is done. Paths
 * (openat) and connect addresses are copied.
 *
 * fork(): a context belongs to the process that created it. In a child, every
 * call on an inherited context fails with PX_EFORKED (the child shares no
 * ring with the parent); px_io_destroy() in the child frees what it safely
 * can. Create a new context in the child.
 */
#ifndef PAREX_IO_H
#define PAREX_IO_H

#include <parex/future.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct px_io px_io;

typedef enum px_io_backend {
	PX_IO_AUTO = 0,    /* $PAREX_IO if set, else io_uring when usable */
	PX_IO_URING = 1,   /* io_uring with a reaper thread */
	PX_IO_THREADS = 2, /* blocking calls on a small thread pool */
} px_io_backend;

typedef struct px_io_config {
	px_io_backend backend; /* PX_IO_AUTO picks as above */
	unsigned entries;      /* io_uring submission ring size; 0: 4096 */
	unsigned threads;      /* threads backend: most workers; 0: 16 */
} px_io_config;

/*
 * Creates an I/O context and its reaper (or worker) threads. cfg may be NULL
 * (all defaults). A context asked for io_uring explicitly (in cfg or
 * PAREX_IO=uring) does not fall back: it fails with the reason (-ENOSYS,
 * -EPERM). Returns 0, -EINVAL (bad cfg or PAREX_IO value), -ENOMEM, -EAGAIN.
 */
PX_API int px_io_create(px_io **out, const px_io_config *cfg);

/*
 * Cancels every operation still in flight, waits until each future is done
 * (cancelled, or finished if it could not be stopped), stops the threads and
 * frees the context. Futures stay valid for their holders. Must not be called
 * from a done callback of the same context. Accepts NULL.
 */
PX_API void px_io_destroy(px_io *io);

/* The backend the context runs on: PX_IO_URING or PX_IO_THREADS. */
PX_API px_io_backend px_io_backend_get(const px_io *io);

/* The backend's name: "uring" or "threads". */
PX_API const char *px_io_backend_name(const px_io *io);

/*
 * Whether this process can use io_uring: 0, or the negative reason (-ENOSYS:
 * no io_uring; -EPERM: blocked by seccomp or io_uring_disabled; -EOPNOTSUPP:
 * the kernel lacks an operation parex needs, before Linux 5.19). Probed once
 * per process, then cached.
 */
PX_API int px_io_uring_probe(void);

typedef struct px_io_stats {
	uint64_t ops;       /* operations started */
	uint64_t completed; /* operations whose future was completed */
	uint64_t enters;    /* io_uring_enter calls made to submit or wait */
	uint64_t inflight;  /* started and not yet completed */
} px_io_stats;

/* Fills *out with counters (not one atomic snapshot). 0 or -EINVAL. */
PX_API int px_io_stats_get(const px_io *io, px_io_stats *out);

/* Per-operation options; pass NULL for none. */
typedef struct px_io_opts {
	/*
	 * A deadline relative to the call: if the operation has not finished
	 * by then it is cancelled and its future fails with -ETIMEDOUT (an
	 * io_uring linked timeout). 0 or PX_FOREVER: none.
	 */
	int64_t timeout_ns;
	/*
	 * A done callback (px_done_fn) and its argument, registered before
	 * the operation is handed to the backend: it runs once, in the thread
	 * that completes the operation (never inside the starting call), and
	 * if it cannot be registered the call fails with -ENOMEM and nothing
	 * starts. NULL: none.
	 */
	px_done_fn done;
	void *done_arg;
} px_io_opts;

/* Offset meaning "the file's current position" (and the only one pipes and
 * sockets take). */
#define PX_IO_CUR ((int64_t)-1)

/*
 * The operations. Each starts one operation and stores its future (one
 * reference, yours) through out. They return 0 once the operation is queued,
 * or -EINVAL (a NULL pointer or bad argument), -ENOMEM, PX_ESHUTDOWN (the
 * context is being destroyed), PX_EFORKED; the operation's own failure comes
 * later, as the future's error.
 */

/* Reads up to len bytes at offset off (PX_IO_CUR: current position). Result:
 * bytes read, 0 at end of file. */
PX_API int px_io_read(px_io *io, int fd, void *buf, size_t len, int64_t off,
		      const px_io_opts *opts, px_future **out);

/* Writes up to len bytes at off. Result: bytes written. */
PX_API int px_io_write(px_io *io, int fd, const void *buf, size_t len,
		       int64_t off, const px_io_opts *opts, px_future **out);

/* Scatter read into iovcnt buffers (the iovec array must stay valid). */
PX_API int px_io_readv(px_io *io, int fd, const struct iovec *iov, int iovcnt,
		       int64_t off, const px_io_opts *opts, px_future **out);

/* Gather write from iovcnt buffers. */
PX_API int px_io_writev(px_io *io, int fd, const struct iovec *iov, int iovcnt,
			int64_t off, const px_io_opts *opts, px_future **out);

/* Flags for px_io_fsync(). */
enum { PX_IO_DATASYNC = 1u << 0 /* fdatasync() rather than fsync() */ };

/* Flushes fd to storage. Result: 0. */
PX_API int px_io_fsync(px_io *io, int fd, unsigned flags,
		       const px_io_opts *opts, px_future **out);

/* openat(dirfd, path, flags, mode); path is copied. Result: the new fd. */
PX_API int px_io_openat(px_io *io, int dirfd, const char *path, int flags,
			mode_t mode, const px_io_opts *opts, px_future **out);

/* Closes fd. Result: 0. */
PX_API int px_io_close(px_io *io, int fd, const px_io_opts *opts,
		       px_future **out);

/*
 * Accepts a connection on listening socket fd, with accept4() flags
 * (SOCK_CLOEXEC, SOCK_NONBLOCK). addr and addrlen may be NULL; else they
 * are written when the future completes. Result: the new socket.
 */
PX_API int px_io_accept(px_io *io, int fd, struct sockaddr *addr,
			socklen_t *addrlen, int flags, const px_io_opts *opts,
			px_future **out);

/* Connects socket fd to addr (copied; at most sizeof(struct
 * sockaddr_storage)). Result: 0. */
PX_API int px_io_connect(px_io *io, int fd, const struct sockaddr *addr,
			 socklen_t addrlen, const px_io_opts *opts,
			 px_future **out);

/* send(fd, buf, len, flags). Result: bytes sent. Add MSG_NOSIGNAL to get
 * -EPIPE rather than SIGPIPE from a closed peer. */
PX_API int px_io_send(px_io *io, int fd, const void *buf, size_t len,
		      int flags, const px_io_opts *opts, px_future **out);

/* recv(fd, buf, len, flags). Result: bytes received, 0 when the peer
 * closed. */
PX_API int px_io_recv(px_io *io, int fd, void *buf, size_t len, int flags,
		      const px_io_opts *opts, px_future **out);

/* Waits until fd has one of the poll(2) events (POLLIN, POLLOUT...). Result:
 * the events that are set. */
PX_API int px_io_poll(px_io *io, int fd, unsigned events,
		      const px_io_opts *opts, px_future **out);

/* Completes after ns nanoseconds (an io_uring timeout). Result: 0. */
PX_API int px_io_sleep(px_io *io, int64_t ns, px_future **out);

/* Does nothing, through the whole submit/complete path. Result: 0. */
PX_API int px_io_nop(px_io *io, px_future **out);

/*
 * Cancelling: px_future_cancel(f, PX_CANCEL_RUNNING) on an I/O future asks
 * the kernel to stop the operation (IORING_OP_ASYNC_CANCEL) and returns 0;
 * the future then completes as cancelled, or with its result if the
 * operation finished first. Without the flag it returns -EBUSY, since an I/O
 * operation runs from the moment it is started.
 */

/*
 * Holds back operations this thread starts on io until the matching
 * px_io_batch_end(), which submits them all at once (io_uring: a batch
 * bigger than a quarter of the submission ring goes every quarter). So a
 * wait on one of them inside the batch may never end. Pairs may nest.
 * Returns 0, -EINVAL, or -EBUSY if this thread holds a batch open on
 * another context.
 */
PX_API int px_io_batch_begin(px_io *io);

/* Closes a batch; the outermost end submits. 0, -EINVAL (no batch open). */
PX_API int px_io_batch_end(px_io *io);

#ifdef __cplusplus
}
#endif

#endif /* PAREX_IO_H */
