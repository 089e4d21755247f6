/*
 * lib/gil.h - GIL emulation (thread:gil=1) and the blocking sections every
 * parex wait passes through. Private: never installed.
 *
 * Who calls what: the thread pool creates a GIL per pool, binds it to each
 * worker (px__gil_bind_thread) and holds it while a task computes; every
 * parex call that may block (future waits, px_wait, as-completed, a full
 * thread-pool queue, px_task_sleep and px_task_blocking_begin, the I/O
 * layer's waits) brackets the wait with px__blocking_enter() and
 * px__blocking_leave(), as CPython drops the GIL around blocking calls.
 */
#ifndef PX_GIL_H
#define PX_GIL_H

struct px__gil;

/* A GIL (an unlocked mutex), or NULL on ENOMEM. */
struct px__gil *px__gil_create(void);

/* Frees g (not held by anyone). Accepts NULL. */
void px__gil_destroy(struct px__gil *g);

/* Makes g the GIL of the calling thread (a GIL-mode pool worker); NULL
 * unbinds. */
void px__gil_bind_thread(struct px__gil *g);

/* Takes and drops g in the calling thread, which must be bound to it. */
void px__gil_acquire(struct px__gil *g);
void px__gil_release(struct px__gil *g);

/*
 * Blocking sections: px__blocking_enter() runs the thread's block hook,
 * then releases the GIL if the calling thread holds one, and returns a
 * token (NULL if nothing was released) that px__blocking_leave() uses to
 * take it back.
 */
void *px__blocking_enter(void);
void px__blocking_leave(void *token);

/*
 * A per-thread hook px__blocking_enter() runs first, before releasing
 * anything: the thread pool uses it so that a worker about to block runs the
 * tasks it has claimed but not started, which would otherwise wait behind
 * it (and could be what it waits for). NULL clears it.
 */
void px__set_block_hook(void (*fn)(void *arg), void *arg);

#endif /* PX_GIL_H */
