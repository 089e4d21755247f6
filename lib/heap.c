/*
 * lib/heap.c - px_executor_alloc()/free() for the in-process backends
 * (inline, thread): plain memory, with foreign pointers ignored.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "executor_internal.h"

/*
 * Plain-memory allocator for the in-process backends.
 *
 * px_executor_free() takes whatever the program hands it. The process
 * backend's arena recognises its own blocks and ignores anything else; so
 * that every backend behaves the same, the heap backends record each live
 * block (and its executor) in a process-wide open-addressing set, and free
 * only what is recorded for that executor: a stack address, an interior
 * pointer, a block of another executor or one freed already is ignored
 * instead of reaching free(). Linear probing with backward-shift deletion;
 * one mutex (allocation here is for large shared data, not a hot path).
 */
struct px__heap_ent {
	void *p;
	px_executor *ex;
};

static struct {
	pthread_mutex_t lock;
	struct px__heap_ent *tab;
	size_t cap, n; /* cap: a power of two, or 0 */
} px__heap = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Fork: a child must not inherit the lock held, nor the set half-changed,
 * by another thread of its parent. */
static void px__heap_lock(void)
{
	pthread_mutex_lock(&px__heap.lock);
}

static void px__heap_unlock(void)
{
	pthread_mutex_unlock(&px__heap.lock);
}

static void px__heap_atfork(void)
{
	pthread_atfork(px__heap_lock, px__heap_unlock, px__heap_unlock);
}

static pthread_once_t px__heap_once = PTHREAD_ONCE_INIT;

static size_t px__heap_slot(const void *p, size_t cap)
{
	/* Blocks are 64-byte aligned: drop the zero bits, then mix. */
	uint64_t h = ((uint64_t)(uintptr_t)p >> 6) * UINT64_C(0x9e3779b97f4a7c15);
	return (size_t)(h >> 32) & (cap - 1);
}

/* Lock held. Returns the index of p, or cap when absent. */
static size_t px__heap_find(const void *p)
{
	if (!px__heap.cap)
		return 0;
	size_t cap = px__heap.cap;
	for (size_t i = px__heap_slot(p, cap);; i = (i + 1) & (cap - 1)) {
		if (px__heap.tab[i].p == p)
			return i;
		if (!px__heap.tab[i].p)
			return cap;
	}
}

/* Lock held. Returns 0 or -ENOMEM. */
static int px__heap_insert(void *p, px_executor *ex)
{
	if ((px__heap.n + 1) * 2 > px__heap.cap) {
		size_t ncap = px__heap.cap ? px__heap.cap * 2 : 64;
		struct px__heap_ent *nt = calloc(ncap, sizeof *nt);
		if (!nt)
			return -ENOMEM;
		for (size_t i = 0; i < px__heap.cap; i++) {
			if (!px__heap.tab[i].p)
				continue;
			size_t j = px__heap_slot(px__heap.tab[i].p, ncap);
			while (nt[j].p)
				j = (j + 1) & (ncap - 1);
			nt[j] = px__heap.tab[i];
		}
		free(px__heap.tab);
		px__heap.tab = nt;
		px__heap.cap = ncap;
	}
	size_t i = px__heap_slot(p, px__heap.cap);
	while (px__heap.tab[i].p)
		i = (i + 1) & (px__heap.cap - 1);
	px__heap.tab[i] = (struct px__heap_ent){p, ex};
	px__heap.n++;
	return 0;
}

/* Lock held; i holds an entry. Backward-shift deletion keeps every probe
 * chain unbroken without tombstones. */
static void px__heap_remove(size_t i)
{
	size_t cap = px__heap.cap, mask = cap - 1;
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!px__heap.tab[j].p)
			break;
		size_t home = px__heap_slot(px__heap.tab[j].p, cap);
		/* Move j into the hole at i unless its home lies in (i, j]. */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			px__heap.tab[i] = px__heap.tab[j];
			i = j;
		}
	}
	px__heap.tab[i] = (struct px__heap_ent){NULL, NULL};
	px__heap.n--;
}

int px__heap_alloc(px_executor *ex, size_t size, void **out)
{
	size_t rounded = (size + 63) & ~(size_t)63;
	if (rounded < size)
		return -ENOMEM;
	void *p = aligned_alloc(64, rounded);
	if (!p)
		return -ENOMEM;
	memset(p, 0, rounded);
	pthread_once(&px__heap_once, px__heap_atfork);
	px__heap_lock();
	int r = px__heap_insert(p, ex);
	px__heap_unlock();
	if (r < 0) {
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

void px__heap_free(px_executor *ex, void *p)
{
	px__heap_lock();
	size_t i = px__heap_find(p);
	bool ours = i < px__heap.cap && px__heap.tab[i].ex == ex;
	if (ours)
		px__heap_remove(i);
	px__heap_unlock();
	if (ours)
		free(p);
}
