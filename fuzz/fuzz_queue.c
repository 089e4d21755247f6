/*
 * fuzz/fuzz_queue.c - px_queue_attach on a fuzzed segment, then puts and
 * gets (timeout 0) through the handle while the "peer" rewrites the
 * segment. The segment and the caller's buffer (exactly max_msg bytes) are
 * heap blocks, so AddressSanitizer reports any access outside them.
 *
 * Input: the segment bytes; the last 16 bytes double as the script.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <parex/queue.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEG_MAX (1u << 17)

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
	px_queue *q;
	if (px_queue_attach(&q, mem, seg) != 0) {
		free(mem);
		return 0;
	}
	uint32_t max = px_queue_max_msg(q);
	if (max == 0 || max > PX_QUEUE_MSG_MAX)
		abort();
	unsigned char *buf = malloc(max);
	memset(buf, 0x33, max);
	const uint8_t *script = size >= 16 ? data + size - 16 : data;
	size_t nscript = size >= 16 ? 16 : size;
	for (size_t i = 0; i < nscript; i++) {
		uint8_t op = script[i];
		switch (op & 7) {
		case 0:
		case 1: {
			size_t len = ((size_t)op * 37) % ((size_t)max + 1);
			int rc = px_queue_put(q, buf, len, 0);
			if (rc != 0 && rc != -EAGAIN && rc != -EPIPE && rc != -EINTR)
				abort();
			break;
		}
		case 2:
		case 3: {
			ssize_t rc = px_queue_get(q, buf, max, 0);
			if (rc > (ssize_t)max)
				abort();
			if (rc < 0 && rc != -EAGAIN && rc != PX_EEOF && rc != -EBADMSG &&
			    rc != -EINTR)
				abort();
			break;
		}
		case 4:
			if (px_queue_count(q) > PX_RING_CAPACITY_MAX)
				abort();
			if (op & 8)
				px_queue_close(q);
			else
				px_queue_kick(q);
			break;
		default: {
			size_t span = (op & 8) && seg > 2048 ? 2048 : seg;
			size_t off = ((size_t)op * 2654435761u + i * 131) % span;
			size_t len = seg - off < 8 ? seg - off : 8;
			size_t from = (i * 8) % size;
			size_t avail = size - from < len ? size - from : len;
			memcpy(mem + off, data + from, avail);
			break;
		}
		}
	}
	free(buf);
	px_queue_detach(q);
	free(mem);
	return 0;
}
