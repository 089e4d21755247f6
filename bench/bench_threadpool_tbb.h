/*
 * bench/bench_threadpool_tbb.h - the oneTBB peer of bench_threadpool, in C++
 * (bench_threadpool_tbb.cpp) behind a C interface.
 */
#ifndef PX_BENCH_THREADPOOL_TBB_H
#define PX_BENCH_THREADPOOL_TBB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Creates the task arena of `threads` threads (the caller's included).
 * Returns 0, or -1 if oneTBB throws. */
int px_bench_tbb_init(int threads);

/* Runs n tasks, each adding 1 to the _Atomic uint64_t at counter, in one
 * task_group, and waits for them. */
void px_bench_tbb_run_tasks(size_t n, void *counter);

/* n round trips (run one task, wait, read its result); lat[i] in ns.
 * Returns 0, or -1 on a wrong result. */
int px_bench_tbb_pingpong(size_t n, int64_t *lat);

/* Frees the arena. */
void px_bench_tbb_fini(void);

#ifdef __cplusplus
}
#endif

#endif /* PX_BENCH_THREADPOOL_TBB_H */
