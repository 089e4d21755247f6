/*
 * fuzz/make_seeds.c - writes the binary part of the seed corpus: valid
 * rings, queues and shm segments of each mode, each followed by a 16-byte
 * operation script, so that the fuzzers start from memory that attaches.
 * Usage: fuzz_make_seeds DIR   (writes DIR/ring/, DIR/queue/, DIR/shm/)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <unistd.h>

#include <parex/queue.h>
#include <parex/ring.h>
#include <parex/shm.h>

static const unsigned char script[16] = {
	0x00, 0x10, 0x22, 0x01, 0x33, 0x09, 0x00, 0x21,
	0x03, 0x06, 0x0b, 0x13, 0x04, 0x15, 0x07, 0x01,
};

static int put(const char *dir, const char *sub, const char *name,
	       const void *mem, size_t size)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, sub);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(mem, 1, size, f) != size || fwrite(script, 1, 16, f) != 16) {
		perror(path);
		return 1;
	}
	return fclose(f) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	int bad = 0;
	static const struct {
		const char *name;
		uint32_t cap, slot;
		unsigned flags;
	} rings[] = {
		{"spsc_4x8", 4, 8, PX_RING_SPSC},
		{"mpmc_4x8", 4, 8, PX_RING_MPMC},
		{"sp_3x12", 3, 12, PX_RING_SP},
		{"sc_5x16", 5, 16, PX_RING_SC},
		{"mpmc_1x1", 1, 1, PX_RING_MPMC},
	};
	for (size_t i = 0; i < sizeof rings / sizeof rings[0]; i++) {
		ssize_t n = px_ring_memsize(rings[i].cap, rings[i].slot, rings[i].flags);
		void *mem = aligned_alloc(128, (size_t)n);
		memset(mem, 0, (size_t)n);
		if (px_ring_init(mem, (size_t)n, rings[i].cap, rings[i].slot,
				 rings[i].flags))
			bad = 1;
		unsigned char item[16] = "0123456789abcde";
		px_ring *r;
		if (!px_ring_attach(&r, mem, (size_t)n)) {
			px_ring_try_push(r, item); /* one item in flight */
			px_ring_detach(r);
		}
		bad |= put(dir, "ring", rings[i].name, mem, (size_t)n);
		free(mem);
	}
	static const struct {
		const char *name;
		px_queue_config c;
	} queues[] = {
		{"mpmc_2x100", {.capacity = 2, .max_msg = 100}},
		{"spsc_2x40", {.capacity = 2, .max_msg = 40, .flags = PX_RING_SPSC}},
		{"small_arena", {.capacity = 3, .max_msg = 300, .arena_size = 640}},
	};
	for (size_t i = 0; i < sizeof queues / sizeof queues[0]; i++) {
		ssize_t n = px_queue_memsize(&queues[i].c);
		size_t sz = ((size_t)n + 127) & ~(size_t)127;
		void *mem = aligned_alloc(128, sz);
		memset(mem, 0, sz);
		if (px_queue_init(mem, (size_t)n, &queues[i].c))
			bad = 1;
		px_queue *q;
		if (!px_queue_attach(&q, mem, (size_t)n)) {
			char msg[100] = "seed";
			px_queue_put(q, msg, 4, 0);
			if (queues[i].c.max_msg >= 100)
				px_queue_put(q, msg, 100, 0);
			px_queue_detach(q);
		}
		bad |= put(dir, "queue", queues[i].name, mem, sz);
		free(mem);
	}
	/* A segment as px_shm_create_anon() lays it out: header, then data. */
	px_shm *s;
	if (px_shm_create_anon(&s, 64) == 0 && px_shm_fd(s) >= 0) {
		unsigned char seg[128 + 64];
		if (pread(px_shm_fd(s), seg, sizeof seg, 0) == (ssize_t)sizeof seg)
			bad |= put(dir, "shm", "anon_64", seg, sizeof seg);
		px_shm_close(s);
	}
	return bad;
}
