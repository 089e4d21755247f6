/*
 * support/netutil/netutil.h - TCP scaffolding for parex's demos, benchmarks
 * and tests: a request/response client (px_io_request), a listening-socket
 * helper, an accept loop (px_io_acceptor) and a canned-reply server
 * (px_io_responder), all built on the public px_io_* operations.
 *
 * Not parex API: nothing here is installed or exported by libparex (the
 * names keep the px_io_ prefix they had when they were); the static library
 * px_netutil is linked by the demos, bench_io and the I/O tests. Every
 * completion runs as a done callback of an I/O future (in the context's
 * reaper or worker threads), so the rules of parex/io.h for done callbacks
 * apply to the callbacks below.
 */
#ifndef PX_NETUTIL_H
#define PX_NETUTIL_H

#include <parex/io.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * Once len bytes of a reply have arrived, says how long the whole reply is:
 * its total length if known (an HTTP client parses Content-Length), 0 if not
 * yet known, or a negative error code to abort the exchange.
 */
typedef int64_t (*px_io_frame_fn)(const void *reply, size_t len, void *arg);

typedef struct px_io_request_opts {
	int64_t timeout_ns;   /* the whole exchange; 0 or PX_FOREVER: none */
	size_t expect;        /* stop after this many reply bytes; 0: none */
	px_io_frame_fn frame; /* optional, see px_io_frame_fn */
	void *frame_arg;
} px_io_request_opts;

/*
 * One request/response exchange over a new TCP (or Unix) connection:
 * connects to addr, sends the req_len bytes at req (copied), then reads the
 * reply into reply[0..reply_cap) until the peer closes, or expect bytes or
 * the length frame() gives have arrived. opts may be NULL. The future's
 * result is the number of reply bytes; errors: the connect's (-ECONNREFUSED),
 * -ETIMEDOUT, -EMSGSIZE (the reply does not fit reply_cap), -ECONNRESET (the
 * peer closed before the expected length), or frame()'s. reply must stay
 * valid until the future is done. Returns 0 once the exchange started, or
 * what the px_io_* operations return (-EINVAL, -ENOMEM, PX_ESHUTDOWN...).
 */
int px_io_request(px_io *io, const struct sockaddr *addr,
		  socklen_t addrlen, const void *req, size_t req_len,
		  void *reply, size_t reply_cap,
		  const px_io_request_opts *opts, px_future **out);

/*
 * Creates a TCP socket listening on ip:port (ip NULL: 127.0.0.1; port 0: any
 * free port) with the given backlog, close-on-exec and non-blocking. Stores
 * the socket through fd and the port through port_out (may be NULL). Returns
 * 0 or the failing call's negative errno.
 */
int px_io_tcp_listen(const char *ip, uint16_t port, int backlog,
		     int *fd, uint16_t *port_out);

/* An accept loop: keeps accepts in flight on a listening socket. */
typedef struct px_io_acceptor px_io_acceptor;

/*
 * Called for each accepted connection with its socket (yours to close), or
 * with a negative errno when an accept failed (the loop then pauses 10 ms and
 * goes on). Runs like a done callback: must not block.
 */
typedef void (*px_io_accept_fn)(px_io *io, int fd, void *arg);

/*
 * Starts an accept loop on listen_fd (which stays the caller's; the loop
 * keeps `depth` accepts in flight, 0: 4, and sets the socket non-blocking).
 * Returns 0, -EINVAL, -ENOMEM, or an operation's start error.
 */
int px_io_acceptor_start(px_io_acceptor **out, px_io *io,
			 int listen_fd, unsigned depth,
			 px_io_accept_fn fn, void *arg);

/*
 * Stops the loop: cancels its accepts and waits until none is in flight and
 * no fn call runs, then frees it. Must not be called from a callback of the
 * same context. Accepts NULL.
 */
void px_io_acceptor_stop(px_io_acceptor *a);

/*
 * A canned-reply server, for tests, benchmarks and demos: for every
 * connection it reads the request until `request_end` has arrived (or, if
 * NULL, after the first read), waits delay_ns, sends the reply and closes.
 * It holds any number of connections at once on one context.
 */
typedef struct px_io_responder px_io_responder;

typedef struct px_io_responder_config {
	const void *reply;       /* copied */
	size_t reply_len;
	int64_t delay_ns;        /* before answering; 0: at once */
	const char *request_end; /* e.g. "\r\n\r\n"; NULL: first read */
	size_t max_request;      /* longer requests are dropped; 0: 8192 */
} px_io_responder_config;

/*
 * Starts serving on listen_fd (the caller's; see px_io_acceptor_start).
 * Returns 0, -EINVAL, -ENOMEM, or an operation's start error.
 */
int px_io_responder_start(px_io_responder **out, px_io *io,
			  int listen_fd,
			  const px_io_responder_config *cfg);

typedef struct px_io_responder_stats {
	uint64_t accepted; /* connections accepted */
	uint64_t replied;  /* replies sent in full */
	uint64_t dropped;  /* closed without a reply (error, early close) */
	uint64_t peak;     /* most connections open at once */
} px_io_responder_stats;

/* Counters so far. 0 or -EINVAL. */
int px_io_responder_stats_get(const px_io_responder *r,
			      px_io_responder_stats *out);

/*
 * Stops accepting, cancels the connections still open, waits until all are
 * closed and frees the server. Same rules as px_io_acceptor_stop().
 */
void px_io_responder_stop(px_io_responder *r);

#endif /* PX_NETUTIL_H */
