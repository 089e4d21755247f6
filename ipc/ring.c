/*
 * ipc/ring.c - px_ring's operations: a bounded lock-free queue of
 * fixed-size slots in caller memory (its layout, init and attach are in
 * ring_layout.c). See include/parex/ring.h for the contract and
 * ipc/README.md for the design; the memory-order pairings are named at each
 * atomic below.
 *
 * Two algorithms share one header layout (ring_internal.h):
 *
 *  - PX_RING_SPSC: Lamport's ring. The producer owns tail, the consumer owns
 *    head; each keeps a cached copy of the other's index in its own cache
 *    line and re-reads the real one only when the copy says full / empty, so
 *    in steady state neither side touches the other's line per item. Burst
 *    operations publish the index once per burst.
 *
 *  - every other mode: Vyukov's bounded MPMC queue. Each slot carries a
 *    sequence number: seq == 2 * pos means free for the producer of
 *    position pos, seq == 2 * pos + 1 means filled for the consumer of pos,
 *    and the consumer sets seq = 2 * (pos + capacity) to hand the slot to
 *    the next lap. (Vyukov uses pos, pos + 1, pos + capacity; doubling lets
 *    a ring of capacity 1 tell "filled at pos" from "free for pos + 1".)
 *    Producers claim positions with a CAS on tail, consumers with a CAS on
 *    head (a plain store in SP / SC mode). Neither side reads the other's
 *    index on the fast path, only the slot's sequence word, so 1P/1C costs
 *    no index ping-pong (rte_ring's MPMC mode reads the opposite index on
 *    every operation).
 *
 * Positions are free-running 64-bit counters (they never wrap in practice),
 * so any capacity works: the slot is pos & mask for powers of two and
 * pos % capacity otherwise, and a ring of capacity N holds N items.
 *
 * Blocking: a call first spins (px_ring_set_spin() re-checks, none on a
 * machine with one CPU), then parks. A sleeper raises a waiter count,
 * reads the futex word, re-checks the ring and sleeps on the word; a party
 * that makes progress for the other side publishes it, passes a compiler
 * barrier (a seq_cst fence where membarrier is unavailable) and only if the
 * waiter count is non-zero bumps the word and calls FUTEX_WAKE. No system
 * call happens while nobody sleeps.
 *
 * Why no wake-up is lost (the Dekker pair; ipc_util.h has the details):
 *
 *   waker W:   S_W: store progress (tail, head or a sequence word)
 *              compiler barrier
 *              L_W: load waiters           -> 0: return, else wake
 *   sleeper S: R_S: fetch_add(waiters, 1)  (seq_cst, a locked RMW)
 *              loop: v = seq; L_S: re-check the ring; sleep on seq != v
 *
 * On x86-TSO the only reordering is a store passing a later load, so W may
 * execute L_W while S_W still sits in its store buffer. If L_W reads R_S's
 * increment, W wakes S (the seq bump makes a sleep on the old v return at
 * once). Otherwise L_W came before R_S in the count's modification order,
 * and S_W is either visible to L_S (S sees the progress) or still buffered
 * on W's CPU. That last case is the race: S's re-check misses the item and
 * W misses S. membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which S calls
 * after R_S, makes every CPU running a registered process execute a full
 * barrier before it returns (a CPU running something else passed one when
 * it switched away from W), so after it every S_W that W executed before
 * that barrier is visible to S's next re-check, and every L_W that W
 * executes after it sees R_S (R_S completed before the call). S calls it
 * PX__PARK_BARRIER_NS after R_S, not at once (px__park_sleep()): until then
 * it sleeps with that bound, so a wake-up missed in the race is late by at
 * most that much, never lost, and a sleeper woken sooner, the usual case,
 * never pays for the call (an interrupt to every CPU running a registered
 * process, very dear in a virtual machine). Where membarrier is missing,
 * wakers fence (a full StoreLoad barrier between S_W and L_W, so L_W sees
 * R_S or L_S sees S_W: the textbook Dekker pair), and a sleeper fences and
 * sleeps in bounded steps, since wakers in other processes may still be
 * registered and not fence. Under TSan, L_W is a seq_cst RMW, which reads
 * the latest value of the count and so cannot miss R_S if it comes after it.
 *
 * The same holds for the Vyukov modes and for both sides (producers waiting
 * for room park on nf, consumers waiting for items on ne), and for the
 * queue's and sync.c's sleepers, which share ipc_util.h's helpers.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "ipc_util.h"
#include "ring_internal.h"

/*
 * Trust: everything in the shared ring is writable by every process that
 * maps it. Geometry (g) comes from the caller's handle (a private copy
 * validated at attach); positions, cached indices and sequence words come
 * from shared memory and are only ever used modulo the private capacity, or
 * compared: a corrupt value can misdeliver items but never move an access
 * outside the slot array or the caller's buffer. Every retry loop of a
 * non-blocking call is bounded by PX__RING_RETRIES.
 */
#define PX__RING_RETRIES 4096

static inline unsigned char *px__spsc_slot(px_ring *r, const struct px__ring_geo *g,
					   uint64_t idx)
{
	return r->slots + idx * g->stride;
}

/* Fixed-size copies for the common item sizes: a memcpy call costs more
 * than the copy itself. */
static inline void px__copy(void *dst, const void *src, uint32_t n)
{
	switch (n) {
	case 8:
		memcpy(dst, src, 8);
		break;
	case 16:
		memcpy(dst, src, 16);
		break;
	case 32:
		memcpy(dst, src, 32);
		break;
	case 64:
		memcpy(dst, src, 64);
		break;
	default:
		memcpy(dst, src, n);
	}
}

/*
 * Wakes up to n sleepers of w if there are any. px__waiters_seen() pairs
 * with px__park_begin() in px__ring_block(): it orders our publication
 * (the index or sequence store before this call) before our read of the
 * waiter count, as the sleeper orders its registration before its re-check
 * of the ring (see ipc_util.h).
 */
static inline void px__ring_wake(struct px__ring_wait *w, uint32_t n)
{
	if (px__waiters_seen(&w->waiters) == 0)
		return;
	/* Release: pairs with the sleeper's acquire load of seq, so a sleeper
	 * that reads the new value also sees what we published. */
	atomic_fetch_add_explicit(&w->seq, 1, memory_order_release);
	px__futex_wake_shared(&w->seq, n > INT_MAX ? INT_MAX : (int)n);
}

/*
 * The Vyukov modes' wake: as px__ring_wake(), but every sleeper is woken
 * when the slot after ours (next) is already ready for the side we wake
 * (its sequence word equals ready).
 *
 * Why: with several producers, position p + 1 can be published while p is
 * still being written. The sleeper that p + 1's wake reaches finds p not
 * ready (consumers take positions in order) and parks again: that wake is
 * spent. When p is published, waking only one sleeper would leave p + 1
 * ready beside a sleeping consumer, possibly for ever. The same holds for
 * consumers releasing slots out of order to sleeping producers. So a party
 * whose successor slot is already ready wakes everyone.
 *
 * Acq_rel on the seq bump: acquire pairs with the release bump of the waker
 * whose wake was spent, which comes before ours in seq's modification order
 * (the spent sleeper read seq after it, and did not see our publication, so
 * our bump is later); its publication of next is then visible to our load.
 * Relaxed load of next: only its value matters here, the items it guards
 * are read by whoever takes them, through their own acquire.
 */
static inline void px__ring_wake_vy(px_ring *r, const struct px__ring_geo *g,
				    struct px__ring_wait *w, uint32_t n,
				    uint64_t next, uint64_t ready)
{
	if (px__waiters_seen(&w->waiters) == 0)
		return;
	atomic_fetch_add_explicit(&w->seq, 1, memory_order_acq_rel);
	if (atomic_load_explicit(px__entry_seq(r, g, next), memory_order_relaxed) == ready)
		n = INT_MAX;
	px__futex_wake_shared(&w->seq, n > INT_MAX ? INT_MAX : (int)n);
}

/* ---- SPSC: Lamport ring with cached indices --------------------------- */

/* m <= capacity (the callers bound it), so the copies stay in the ring. */
static void px__spsc_copy_in(px_ring *r, const struct px__ring_geo *g, uint64_t pos,
			     const unsigned char *src, uint32_t m)
{
	uint32_t cap = g->capacity, ss = g->slot_size, st = g->stride;
	uint64_t idx = px__idx(g, pos);
	if (ss == st) {
		uint64_t first = cap - idx < m ? cap - idx : m;
		if (m == 1) {
			px__copy(px__spsc_slot(r, g, idx), src, ss);
			return;
		}
		memcpy(px__spsc_slot(r, g, idx), src, first * ss);
		if (first < m)
			memcpy(px__spsc_slot(r, g, 0), src + first * ss, (m - first) * ss);
		return;
	}
	for (uint32_t k = 0; k < m; k++) {
		memcpy(px__spsc_slot(r, g, idx), src + (size_t)k * ss, ss);
		if (++idx == cap)
			idx = 0;
	}
}

static void px__spsc_copy_out(px_ring *r, const struct px__ring_geo *g, uint64_t pos,
			      unsigned char *dst, uint32_t m)
{
	uint32_t cap = g->capacity, ss = g->slot_size, st = g->stride;
	uint64_t idx = px__idx(g, pos);
	if (ss == st) {
		uint64_t first = cap - idx < m ? cap - idx : m;
		if (m == 1) {
			px__copy(dst, px__spsc_slot(r, g, idx), ss);
			return;
		}
		memcpy(dst, px__spsc_slot(r, g, idx), first * ss);
		if (first < m)
			memcpy(dst + first * ss, px__spsc_slot(r, g, 0), (m - first) * ss);
		return;
	}
	for (uint32_t k = 0; k < m; k++) {
		memcpy(dst + (size_t)k * ss, px__spsc_slot(r, g, idx), ss);
		if (++idx == cap)
			idx = 0;
	}
}

static int px__spsc_push(px_ring *r, const struct px__ring_geo *g, const void *items,
			 uint32_t n)
{
	/* Relaxed: tail is ours, nobody else writes it. */
	uint64_t t = atomic_load_explicit(&r->prod.tail, memory_order_relaxed);
	/* Relaxed: a late view of closed only delays -EPIPE by an item. */
	if (atomic_load_explicit(&r->ro.closed, memory_order_relaxed))
		return -EPIPE;
	uint32_t cap = g->capacity;
	/* A head past tail or more than a lap behind is corrupt: no room. */
	uint64_t used = t - r->prod.cached_head;
	uint64_t room = used <= cap ? cap - used : 0;
	if (room < n) {
		/* Acquire: pairs with the consumer's release store of head in
		 * px__spsc_pop(); slots below head have been read out and may
		 * be overwritten. */
		r->prod.cached_head =
			atomic_load_explicit(&r->cons.head, memory_order_acquire);
		used = t - r->prod.cached_head;
		room = used <= cap ? cap - used : 0;
	}
	uint32_t m = room < n ? (uint32_t)room : n;
	if (m == 0)
		return 0;
	px__spsc_copy_in(r, g, t, items, m);
	/* Release: pairs with the consumer's acquire load of tail; the items
	 * written above are visible to a consumer that sees the new tail. */
	atomic_store_explicit(&r->prod.tail, t + m, memory_order_release);
	px__ring_wake(&r->ne, m);
	return (int)m;
}

/* Empty: PX_EEOF if closed and drained, else 0. */
static int px__empty_result(px_ring *r, uint64_t head)
{
	/* Acquire: pairs with the release in px_ring_close(); a closing
	 * producer's earlier pushes are visible once closed is. */
	if (!atomic_load_explicit(&r->ro.closed, memory_order_acquire))
		return 0;
	/* Acquire: pairs with the producers' release/RMW on tail. */
	uint64_t t = atomic_load_explicit(&r->prod.tail, memory_order_acquire) &
		     ~PX__RING_CLOSED_BIT;
	return head >= t ? PX_EEOF : 0;
}

static int px__spsc_pop(px_ring *r, const struct px__ring_geo *g, void *items,
			uint32_t n)
{
	/* Relaxed: head is ours. */
	uint64_t h = atomic_load_explicit(&r->cons.head, memory_order_relaxed);
	uint64_t avail = r->cons.cached_tail - h;
	if (avail < n) {
		/* Acquire: pairs with the producer's release store of tail in
		 * px__spsc_push(). */
		r->cons.cached_tail =
			atomic_load_explicit(&r->prod.tail, memory_order_acquire);
		avail = r->cons.cached_tail - h;
	}
	/* More than a lap available is corrupt (a peer wrote the indices):
	 * never read more than the ring holds. */
	if (avail > g->capacity)
		avail = g->capacity;
	uint32_t m = avail < n ? (uint32_t)avail : n;
	if (m == 0)
		return px__empty_result(r, h);
	px__spsc_copy_out(r, g, h, items, m);
	/* Release: pairs with the producer's acquire load of head; our reads
	 * of the slots happen before the producer reuses them. */
	atomic_store_explicit(&r->cons.head, h + m, memory_order_release);
	px__ring_wake(&r->nf, m);
	return (int)m;
}

/* ---- Vyukov bounded queue (MPMC, SP/MC, MP/SC) ------------------------ */

static int px__vy_push(px_ring *r, const struct px__ring_geo *g, const void *items,
		       uint32_t n)
{
	bool sp = g->flags & PX_RING_SP;
	/* Relaxed: the position is validated by the slot's sequence word
	 * (acquire below) and, with several producers, by the CAS. */
	uint64_t pos = atomic_load_explicit(&r->prod.tail, memory_order_relaxed);
	uint32_t m;
	for (uint32_t tries = 0;; tries++) {
		/* Each retry means another producer claimed a position, or
		 * the shared indices are corrupt: give up after a bounded
		 * number (0: no room now) so that try calls never block. */
		if (tries == PX__RING_RETRIES)
			return 0;
		if (sp ? atomic_load_explicit(&r->ro.closed, memory_order_relaxed)
		       : (pos & PX__RING_CLOSED_BIT) != 0)
			return -EPIPE;
		int64_t dif = 0;
		for (m = 0; m < n; m++) {
			/* Acquire: pairs with the consumer's release store of
			 * seq = 2 * (pos + capacity) in px__vy_pop(): its read of
			 * the slot happened before we overwrite it. */
			uint64_t seq = atomic_load_explicit(
				px__entry_seq(r, g, pos + m), memory_order_acquire);
			dif = (int64_t)(seq - 2 * (pos + m));
			if (dif != 0)
				break;
		}
		if (m == 0) {
			if (dif < 0)
				return 0; /* full: the slot is a lap behind */
			/* Another producer took pos: start again from tail. */
			pos = atomic_load_explicit(&r->prod.tail, memory_order_relaxed);
			continue;
		}
		if (sp) {
			/* Relaxed: tail only feeds px_ring_count() and the
			 * end-of-stream check, which is ordered by closed. */
			atomic_store_explicit(&r->prod.tail, pos + m, memory_order_relaxed);
			break;
		}
		/* Relaxed: the CAS only arbitrates between producers; the
		 * data is published through each slot's sequence word. A
		 * failure reloads pos (and sees the closed bit). */
		if (atomic_compare_exchange_weak_explicit(&r->prod.tail, &pos, pos + m,
							  memory_order_relaxed,
							  memory_order_relaxed))
			break;
	}
	const unsigned char *src = items;
	uint32_t ss = g->slot_size;
	for (uint32_t k = 0; k < m; k++) {
		_Atomic uint64_t *seq = px__entry_seq(r, g, pos + k);
		px__copy((unsigned char *)(seq + 1), src + (size_t)k * ss, ss);
		/* Release: pairs with the consumer's acquire load of seq; the
		 * item is visible to the consumer that sees pos + 1. */
		atomic_store_explicit(seq, 2 * (pos + k) + 1, memory_order_release);
	}
	/* The next position is ready for consumers when its item is in. */
	px__ring_wake_vy(r, g, &r->ne, m, pos + m, 2 * (pos + m) + 1);
	return (int)m;
}

static int px__vy_pop(px_ring *r, const struct px__ring_geo *g, void *items,
		      uint32_t n)
{
	bool sc = g->flags & PX_RING_SC;
	uint64_t cap = g->capacity;
	/* Relaxed: validated by the slot's sequence word and the CAS. */
	uint64_t pos = atomic_load_explicit(&r->cons.head, memory_order_relaxed);
	uint32_t m;
	for (uint32_t tries = 0;; tries++) {
		/* Bounded as in px__vy_push(); 0 reads as empty. */
		if (tries == PX__RING_RETRIES)
			return 0;
		int64_t dif = 0;
		for (m = 0; m < n; m++) {
			/* Acquire: pairs with the producer's release store of
			 * seq = 2 * pos + 1 in px__vy_push(). */
			uint64_t seq = atomic_load_explicit(
				px__entry_seq(r, g, pos + m), memory_order_acquire);
			dif = (int64_t)(seq - (2 * (pos + m) + 1));
			if (dif != 0)
				break;
		}
		if (m == 0) {
			if (dif < 0) /* empty, or the producer is still writing */
				return px__empty_result(r, pos);
			pos = atomic_load_explicit(&r->cons.head, memory_order_relaxed);
			continue;
		}
		if (sc) {
			/* Relaxed: head is only read by count and by the
			 * consumer itself. */
			atomic_store_explicit(&r->cons.head, pos + m, memory_order_relaxed);
			break;
		}
		/* Relaxed: arbitration between consumers only. */
		if (atomic_compare_exchange_weak_explicit(&r->cons.head, &pos, pos + m,
							  memory_order_relaxed,
							  memory_order_relaxed))
			break;
	}
	unsigned char *dst = items;
	uint32_t ss = g->slot_size;
	for (uint32_t k = 0; k < m; k++) {
		_Atomic uint64_t *seq = px__entry_seq(r, g, pos + k);
		px__copy(dst + (size_t)k * ss, (unsigned char *)(seq + 1), ss);
		/* Release: pairs with the producer's acquire load of seq in
		 * px__vy_push(); our read of the item happens before the
		 * producer of the next lap overwrites it. */
		atomic_store_explicit(seq, 2 * (pos + k + cap), memory_order_release);
	}
	/* The next position is ready for producers when it was read out. */
	px__ring_wake_vy(r, g, &r->nf, m, pos + m, 2 * (pos + m + cap));
	return (int)m;
}

static inline int px__push(px_ring *r, const struct px__ring_geo *g,
			   const void *items, uint32_t n)
{
	return px__is_spsc(g) ? px__spsc_push(r, g, items, n)
			      : px__vy_push(r, g, items, n);
}

static inline int px__pop(px_ring *r, const struct px__ring_geo *g, void *items,
			  uint32_t n)
{
	return px__is_spsc(g) ? px__spsc_pop(r, g, items, n)
			      : px__vy_pop(r, g, items, n);
}

/* ---- public operations ------------------------------------------------ */

/* Single-item SPSC operations: the same steps as px__spsc_push/pop with
 * n = 1, minus the burst bookkeeping (wrap split, counts), since at a few
 * nanoseconds per item every branch shows. */
static inline int px__spsc_push1(px_ring *r, const struct px__ring_geo *g,
				 const void *item)
{
	/* Orders as in px__spsc_push(). */
	uint64_t t = atomic_load_explicit(&r->prod.tail, memory_order_relaxed);
	if (atomic_load_explicit(&r->ro.closed, memory_order_relaxed))
		return -EPIPE;
	/* A corrupt head (past tail, or a lap behind) reads as full. */
	if (t - r->prod.cached_head >= g->capacity) {
		/* Acquire: pairs with the consumer's release store of head. */
		r->prod.cached_head =
			atomic_load_explicit(&r->cons.head, memory_order_acquire);
		if (t - r->prod.cached_head >= g->capacity)
			return -EAGAIN;
	}
	px__copy(px__spsc_slot(r, g, px__idx(g, t)), item, g->slot_size);
	/* Release: pairs with the consumer's acquire load of tail. */
	atomic_store_explicit(&r->prod.tail, t + 1, memory_order_release);
	px__ring_wake(&r->ne, 1);
	return 0;
}

static inline int px__spsc_pop1(px_ring *r, const struct px__ring_geo *g, void *item)
{
	/* Orders as in px__spsc_pop(). */
	uint64_t h = atomic_load_explicit(&r->cons.head, memory_order_relaxed);
	if (h == r->cons.cached_tail) {
		/* Acquire: pairs with the producer's release store of tail. */
		r->cons.cached_tail =
			atomic_load_explicit(&r->prod.tail, memory_order_acquire);
		if (h == r->cons.cached_tail) {
			int e = px__empty_result(r, h);
			return e ? e : -EAGAIN;
		}
	}
	px__copy(item, px__spsc_slot(r, g, px__idx(g, h)), g->slot_size);
	/* Release: pairs with the producer's acquire load of head. */
	atomic_store_explicit(&r->cons.head, h + 1, memory_order_release);
	px__ring_wake(&r->nf, 1);
	return 0;
}

int px_ring_try_push(px_ring *r, const void *item)
{
	if (!r || !item)
		return -EINVAL;
	const struct px__ring_geo *g;
	r = px__ring_resolve(r, &g);
	if (px__is_spsc(g))
		return px__spsc_push1(r, g, item);
	int ret = px__vy_push(r, g, item, 1);
	return ret == 0 ? -EAGAIN : (ret > 0 ? 0 : ret);
}

int px_ring_try_pop(px_ring *r, void *item)
{
	if (!r || !item)
		return -EINVAL;
	const struct px__ring_geo *g;
	r = px__ring_resolve(r, &g);
	if (px__is_spsc(g))
		return px__spsc_pop1(r, g, item);
	int ret = px__vy_pop(r, g, item, 1);
	return ret == 0 ? -EAGAIN : (ret > 0 ? 0 : ret);
}

int px_ring_try_push_burst(px_ring *r, const void *items, uint32_t n)
{
	if (!r || (!items && n))
		return -EINVAL;
	if (n > (uint32_t)INT_MAX)
		n = INT_MAX;
	const struct px__ring_geo *g;
	r = px__ring_resolve(r, &g);
	return n ? px__push(r, g, items, n) : 0;
}

int px_ring_try_pop_burst(px_ring *r, void *items, uint32_t n)
{
	if (!r || (!items && n))
		return -EINVAL;
	if (n > (uint32_t)INT_MAX)
		n = INT_MAX;
	const struct px__ring_geo *g;
	r = px__ring_resolve(r, &g);
	return n ? px__pop(r, g, items, n) : 0;
}

/*
 * The spin budget of a blocking call: the ring's setting, or none on a
 * machine with one CPU, where the party we wait for cannot run while we
 * spin.
 */
static inline uint32_t px__ring_spins(px_ring *r)
{
	if (px__ipc_ncpus() < 2)
		return 0;
	return atomic_load_explicit(&r->ro.spin, memory_order_relaxed);
}

/*
 * The blocking forms: try, spin, then park. Returns the op's positive count
 * or error, -EAGAIN (timeout 0), -ETIMEDOUT or -EINTR.
 */
static int px__ring_block(px_ring *r, bool push, void *items, uint32_t n,
			  int64_t timeout_ns)
{
	const struct px__ring_geo *g;
	r = px__ring_resolve(r, &g);
	int ret = push ? px__push(r, g, items, n) : px__pop(r, g, items, n);
	if (ret != 0)
		return ret;
	if (timeout_ns == 0)
		return -EAGAIN;
	int64_t deadline = px__deadline_after(timeout_ns);
	/* Acquire: pairs with the release increment in px_ring_kick(). */
	uint32_t gen = atomic_load_explicit(&r->ro.kick_gen, memory_order_acquire);
	uint32_t spins = px__ring_spins(r);
	for (uint32_t i = 0; i < spins; i++) {
		px__cpu_relax();
		ret = push ? px__push(r, g, items, n) : px__pop(r, g, items, n);
		if (ret != 0)
			return ret;
		if (atomic_load_explicit(&r->ro.kick_gen, memory_order_relaxed) != gen)
			return -EINTR;
		if ((i & 1023) == 1023 && px__deadline_passed(deadline))
			return -ETIMEDOUT;
	}
	struct px__ring_wait *w = push ? &r->nf : &r->ne;
	/* Pairs with px__waiters_seen() in px__ring_wake(): our registration
	 * is ordered before our re-checks of the ring, so either we see the
	 * other side's progress or it sees us and wakes us (with the
	 * sleeper's barrier deferred as ipc_util.h explains: only the
	 * re-checks after px__park_sleep() has passed it may be followed by
	 * an unbounded sleep). One registration covers every iteration. */
	struct px__park pk;
	px__park_begin(&pk, &w->waiters);
	bool barrier = false; /* the last park step passed the barrier */
	for (;;) {
		/* Acquire: pairs with the release increment in
		 * px__ring_wake(), px_ring_close() and px_ring_kick(). */
		uint32_t v = atomic_load_explicit(&w->seq, memory_order_acquire);
		ret = push ? px__push(r, g, items, n) : px__pop(r, g, items, n);
		if (ret != 0) {
			if (barrier) /* found only thanks to the barrier */
				atomic_fetch_add_explicit(&px__ipc_park_late, 1,
							  memory_order_relaxed);
			break;
		}
		if (atomic_load_explicit(&r->ro.kick_gen, memory_order_acquire) != gen) {
			ret = -EINTR;
			break;
		}
		if (px__deadline_passed(deadline)) {
			ret = -ETIMEDOUT; /* checked just above */
			break;
		}
		barrier = px__park_sleep(&pk, &w->seq, v, deadline);
	}
	px__waiter_unregister(&w->waiters);
	return ret;
}

int px_ring_push(px_ring *r, const void *item, int64_t timeout_ns)
{
	if (!r || !item)
		return -EINVAL;
	int ret = px__ring_block(r, true, (void *)item, 1, timeout_ns);
	return ret > 0 ? 0 : ret;
}

int px_ring_pop(px_ring *r, void *item, int64_t timeout_ns)
{
	if (!r || !item)
		return -EINVAL;
	int ret = px__ring_block(r, false, item, 1, timeout_ns);
	return ret > 0 ? 0 : ret;
}

int px_ring_push_burst(px_ring *r, const void *items, uint32_t n,
		       int64_t timeout_ns)
{
	if (!r || (!items && n))
		return -EINVAL;
	if (n == 0)
		return 0;
	if (n > (uint32_t)INT_MAX)
		n = INT_MAX;
	return px__ring_block(r, true, (void *)items, n, timeout_ns);
}

int px_ring_pop_burst(px_ring *r, void *items, uint32_t n, int64_t timeout_ns)
{
	if (!r || (!items && n))
		return -EINVAL;
	if (n == 0)
		return 0;
	if (n > (uint32_t)INT_MAX)
		n = INT_MAX;
	return px__ring_block(r, false, items, n, timeout_ns);
}

/* Wakes every sleeper on both sides; callers changed state first. */
static void px__ring_wake_all(px_ring *r)
{
	/* Release: pairs with the sleepers' acquire load of seq; a sleeper
	 * that sees the bump also sees closed / kick_gen. */
	atomic_fetch_add_explicit(&r->ne.seq, 1, memory_order_release);
	atomic_fetch_add_explicit(&r->nf.seq, 1, memory_order_release);
	px__futex_wake_shared(&r->ne.seq, INT_MAX);
	px__futex_wake_shared(&r->nf.seq, INT_MAX);
}

int px_ring_close(px_ring *r)
{
	if (!r)
		return -EINVAL;
	const struct px__ring_geo *g;
	r = px__ring_resolve(r, &g);
	if (!(g->flags & PX_RING_SP)) {
		/* Several producers: set the closed bit in tail itself, so
		 * every producer's claim CAS is ordered against the close:
		 * a claim either precedes it (and the consumers' end-of-stream
		 * check sees the claimed position) or fails and sees -EPIPE.
		 * Release: pairs with the consumers' acquire load of tail. */
		atomic_fetch_or_explicit(&r->prod.tail, PX__RING_CLOSED_BIT,
					 memory_order_release);
	}
	/* Release: pairs with the acquire in px__empty_result(); with one
	 * producer that closes, its pushes are visible before closed is. */
	atomic_store_explicit(&r->ro.closed, 1, memory_order_release);
	px__ring_wake_all(r);
	return 0;
}

bool px_ring_is_closed(const px_ring *r)
{
	if (!r)
		return false;
	const struct px__ring_geo *g;
	px_ring *s = px__ring_resolve(r, &g);
	/* Acquire: pairs with the release store in px_ring_close(). */
	return atomic_load_explicit(&s->ro.closed, memory_order_acquire);
}

int px_ring_kick(px_ring *r)
{
	if (!r)
		return -EINVAL;
	const struct px__ring_geo *g;
	r = px__ring_resolve(r, &g);
	/* Release: pairs with the acquire loads of kick_gen in
	 * px__ring_block(). */
	atomic_fetch_add_explicit(&r->ro.kick_gen, 1, memory_order_release);
	px__ring_wake_all(r);
	return 0;
}

uint32_t px_ring_count(const px_ring *r)
{
	if (!r)
		return 0;
	const struct px__ring_geo *g;
	px_ring *rw = px__ring_resolve(r, &g);
	/* Acquire both, head first: head never passes tail, so reading head
	 * before tail never yields a negative count (only a stale one). */
	uint64_t h = atomic_load_explicit(&rw->cons.head, memory_order_acquire);
	uint64_t t = atomic_load_explicit(&rw->prod.tail, memory_order_acquire) &
		     ~PX__RING_CLOSED_BIT;
	uint64_t c = t > h ? t - h : 0;
	return c > g->capacity ? g->capacity : (uint32_t)c;
}

uint32_t px_ring_capacity(const px_ring *r)
{
	const struct px__ring_geo *g;
	return r ? (px__ring_resolve(r, &g), g->capacity) : 0;
}

uint32_t px_ring_slot_size(const px_ring *r)
{
	const struct px__ring_geo *g;
	return r ? (px__ring_resolve(r, &g), g->slot_size) : 0;
}

void px_ring_set_spin(px_ring *r, uint32_t spins)
{
	const struct px__ring_geo *g;
	if (r)
		atomic_store_explicit(&px__ring_resolve(r, &g)->ro.spin, spins,
				      memory_order_relaxed);
}
