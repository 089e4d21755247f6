/*
 * fuzz/fuzz_spec.c - the executor spec parser (px_config_apply), as
 * $PAREX_EXECUTOR and px_executor_open() feed it: any bytes either apply or
 * fail with -EINVAL and a message, and the result formats back into a spec
 * that applies again to the same configuration.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <parex/parex.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *spec = malloc(size + 1);
	if (!spec)
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	px_config *cfg;
	if (px_config_create(&cfg)) {
		free(spec);
		return 0;
	}
	int r = px_config_apply(cfg, spec, "fuzz");
	if (r != 0 && r != -EINVAL)
		abort(); /* undocumented result */
	if (r == -EINVAL && !px_config_error(cfg)[0])
		abort(); /* a refusal must say why */
	char out[1024];
	int n = px_config_format(cfg, out, sizeof out);
	if (n < 0)
		abort();
	if ((size_t)n < sizeof out) {
		/* What it formats, it must accept back, to the same result. */
		px_config *again;
		if (px_config_create(&again) == 0) {
			if (px_config_apply(again, out, "format") != 0)
				abort();
			char out2[1024];
			px_config_format(again, out2, sizeof out2);
			if (strcmp(out, out2))
				abort();
			px_config_destroy(again);
		}
	}
	px_config_destroy(cfg);
	free(spec);
	return 0;
}
