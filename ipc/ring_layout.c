/*
 * ipc/ring_layout.c - a px_ring's memory: its size, laying it out in caller
 * memory (init), and validating it for another process (attach, detach).
 * What a process sharing the ring can and cannot do to an attacher is in
 * include/parex/ring.h; the operations are in ring.c.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipc_util.h"
#include "ring_internal.h"

ssize_t px_ring_memsize(uint32_t capacity, uint32_t slot_size, unsigned flags)
{
	if (capacity == 0 || slot_size == 0 || (flags & ~(unsigned)PX_RING_SPSC))
		return -EINVAL;
	if (capacity > PX_RING_CAPACITY_MAX || slot_size > PX_RING_SLOT_MAX)
		return -E2BIG;
	uint64_t stride = ((uint64_t)slot_size + 7) & ~UINT64_C(7);
	uint64_t entry = (flags & PX_RING_SPSC) == PX_RING_SPSC
				 ? stride : px__entry_size((uint32_t)stride);
	uint64_t total = PX__HDR_SIZE + (uint64_t)capacity * entry;
	total = (total + PX__RING_LINE - 1) & ~(uint64_t)(PX__RING_LINE - 1);
	if (total > (uint64_t)SSIZE_MAX)
		return -E2BIG;
	return (ssize_t)total;
}

int px_ring_init(void *mem, size_t size, uint32_t capacity, uint32_t slot_size,
		 unsigned flags)
{
	if (!mem || ((uintptr_t)mem % PX_RING_ALIGN) != 0)
		return -EINVAL;
	ssize_t need = px_ring_memsize(capacity, slot_size, flags);
	if (need < 0)
		return (int)need;
	if (size < (size_t)need)
		return -ENOSPC;
	px_ring *r = mem;
	memset(r, 0, PX__HDR_SIZE);
	r->ro.version = PX__RING_VERSION;
	r->ro.memsize = (uint64_t)need;
	struct px__ring_geo *g = &r->ro.geo;
	g->flags = flags;
	g->capacity = capacity;
	g->slot_size = slot_size;
	g->stride = (slot_size + 7u) & ~7u;
	g->pow2 = (capacity & (capacity - 1)) == 0;
	g->mask = g->pow2 ? capacity - 1 : 0;
	atomic_init(&r->ro.spin, PX_RING_SPIN_DEFAULT);
	if (!px__is_spsc(g)) {
		for (uint64_t i = 0; i < capacity; i++)
			atomic_init(px__entry_seq(r, g, i), 2 * i);
	}
	px__ipc_waker_prepare();
	/* Release: pairs with the acquire in px_ring_attach(); an attacher
	 * that sees the magic sees the initialised ring. */
	atomic_store_explicit(&r->ro.magic, PX__RING_MAGIC, memory_order_release);
	return 0;
}

int px__ring_check(const void *mem, size_t size, struct px__ring_geo *geo)
{
	if (size < PX__HDR_SIZE)
		return -EBADMSG;
	px_ring *r = (px_ring *)mem;
	/* Acquire: pairs with the release in px_ring_init(). */
	uint64_t magic = atomic_load_explicit(&r->ro.magic, memory_order_acquire);
	if (magic != PX__RING_MAGIC)
		return PX_EBADMAGIC;
	/* One read of each field into a private copy: a peer rewriting the
	 * header now cannot make what we check differ from what we use. */
	uint32_t version = __atomic_load_n(&r->ro.version, __ATOMIC_RELAXED);
	if (version != PX__RING_VERSION)
		return PX_EVERSION;
	struct px__ring_geo g;
	g.flags = __atomic_load_n(&r->ro.geo.flags, __ATOMIC_RELAXED);
	g.capacity = __atomic_load_n(&r->ro.geo.capacity, __ATOMIC_RELAXED);
	g.slot_size = __atomic_load_n(&r->ro.geo.slot_size, __ATOMIC_RELAXED);
	g.stride = __atomic_load_n(&r->ro.geo.stride, __ATOMIC_RELAXED);
	g.mask = __atomic_load_n(&r->ro.geo.mask, __ATOMIC_RELAXED);
	g.pow2 = __atomic_load_n(&r->ro.geo.pow2, __ATOMIC_RELAXED);
	uint64_t memsize = __atomic_load_n(&r->ro.memsize, __ATOMIC_RELAXED);
	ssize_t need = px_ring_memsize(g.capacity, g.slot_size, g.flags);
	if (need < 0 || (uint64_t)need != memsize)
		return -EBADMSG;
	bool pow2 = (g.capacity & (g.capacity - 1)) == 0;
	if (g.stride != ((g.slot_size + 7u) & ~7u) || g.pow2 != (uint32_t)pow2 ||
	    g.mask != (pow2 ? g.capacity - 1 : 0))
		return -EBADMSG;
	if ((size_t)need > size)
		return -EBADMSG; /* the mapping is shorter than the ring */
	*geo = g;
	return 0;
}

void px__ring_handle_fill(struct px__ring_handle *h, px_ring *shm,
			  const struct px__ring_geo *geo)
{
	h->hmagic = PX__RING_HMAGIC;
	h->shm = shm;
	h->geo = *geo;
}

/* A private page for a handle: mmap, not malloc, so that a handle a
 * process never detaches (it may live as long as the process) is not a
 * leak to LeakSanitizer, and so that it can be made read-only. */
void *px__handle_page(void)
{
	void *p = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Seals a handle page: the process's own stray writes cannot change it. */
void px__handle_seal(void *page)
{
	mprotect(page, (size_t)sysconf(_SC_PAGESIZE), PROT_READ);
}

void px__handle_unmap(void *page)
{
	munmap(page, (size_t)sysconf(_SC_PAGESIZE));
}

int px_ring_attach(px_ring **out, void *mem, size_t size)
{
	if (!out || !mem || ((uintptr_t)mem % PX_RING_ALIGN) != 0)
		return -EINVAL;
	struct px__ring_geo g;
	int e = px__ring_check(mem, size, &g);
	if (e)
		return e;
	struct px__ring_handle *h = px__handle_page();
	if (!h)
		return -ENOMEM;
	px__ring_handle_fill(h, mem, &g);
	px__handle_seal(h);
	px__ipc_waker_prepare();
	*out = (px_ring *)(void *)h;
	return 0;
}

void px_ring_detach(px_ring *r)
{
	const struct px__ring_geo *g;
	if (r && px__ring_resolve(r, &g) != r)
		px__handle_unmap(r);
}
