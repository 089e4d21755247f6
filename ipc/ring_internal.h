/*
 * ipc/ring_internal.h - the ring's shared layout, for ring.c and queue.c.
 * Private: never installed. Changing it means bumping PX__RING_VERSION.
 */
#ifndef PX_RING_INTERNAL_H
#define PX_RING_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include <parex/ring.h>

#define PX__RING_MAGIC UINT64_C(0x00474e4952585850) /* "PXXRING" */
#define PX__RING_VERSION 2u
/* First word of a handle from px_ring_attach() (never of a shared ring). */
#define PX__RING_HMAGIC UINT64_C(0x4c444e4852585850) /* "PXRHNDL" */

/* Set in tail by px_ring_close() in multi-producer mode (see ring.c). */
#define PX__RING_CLOSED_BIT (UINT64_C(1) << 63)

/* 128 bytes: two cache lines, so the adjacent-line prefetcher does not
 * couple the producer's and the consumer's lines either. */
#define PX__RING_LINE 128

/* A ring's geometry: fixed at init, validated against each other and the
 * mapping by px_ring_attach(), which keeps a private copy of it. */
struct px__ring_geo {
	uint32_t flags;
	uint32_t capacity;
	uint32_t slot_size;
	uint32_t stride;     /* bytes between items in the slot array */
	uint32_t mask;       /* capacity - 1 when a power of two */
	uint32_t pow2;
};

/* One side's parking place: sleepers wait on seq; waiters counts them. */
struct px__ring_wait {
	_Atomic uint32_t seq;
	_Atomic uint32_t waiters;
};

struct px_ring {
	/* Read-mostly: written at init, then only by close/kick/set_spin. */
	_Alignas(PX__RING_LINE) struct {
		_Atomic uint64_t magic;
		uint32_t version;
		uint32_t reserved;
		uint64_t memsize;
		struct px__ring_geo geo;
		_Atomic uint32_t spin;
		_Atomic uint32_t closed;
		_Atomic uint32_t kick_gen;
	} ro;
	/* Producer side: written by producers only. */
	_Alignas(PX__RING_LINE) struct {
		_Atomic uint64_t tail;
		uint64_t cached_head; /* SPSC: the producer's copy of head */
	} prod;
	/* Consumer side: written by consumers only. */
	_Alignas(PX__RING_LINE) struct {
		_Atomic uint64_t head;
		uint64_t cached_tail; /* SPSC: the consumer's copy of tail */
	} cons;
	/* Consumers park here waiting for items ("not empty"). */
	struct px__ring_wait _Alignas(PX__RING_LINE) ne;
	/* Producers park here waiting for room ("not full"). */
	struct px__ring_wait _Alignas(PX__RING_LINE) nf;
	unsigned char _Alignas(PX__RING_LINE) slots[];
};

/*
 * What px_ring_attach() hands out: a private, read-only page holding the
 * validated geometry and the shared ring's address. Every operation takes
 * its geometry from here, so a peer that rewrites the shared header after
 * attach cannot move an index or a length outside the ring. A px_ring *
 * that is the shared memory itself (px_ring_init()'s memory used directly)
 * reads the geometry from the shared header and so trusts every peer.
 * hmagic sits where the shared header's magic does.
 */
struct px__ring_handle {
	uint64_t hmagic; /* PX__RING_HMAGIC */
	struct px_ring *shm;
	struct px__ring_geo geo;
};

/* The shared ring behind r and the geometry to use with it. */
static inline struct px_ring *px__ring_resolve(const struct px_ring *r,
					       const struct px__ring_geo **g)
{
	const struct px__ring_handle *h = (const void *)r;
	if (__atomic_load_n(&h->hmagic, __ATOMIC_RELAXED) == PX__RING_HMAGIC) {
		*g = &h->geo;
		return h->shm;
	}
	*g = &r->ro.geo;
	return (struct px_ring *)r;
}

/* Validates the ring header at mem (size bytes) and fills *geo from it.
 * Returns 0, PX_EBADMAGIC, PX_EVERSION or -EBADMSG. Shared by attach and
 * px_queue_attach(). */
int px__ring_check(const void *mem, size_t size, struct px__ring_geo *geo);

/* Makes the handle for a validated ring in caller-provided storage. */
void px__ring_handle_fill(struct px__ring_handle *h, struct px_ring *shm,
			  const struct px__ring_geo *geo);

/* Handle pages (ring.c): a private page, sealing it read-only, unmapping. */
void *px__handle_page(void);
void px__handle_seal(void *page);
void px__handle_unmap(void *page);

#endif /* PX_RING_INTERNAL_H */
