/*
 * support/netutil/chain.c - chains of I/O operations on the public px_io_*
 * calls.
 *
 * Each operation is started with its done callback in px_io_opts, so the
 * callback is registered before the operation can complete and runs in the
 * completing thread, never inside the start. It may run there before the
 * start has returned the future, so the chain's spinlock covers the start
 * and the recording of `cur`, and the callback (px__net_chain_done) waits
 * that out. The start happens inside a batch, so on io_uring the operation
 * goes to the kernel once it is recorded (a callback-driven chain on the
 * reaper joins the reaper's own batch).
 *
 * px_io_sleep takes no options: its callback is added after the start, with
 * the lock dropped, so a sleep that is already over runs the callback in the
 * starting thread. Chain locks are leaves except that an operation's start
 * runs under one (it takes only the backend's submission lock).
 */
#include <errno.h>
#include <sched.h>

#include "chain.h"

static void chain_lock(struct px__net_chain *c)
{
	unsigned spins = 0;
	/* acquire pairs with chain_unlock's release. */
	while (atomic_exchange_explicit(&c->lock, 1, memory_order_acquire))
		if (++spins % 64 == 0)
			sched_yield();
}

static void chain_unlock(struct px__net_chain *c)
{
	atomic_store_explicit(&c->lock, 0, memory_order_release);
}

static int op_start(px_io *io, const struct px__net_req *r,
		    const px_io_opts *o, px_future **f)
{
	switch (r->op) {
	case PX__NET_CONNECT:
		return px_io_connect(io, r->fd, r->addr, r->addrlen, o, f);
	case PX__NET_SEND:
		return px_io_send(io, r->fd, r->buf, r->len, r->flags, o, f);
	case PX__NET_RECV:
		return px_io_recv(io, r->fd, r->buf, r->len, r->flags, o, f);
	case PX__NET_ACCEPT:
		return px_io_accept(io, r->fd, NULL, NULL, r->flags, o, f);
	case PX__NET_SLEEP:
		return px_io_sleep(io, r->ns, f);
	}
	return -EINVAL;
}

/* A sleep's callback, added after its start: on failure the sleep is
 * cancelled and forgotten, and the chain reports the error. */
static int sleep_on_done(struct px__net_chain *c, px_future *f,
			 px_done_fn fn, void *arg)
{
	int e = px_future_on_done(f, fn, arg);
	if (!e)
		return 0;
	chain_lock(c);
	c->cur = NULL;
	chain_unlock(c);
	px_future_cancel(f, PX_CANCEL_RUNNING);
	px_future_release(f);
	return e;
}

int px__net_chain_start(px_io *io, struct px__net_chain *c,
			const struct px__net_req *r, int64_t timeout_ns,
			px_done_fn fn, void *arg)
{
	/* -EBUSY: this thread batches another context; start unbatched. */
	bool batched = px_io_batch_begin(io) == 0;
	px_io_opts o = { .timeout_ns = timeout_ns, .done = fn, .done_arg = arg };
	px_future *f = NULL;
	int e;
	chain_lock(c);
	if (c->cancelled) {
		e = -ECANCELED;
	} else {
		e = op_start(io, r, &o, &f);
		if (!e) {
			c->cur = f;
			c->op = r->op;
		}
	}
	chain_unlock(c);
	/* No callback yet for a sleep: the chain's reference keeps f. */
	if (!e && r->op == PX__NET_SLEEP)
		e = sleep_on_done(c, f, fn, arg);
	if (batched)
		px_io_batch_end(io);
	return e;
}

enum px__net_op px__net_chain_done(struct px__net_chain *c, px_future *f)
{
	chain_lock(c);
	bool mine = c->cur == f;
	enum px__net_op op = c->op;
	if (mine)
		c->cur = NULL;
	chain_unlock(c);
	if (mine)
		px_future_release(f);
	return op;
}

px_future *px__net_chain_grab(struct px__net_chain *c)
{
	chain_lock(c);
	c->cancelled = true;
	px_future *f = c->cur ? px_future_retain(c->cur) : NULL;
	chain_unlock(c);
	return f;
}
