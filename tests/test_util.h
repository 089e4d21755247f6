/*
 * tests/test_util.h - small helpers shared by the test programs.
 */
#ifndef PX_TEST_UTIL_H
#define PX_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline int64_t test_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Threads in this process, from /proc/self/status. */
static inline int test_thread_count(void)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	int n = -1;
	while (fp && fgets(line, sizeof(line), fp))
		if (!strncmp(line, "Threads:", 8))
			n = atoi(line + 8);
	if (fp)
		fclose(fp);
	return n;
}

/*
 * Scales a stress size by $PX_TEST_SCALE (default 1; the sanitizer runs in
 * .ci/run set it below 1, since they run 5-20x slower). Never below 1.
 */
static inline long test_scaled(long n)
{
	const char *s = getenv("PX_TEST_SCALE");
	double k = s ? atof(s) : 1.0;
	if (k <= 0)
		k = 1.0;
	long r = (long)((double)n * k);
	return r < 1 ? 1 : r;
}

#endif /* PX_TEST_UTIL_H */
