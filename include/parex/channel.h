/*
 * parex/channel.h - a completion channel: futures complete into one file
 * descriptor that an event loop watches.
 *
 * An event loop (epoll, libuv, GLib, asyncio) must not block in
 * px_wait(). Instead it attaches futures to a channel and watches the
 * channel's file descriptor, an eventfd, for readability. When an attached
 * future completes (from any backend: inline, thread, process, or the I/O
 * layer), the channel puts an entry on its ready list; the loop then takes
 * finished entries, many at a time, with px_channel_drain().
 *
 * Ownership:
 *  - px_channel_add() takes a reference of its own on the future, so the
 *    caller may release its reference at once ("submit, attach, forget").
 *  - px_channel_drain() hands that reference to the caller with each entry:
 *    call px_future_release() on every drained future.
 *  - px_channel_close() drops the references of entries not yet drained,
 *    whether their futures finished or not, and detaches those still
 *    pending: completing them later touches no channel memory.
 *
 * Each attachment yields exactly one entry. A future may be attached to
 * several channels, or to one channel several times: each attachment takes
 * its own reference and yields its own entry. A future that has already
 * finished is ready at once.
 *
 * Batching: a completion pushes its entry on a lock-free list; only the
 * completion that finds the list empty writes to the eventfd, so a burst of
 * completions costs one write and one read however large it is.
 *
 * Threads: every function may be called from any thread, several at once
 * (two threads may drain one channel: each entry goes to one of them), and
 * from a done callback (px_future_on_done). Only px_channel_close() must not
 * run at the same time as another call on the same channel, and nothing may
 * use the channel after it.
 * Lock order: a channel's lock is a leaf (no future's lock and no user code
 * runs under it).
 */
#ifndef PAREX_CHANNEL_H
#define PAREX_CHANNEL_H

#include <parex/common.h>
#include <parex/future.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct px_channel px_channel;

/* One drained entry: a finished future and the pointer attached with it. */
typedef struct px_channel_event {
	px_future *future; /* finished; one reference, now the caller's */
	void *user;        /* as passed to px_channel_add() */
} px_channel_event;

/*
 * Creates an empty channel with its eventfd (non-blocking, close-on-exec).
 * The caller owns the channel; close it with px_channel_close(). Returns 0,
 * -EINVAL for NULL, -ENOMEM, or eventfd(2)'s error (-EMFILE, -ENFILE).
 */
PX_API int px_channel_create(px_channel **out);

/*
 * The channel's file descriptor, to watch for readability (EPOLLIN,
 * POLLIN, UV_READABLE, G_IO_IN; level-triggered). It is readable while
 * finished entries wait to be drained, and may now and then be readable with
 * nothing to drain (px_channel_drain() then returns 0 and clears it). The fd
 * belongs to the channel: do not read, write or close it. Returns the fd, or
 * -EINVAL for NULL.
 */
PX_API int px_channel_fd(const px_channel *ch);

/*
 * Attaches f to the channel with a user pointer (any value, NULL too, handed
 * back with f by px_channel_drain()). The channel takes its own reference on
 * f; the caller keeps its own. When f finishes (done, failed or cancelled),
 * or at once if it already has, its entry becomes ready and the fd readable.
 * Returns 0, -EINVAL for a NULL channel or future, -ENOMEM.
 */
PX_API int px_channel_add(px_channel *ch, px_future *f, void *user);

/*
 * Moves up to n ready entries into out[0..n), oldest completion first,
 * without waiting. Each entry's future is finished, and its reference now
 * belongs to the caller (release it). Returns the number of entries stored
 * (0 when none is ready; at most INT_MAX), or -EINVAL for a NULL channel, or
 * a NULL out with n > 0. When it returns fewer than n, every entry ready at
 * the time was taken; when it returns n and entries remain, the fd stays
 * readable, so a loop may take a fixed batch per wake-up.
 */
PX_API int px_channel_drain(px_channel *ch, px_channel_event *out, size_t n);

/*
 * The number of attachments not yet drained: pending futures plus ready
 * entries. A loop that attached everything it will wait for can stop when
 * this is 0. Returns 0 for NULL.
 */
PX_API size_t px_channel_count(const px_channel *ch);

/*
 * Closes the channel: detaches every attachment not yet drained and drops
 * the channel's reference on its future (pending futures keep running and
 * complete normally for their other holders), closes the fd and frees the
 * channel. It may wait a moment for a completion that is storing an entry in
 * another thread. No other call on the channel may run at the same time or
 * follow. May be called from a done callback. Accepts NULL.
 */
PX_API void px_channel_close(px_channel *ch);

#ifdef __cplusplus
}
#endif

#endif /* PAREX_CHANNEL_H */
