/*
 * tests/test_ipc_common.h - helpers shared by the ipc tests: stress scale,
 * forking children that report through their exit status, shared memory
 * for their results.
 */
#ifndef PX_TEST_IPC_COMMON_H
#define PX_TEST_IPC_COMMON_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* PX_TEST_SCALE (default 1) scales stress sizes; never below min. */
static inline uint64_t ipc_scaled(uint64_t n, uint64_t min)
{
	const char *s = getenv("PX_TEST_SCALE");
	double f = s ? strtod(s, NULL) : 1.0;
	if (!(f > 0))
		f = 1.0;
	uint64_t v = (uint64_t)((double)n * f);
	return v < min ? min : v;
}

/* Shared, zero-filled memory inherited by children (MAP_SHARED). */
static inline void *ipc_shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static inline void ipc_shared_free(void *p, size_t size)
{
	if (p)
		munmap(p, size);
}

/*
 * Forks a child that runs fn(arg) and _exit()s with its return value
 * (0 = success; the child reports failures as small positive codes).
 * The child dies with its parent. Returns the pid, or -1.
 */
static inline pid_t ipc_fork(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(fn(arg));
	return pid;
}

/* Waits for pid: its exit status, or 128 + signal, or -1 on error. */
static inline int ipc_wait(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

/* Waits up to ms for pid: its status as ipc_wait gives it; on time-out kills
 * it and returns -2. */
static inline int ipc_wait_ms(pid_t pid, int ms)
{
	for (int i = 0; i < ms; i++) {
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st)
					     : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		if (w < 0 && errno != EINTR)
			return -1;
		usleep(1000);
	}
	kill(pid, SIGKILL);
	ipc_wait(pid);
	return -2;
}

/*
 * Waits until process pid sleeps (state 'S' in /proc/PID/stat): a child
 * whose only possible sleep is a futex wait has then parked. Returns true,
 * or false after about 10 s.
 */
static inline bool ipc_wait_sleeping(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 10000; i++) {
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
		if (f)
			fclose(f);
		buf[n] = '\0';
		char *p = strrchr(buf, ')');
		if (p && p[1] == ' ' && p[2] == 'S')
			return true;
		usleep(1000);
	}
	return false;
}

/* Map an expected negative code to a child's exit status: 0 when equal,
 * else 1..99 plus the low bits of the surprise for debugging. */
static inline int ipc_expect(int got, int want)
{
	if (got == want)
		return 0;
	return 1 + ((-got) % 99);
}

#endif /* PX_TEST_IPC_COMMON_H */
