/*
 * support/netutil/client.c - the request/response client (px_io_request),
 * a chain of connect, send and recv (chain.c), plus a listening-socket
 * helper.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chain.h"
#include "netutil.h"
#include "px_clock.h"

/* Request/response ---------------------------------------------------------- */

/*
 * The exchange's state. The chain holds its own reference to the outer
 * future until it completes it, and then frees x (xreq_free).
 */
struct xreq {
	px_io *io;
	px_future *outer;
	struct xreq *grave_next; /* the graveyard list, under grave_lock */
	struct px__net_chain ch;
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

/*
 * Freeing x against a concurrent cancel. px_future_cancel() calls
 * xreq_cancel(outer, x) once it has seen the outer future RUNNING, so the
 * hook may be about to use x just as the exchange completes the future.
 * Under one process-wide lock, a hook either finds the future done and
 * leaves x alone, or counts itself in `cancels_active`; a finisher, after
 * completing the future, frees x only when no hook is counted. Otherwise
 * it does not wait (it runs in the reaper, which the hook may need): x goes
 * on a graveyard list, which the last hook to leave, or the next finisher
 * to find none counted, frees.
 */
static pthread_mutex_t grave_lock = PTHREAD_MUTEX_INITIALIZER;
static long cancels_active;  /* under grave_lock */
static struct xreq *grave;   /* under grave_lock */

static void grave_free(struct xreq *g)
{
	while (g) {
		struct xreq *next = g->grave_next;
		free(g);
		g = next;
	}
}

/* After the outer future is complete. */
static void xreq_free(struct xreq *x)
{
	struct xreq *g = NULL;
	pthread_mutex_lock(&grave_lock);
	if (cancels_active) {
		x->grave_next = grave;
		grave = x;
		x = NULL;
	} else {
		g = grave;
		grave = NULL;
	}
	pthread_mutex_unlock(&grave_lock);
	free(x);
	grave_free(g);
}

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
	xreq_free(x);
	/* The chain's reference: the outer future may go now. */
	px_future_release(outer);
}

/* Starts the next operation, or finishes with its start error. */
static void xreq_next(struct xreq *x, const struct px__net_req *r)
{
	int64_t left = 0; /* for the operation: 0 is none */
	if (x->deadline != PX__NO_DEADLINE) {
		left = px__deadline_left(x->deadline);
		if (left == 0) {
			xreq_finish(x, -ETIMEDOUT);
			return;
		}
	}
	int e = px__net_chain_start(x->io, &x->ch, r, left, xreq_step, x);
	if (e)
		xreq_finish(x, e);
}

static void xreq_send(struct xreq *x)
{
	struct px__net_req r = { .op = PX__NET_SEND, .fd = x->fd,
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
	struct px__net_req r = { .op = PX__NET_RECV, .fd = x->fd,
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
	int err = px_future_error(f);
	int64_t n = 0;
	if (!err) {
		const int64_t *p = px_future_result(f, NULL);
		n = *p;
	}
	enum px__net_op op = px__net_chain_done(&x->ch, f);
	if (err) {
		xreq_finish(x, err);
		return;
	}
	switch (op) {
	case PX__NET_CONNECT:
		xreq_send(x);
		return;
	case PX__NET_SEND:
		x->sent += (size_t)n;
		if (x->sent < x->req_len)
			xreq_send(x);
		else
			xreq_recv(x);
		return;
	case PX__NET_RECV: {
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
	default:
		break;
	}
	xreq_finish(x, -EINVAL);
}

static int xreq_cancel(px_future *outer, void *arg)
{
	/* See xreq_free. */
	pthread_mutex_lock(&grave_lock);
	bool done = px_future_is_done(outer);
	if (!done)
		cancels_active++;
	pthread_mutex_unlock(&grave_lock);
	if (done)
		return 0;
	struct xreq *x = arg;
	px_future *cur = px__net_chain_grab(&x->ch);
	if (cur) {
		px_future_cancel(cur, PX_CANCEL_RUNNING);
		px_future_release(cur);
	}
	struct xreq *g = NULL;
	pthread_mutex_lock(&grave_lock);
	if (--cancels_active == 0) {
		g = grave;
		grave = NULL;
	}
	pthread_mutex_unlock(&grave_lock);
	grave_free(g);
	return 0;
}

int px_io_request(px_io *io, const struct sockaddr *addr,
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
		free(x);
		px_future_release(outer);
		return e;
	}
	px_promise_on_cancel(outer, xreq_cancel, x);
	px_promise_start(outer);
	px_future_retain(outer); /* the chain's reference */
	*out = outer;
	struct px__net_req r = { .op = PX__NET_CONNECT, .fd = x->fd,
				.addr = (const struct sockaddr *)&x->sa,
				.addrlen = x->salen };
	int64_t left = 0; /* for the operation: 0 is none */
	if (x->deadline != PX__NO_DEADLINE) {
		left = px__deadline_left(x->deadline);
		if (left == 0)
			left = 1; /* already late: time out at once */
	}
	e = px__net_chain_start(io, &x->ch, &r, left, xreq_step, x);
	if (e) {
		/* Nothing in flight and the future not yet handed out:
		 * undo, and report the start error. */
		close(x->fd);
		free(x);
		px_future_release(outer);
		px_future_release(outer);
		*out = NULL;
		return e;
	}
	return 0;
}

/* Listening socket ------------------------------------------------------------ */

int px_io_tcp_listen(const char *ip, uint16_t port, int backlog,
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
