/*
 * parex/ring.h - a lock-free bounded queue of fixed-size slots, in memory
 * the caller provides (shared between processes, or not).
 *
 * Layout is a contract between processes, so, as with DPDK's rte_ring, the
 * caller sizes the memory with px_ring_memsize(), initialises it once with
 * px_ring_init() and, in every other process (or at another address),
 * attaches with px_ring_attach(), which checks magic, version and every
 * header field against the others and the mapping's size. The ring holds no
 * pointers, so each process may map it at a different address; the ring
 * lives as long as its memory.
 *
 * Two kinds of px_ring *:
 *   - the memory itself ((px_ring *)mem after px_ring_init()): the ring's
 *     geometry is read from the shared header on every call, so this trusts
 *     every process that maps the memory (threads of one process, or
 *     processes that trust each other);
 *   - a handle from px_ring_attach(): a private, read-only copy of the
 *     validated geometry plus the ring's address. Free it with
 *     px_ring_detach() (or let it live as long as the process).
 *
 * Trust model (handles): memory shared with another process is input from
 * that process. A peer that writes anything at any time into the ring
 * (buggy, hostile, or killed half-way through a write) can lose, duplicate
 * or garble items, fill or empty the ring, or stall it (blocking calls then
 * wait until their timeout). It can never make a call through a handle read
 * or write outside the ring's memory or the caller's buffers, and never make
 * a non-blocking call block: positions and indices read from shared memory
 * are used only modulo the private capacity, and every retry loop of a try
 * call is bounded (a try call that cannot claim a slot in a bounded number
 * of attempts, i.e. a corrupt ring or pathological contention, answers as
 * if the ring were full or empty). See ipc/README.md.
 *
 * NULL: every call refuses a NULL ring or buffer with -EINVAL; the query
 * functions (is_closed, count, capacity, slot_size) return false or 0, and
 * px_ring_set_spin() and px_ring_detach() do nothing.
 *
 * Capacity means what the caller asked for: a ring of capacity 1000 holds
 * 1000 items (no power of two, no "count - 1").
 *
 * Modes, fixed at init (flags):
 *   PX_RING_MPMC (0)  any number of producers and consumers (Vyukov's bounded
 *                     queue: one sequence number per slot);
 *   PX_RING_SP        at most one producer at a time (no CAS to push);
 *   PX_RING_SC        at most one consumer at a time (no CAS to pop);
 *   PX_RING_SPSC      both: a Lamport ring with cached opposite indices, the
 *                     fastest mode. The caller guarantees the single party;
 *                     the ring does not check it.
 * See ipc/README.md for the algorithm and its memory-order pairings.
 *
 * Operations come in three forms:
 *   try      never block: -EAGAIN when full (push) or empty (pop);
 *   blocking wait up to timeout_ns (PX_FOREVER: no limit; 0: same as try),
 *            then -ETIMEDOUT; spinning briefly (px_ring_set_spin()) and
 *            then parking on a shared futex; a system call happens only when
 *            somebody sleeps;
 *   burst    up to n items at once, publishing the index once per burst.
 *
 * Shutdown: px_ring_close() marks the ring closed and wakes every sleeper.
 * Producers then get -EPIPE; consumers drain what is left and then get
 * PX_EEOF. px_ring_kick() wakes sleepers without closing: each blocking call
 * that was asleep returns -EINTR, so a pool can make its workers look
 * around.
 *
 * A process that dies in the middle of a push or pop in a multi-producer or
 * multi-consumer mode may leave a slot claimed but never completed; the ring
 * then stalls at that slot for everyone on the other side (see
 * ipc/README.md). In PX_RING_SPSC mode a dead peer loses at most the item it
 * was writing or reading; the survivor is never blocked by it. Give each
 * process its own SPSC rings where a worker may crash.
 */
#ifndef PAREX_RING_H
#define PAREX_RING_H

#include <sys/types.h>

#include <parex/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct px_ring px_ring;

/* Ring modes for px_ring_memsize()/px_ring_init(). */
enum {
	PX_RING_MPMC = 0,
	PX_RING_SP = 1u << 0,
	PX_RING_SC = 1u << 1,
	PX_RING_SPSC = PX_RING_SP | PX_RING_SC,
};

/* The memory given to px_ring_init() must be aligned to this. */
#define PX_RING_ALIGN 64

/* Limits: capacity 1 .. PX_RING_CAPACITY_MAX, slot size 1 .. PX_RING_SLOT_MAX. */
#define PX_RING_CAPACITY_MAX (1u << 30)
#define PX_RING_SLOT_MAX (1u << 16)

/*
 * Bytes of memory a ring of capacity items of slot_size bytes needs in mode
 * flags. Returns that size (> 0), -EINVAL for capacity 0, slot size 0 or
 * unknown flags, -E2BIG when capacity or slot size exceed the limits.
 */
PX_API ssize_t px_ring_memsize(uint32_t capacity, uint32_t slot_size,
			       unsigned flags);

/*
 * Initialises a ring in mem (size bytes, at least px_ring_memsize(), aligned
 * to PX_RING_ALIGN). The caller keeps ownership of mem and must not run
 * other ring calls on it during init; (px_ring *)mem is the ring afterwards.
 * Returns 0, -EINVAL (NULL, misaligned, bad arguments as for memsize),
 * -E2BIG, -ENOSPC when size is too small.
 */
PX_API int px_ring_init(void *mem, size_t size, uint32_t capacity,
			uint32_t slot_size, unsigned flags);

/*
 * Checks that mem (size bytes: the mapping's size, an upper bound) holds a
 * ring made by px_ring_init() and stores a handle for it in *out (see
 * "Two kinds" above); the caller owns the handle, mem stays the caller's.
 * Returns 0, -EINVAL (NULL, misaligned), PX_EBADMAGIC, PX_EVERSION,
 * -EBADMSG when the ring's recorded size exceeds size (truncated) or its
 * header is inconsistent (capacity, slot size, stride, mask and mode must
 * agree with each other and with the recorded size), -ENOMEM.
 */
PX_API int px_ring_attach(px_ring **out, void *mem, size_t size);

/*
 * Frees a handle from px_ring_attach(); the ring and its memory are
 * untouched. A NULL r, or r that is the ring's memory itself, is a no-op.
 */
PX_API void px_ring_detach(px_ring *r);

/*
 * Pushes one item (slot_size bytes copied from item) without blocking.
 * Returns 0, -EAGAIN when full (or no slot could be claimed in a bounded
 * number of attempts), -EPIPE when closed, -EINVAL for NULL.
 */
PX_API int px_ring_try_push(px_ring *r, const void *item);

/*
 * Pops one item into item (slot_size bytes) without blocking. Returns 0,
 * -EAGAIN when empty (or no slot could be claimed in a bounded number of
 * attempts), PX_EEOF when closed and empty, -EINVAL for NULL.
 */
PX_API int px_ring_try_pop(px_ring *r, void *item);

/*
 * Pushes one item, waiting up to timeout_ns for room. Returns 0,
 * -ETIMEDOUT, -EPIPE when closed (before or while waiting), -EINTR after
 * px_ring_kick(), -EINVAL for NULL.
 */
PX_API int px_ring_push(px_ring *r, const void *item, int64_t timeout_ns);

/*
 * Pops one item, waiting up to timeout_ns for one. Returns 0, -ETIMEDOUT,
 * PX_EEOF when closed and empty, -EINTR after px_ring_kick().
 */
PX_API int px_ring_pop(px_ring *r, void *item, int64_t timeout_ns);

/*
 * Pushes up to n items (n * slot_size contiguous bytes at items) without
 * blocking, in order. Returns how many were pushed (0 when full or n == 0),
 * -EPIPE when closed.
 */
PX_API int px_ring_try_push_burst(px_ring *r, const void *items, uint32_t n);

/*
 * Pops up to n items into items (room for n * slot_size bytes) without
 * blocking. Returns how many were popped (0 when empty or n == 0), PX_EEOF
 * when closed and empty.
 */
PX_API int px_ring_try_pop_burst(px_ring *r, void *items, uint32_t n);

/*
 * Like the try burst forms, but waits up to timeout_ns until at least one
 * item can move; returns the count (>= 1, or 0 for n == 0), -ETIMEDOUT,
 * -EPIPE / PX_EEOF, or -EINTR as the single-item blocking forms.
 */
PX_API int px_ring_push_burst(px_ring *r, const void *items, uint32_t n,
			      int64_t timeout_ns);
PX_API int px_ring_pop_burst(px_ring *r, void *items, uint32_t n,
			     int64_t timeout_ns);

/*
 * Closes the ring for producers and wakes every sleeper (see the top of this
 * file). Idempotent; cannot be undone. Returns 0, -EINVAL for NULL.
 * In the single-producer modes (PX_RING_SP, PX_RING_SPSC) close from the
 * producer, or once it has stopped pushing: a push racing with a close from
 * another party may succeed after consumers have seen end of stream, and
 * that item is never read. In the multi-producer modes a close from anyone
 * is safe: it is a bit in the tail the producers claim positions from.
 */
PX_API int px_ring_close(px_ring *r);

/* True once px_ring_close() was called. */
PX_API bool px_ring_is_closed(const px_ring *r);

/*
 * Wakes every party asleep in a blocking call on r; each returns -EINTR.
 * Parties not asleep are unaffected. Returns 0, -EINVAL for NULL.
 */
PX_API int px_ring_kick(px_ring *r);

/*
 * Items in the ring now: a snapshot, exact only when nobody pushes or pops
 * concurrently. Never exceeds the capacity.
 */
PX_API uint32_t px_ring_count(const px_ring *r);

/* Capacity and slot size, as given to px_ring_init(). */
PX_API uint32_t px_ring_capacity(const px_ring *r);
PX_API uint32_t px_ring_slot_size(const px_ring *r);

/*
 * Sets how many times a blocking call re-checks the ring (with a CPU pause
 * between checks) before it parks. Shared by every process using the ring;
 * 0 parks at once. The default is PX_RING_SPIN_DEFAULT.
 */
PX_API void px_ring_set_spin(px_ring *r, uint32_t spins);
#define PX_RING_SPIN_DEFAULT 4096u

#ifdef __cplusplus
}
#endif

#endif /* PAREX_RING_H */
