/*
 * bench/bench_threadpool_tbb.cpp - the oneTBB peer of bench_threadpool:
 * task_group run + wait inside a task_arena limited to the bench's thread
 * count. The waiting thread is one of the arena's threads and runs tasks
 * while it waits, as oneTBB intends.
 */
#include "bench_threadpool_tbb.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

namespace {

std::unique_ptr<tbb::task_arena> arena;

int64_t now_ns()
{
	using namespace std::chrono;
	return duration_cast<nanoseconds>(
		       steady_clock::now().time_since_epoch())
		.count();
}

} // namespace

int px_bench_tbb_init(int threads)
{
	try {
		arena = std::make_unique<tbb::task_arena>(threads);
		arena->initialize();
	} catch (...) {
		return -1;
	}
	return 0;
}

void px_bench_tbb_run_tasks(size_t n, void *counter)
{
	// The C side's _Atomic uint64_t has the layout of std::atomic<uint64_t>
	// (both lock-free 8-byte atomics on this ABI).
	auto *c = static_cast<std::atomic<uint64_t> *>(counter);

	arena->execute([&] {
		tbb::task_group g;
		for (size_t i = 0; i < n; i++)
			// relaxed: the total is read after g.wait(), which
			// synchronizes with every task's completion.
			g.run([c] { c->fetch_add(1, std::memory_order_relaxed); });
		g.wait();
	});
}

int px_bench_tbb_pingpong(size_t n, int64_t *lat)
{
	int bad = 0;

	arena->execute([&] {
		tbb::task_group g;
		for (size_t i = 0; i < n; i++) {
			int64_t in = (int64_t)i, out = -1, t0 = now_ns();

			g.run([&out, in] { out = in + 1; });
			g.wait();
			lat[i] = now_ns() - t0;
			if (out != in + 1)
				bad = 1;
		}
	});
	return bad ? -1 : 0;
}

void px_bench_tbb_fini(void)
{
	arena.reset();
}
