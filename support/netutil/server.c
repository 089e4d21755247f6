/*
 * support/netutil/server.c - an accept loop (px_io_acceptor) and on it a
 * canned-reply server (px_io_responder), both chains of operations
 * (chain.c).
 *
 * Stopping: both keep a count of live chains and a promise that the last
 * one to end completes; stop marks them stopping, cancels each chain's
 * current operation, and waits on the promise. The responder's count holds
 * one extra unit for the server itself until stop, since its connections
 * come and go and the count may touch zero before. Lock order: the
 * responder's lock, then a chain's lock; futures are cancelled and
 * callbacks run with neither held.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chain.h"
#include "netutil.h"

/* Drops n from the live count *w; the last drop completes `drained`. */
static void drop_live(_Atomic uint32_t *w, uint32_t n, px_future *drained)
{
	/* Our own reference: once the count is zero the stopper may wake,
	 * drop its references and free the object that holds w. */
	px_future_retain(drained);
	if (atomic_fetch_sub(w, n) == n)
		px_promise_set_i64(drained, 0);
	px_future_release(drained);
}

/* Waits for `drained` (a blocking wait like any other future's) and drops
 * it. */
static void wait_drained(px_future *drained)
{
	px_future_wait(drained, PX_FOREVER);
	px_future_release(drained);
}

/* Accept loop ---------------------------------------------------------------- */

struct slot {
	struct px_io_acceptor *a;
	struct px__net_chain ch;
};

struct px_io_acceptor {
	px_io *io;
	int fd;
	px_io_accept_fn fn;
	void *arg;
	unsigned depth;
	_Atomic bool stopping;
	_Atomic uint32_t live; /* slots with an operation in flight */
	px_future *drained;    /* completed when live drops to zero */
	struct slot slots[];
};

static void slot_step(px_future *f, void *arg);

static void slot_accept(struct slot *s)
{
	struct px_io_acceptor *a = s->a;
	struct px__net_req r = { .op = PX__NET_ACCEPT, .fd = a->fd,
				 .flags = SOCK_CLOEXEC };
	if (atomic_load(&a->stopping) ||
	    px__net_chain_start(a->io, &s->ch, &r, 0, slot_step, s))
		drop_live(&a->live, 1, a->drained);
}

static void slot_step(px_future *f, void *arg)
{
	struct slot *s = arg;
	struct px_io_acceptor *a = s->a;
	int err = px_future_error(f);
	int64_t fd = -1;
	if (!err)
		fd = *(const int64_t *)px_future_result(f, NULL);
	enum px__net_op op = px__net_chain_done(&s->ch, f);
	if (atomic_load(&a->stopping) || err == -ECANCELED) {
		if (op == PX__NET_ACCEPT && fd >= 0)
			close((int)fd);
		drop_live(&a->live, 1, a->drained);
		return;
	}
	if (op == PX__NET_SLEEP) {
		slot_accept(s);
		return;
	}
	if (err) {
		/* EMFILE and friends: tell the owner, pause, go on. */
		a->fn(a->io, err, a->arg);
		struct px__net_req r = { .op = PX__NET_SLEEP, .ns = 10 * PX_MSEC };
		if (px__net_chain_start(a->io, &s->ch, &r, 0, slot_step, s))
			drop_live(&a->live, 1, a->drained);
		return;
	}
	a->fn(a->io, (int)fd, a->arg);
	slot_accept(s);
}

int px_io_acceptor_start(px_io_acceptor **out, px_io *io, int listen_fd,
			 unsigned depth, px_io_accept_fn fn, void *arg)
{
	if (out)
		*out = NULL;
	if (!out || !io || listen_fd < 0 || !fn || depth > 1024)
		return -EINVAL;
	if (!depth)
		depth = 4;
	/* Non-blocking: the threads backend's accepts then never block a
	 * worker when another slot took the connection; io_uring polls
	 * either way. */
	int fl = fcntl(listen_fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (!(fl & O_NONBLOCK) && fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	px_io_acceptor *a = calloc(1, sizeof(*a) + depth * sizeof(struct slot));
	if (!a)
		return -ENOMEM;
	int e = px_promise_create(&a->drained);
	if (e) {
		free(a);
		return e;
	}
	a->io = io;
	a->fd = listen_fd;
	a->fn = fn;
	a->arg = arg;
	a->depth = depth;
	atomic_store(&a->live, depth);
	for (unsigned i = 0; i < depth; i++) {
		a->slots[i].a = a;
		struct px__net_req r = { .op = PX__NET_ACCEPT, .fd = listen_fd,
					 .flags = SOCK_CLOEXEC };
		e = px__net_chain_start(io, &a->slots[i].ch, &r, 0, slot_step,
					&a->slots[i]);
		if (e) {
			/* Slots i.. never started. */
			drop_live(&a->live, depth - i, a->drained);
			*out = a;
			px_io_acceptor_stop(a);
			*out = NULL;
			return e;
		}
	}
	*out = a;
	return 0;
}

void px_io_acceptor_stop(px_io_acceptor *a)
{
	if (!a)
		return;
	atomic_store(&a->stopping, true);
	for (unsigned i = 0; i < a->depth; i++) {
		px_future *f = px__net_chain_grab(&a->slots[i].ch);
		if (f) {
			px_future_cancel(f, PX_CANCEL_RUNNING);
			px_future_release(f);
		}
	}
	wait_drained(a->drained);
	free(a);
}

/* Canned-reply server ---------------------------------------------------------- */

struct conn {
	px_io_responder *srv;
	struct conn *prev, *next; /* the live list, under srv->lock */
	struct px__net_chain ch;
	int fd;
	size_t got, sent;
	char buf[];
};

struct px_io_responder {
	px_io *io;
	px_io_acceptor *acc;
	char *reply;
	size_t reply_len;
	int64_t delay_ns;
	char *end;
	size_t end_len;
	size_t max_request;
	pthread_mutex_t lock; /* live list, peak */
	struct conn *live;
	uint64_t open, peak;
	_Atomic bool stopping;
	_Atomic uint32_t nlive; /* open connections, + 1 until stop */
	px_future *drained;     /* completed when nlive drops to zero */
	_Atomic uint64_t accepted, replied, dropped;
};

static void conn_step(px_future *f, void *arg);

static void conn_close(struct conn *c, bool replied)
{
	px_io_responder *r = c->srv;
	close(c->fd);
	atomic_fetch_add_explicit(replied ? &r->replied : &r->dropped, 1,
				  memory_order_relaxed);
	pthread_mutex_lock(&r->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		r->live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	r->open--;
	pthread_mutex_unlock(&r->lock);
	free(c);
	drop_live(&r->nlive, 1, r->drained);
}

static void conn_start(struct conn *c, const struct px__net_req *req)
{
	if (atomic_load(&c->srv->stopping) ||
	    px__net_chain_start(c->srv->io, &c->ch, req, 0, conn_step, c))
		conn_close(c, false);
}

static void conn_recv(struct conn *c)
{
	struct px__net_req q = { .op = PX__NET_RECV, .fd = c->fd,
				 .buf = c->buf + c->got,
				 .len = c->srv->max_request - c->got };
	conn_start(c, &q);
}

static void conn_send(struct conn *c)
{
	px_io_responder *r = c->srv;
	struct px__net_req q = { .op = PX__NET_SEND, .fd = c->fd,
				 .buf = r->reply + c->sent,
				 .len = r->reply_len - c->sent,
				 .flags = MSG_NOSIGNAL };
	conn_start(c, &q);
}

static void conn_answer(struct conn *c)
{
	px_io_responder *r = c->srv;
	if (r->delay_ns > 0) {
		struct px__net_req q = { .op = PX__NET_SLEEP, .ns = r->delay_ns };
		conn_start(c, &q);
	} else {
		conn_send(c);
	}
}

static void conn_step(px_future *f, void *arg)
{
	struct conn *c = arg;
	px_io_responder *r = c->srv;
	int err = px_future_error(f);
	int64_t n = 0;
	if (!err)
		n = *(const int64_t *)px_future_result(f, NULL);
	enum px__net_op op = px__net_chain_done(&c->ch, f);
	if (err || atomic_load(&r->stopping)) {
		conn_close(c, false);
		return;
	}
	switch (op) {
	case PX__NET_RECV: {
		if (n == 0) {
			conn_close(c, false);
			return;
		}
		size_t before = c->got;
		c->got += (size_t)n;
		bool complete = !r->end;
		if (r->end) {
			/* Search only where the marker can newly appear. */
			size_t from = before >= r->end_len ? before - r->end_len + 1
							   : 0;
			complete = memmem(c->buf + from, c->got - from, r->end,
					  r->end_len) != NULL;
		}
		if (complete)
			conn_answer(c);
		else if (c->got == r->max_request)
			conn_close(c, false);
		else
			conn_recv(c);
		return;
	}
	case PX__NET_SLEEP:
		conn_send(c);
		return;
	case PX__NET_SEND:
		c->sent += (size_t)n;
		if (c->sent < r->reply_len)
			conn_send(c);
		else
			conn_close(c, true);
		return;
	default:
		break;
	}
	conn_close(c, false);
}

static void on_accept(px_io *io, int fd, void *arg)
{
	(void)io;
	px_io_responder *r = arg;
	if (fd < 0)
		return;
	atomic_fetch_add_explicit(&r->accepted, 1, memory_order_relaxed);
	struct conn *c = calloc(1, sizeof(*c) + r->max_request);
	if (!c) {
		close(fd);
		atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
		return;
	}
	c->srv = r;
	c->fd = fd;
	atomic_fetch_add(&r->nlive, 1);
	pthread_mutex_lock(&r->lock);
	c->next = r->live;
	if (r->live)
		r->live->prev = c;
	r->live = c;
	if (++r->open > r->peak)
		r->peak = r->open;
	pthread_mutex_unlock(&r->lock);
	conn_recv(c);
}

static void responder_free(px_io_responder *r)
{
	px_future_release(r->drained);
	pthread_mutex_destroy(&r->lock);
	free(r->reply);
	free(r->end);
	free(r);
}

int px_io_responder_start(px_io_responder **out, px_io *io, int listen_fd,
			  const px_io_responder_config *cfg)
{
	if (out)
		*out = NULL;
	if (!out || !io || !cfg || (!cfg->reply && cfg->reply_len) ||
	    (cfg->request_end && !*cfg->request_end))
		return -EINVAL;
	px_io_responder *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->io = io;
	r->reply_len = cfg->reply_len;
	r->reply = malloc(cfg->reply_len ? cfg->reply_len : 1);
	r->delay_ns = cfg->delay_ns;
	r->max_request = cfg->max_request ? cfg->max_request : 8192;
	if (cfg->request_end) {
		r->end = strdup(cfg->request_end);
		r->end_len = strlen(cfg->request_end);
	}
	pthread_mutex_init(&r->lock, NULL);
	atomic_store(&r->nlive, 1); /* the server's own unit, dropped by stop */
	if (!r->reply || (cfg->request_end && !r->end) ||
	    px_promise_create(&r->drained)) {
		responder_free(r);
		return -ENOMEM;
	}
	if (cfg->reply_len)
		memcpy(r->reply, cfg->reply, cfg->reply_len);
	int e = px_io_acceptor_start(&r->acc, io, listen_fd, 8, on_accept, r);
	if (e) {
		responder_free(r);
		return e;
	}
	*out = r;
	return 0;
}

int px_io_responder_stats_get(const px_io_responder *r,
			      px_io_responder_stats *out)
{
	if (!r || !out)
		return -EINVAL;
	out->accepted = atomic_load_explicit(&r->accepted, memory_order_relaxed);
	out->replied = atomic_load_explicit(&r->replied, memory_order_relaxed);
	out->dropped = atomic_load_explicit(&r->dropped, memory_order_relaxed);
	pthread_mutex_lock((pthread_mutex_t *)&r->lock);
	out->peak = r->peak;
	pthread_mutex_unlock((pthread_mutex_t *)&r->lock);
	return 0;
}

void px_io_responder_stop(px_io_responder *r)
{
	if (!r)
		return;
	/* No new connections first, then the open ones. */
	px_io_acceptor_stop(r->acc);
	atomic_store(&r->stopping, true);
	pthread_mutex_lock(&r->lock);
	size_t n = 0;
	for (struct conn *c = r->live; c; c = c->next)
		n++;
	px_future **fs = calloc(n ? n : 1, sizeof(*fs));
	size_t k = 0;
	for (struct conn *c = r->live; c && fs; c = c->next) {
		px_future *f = px__net_chain_grab(&c->ch);
		if (f)
			fs[k++] = f;
	}
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < k; i++) {
		px_future_cancel(fs[i], PX_CANCEL_RUNNING);
		px_future_release(fs[i]);
	}
	free(fs);
	/* The server's own unit: the count may reach zero from here. */
	px_future *drained = px_future_retain(r->drained);
	drop_live(&r->nlive, 1, drained);
	wait_drained(drained);
	responder_free(r);
}
