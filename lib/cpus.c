/*
 * lib/cpus.c - how many CPUs this process may use: its affinity mask, capped
 * by the CPU quota (cpu.max) of its cgroup v2 and the cgroups above it. The
 * default worker count (workers = auto).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor_internal.h"

/* A decimal number of at most 19 digits, nothing else. */
static bool parse_dec(const char *s, unsigned long long *out)
{
	size_t n = strlen(s);
	if (n == 0 || n > 19 || strspn(s, "0123456789") != n)
		return false;
	*out = strtoull(s, NULL, 10);
	return true;
}

int px__cpu_max_parse(const char *text, int *cpus)
{
	char quota[32], period[32];
	unsigned long long q, p;
	int used = 0;
	if (!text || sscanf(text, "%31s %31s%n", quota, period, &used) != 2)
		return -EINVAL;
	for (const char *c = text + used; *c; c++)
		if (!isspace((unsigned char)*c))
			return -EINVAL;
	if (!parse_dec(period, &p) || p == 0)
		return -EINVAL;
	if (!strcmp(quota, "max")) {
		*cpus = 0;
		return 0;
	}
	if (!parse_dec(quota, &q))
		return -EINVAL;
	unsigned long long n = q / p + (q % p != 0);
	*cpus = n < 1 ? 1 : n > INT_MAX ? INT_MAX : (int)n;
	return 0;
}

/* CPUs in this thread's affinity mask; 0 if it cannot be read. */
static int affinity_cpus(void)
{
	for (size_t n = 1024; n <= (1u << 20); n *= 2) {
		cpu_set_t *set = CPU_ALLOC(n);
		if (!set)
			return 0;
		size_t size = CPU_ALLOC_SIZE(n);
		int r = sched_getaffinity(0, size, set);
		int count = r == 0 ? CPU_COUNT_S(size, set) : 0;
		int e = errno;
		CPU_FREE(set);
		if (r == 0)
			return count;
		if (e != EINVAL)
			return 0;
	}
	return 0;
}

/*
 * The smallest cpu.max cap from this process's cgroup v2 up to the root of
 * the hierarchy mounted on /sys/fs/cgroup; 0 if none (no cgroup v2, "max"
 * all the way, or unreadable).
 */
static int cgroup_cpus(void)
{
	FILE *fp = fopen("/proc/self/cgroup", "re");
	if (!fp)
		return 0;
	char line[4096], dir[4096 + 32] = "";
	while (fgets(line, sizeof(line), fp))
		if (!strncmp(line, "0::", 3)) { /* the v2 entry */
			line[strcspn(line, "\n")] = 0;
			snprintf(dir, sizeof(dir), "/sys/fs/cgroup%s", line + 3);
			break;
		}
	fclose(fp);
	int best = 0;
	size_t root = strlen("/sys/fs/cgroup");
	while (dir[0] && strlen(dir) >= root) {
		char path[sizeof(dir) + 16], text[128];
		snprintf(path, sizeof(path), "%s/cpu.max", dir);
		FILE *f = fopen(path, "re");
		int cpus;
		if (f) {
			if (fgets(text, sizeof(text), f) &&
			    px__cpu_max_parse(text, &cpus) == 0 && cpus &&
			    (!best || cpus < best))
				best = cpus;
			fclose(f);
		}
		char *slash = strrchr(dir, '/');
		if (!slash || (size_t)(slash - dir) < root)
			break;
		*slash = 0;
	}
	return best;
}

PX_API int px_available_parallelism(void)
{
	int n = affinity_cpus();
	if (n < 1) {
		long online = sysconf(_SC_NPROCESSORS_ONLN);
		n = online < 1 ? 1 : online > INT_MAX ? INT_MAX : (int)online;
	}
	int cap = cgroup_cpus();
	return cap && cap < n ? cap : n;
}
