/*
 * ipc/queue.c - px_queue: variable-size messages over a px_ring of 64-byte
 * descriptors plus a shared arena. See include/parex/queue.h.
 *
 * Layout (offsets from the queue's start, all 128-byte aligned):
 *   struct px_queue   header, arena bump pointer, free-list heads, the
 *                     parking place of producers waiting for arena space;
 *   ring              px_ring of struct px__qdesc;
 *   links             one _Atomic uint32_t per 64-byte arena unit: the
 *                     free-list "next" of a free block. Kept outside the
 *                     blocks so that payload bytes are never also accessed
 *                     atomically (a stale popper's read of "next" would
 *                     otherwise race with the payload copy of the block's
 *                     new owner);
 *   arena             payload blocks.
 *
 * Arena: power-of-two size classes from 64 bytes up to the block that holds
 * max_msg. A block is taken from its class's free list, else carved from the
 * never-carved rest of the arena (an atomic bump pointer), else taken from a
 * larger class's free list. Freed blocks return to the free list of their
 * class (recorded in the descriptor); blocks are never split or merged, so
 * a long mix of sizes can strand space in small classes (see README.md).
 * Free lists are Treiber stacks whose head word carries a 32-bit tag beside
 * the block index, which defeats ABA.
 *
 * Trust: a handle from px_queue_attach() holds a private, validated copy of
 * the geometry (offsets, max_msg, classes) and a ring handle. Everything
 * else read from shared memory - descriptors, free-list heads and links,
 * the bump pointer - is bounded where it is used: a block index must name a
 * whole block inside the arena, a length must fit max_msg, the block and
 * the caller's buffer; every CAS loop gives up after PX__Q_RETRIES.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <parex/queue.h>

#include "ipc_util.h"
#include "ring_internal.h"

#define PX__Q_MAGIC UINT64_C(0x0045554555515850) /* "PXQUEUE" */
#define PX__Q_VERSION 1u
#define PX__Q_UNIT 64u
#define PX__Q_NCLASS 24 /* 64 B .. 512 MiB */
#define PX__Q_INLINE UINT32_MAX
#define PX__Q_ARENA_MAX (UINT64_C(1) << 38) /* 2^32 units of 64 bytes */
#define PX__Q_HMAGIC UINT64_C(0x4c444e4851585850) /* "PXQHNDL" */
#define PX__Q_RETRIES 4096

struct px__qdesc {
	uint32_t len;
	uint32_t cls; /* PX__Q_INLINE or the arena block's class */
	uint64_t unit; /* the block's first 64-byte unit */
	unsigned char data[PX_QUEUE_INLINE_MAX];
};
_Static_assert(sizeof(struct px__qdesc) == 64, "descriptor size");

/* The queue's geometry: fixed at init, validated by px_queue_attach(). */
struct px__q_geo {
	uint64_t ring_off, ring_size;
	uint64_t links_off;
	uint64_t arena_off, arena_units;
	uint32_t capacity;
	uint32_t max_msg;
	uint32_t nclass; /* classes in use: 0 .. nclass-1 */
	uint32_t top_only; /* 1: default arena, see px__q_alloc_try() */
};

struct px_queue {
	_Alignas(PX__RING_LINE) struct {
		_Atomic uint64_t magic;
		uint32_t version;
		uint32_t flags;
		uint64_t memsize;
		struct px__q_geo geo;
	} ro;
	/* Units carved so far; only grows. */
	_Alignas(PX__RING_LINE) struct {
		_Atomic uint64_t bump;
	} carve;
	/* Free-list heads: tag << 32 | (unit + 1), 0 in the low half: empty. */
	_Alignas(PX__RING_LINE) _Atomic uint64_t free_head[PX__Q_NCLASS];
	/* Producers park here waiting for arena space. */
	struct px__ring_wait _Alignas(PX__RING_LINE) space;
};

/* What px_queue_attach() hands out (see ring_internal.h): hmagic sits
 * where the shared header's magic does. */
struct px__q_handle {
	uint64_t hmagic; /* PX__Q_HMAGIC */
	px_queue *shm;
	struct px__q_geo geo;
	_Alignas(PX__RING_LINE) struct px__ring_handle ring;
};

/* One call's view of a queue: shared memory, geometry, ring. */
struct px__qv {
	px_queue *q;
	const struct px__q_geo *g;
	px_ring *ring;
};

static inline struct px__qv px__q_view(const px_queue *q)
{
	const struct px__q_handle *h = (const void *)q;
	if (__atomic_load_n(&h->hmagic, __ATOMIC_RELAXED) == PX__Q_HMAGIC)
		return (struct px__qv){h->shm, &h->geo, (px_ring *)(void *)&h->ring};
	/* The memory itself: trusts its header (see queue.h). */
	px_queue *m = (px_queue *)q;
	return (struct px__qv){m, &m->ro.geo,
			       (px_ring *)(void *)((char *)m + m->ro.geo.ring_off)};
}

static inline _Atomic uint32_t *px__q_links(const struct px__qv *v)
{
	return (_Atomic uint32_t *)((char *)v->q + v->g->links_off);
}

static inline unsigned char *px__q_unit(const struct px__qv *v, uint64_t unit)
{
	return (unsigned char *)v->q + v->g->arena_off + unit * PX__Q_UNIT;
}

/* Whether a block of class c at unit lies wholly inside the arena. */
static inline bool px__q_block_ok(const struct px__qv *v, uint32_t c, uint64_t unit)
{
	return c < v->g->nclass && unit < v->g->arena_units &&
	       ((uint64_t)1 << c) <= v->g->arena_units - unit;
}

static inline uint64_t px__align(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* The smallest class whose block holds len bytes. */
static uint32_t px__q_class(uint64_t len)
{
	uint32_t c = 0;
	while (((uint64_t)PX__Q_UNIT << c) < len)
		c++;
	return c;
}

/* The whole layout for cfg; returns the size or a negative error. */
static int64_t px__q_layout(const px_queue_config *cfg, uint64_t *ring_off,
			    uint64_t *ring_size, uint64_t *links_off,
			    uint64_t *arena_off, uint64_t *arena_units,
			    uint32_t *nclass)
{
	if (!cfg || cfg->capacity == 0 || cfg->max_msg == 0 ||
	    (cfg->flags & ~(unsigned)PX_RING_SPSC))
		return -EINVAL;
	if (cfg->capacity > PX_RING_CAPACITY_MAX || cfg->max_msg > PX_QUEUE_MSG_MAX)
		return -E2BIG;
	ssize_t rs = px_ring_memsize(cfg->capacity, sizeof(struct px__qdesc),
				     cfg->flags);
	if (rs < 0)
		return rs;
	uint64_t units = 0;
	uint32_t ncls = 0;
	if (cfg->max_msg > PX_QUEUE_INLINE_MAX) {
		uint32_t top = px__q_class(cfg->max_msg);
		uint64_t block = (uint64_t)PX__Q_UNIT << top;
		uint64_t arena = cfg->arena_size;
		if (arena == 0) {
			if ((uint64_t)cfg->capacity > UINT64_MAX / block)
				return -E2BIG;
			arena = (uint64_t)cfg->capacity * block;
		}
		if (arena < block)
			return -EINVAL;
		units = arena / PX__Q_UNIT + (arena % PX__Q_UNIT != 0);
		if (units >= UINT32_MAX || units * PX__Q_UNIT > PX__Q_ARENA_MAX)
			return -E2BIG;
		ncls = top + 1;
	}
	*ring_off = px__align(sizeof(struct px_queue), PX__RING_LINE);
	*ring_size = (uint64_t)rs;
	*links_off = px__align(*ring_off + (uint64_t)rs, PX__RING_LINE);
	*arena_off = px__align(*links_off + units * sizeof(uint32_t), PX__RING_LINE);
	*arena_units = units;
	*nclass = ncls;
	return (int64_t)(*arena_off + units * PX__Q_UNIT);
}

ssize_t px_queue_memsize(const px_queue_config *cfg)
{
	uint64_t ro, rs, lo, ao, au;
	uint32_t nc;
	int64_t r = px__q_layout(cfg, &ro, &rs, &lo, &ao, &au, &nc);
	return (ssize_t)r;
}

int px_queue_init(void *mem, size_t size, const px_queue_config *cfg)
{
	if (!mem || ((uintptr_t)mem % PX_RING_ALIGN) != 0)
		return -EINVAL;
	uint64_t ro, rs, lo, ao, au;
	uint32_t nc;
	int64_t need = px__q_layout(cfg, &ro, &rs, &lo, &ao, &au, &nc);
	if (need < 0)
		return (int)need;
	if ((uint64_t)size < (uint64_t)need)
		return -ENOSPC;
	px_queue *q = mem;
	memset(q, 0, sizeof *q);
	q->ro.version = PX__Q_VERSION;
	q->ro.flags = cfg->flags;
	q->ro.memsize = (uint64_t)need;
	q->ro.geo.ring_off = ro;
	q->ro.geo.ring_size = rs;
	q->ro.geo.links_off = lo;
	q->ro.geo.arena_off = ao;
	q->ro.geo.arena_units = au;
	q->ro.geo.capacity = cfg->capacity;
	q->ro.geo.max_msg = cfg->max_msg;
	q->ro.geo.nclass = nc;
	q->ro.geo.top_only = cfg->arena_size == 0;
	int r = px_ring_init((char *)q + ro, rs, cfg->capacity,
			     sizeof(struct px__qdesc), cfg->flags);
	if (r < 0)
		return r;
	/* Release: pairs with the acquire in px_queue_attach(). */
	atomic_store_explicit(&q->ro.magic, PX__Q_MAGIC, memory_order_release);
	return 0;
}

int px_queue_attach(px_queue **out, void *mem, size_t size)
{
	if (!out || !mem || ((uintptr_t)mem % PX_RING_ALIGN) != 0)
		return -EINVAL;
	if (size < sizeof(struct px_queue))
		return -EBADMSG;
	px_queue *q = mem;
	/* Acquire: pairs with the release in px_queue_init(). */
	if (atomic_load_explicit(&q->ro.magic, memory_order_acquire) != PX__Q_MAGIC)
		return PX_EBADMAGIC;
	if (__atomic_load_n(&q->ro.version, __ATOMIC_RELAXED) != PX__Q_VERSION)
		return PX_EVERSION;
	/* Copy the header once, then check the copy: a peer rewriting it
	 * meanwhile cannot make what we check differ from what we keep. */
	struct px__q_geo g;
	memcpy(&g, (const void *)&q->ro.geo, sizeof g);
	uint32_t flags = __atomic_load_n(&q->ro.flags, __ATOMIC_RELAXED);
	uint64_t memsize = __atomic_load_n(&q->ro.memsize, __ATOMIC_RELAXED);
	if (g.arena_units > PX__Q_ARENA_MAX / PX__Q_UNIT || g.top_only > 1)
		return -EBADMSG;
	px_queue_config cfg = {
		.capacity = g.capacity,
		.max_msg = g.max_msg,
		.arena_size = g.arena_units * PX__Q_UNIT,
		.flags = flags,
	};
	uint64_t ro, rs, lo, ao, au;
	uint32_t nc;
	int64_t need = px__q_layout(&cfg, &ro, &rs, &lo, &ao, &au, &nc);
	if (need < 0 || (uint64_t)need != memsize || ro != g.ring_off ||
	    rs != g.ring_size || lo != g.links_off || ao != g.arena_off ||
	    au != g.arena_units || nc != g.nclass)
		return -EBADMSG;
	/* The default arena holds exactly capacity largest blocks. */
	if (g.top_only && nc &&
	    g.arena_units != (uint64_t)g.capacity << (nc - 1))
		return -EBADMSG;
	if ((uint64_t)need > (uint64_t)size)
		return -EBADMSG; /* truncated */
	struct px__ring_geo rg;
	int r = px__ring_check((char *)q + ro, rs, &rg);
	if (r < 0)
		return r;
	if (rg.capacity != g.capacity || rg.slot_size != sizeof(struct px__qdesc) ||
	    rg.flags != flags)
		return -EBADMSG;
	struct px__q_handle *h = px__handle_page();
	if (!h)
		return -ENOMEM;
	h->hmagic = PX__Q_HMAGIC;
	h->shm = q;
	h->geo = g;
	px__ring_handle_fill(&h->ring, (px_ring *)(void *)((char *)q + ro), &rg);
	px__handle_seal(h);
	px__ipc_waker_prepare();
	*out = (px_queue *)(void *)h;
	return 0;
}

void px_queue_detach(px_queue *q)
{
	if (q && px__q_view(q).q != q)
		px__handle_unmap(q);
}

/* ---- arena ------------------------------------------------------------ */

/* Pops a block of class c; false when the list is empty, corrupt (the head
 * names no whole block of class c in the arena), or contended past
 * PX__Q_RETRIES attempts. */
static bool px__q_pop_free(const struct px__qv *v, uint32_t c, uint64_t *unit)
{
	_Atomic uint64_t *head = &v->q->free_head[c];
	/* Acquire: pairs with the release CAS in px__q_push_free(); we see
	 * the link written before the block was pushed, and the previous
	 * owner's reads of the block happen before our writes. */
	uint64_t h = atomic_load_explicit(head, memory_order_acquire);
	for (uint32_t tries = 0; tries < PX__Q_RETRIES; tries++) {
		uint32_t top = (uint32_t)h;
		if (top == 0)
			return false;
		if (!px__q_block_ok(v, c, (uint64_t)top - 1))
			return false; /* a peer wrote the head: leave it */
		/* Relaxed: if the block was popped and pushed again meanwhile,
		 * the tag makes the CAS below fail and we retry. */
		uint32_t next = atomic_load_explicit(&px__q_links(v)[top - 1],
						     memory_order_relaxed);
		uint64_t nh = ((h >> 32) + 1) << 32 | next;
		/* Acquire on both paths, as for the first load. */
		if (atomic_compare_exchange_weak_explicit(head, &h, nh,
							  memory_order_acquire,
							  memory_order_acquire)) {
			*unit = top - 1;
			return true;
		}
	}
	return false;
}

/* Pushes a block (a valid one: ours). Past PX__Q_RETRIES failed attempts
 * (only a peer rewriting the head can cause that many) the block leaks. */
static void px__q_push_free(const struct px__qv *v, uint32_t c, uint64_t unit)
{
	_Atomic uint64_t *head = &v->q->free_head[c];
	uint64_t h = atomic_load_explicit(head, memory_order_relaxed);
	for (uint32_t tries = 0; tries < PX__Q_RETRIES; tries++) {
		/* Relaxed: published by the release CAS below. */
		atomic_store_explicit(&px__q_links(v)[unit], (uint32_t)h,
				      memory_order_relaxed);
		uint64_t nh = ((h >> 32) + 1) << 32 | (unit + 1);
		/* Release: pairs with the acquire in px__q_pop_free(). */
		if (atomic_compare_exchange_weak_explicit(head, &h, nh,
							  memory_order_release,
							  memory_order_relaxed))
			return;
	}
}

/* Carves 2^c units from the never-carved rest, leaving at least keep
 * units uncarved. */
static bool px__q_carve(const struct px__qv *v, uint32_t c, uint64_t keep,
			uint64_t *unit)
{
	uint64_t units = (uint64_t)1 << c, all = v->g->arena_units;
	_Atomic uint64_t *bump = &v->q->carve.bump;
	/* Relaxed: the bump pointer only hands out disjoint ranges; the
	 * carved memory was zero or is being claimed for the first time. */
	uint64_t b = atomic_load_explicit(bump, memory_order_relaxed);
	/* Written so that no sum can wrap, whatever a peer stored in b. */
	for (uint32_t tries = 0; tries < PX__Q_RETRIES && b <= all &&
				 units <= all - b && keep <= all - b - units;
	     tries++) {
		if (atomic_compare_exchange_weak_explicit(bump, &b, b + units,
							  memory_order_relaxed,
							  memory_order_relaxed)) {
			*unit = b;
			return true;
		}
	}
	return false;
}

/*
 * One attempt: a block of class >= c; its class goes to *got.
 *
 * Blocks are never merged, so space carved for a small class stays in that
 * class. Two rules keep that from starving larger messages:
 *  - the default arena (capacity blocks of the largest class, documented
 *    never to run out) hands every message a largest block: carving small
 *    blocks there once let rounds of ever smaller messages use up the
 *    arena, after which even an empty queue refused a max_msg message;
 *  - in a caller-sized arena, small classes never carve the last
 *    largest-block's worth of units; when nothing else is left they take a
 *    whole largest block. So either that much is uncarved or a largest
 *    block exists, and a queue with nothing in flight takes any message.
 */
static bool px__q_alloc_try(const struct px__qv *v, uint32_t c, uint64_t *unit,
			    uint32_t *got)
{
	uint32_t top = v->g->nclass - 1;
	if (v->g->top_only)
		c = top;
	if (px__q_pop_free(v, c, unit)) {
		*got = c;
		return true;
	}
	uint64_t keep = c < top ? (uint64_t)1 << top : 0;
	if (px__q_carve(v, c, keep, unit)) {
		*got = c;
		return true;
	}
	for (uint32_t k = c + 1; k < v->g->nclass; k++) {
		if (px__q_pop_free(v, k, unit)) {
			*got = k;
			return true;
		}
	}
	if (c < top && px__q_carve(v, top, 0, unit)) {
		*got = top;
		return true;
	}
	return false;
}

static void px__q_free(const struct px__qv *v, uint32_t c, uint64_t unit)
{
	px_queue *q = v->q;
	px__q_push_free(v, c, unit);
	/* Pairs with px__park_begin() in px__q_alloc(): our push is
	 * ordered before our read of the waiter count (ipc_util.h). */
	if (px__waiters_seen(&q->space.waiters)) {
		/* Release: pairs with the sleeper's acquire load of seq. */
		atomic_fetch_add_explicit(&q->space.seq, 1, memory_order_release);
		px__futex_wake_shared(&q->space.seq, INT_MAX);
	}
}

/* A block for len bytes, waiting until the deadline (PX__NO_DEADLINE: none;
 * 0 timeout: no wait). Returns 0, -EAGAIN, -ETIMEDOUT, -EPIPE or -EINTR. */
static int px__q_alloc(const struct px__qv *qv, uint64_t len, int64_t timeout_ns,
		       int64_t deadline, uint32_t gen, uint64_t *unit, uint32_t *got)
{
	px_queue *q = qv->q;
	uint32_t c = px__q_class(len);
	const struct px__ring_geo *rg;
	px_ring *ring = px__ring_resolve(qv->ring, &rg);
	if (px__q_alloc_try(qv, c, unit, got))
		return 0;
	if (timeout_ns == 0)
		return -EAGAIN;
	/* No spin on one CPU: the consumer we wait for cannot free a block
	 * while we hold the CPU. */
	uint32_t spins = px__ipc_ncpus() < 2
				 ? 0
				 : atomic_load_explicit(&ring->ro.spin, memory_order_relaxed);
	for (uint32_t i = 0; i < spins; i++) {
		px__cpu_relax();
		if (px__q_alloc_try(qv, c, unit, got))
			return 0;
		/* The spin count is shared: a huge one must not outlast
		 * the timeout. */
		if ((i & 1023) == 1023 && px__deadline_passed(deadline))
			return -ETIMEDOUT;
	}
	int ret;
	/* Pairs with px__waiters_seen() in px__q_free() (the protocol and
	 * its deferred barrier: ipc_util.h). */
	struct px__park pk;
	px__park_begin(&pk, &q->space.waiters);
	for (;;) {
		/* Acquire: pairs with the release bumps in px__q_free() and
		 * px__q_wake_all(). */
		uint32_t v = atomic_load_explicit(&q->space.seq, memory_order_acquire);
		if (px__q_alloc_try(qv, c, unit, got)) {
			ret = 0;
			break;
		}
		/* Acquire: pairs with the release in px_ring_close(). Read
		 * here, not through px_ring_is_closed(): ring is the shared
		 * ring itself, and only a handle may be resolved. */
		if (atomic_load_explicit(&ring->ro.closed, memory_order_acquire)) {
			ret = -EPIPE;
			break;
		}
		/* Acquire: pairs with the release increment in px_ring_kick(). */
		if (atomic_load_explicit(&ring->ro.kick_gen, memory_order_acquire) != gen) {
			ret = -EINTR;
			break;
		}
		if (px__deadline_passed(deadline)) {
			ret = -ETIMEDOUT;
			break;
		}
		px__park_sleep(&pk, &q->space.seq, v, deadline);
	}
	px__waiter_unregister(&q->space.waiters);
	return ret;
}

static void px__q_wake_all(px_queue *q)
{
	/* Release: pairs with the acquire load of seq in px__q_alloc(). */
	atomic_fetch_add_explicit(&q->space.seq, 1, memory_order_release);
	px__futex_wake_shared(&q->space.seq, INT_MAX);
}

/* ---- put / get -------------------------------------------------------- */

static int64_t px__remaining(int64_t timeout_ns, int64_t deadline)
{
	if (timeout_ns < 0 || deadline == PX__NO_DEADLINE)
		return PX_FOREVER;
	int64_t left = deadline - px__now_ns();
	/* Keep waiting semantics (not "try") when time is nearly out: the
	 * ring answers -ETIMEDOUT after one more check. */
	return left > 0 ? left : 1;
}

int px_queue_putv(px_queue *q, const struct iovec *iov, int iovcnt,
		  int64_t timeout_ns)
{
	if (!q || iovcnt < 0 || iovcnt > 64 || (iovcnt > 0 && !iov))
		return -EINVAL;
	struct px__qv v = px__q_view(q);
	uint64_t len = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (!iov[i].iov_base && iov[i].iov_len)
			return -EINVAL;
		len += iov[i].iov_len;
		if (len > v.g->max_msg)
			return -EMSGSIZE;
	}
	px_ring *ring = v.ring;
	if (px_ring_is_closed(ring))
		return -EPIPE;
	struct px__qdesc d;
	d.len = (uint32_t)len;
	d.unit = 0;
	unsigned char *dst = d.data;
	int64_t deadline = px__deadline_after(timeout_ns);
	if (len <= PX_QUEUE_INLINE_MAX) {
		d.cls = PX__Q_INLINE;
	} else {
		const struct px__ring_geo *rg;
		px_ring *rs = px__ring_resolve(ring, &rg);
		/* Acquire: pairs with the release increment in px_ring_kick(). */
		uint32_t gen = atomic_load_explicit(&rs->ro.kick_gen,
						    memory_order_acquire);
		int r = px__q_alloc(&v, len, timeout_ns, deadline, gen, &d.unit, &d.cls);
		if (r < 0)
			return r;
		dst = px__q_unit(&v, d.unit);
	}
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len)
			memcpy(dst, iov[i].iov_base, iov[i].iov_len);
		dst += iov[i].iov_len;
	}
	int64_t left = timeout_ns == 0 ? 0 : px__remaining(timeout_ns, deadline);
	int r = px_ring_push(ring, &d, left);
	if (r < 0 && d.cls != PX__Q_INLINE)
		px__q_free(&v, d.cls, d.unit);
	return r;
}

int px_queue_put(px_queue *q, const void *msg, size_t len, int64_t timeout_ns)
{
	if (!q || (!msg && len))
		return -EINVAL;
	if (len > px_queue_max_msg(q))
		return -EMSGSIZE;
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
	return px_queue_putv(q, &iov, len ? 1 : 0, timeout_ns);
}

ssize_t px_queue_get(px_queue *q, void *buf, size_t cap, int64_t timeout_ns)
{
	if (!q || !buf)
		return -EINVAL;
	struct px__qv v = px__q_view(q);
	uint32_t max = v.g->max_msg;
	if (cap < max)
		return -EINVAL;
	struct px__qdesc d;
	int r = px_ring_pop(v.ring, &d, timeout_ns);
	if (r < 0)
		return r;
	/* The descriptor came from shared memory: its length must fit
	 * max_msg (hence buf) and its block, its block the arena. A bad one
	 * is dropped (its block, if any, is not ours to free). */
	if (d.len > max)
		return -EBADMSG;
	if (d.cls == PX__Q_INLINE) {
		if (d.len > PX_QUEUE_INLINE_MAX)
			return -EBADMSG;
		memcpy(buf, d.data, d.len);
	} else {
		if (!px__q_block_ok(&v, d.cls, d.unit) ||
		    d.len > ((uint64_t)PX__Q_UNIT << d.cls))
			return -EBADMSG;
		memcpy(buf, px__q_unit(&v, d.unit), d.len);
		px__q_free(&v, d.cls, d.unit);
	}
	return (ssize_t)d.len;
}

int px_queue_close(px_queue *q)
{
	if (!q)
		return -EINVAL;
	struct px__qv v = px__q_view(q);
	px_ring_close(v.ring);
	px__q_wake_all(v.q);
	return 0;
}

bool px_queue_is_closed(const px_queue *q)
{
	return q && px_ring_is_closed(px__q_view(q).ring);
}

int px_queue_kick(px_queue *q)
{
	if (!q)
		return -EINVAL;
	struct px__qv v = px__q_view(q);
	px_ring_kick(v.ring);
	px__q_wake_all(v.q);
	return 0;
}

uint32_t px_queue_count(const px_queue *q)
{
	return q ? px_ring_count(px__q_view(q).ring) : 0;
}

uint32_t px_queue_max_msg(const px_queue *q)
{
	return q ? px__q_view(q).g->max_msg : 0;
}

void px_queue_set_spin(px_queue *q, uint32_t spins)
{
	if (q)
		px_ring_set_spin(px__q_view(q).ring, spins);
}
