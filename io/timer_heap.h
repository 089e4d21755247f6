/*
 * io/timer_heap.h - a binary min-heap of (deadline, item) pairs: the threads
 * backend's sleeps and operation deadlines. Not thread-safe (the caller's
 * lock covers it); it holds no references. Private.
 */
#ifndef PX_IO_TIMER_HEAP_H
#define PX_IO_TIMER_HEAP_H

#include <stddef.h>
#include <stdint.h>

struct px__io_tent {
	int64_t when;
	void *item;
};

struct px__io_theap {
	struct px__io_tent *v; /* v[0] is the earliest */
	size_t n, cap;
};

/* Adds item due at `when`. 0 or -ENOMEM. */
int px__io_theap_push(struct px__io_theap *h, int64_t when, void *item);

/* Removes and returns the earliest item; the heap must not be empty. */
void *px__io_theap_pop(struct px__io_theap *h);

/* Frees the array (the items are the caller's). */
void px__io_theap_free(struct px__io_theap *h);

#endif /* PX_IO_TIMER_HEAP_H */
