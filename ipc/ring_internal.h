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
#define PX__RING_VERSION 1u

/* Set in tail by px_ring_close() in multi-producer mode (see ring.c). */
#define PX__RING_CLOSED_BIT (UINT64_C(1) << 63)

/* 128 bytes: two cache lines, so the adjacent-line prefetcher does not
 * couple the producer's and the consumer's lines either. */
#define PX__RING_LINE 128

/* One side's parking place: sleepers wait on seq; waiters counts them. */
struct px__ring_wait {
	_Atomic uint32_t seq;
	_Atomic uint32_t waiters;
};

struct px_ring {
	/* Read-mostly: written at init, then only by close/kick/set_spin. */
	struct {
		_Atomic uint64_t magic;
		uint32_t version;
		uint32_t flags;
		uint64_t memsize;
		uint32_t capacity;
		uint32_t slot_size;
		uint32_t stride;     /* bytes between items in the slot array */
		uint32_t mask;       /* capacity - 1 when a power of two */
		uint32_t pow2;
		_Atomic uint32_t spin;
		_Atomic uint32_t closed;
		_Atomic uint32_t kick_gen;
	} _Alignas(PX__RING_LINE) ro;
	/* Producer side: written by producers only. */
	struct {
		_Atomic uint64_t tail;
		uint64_t cached_head; /* SPSC: the producer's copy of head */
	} _Alignas(PX__RING_LINE) prod;
	/* Consumer side: written by consumers only. */
	struct {
		_Atomic uint64_t head;
		uint64_t cached_tail; /* SPSC: the consumer's copy of tail */
	} _Alignas(PX__RING_LINE) cons;
	/* Consumers park here waiting for items ("not empty"). */
	struct px__ring_wait _Alignas(PX__RING_LINE) ne;
	/* Producers park here waiting for room ("not full"). */
	struct px__ring_wait _Alignas(PX__RING_LINE) nf;
	unsigned char _Alignas(PX__RING_LINE) slots[];
};

#endif /* PX_RING_INTERNAL_H */
