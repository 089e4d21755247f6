/*
 * parex/queue.h - a queue of variable-size byte messages in caller memory,
 * shared between processes or threads: the counterpart of Python's
 * multiprocessing.Queue.
 *
 * A px_queue is a px_ring of 64-byte descriptors plus an arena for payloads.
 * Messages up to PX_QUEUE_INLINE_MAX bytes travel inside their descriptor;
 * larger ones are copied into a block of the arena (a size-class allocator
 * with lock-free free lists, in the same memory). Like the ring, it is sized
 * with px_queue_memsize(), made with px_queue_init() and attached elsewhere
 * with px_queue_attach(); it holds offsets only, never pointers.
 *
 * Order: FIFO per producer. With several consumers, each message goes to
 * exactly one of them.
 *
 * Closing: after px_queue_close(), producers get -EPIPE, and consumers
 * receive what is still queued and then PX_EEOF: the end-of-stream sentinel
 * is built in.
 *
 * A process that dies in the middle of a put or get can lose that message
 * and its arena block (never corrupt others); in a multi-producer or
 * multi-consumer queue it can stall the queue as described in ring.h.
 *
 * Handles and trust: as with rings (see ring.h), px_queue_attach() returns a
 * handle holding a private, validated copy of the queue's geometry; the
 * memory itself used as a px_queue * after px_queue_init() trusts its
 * header. Through a handle, a process sharing the memory that writes
 * anything into it at any time can lose, garble, duplicate or invent
 * messages, use up the arena and stall or empty the queue, but cannot make
 * a call read or write outside the queue's memory or the caller's buffers
 * (a message longer than max_msg, or whose block lies outside the arena, is
 * refused with -EBADMSG), nor make a call with timeout 0 block.
 *
 * NULL: every px_queue_* call refuses a NULL queue or buffer with -EINVAL
 * (the query functions return 0 or false; detach and set_spin do nothing).
 */
#ifndef PAREX_QUEUE_H
#define PAREX_QUEUE_H

#include <sys/types.h>
#include <sys/uio.h>

#include <parex/common.h>
#include <parex/ring.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct px_queue px_queue;

/* Messages up to this size travel inside their descriptor (no arena). */
#define PX_QUEUE_INLINE_MAX 48

/* Largest max_msg accepted (256 MiB). */
#define PX_QUEUE_MSG_MAX ((uint32_t)1 << 28)

typedef struct px_queue_config {
	/* Messages in flight at most (1 .. PX_RING_CAPACITY_MAX). */
	uint32_t capacity;
	/* Largest message in bytes (1 .. PX_QUEUE_MSG_MAX). */
	uint32_t max_msg;
	/*
	 * Arena bytes for messages over PX_QUEUE_INLINE_MAX. 0: enough for
	 * capacity messages of max_msg bytes (never runs out), or none when
	 * max_msg fits inline. Must hold at least one max_msg block. A
	 * smaller arena can make producers wait for space while messages are
	 * in flight, but with none in flight any message fits.
	 */
	uint64_t arena_size;
	/* PX_RING_SP and/or PX_RING_SC, or 0 (many producers and consumers). */
	unsigned flags;
} px_queue_config;

/*
 * Bytes of memory a queue with this configuration needs. Returns that size
 * (> 0), -EINVAL (NULL, capacity or max_msg 0, unknown flags, arena smaller
 * than one max_msg block), -E2BIG (a limit exceeded).
 */
PX_API ssize_t px_queue_memsize(const px_queue_config *cfg);

/*
 * Initialises a queue in mem (size bytes, at least px_queue_memsize(),
 * aligned to PX_RING_ALIGN); the caller keeps mem. Returns 0, the errors of
 * px_queue_memsize(), -EINVAL for NULL or misaligned mem, -ENOSPC when size
 * is too small.
 */
PX_API int px_queue_init(void *mem, size_t size, const px_queue_config *cfg);

/*
 * Checks that mem (size bytes, an upper bound) holds a queue made by
 * px_queue_init() - every header field against the others, the ring inside
 * and size - and stores a handle for it in *out; the caller owns the handle
 * (px_queue_detach()), mem stays the caller's. Returns 0, -EINVAL,
 * PX_EBADMAGIC, PX_EVERSION, -EBADMSG (truncated or inconsistent), -ENOMEM.
 */
PX_API int px_queue_attach(px_queue **out, void *mem, size_t size);

/*
 * Frees a handle from px_queue_attach(); the queue is untouched. NULL, or
 * the queue's memory itself, is a no-op.
 */
PX_API void px_queue_detach(px_queue *q);

/*
 * Puts a copy of len bytes at msg (len may be 0), waiting up to timeout_ns
 * for room in the ring and the arena (0: do not wait). Returns 0, -EINVAL
 * (NULL with len > 0), -EMSGSIZE (len > max_msg), -EAGAIN (timeout 0 and no
 * room), -ETIMEDOUT, -EPIPE (closed), -EINTR (px_queue_kick()).
 */
PX_API int px_queue_put(px_queue *q, const void *msg, size_t len,
			int64_t timeout_ns);

/*
 * Like px_queue_put(), with the message gathered from iovcnt pieces
 * (0 .. 64). Also -EINVAL for a bad iovcnt.
 */
PX_API int px_queue_putv(px_queue *q, const struct iovec *iov, int iovcnt,
			 int64_t timeout_ns);

/*
 * Takes the next message, copying it into buf (cap bytes, at least the
 * queue's max_msg so that any message fits), waiting up to timeout_ns
 * (0: do not wait). Returns the message length (>= 0), -EINVAL (NULL buf or
 * cap < max_msg), -EAGAIN (timeout 0 and empty), -ETIMEDOUT, PX_EEOF (closed
 * and drained), -EINTR (px_queue_kick()), -EBADMSG (the next descriptor was
 * corrupt - longer than max_msg or its block, or a block outside the arena -
 * and was dropped; nothing was written to buf).
 */
PX_API ssize_t px_queue_get(px_queue *q, void *buf, size_t cap,
			    int64_t timeout_ns);

/*
 * Closes the queue: producers get -EPIPE from now on, sleepers wake,
 * consumers drain and then get PX_EEOF. Idempotent. Returns 0, -EINVAL.
 */
PX_API int px_queue_close(px_queue *q);

/* True once px_queue_close() was called. */
PX_API bool px_queue_is_closed(const px_queue *q);

/* Wakes every sleeper in put/get; each returns -EINTR. Returns 0, -EINVAL. */
PX_API int px_queue_kick(px_queue *q);

/* Messages queued now (a snapshot). */
PX_API uint32_t px_queue_count(const px_queue *q);

/* The configured max_msg. */
PX_API uint32_t px_queue_max_msg(const px_queue *q);

/* Blocking calls spin this many checks before parking (see ring.h). */
PX_API void px_queue_set_spin(px_queue *q, uint32_t spins);

#ifdef __cplusplus
}
#endif

#endif /* PAREX_QUEUE_H */
