/*
 * fuzz/fuzz_ring.c - px_ring_attach on a fuzzed segment, then operations
 * through the handle while the "peer" (the input's tail) rewrites the
 * segment after attach. The segment is a heap block of exactly its size, so
 * AddressSanitizer reports any access outside it; a try call that does not
 * return is a libFuzzer timeout.
 *
 * Input: the segment bytes. The last 16 bytes double as the operation
 * script; bytes of the input also serve as the peer's later writes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <parex/ring.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEG_MAX (1u << 16)

static void check(int rc, bool push, bool burst, uint32_t n)
{
	if (burst && rc >= 0) {
		if ((uint32_t)rc > n)
			abort();
		return;
	}
	if (rc == 0 || rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EINTR)
		return;
	if (push ? rc == -EPIPE : rc == PX_EEOF)
		return;
	abort(); /* not a documented result */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > SEG_MAX)
		return 0;
	size_t seg = (size + 127) & ~(size_t)127;
	unsigned char *mem = aligned_alloc(128, seg);
	if (!mem)
		return 0;
	memset(mem, 0, seg);
	memcpy(mem, data, size);
	px_ring *r;
	if (px_ring_attach(&r, mem, seg) != 0) {
		free(mem);
		return 0;
	}
	uint32_t ss = px_ring_slot_size(r), cap = px_ring_capacity(r);
	if (ss == 0 || ss > PX_RING_SLOT_MAX || cap == 0)
		abort();
	/* The caller's buffer: exactly 4 items. */
	unsigned char *items = malloc((size_t)ss * 4);
	memset(items, 0x5a, (size_t)ss * 4);
	const uint8_t *script = size >= 16 ? data + size - 16 : data;
	size_t nscript = size >= 16 ? 16 : size;
	for (size_t i = 0; i < nscript; i++) {
		uint8_t op = script[i];
		uint32_t n = (op >> 4) % 5; /* 0..4 */
		switch (op & 15) {
		case 0:
			check(px_ring_try_push(r, items), true, false, 1);
			break;
		case 1:
			check(px_ring_try_pop(r, items), false, false, 1);
			break;
		case 2:
			check(px_ring_try_push_burst(r, items, n), true, true, n);
			break;
		case 3:
			check(px_ring_try_pop_burst(r, items, n), false, true, n);
			break;
		case 4:
			check(px_ring_push(r, items, 0), true, false, 1);
			break;
		case 5:
			check(px_ring_pop_burst(r, items, n, 0), false, true, n);
			break;
		case 6:
			if (px_ring_count(r) > cap)
				abort();
			break;
		case 7:
			px_ring_close(r);
			break;
		case 8:
			px_ring_kick(r);
			break;
		default: {
			/* The peer writes: 8 input bytes somewhere in the
			 * segment (the first 1 KiB, headers, more often). */
			size_t span = (op & 1) && seg > 1024 ? 1024 : seg;
			size_t off = ((size_t)op * 2654435761u + i * 97) % span;
			size_t len = seg - off < 8 ? seg - off : 8;
			size_t from = (i * 8) % size;
			size_t avail = size - from < len ? size - from : len;
			memcpy(mem + off, data + from, avail);
			break;
		}
		}
	}
	free(items);
	px_ring_detach(r);
	free(mem);
	return 0;
}
