/*
 * fuzz/fuzz_shm.c - px_shm_open_fd on a segment whose bytes are the input
 * (a memfd): the header is refused with a documented error, or the segment
 * opens and every byte px_shm_size() promises is readable and writable
 * (a size larger than the object would fault).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <parex/shm.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	int fd = memfd_create("parex-fuzz-shm", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	px_shm *s;
	int r = px_shm_open_fd(&s, fd);
	if (r == 0) {
		unsigned char *p = px_shm_data(s);
		size_t n = px_shm_size(s);
		if (!p || n == 0 || n + PX_SHM_ALIGN > size)
			abort(); /* claims more than the object holds */
		unsigned sum = 0;
		for (size_t i = 0; i < n; i += 64)
			sum += p[i];
		p[n - 1] = (unsigned char)sum;
		px_shm_close(s);
	} else if (r != PX_EBADMAGIC && r != PX_EVERSION && r != -EBADMSG &&
		   r != -EAGAIN) {
		abort();
	}
	close(fd);
	return 0;
}
