/*
 * procpool/arena.h - the process pool's shared-memory allocator. Private:
 * never installed.
 *
 * A first-fit allocator with boundary tags and size-class bins over a fixed
 * region of the pool's shared mapping, used only by the parent process
 * (px_executor_alloc and large task arguments), so its lock is a plain
 * process-private mutex and a worker that dies can never leave it
 * inconsistent. Blocks are multiples of 64 bytes and 64-byte aligned.
 */
#ifndef PX_PROCPOOL_ARENA_H
#define PX_PROCPOOL_ARENA_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PX__ARENA_BINS 40

struct px__arena {
	pthread_mutex_t lock;
	unsigned char *base;
	size_t size;
	size_t used;                  /* bytes in allocated blocks */
	void *bins[PX__ARENA_BINS];   /* free lists by floor(log2(size)) */
};

/* Sets up the arena over [base, base + size); size is rounded down to 64. */
void px__arena_init(struct px__arena *a, void *base, size_t size);

/* Frees the arena's lock (the memory belongs to the caller). */
void px__arena_fini(struct px__arena *a);

/* size bytes, 64-byte aligned, not zeroed; NULL when no block fits. */
void *px__arena_alloc(struct px__arena *a, size_t size);

/* Frees a block from px__arena_alloc(). NULL, pointers that are not the
 * start of a block in use (a second free included, as long as the block's
 * header is intact) are ignored. */
void px__arena_free(struct px__arena *a, void *p);

/* True if p points into the arena's region. */
bool px__arena_owns(const struct px__arena *a, const void *p);

#endif /* PX_PROCPOOL_ARENA_H */
