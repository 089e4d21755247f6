/*
 * procpool/arena.c - the process pool's shared-memory allocator (see
 * arena.h). The memory is shared with the workers; the bookkeeping is
 * touched only by the parent, under a private mutex.
 *
 * Each block starts with a 64-byte header (so the payload stays 64-byte
 * aligned) holding its size, the size of the block before it (boundary tags,
 * for coalescing in O(1)) and, while free, its free-list links. Free blocks
 * sit in bins by floor(log2(size)); an allocation scans its own bin first fit
 * and otherwise takes the first block of a larger bin, splitting off the
 * rest.
 */
#include <errno.h>
#include <string.h>

#include "arena.h"

#define HDR 64u
#define MIN_BLOCK (2 * HDR)
#define USED 1u

struct blk {
	uint64_t size;      /* whole block, header included; bit 0: in use */
	uint64_t prev_size; /* size of the block before it; 0 for the first */
	struct blk *next;   /* free list, while free */
	struct blk *prev;
};

static inline uint64_t bsize(const struct blk *b)
{
	return b->size & ~(uint64_t)USED;
}

static inline int bin_of(uint64_t size)
{
	int b = 63 - __builtin_clzll(size);
	return b >= PX__ARENA_BINS ? PX__ARENA_BINS - 1 : b;
}

static struct blk *next_blk(struct px__arena *a, struct blk *b)
{
	unsigned char *n = (unsigned char *)b + bsize(b);
	return n < a->base + a->size ? (struct blk *)n : NULL;
}

static void bin_insert(struct px__arena *a, struct blk *b)
{
	int i = bin_of(bsize(b));
	b->prev = NULL;
	b->next = a->bins[i];
	if (b->next)
		b->next->prev = b;
	a->bins[i] = b;
}

static void bin_remove(struct px__arena *a, struct blk *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		a->bins[bin_of(bsize(b))] = b->next;
	if (b->next)
		b->next->prev = b->prev;
}

void px__arena_init(struct px__arena *a, void *base, size_t size)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	a->base = base;
	a->size = size & ~(size_t)(HDR - 1);
	if (a->size < MIN_BLOCK) {
		a->size = 0;
		return;
	}
	struct blk *b = (struct blk *)a->base;
	b->size = a->size;
	b->prev_size = 0;
	bin_insert(a, b);
}

void px__arena_fini(struct px__arena *a)
{
	pthread_mutex_destroy(&a->lock);
}

bool px__arena_owns(const struct px__arena *a, const void *p)
{
	const unsigned char *c = p;
	return c >= a->base && c < a->base + a->size;
}

void *px__arena_alloc(struct px__arena *a, size_t size)
{
	if (size > a->size)
		return NULL;
	uint64_t need = ((uint64_t)size + HDR + HDR - 1) & ~(uint64_t)(HDR - 1);
	if (need < MIN_BLOCK)
		need = MIN_BLOCK;
	pthread_mutex_lock(&a->lock);
	struct blk *b = NULL;
	for (int i = bin_of(need); i < PX__ARENA_BINS && !b; i++) {
		for (struct blk *c = a->bins[i]; c; c = c->next)
			if (bsize(c) >= need) {
				b = c;
				break;
			}
	}
	if (!b) {
		pthread_mutex_unlock(&a->lock);
		return NULL;
	}
	bin_remove(a, b);
	uint64_t have = bsize(b);
	if (have - need >= MIN_BLOCK) {
		struct blk *rest = (struct blk *)((unsigned char *)b + need);
		rest->size = have - need;
		rest->prev_size = need;
		struct blk *after = next_blk(a, rest);
		if (after)
			after->prev_size = rest->size;
		bin_insert(a, rest);
		have = need;
	}
	b->size = have | USED;
	a->used += have;
	pthread_mutex_unlock(&a->lock);
	return (unsigned char *)b + HDR;
}

/*
 * Whether p is the payload of a block in use: px_executor_free() passes
 * whatever the program hands it, and a pointer into the middle of a block,
 * or a block freed already, would otherwise be taken at its word (a
 * "header" made of payload bytes) and wreck the free lists. Lock held.
 */
static bool is_live_block(const struct px__arena *a, const void *p)
{
	const unsigned char *c = p;
	if (c < a->base + HDR || c >= a->base + a->size ||
	    (size_t)(c - a->base) % HDR)
		return false;
	const struct blk *b = (const struct blk *)(c - HDR);
	uint64_t sz = bsize(b);
	return (b->size & USED) && sz >= MIN_BLOCK && sz % HDR == 0 &&
	       sz <= (uint64_t)(a->base + a->size - (const unsigned char *)b);
}

void px__arena_free(struct px__arena *a, void *p)
{
	if (!p)
		return;
	struct blk *b = (struct blk *)((unsigned char *)p - HDR);
	pthread_mutex_lock(&a->lock);
	if (!is_live_block(a, p)) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	uint64_t sz = bsize(b);
	a->used -= sz;
	b->size = sz;
	struct blk *n = next_blk(a, b);
	if (n && !(n->size & USED)) {
		bin_remove(a, n);
		b->size += bsize(n);
	}
	if (b->prev_size) {
		struct blk *pv = (struct blk *)((unsigned char *)b - b->prev_size);
		if (!(pv->size & USED)) {
			bin_remove(a, pv);
			pv->size += b->size;
			b = pv;
		}
	}
	n = next_blk(a, b);
	if (n)
		n->prev_size = b->size;
	bin_insert(a, b);
	pthread_mutex_unlock(&a->lock);
}
