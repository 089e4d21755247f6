#!/usr/bin/env python3
"""bench/bench_procpool_py.py - the Python reference for bench_procpool.

Usage: bench_procpool_py.py SUBMIT MAP1 MAP256 PINGPONG
       bench_procpool_py.py sporadic N GAP_US...

With concurrent.futures.ProcessPoolExecutor(2): submits SUBMIT trivial calls
(a future each) and waits for all; maps over MAP1 items with chunksize 1 and
over MAP256 items with chunksize 256; then does PINGPONG round trips (submit
one, wait its result). Prints one line: submit tasks/s, map chunksize 1
items/s, map chunksize 256 items/s, p50 and p99 round trip in us.
In sporadic mode, per gap: N times, sleeps GAP_US, then one round trip
(the workers are idle when it comes); prints "GAP_US P50_US P99_US" lines.
"""
import concurrent.futures as cf
import sys
import time


def inc(x):
    return x + 1


def sporadic(n, gaps):
    with cf.ProcessPoolExecutor(max_workers=2) as ex:
        cf.wait([ex.submit(inc, i) for i in range(200)])
        for gap in gaps:
            lat = []
            for i in range(n):
                time.sleep(gap / 1e6)
                s = time.perf_counter()
                if ex.submit(inc, i).result() != i + 1:
                    sys.exit("python: wrong round-trip result")
                lat.append(time.perf_counter() - s)
            lat.sort()
            p50 = lat[len(lat) // 2] * 1e6
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6
            print(f"{gap} {p50:.2f} {p99:.2f}", flush=True)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "sporadic":
        sporadic(int(sys.argv[2]), [int(g) for g in sys.argv[3:]])
        return
    n_submit, n_map1, n_map256, n_ping = (int(a) for a in sys.argv[1:5])
    with cf.ProcessPoolExecutor(max_workers=2) as ex:
        # Warm-up: start both workers.
        cf.wait([ex.submit(inc, i) for i in range(200)])

        t0 = time.perf_counter()
        fs = [ex.submit(inc, i) for i in range(n_submit)]
        cf.wait(fs)
        t1 = time.perf_counter()
        if sum(f.result() for f in fs) != n_submit * (n_submit + 1) // 2:
            sys.exit("python: wrong submit results")
        submit_tps = n_submit / (t1 - t0)

        rates = []
        for n, chunk in ((n_map1, 1), (n_map256, 256)):
            t0 = time.perf_counter()
            total = sum(ex.map(inc, range(n), chunksize=chunk))
            t1 = time.perf_counter()
            if total != n * (n + 1) // 2:
                sys.exit("python: wrong map results")
            rates.append(n / (t1 - t0))

        lat = []
        for i in range(n_ping):
            s = time.perf_counter()
            if ex.submit(inc, i).result() != i + 1:
                sys.exit("python: wrong round-trip result")
            lat.append(time.perf_counter() - s)
    lat.sort()
    p50 = lat[len(lat) // 2] * 1e6
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6
    print(f"{submit_tps:.0f} {rates[0]:.0f} {rates[1]:.0f} {p50:.2f} {p99:.2f}")


if __name__ == "__main__":
    main()
