/*
 * io/client.c - chains of operations, and on them the request/response
 * client (px_io_request) plus a listening-socket helper.
 *
 * A chain starts each operation with its done callback registered first and
 * while the context is plugged in this thread, so the callback cannot run
 * inside the start; the chain's spinlock covers the gap between the start and
 * recording the operation as `cur`, which a callback in another thread (the
 * reaper, a worker) waits out. Chain locks are leaves except that
 * px__io_start runs under one (it takes only the backend's submission
 * lock).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io_internal.h"

/* Chains ---------------------------------------------------------------- */

static void chain_lock(struct px__io_chain *c)
{
	unsigned spins = 0;
	/* acquire pairs with chain_unlock's release. */
	while (atomic_exchange_explicit(&c->lock, 1, memory_order_acquire))
		if (++spins % 64 == 0)
			sched_yield();
}

static void chain_unlock(struct px__io_chain *c)
{
	atomic_store_explicit(&c->lock, 0, memory_order_release);
}

int px__io_chain_start(px_io *io, struct px__io_chain *c,
		       const struct px__io_req *r, int64_t timeout_ns,
		       px_done_fn fn, void *arg)
{
	px_io *saved_io;
	unsigned saved = px__io_plug_reap(io, &saved_io);
	chain_lock(c);
	int e;
	if (c->cancelled) {
		e = -ECANCELED;
	} else {
		px_io_opts o = { .timeout_ns = timeout_ns };
		px_future *f;
		e = px__io_start(io, r, &o, fn, arg, &f);
		if (!e)
			c->cur = f;
	}
	chain_unlock(c);
	px__io_unplug_reap(saved, saved_io);
	if (!e && !px__io_plugged(io))
		io->ops->flush(io);
	return e;
}

void px__io_chain_done(struct px__io_chain *c, px_future *f)
{
	chain_lock(c);
	bool mine = c->cur == f;
	if (mine)
		c->cur = NULL;
	chain_unlock(c);
	if (mine)
		px_future_release(f);
}

px_future *px__io_chain_grab(struct px__io_chain *c)
{
	chain_lock(c);
	c->cancelled = true;
	px_future *f = c->cur ? px_future_retain(c->cur) : NULL;
	chain_unlock(c);
	return f;
}

/* Request/response ---------------------------------------------------------- */

/*
 * The exchange's state lives in the outer future (f->arg, freed with it), so
 * a canceller holding the future can always reach it. The chain holds its own
 * reference to the outer future until it completes it.
 */
struct xreq {
	px_io *io;
	px_future *outer;
	struct px__io_chain ch;
	int fd;
	int64_t deadline; /* px__now_ns clock; PX__NO_DEADLINE: none */
	size_t req_len, sent;
	char *reply;
	size_t cap, got;
	size_t expect;
	px_io_frame_fn frame;
	void *frame_arg;
	char extra; /* target of the recv that checks a full buffer is the end */
	struct sockaddr_storage sa;
	socklen_t salen;
	char req[];
};

static void xreq_step(px_future *f, void *arg);

static void xreq_finish(struct xreq *x, int64_t res)
{
	if (x->fd >= 0) {
		close(x->fd);
		x->fd = -1;
	}
	px_future *outer = x->outer;
	if (res >= 0)
		px_promise_set_i64(outer, res);
	else if (res == -ECANCELED)
		px_promise_set_cancelled(outer);
	else
		px_promise_set_error(outer, (int)res, NULL);
	/* Last touch of x: the outer future (and x with it) may go now. */
	px_future_release(outer);
}

/* Starts the next operation, or finishes with its start error. */
static void xreq_next(struct xreq *x, const struct px__io_req *r)
{
	int64_t left = 0;
	if (x->deadline != PX__NO_DEADLINE) {
		left = x->deadline - px__now_ns();
		if (left <= 0) {
			xreq_finish(x, -ETIMEDOUT);
			return;
		}
	}
	int e = px__io_chain_start(x->io, &x->ch, r, left, xreq_step, x);
	if (e)
		xreq_finish(x, e);
}

static void xreq_send(struct xreq *x)
{
	struct px__io_req r = { .kind = PX__IO_SEND, .fd = x->fd,
				.buf = x->req + x->sent,
				.len = x->req_len - x->sent,
				.flags = MSG_NOSIGNAL };
	xreq_next(x, &r);
}

/*
 * Reads more of the reply. With the buffer full and the length still
 * unknown, reads one byte into x->extra: end of file means the reply fitted
 * exactly, a byte means it did not (-EMSGSIZE).
 */
static void xreq_recv(struct xreq *x)
{
	bool full = x->got == x->cap;
	struct px__io_req r = { .kind = PX__IO_RECV, .fd = x->fd,
				.buf = full ? &x->extra : x->reply + x->got,
				.len = full ? 1 : x->cap - x->got };
	xreq_next(x, &r);
}

/* The reply's total length if known: expect, or frame()'s answer. */
static int64_t xreq_total(struct xreq *x)
{
	if (x->expect)
		return (int64_t)x->expect;
	if (x->frame && x->got)
		return x->frame(x->reply, x->got, x->frame_arg);
	return 0;
}

static void xreq_step(px_future *f, void *arg)
{
	struct xreq *x = arg;
	int kind = (int)(px__io_meta(f) & PX__IO_KIND_MASK);
	int err = px_future_error(f);
	int64_t n = 0;
	if (!err) {
		const int64_t *p = px_future_result(f, NULL);
		n = *p;
	}
	px__io_chain_done(&x->ch, f);
	if (err) {
		xreq_finish(x, err);
		return;
	}
	switch (kind) {
	case PX__IO_CONNECT:
		xreq_send(x);
		return;
	case PX__IO_SEND:
		x->sent += (size_t)n;
		if (x->sent < x->req_len)
			xreq_send(x);
		else
			xreq_recv(x);
		return;
	case PX__IO_RECV: {
		int64_t total;
		if (n == 0) {
			/* The peer closed: done, unless it promised more. */
			total = xreq_total(x);
			if (total < 0)
				xreq_finish(x, total);
			else if (total > (int64_t)x->got)
				xreq_finish(x, -ECONNRESET);
			else
				xreq_finish(x, (int64_t)x->got);
			return;
		}
		if (x->got == x->cap) {
			/* A byte past a full buffer. */
			xreq_finish(x, -EMSGSIZE);
			return;
		}
		x->got += (size_t)n;
		total = xreq_total(x);
		if (total < 0)
			xreq_finish(x, total);
		else if (total > (int64_t)x->cap)
			xreq_finish(x, -EMSGSIZE);
		else if (total > 0 && (int64_t)x->got >= total)
			xreq_finish(x, total);
		else
			xreq_recv(x);
		return;
	}
	}
	xreq_finish(x, -EINVAL);
}

static int xreq_cancel(px_future *outer, void *arg)
{
	(void)outer;
	struct xreq *x = arg;
	px_future *cur = px__io_chain_grab(&x->ch);
	if (cur) {
		px_future_cancel(cur, PX_CANCEL_RUNNING);
		px_future_release(cur);
	}
	return 0;
}

PX_API int px_io_request(px_io *io, const struct sockaddr *addr,
			 socklen_t addrlen, const void *req, size_t req_len,
			 void *reply, size_t reply_cap,
			 const px_io_request_opts *opts, px_future **out)
{
	if (out)
		*out = NULL;
	if (!io || !addr || !out || (!req && req_len) || !reply ||
	    !reply_cap || addrlen == 0 ||
	    addrlen > sizeof(struct sockaddr_storage) ||
	    (opts && opts->expect > reply_cap))
		return -EINVAL;
	px_future *outer;
	int e = px_promise_create(&outer);
	if (e)
		return e;
	struct xreq *x = calloc(1, sizeof(*x) + req_len);
	if (!x) {
		px_future_release(outer);
		return -ENOMEM;
	}
	/* The future owns x from here: future_free() frees f->arg. */
	outer->arg = x;
	outer->arg_len = (uint32_t)(sizeof(*x) + req_len);
	x->io = io;
	x->outer = outer;
	x->fd = -1;
	x->req_len = req_len;
	if (req_len)
		memcpy(x->req, req, req_len);
	x->reply = reply;
	x->cap = reply_cap;
	memcpy(&x->sa, addr, addrlen);
	x->salen = addrlen;
	x->deadline = PX__NO_DEADLINE;
	if (opts) {
		if (opts->timeout_ns > 0)
			x->deadline = px__deadline_after(opts->timeout_ns);
		x->expect = opts->expect;
		x->frame = opts->frame;
		x->frame_arg = opts->frame_arg;
	}
	x->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (x->fd < 0) {
		e = -errno;
		px_future_release(outer);
		return e;
	}
	px_promise_on_cancel(outer, xreq_cancel, x);
	px_promise_start(outer);
	px_future_retain(outer); /* the chain's reference */
	*out = outer;
	struct px__io_req r = { .kind = PX__IO_CONNECT, .fd = x->fd,
				.addr = (const struct sockaddr *)&x->sa,
				.addrlen = x->salen };
	int64_t left = 0;
	if (x->deadline != PX__NO_DEADLINE) {
		left = x->deadline - px__now_ns();
		if (left <= 0)
			left = 1; /* already late: time out at once */
	}
	e = px__io_chain_start(io, &x->ch, &r, left, xreq_step, x);
	if (e) {
		/* Nothing in flight: undo, and report the start error. */
		close(x->fd);
		x->fd = -1;
		px_future_release(outer);
		px_future_release(outer);
		*out = NULL;
		return e;
	}
	return 0;
}

/* Listening socket ------------------------------------------------------------ */

PX_API int px_io_tcp_listen(const char *ip, uint16_t port, int backlog,
			    int *fd, uint16_t *port_out)
{
	if (!fd)
		return -EINVAL;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port) };
	if (inet_pton(AF_INET, ip ? ip : "127.0.0.1", &sa.sin_addr) != 1)
		return -EINVAL;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -errno;
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(s, backlog > 0 ? backlog : 4096)) {
		int e = -errno;
		close(s);
		return e;
	}
	if (port_out) {
		socklen_t len = sizeof(sa);
		if (getsockname(s, (struct sockaddr *)&sa, &len)) {
			int e = -errno;
			close(s);
			return e;
		}
		*port_out = ntohs(sa.sin_port);
	}
	*fd = s;
	return 0;
}
