/*
 * fuzz/fuzz_ini.c - the INI loader (px_config_load_file, what parex.conf and
 * $PAREX_CONFIG go through): the input is the file. It loads or fails with
 * -EINVAL and a message; a loaded configuration forced to the inline backend
 * makes an executor that opens and closes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <parex/parex.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fd < 0) {
		/* A memfd, reached by path: no disk, nothing left behind. */
		fd = memfd_create("parex-fuzz-ini", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	px_config *cfg;
	if (px_config_create(&cfg))
		return 0;
	int r = px_config_load_file(cfg, path);
	if (r != 0 && r != -EINVAL)
		abort(); /* undocumented result for a readable file */
	if (r == -EINVAL && !px_config_error(cfg)[0])
		abort();
	if (r == 0 && px_config_apply(cfg, "inline", "fuzz") == 0) {
		px_executor *ex;
		if (px_executor_create(&ex, cfg) == 0)
			px_executor_destroy(ex);
	}
	px_config_destroy(cfg);
	return 0;
}
