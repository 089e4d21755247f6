/*
 * lib/error.c - px_strerror(): a name for every code parex returns.
 */
#include <parex/common.h>
#include <string.h>

#include "px_build_config.h"

struct px_errtext {
	int code;
	const char *text;
};

/* parex's own codes; errno values fall through to strerrordesc_np(). */
static const struct px_errtext px_codes[] = {
	{ PX_EWORKERDIED, "worker process died while running the task" },
	{ PX_ESHUTDOWN, "executor is shut down" },
	{ PX_EBADMAGIC, "shared segment has a wrong magic number" },
	{ PX_EVERSION, "version mismatch (shared segment layout, or program build between MPI ranks)" },
	{ PX_EEOF, "end of stream" },
	{ PX_ENOBACKEND, "backend not built into this library" },
	/* ipc: -4020 .. -4039 */
	/* io: -4040 .. -4059 */
	{ PX_EFORKED, "I/O context belongs to the parent process (fork)" },
	/* procpool: -4060 .. -4079 */
};

PX_API const char *px_strerror(int err)
{
	if (err == 0)
		return "success";
	for (size_t i = 0; i < sizeof(px_codes) / sizeof(px_codes[0]); i++)
		if (px_codes[i].code == err)
			return px_codes[i].text;
	if (err < 0 && err > -4000) {
		/* strerrordesc_np is thread-safe and returns a static string. */
		const char *s = strerrordesc_np(-err);
		if (s)
			return s;
	}
	return "unknown error";
}

PX_API const char *px_version(void)
{
	return PX_VERSION_STRING;
}
