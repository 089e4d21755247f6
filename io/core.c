/*
 * io/core.c - the services both backends call, below them and the front
 * end: fork detection, the count of cancel hooks in flight that destroy
 * waits out, the per-thread plug, and the mapping of kernel results onto
 * futures. It calls nothing else in io/.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>

#include "core.h"
#include "trace.h"

/* Fork detection ---------------------------------------------------------- */

_Atomic uint64_t px__io_fork_gen;

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
	/* Relaxed: the child has one thread at this point. */
	atomic_fetch_add_explicit(&px__io_fork_gen, 1, memory_order_relaxed);
}

static void atfork_init(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

void px__io_fork_init(void)
{
	pthread_once(&atfork_once, atfork_init);
}

bool px__io_forked(const px_io *io)
{
	return atomic_load_explicit(&px__io_fork_gen, memory_order_relaxed) !=
	       io->fork_gen;
}

/* Cancel hooks against destroy --------------------------------------------- */

/*
 * px_future_cancel() calls a backend's cancel hook with the context as its
 * argument once it has seen the future RUNNING; the holder of a future never
 * names the context, so the hook may run while another thread destroys it.
 * Every hook is bracketed by px__io_cancel_enter/leave on this process-wide
 * count, and a destroying backend, once every future of the context is done,
 * waits for the count to drop to zero before freeing anything. Process-wide
 * because the count must outlive the context; hooks are short, so a destroy
 * rarely waits, and then only for a moment.
 */
static _Atomic long cancels_active;

int px__io_cancel_enter(px_io *io, px_future *f)
{
	atomic_fetch_add(&cancels_active, 1);
	/* Dekker with px__io_cancels_drain: our increment, fence, then the
	 * future's state; the destroyer completes every future, fence, then
	 * reads the count. Either it sees us, or we see the future done and
	 * leave without touching the context, not even io->fork_gen: until
	 * this check io may be freed memory. */
	atomic_thread_fence(memory_order_seq_cst);
	if (px_future_is_done(f)) {
		atomic_fetch_sub(&cancels_active, 1);
		return 0;
	}
	/* In a child the rings are not mapped and a lock may be held by a
	 * thread that does not exist here. */
	if (px__io_forked(io)) {
		atomic_fetch_sub(&cancels_active, 1);
		return PX_EFORKED;
	}
	return 1;
}

void px__io_cancel_leave(void)
{
	atomic_fetch_sub(&cancels_active, 1);
}

void px__io_cancels_drain(void)
{
	atomic_thread_fence(memory_order_seq_cst);
	while (atomic_load(&cancels_active))
		sched_yield();
}

/* The per-thread plug ------------------------------------------------------- */

/*
 * One context per thread may be plugged at a time: a batch the thread opened,
 * or the reap it is running (callbacks that start operations). Plain
 * thread-locals, since only this thread reads them.
 */
static PX__TLS px_io *plug_io;
static PX__TLS unsigned plug_depth;

bool px__io_plugged(const px_io *io)
{
	return plug_depth && plug_io == io;
}

unsigned px__io_plug_reap(px_io *io, px_io **saved_io)
{
	unsigned d = plug_depth;
	*saved_io = plug_io;
	plug_depth = plug_io == io ? plug_depth + 1 : 1;
	plug_io = io;
	return d;
}

void px__io_unplug_reap(unsigned saved_depth, px_io *saved_io)
{
	plug_io = saved_io;
	plug_depth = saved_depth;
}

int px__io_plug_batch(px_io *io)
{
	if (plug_depth && plug_io != io)
		return -EBUSY;
	plug_io = io;
	plug_depth++;
	return 0;
}

int px__io_unplug_batch(px_io *io)
{
	if (!plug_depth || plug_io != io)
		return -EINVAL;
	if (--plug_depth)
		return 0;
	plug_io = NULL;
	return 1;
}

/* Completing ------------------------------------------------------------------ */

void px__io_count_completed(px_io *io, unsigned n)
{
	/* Relaxed: the completions that follow (release) publish the count
	 * to whoever then sees one of those futures done. */
	atomic_fetch_add_explicit(&io->n_completed, n, memory_order_relaxed);
}

void px__io_complete(px_io *io, px_future *f, int64_t res)
{
	/* Stamped before the completion runs done callbacks, which may start
	 * the next operation of a chain: one ends before the next begins. */
	int64_t end_ns = io->trace ? px__now_ns() : 0;
	uint64_t meta = px__io_meta(f);
	int kind = (int)(meta & PX__IO_KIND_MASK);
	if (kind == PX__IO_SLEEP && res == -ETIME)
		res = 0;
	if (res >= 0) {
		px_promise_set_i64(f, res);
	} else if (res == -ECANCELED || res == -EINTR) {
		if ((meta & PX__IO_F_CANCEL) || atomic_load(&io->stopping))
			px_promise_set_cancelled(f);
		else if (meta & PX__IO_F_DEADLINE)
			px_promise_set_error(f, -ETIMEDOUT, NULL);
		else
			px_promise_set_error(f, (int)res, NULL);
	} else {
		px_promise_set_error(f, (int)res, NULL);
	}
	/* One track per context; the operation spans its start to its
	 * completion, read back from the future (ours until the release). */
	if (io->trace)
		px__trace_task(io->trace, f->trace_submit_ns, f->trace_task, 0, 0,
			       f->trace_submit_ns, end_ns, px_future_error(f), 0);
	px_future_release(f);
}
