#!/usr/bin/env python3
"""bench/bench_threadpool_py.py - the Python reference for bench_threadpool.

Usage: bench_threadpool_py.py TASKS PINGPONG
       bench_threadpool_py.py sporadic N GAP_US...

With concurrent.futures.ThreadPoolExecutor(2): submits TASKS trivial calls
and waits for all of them, then does PINGPONG round trips (submit one, wait
its result). Prints one line: tasks/s, p50 and p99 round trip in us.
In sporadic mode, per gap: N times, sleeps GAP_US, then one round trip
(the workers are idle when it comes); prints "GAP_US P50_US P99_US" lines.
"""
import concurrent.futures as cf
import sys
import time


def inc(x):
    return x + 1


def quantiles(lat):
    lat.sort()
    p50 = lat[len(lat) // 2] * 1e6
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6
    return p50, p99


def sporadic(n, gaps):
    with cf.ThreadPoolExecutor(max_workers=2) as ex:
        cf.wait([ex.submit(inc, i) for i in range(1000)])
        for gap in gaps:
            lat = []
            for i in range(n):
                time.sleep(gap / 1e6)
                s = time.perf_counter()
                if ex.submit(inc, i).result() != i + 1:
                    sys.exit("python: wrong round-trip result")
                lat.append(time.perf_counter() - s)
            p50, p99 = quantiles(lat)
            print(f"{gap} {p50:.2f} {p99:.2f}", flush=True)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "sporadic":
        sporadic(int(sys.argv[2]), [int(g) for g in sys.argv[3:]])
        return
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    pingpong = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    with cf.ThreadPoolExecutor(max_workers=2) as ex:
        # Warm-up: start both workers.
        cf.wait([ex.submit(inc, i) for i in range(1000)])

        t0 = time.perf_counter()
        fs = [ex.submit(inc, i) for i in range(tasks)]
        cf.wait(fs)
        t1 = time.perf_counter()
        if sum(f.result() for f in fs) != tasks * (tasks + 1) // 2:
            sys.exit("python: wrong results")

        lat = []
        for i in range(pingpong):
            s = time.perf_counter()
            if ex.submit(inc, i).result() != i + 1:
                sys.exit("python: wrong round-trip result")
            lat.append(time.perf_counter() - s)
    lat.sort()
    p50 = lat[len(lat) // 2] * 1e6
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6
    print(f"{tasks / (t1 - t0):.0f} {p50:.2f} {p99:.2f}")


if __name__ == "__main__":
    main()
