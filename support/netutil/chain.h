/*
 * support/netutil/chain.h - a chain of I/O operations: one in flight at a
 * time, each started from the previous one's done callback, and cancellable
 * as a whole. The request client, the accept loop and the responder's
 * connections are chains. Private to px_netutil.
 */
#ifndef PX_NETUTIL_CHAIN_H
#define PX_NETUTIL_CHAIN_H

#include <parex/io.h>
#include <stdatomic.h>
#include <stdbool.h>

/* The operations a chain runs. */
enum px__net_op {
	PX__NET_CONNECT = 1,
	PX__NET_SEND,
	PX__NET_RECV,
	PX__NET_ACCEPT,
	PX__NET_SLEEP,
};

/* One operation: the fields its px_io_* call takes. */
struct px__net_req {
	enum px__net_op op;
	int fd;
	void *buf;                   /* send, recv */
	size_t len;
	int flags;                   /* send, recv and accept4 flags */
	const struct sockaddr *addr; /* connect */
	socklen_t addrlen;
	int64_t ns;                  /* sleep */
};

struct px__net_chain {
	_Atomic uint32_t lock; /* spinlock over the fields below */
	px_future *cur;        /* the operation in flight (a reference) */
	enum px__net_op op;    /* cur's operation */
	bool cancelled;
};

/*
 * Starts r (deadline timeout_ns, 0: none; sleeps take none) with fn(f, arg)
 * as its done callback and records it as the chain's current operation. fn
 * runs in the thread that completes the operation and never before the
 * record is made; only a sleep that is over before its callback is added
 * runs fn in this call. Returns 0, -ECANCELED if the chain was cancelled
 * (nothing started), or the operation's start error. The caller must not
 * touch what fn may free once this returns 0.
 */
int px__net_chain_start(px_io *io, struct px__net_chain *c,
			const struct px__net_req *r, int64_t timeout_ns,
			px_done_fn fn, void *arg);

/* In fn: forgets f as the current operation, drops the chain's reference to
 * it (f stays valid for the rest of the callback) and returns the operation
 * it ran. */
enum px__net_op px__net_chain_done(struct px__net_chain *c, px_future *f);

/* Marks the chain cancelled and returns its current operation with a new
 * reference (or NULL): cancel it with PX_CANCEL_RUNNING, then release it,
 * without holding locks a callback may take. */
px_future *px__net_chain_grab(struct px__net_chain *c);

#endif /* PX_NETUTIL_CHAIN_H */
