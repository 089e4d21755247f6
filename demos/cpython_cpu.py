#!/usr/bin/env python3
"""demos/cpython_cpu.py - demo_cpu's kernel in pure Python, on CPython's own
executors, so that demo_cpu can put real CPython beside its GIL emulation.

Run by demo_cpu (found next to it); by hand:
    python3 demos/cpython_cpu.py --workers 2 --seconds 0.2

The kernel is demo_cpu's: a chain of 8 splitmix64 finalisers per element,
summed modulo 2**64, over a range cut into 4 tasks per worker. It runs
sequentially, on ThreadPoolExecutor and on ProcessPoolExecutor (pools
started and warmed before the clock starts), in interleaved rounds until
the medians settle or the budget is spent. Prints one JSON object: for each
mode the wall time of every round and the CPU time spent (process time for
the sequential run, the tasks' own thread CPU time for the pools, which
other programs cannot inflate). The three sums must agree.
"""
import argparse
import concurrent.futures as cf
import json
import statistics
import sys
import time

MASK = (1 << 64) - 1
ROUNDS = 8


def kernel(lo, hi):
    s = 0
    for i in range(lo, hi):
        x = i
        for _ in range(ROUNDS):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
            x ^= x >> 31
        s = (s + x) & MASK
    return s


def task(lo, hi):
    c0 = time.thread_time()
    s = kernel(lo, hi)
    return s, time.thread_time() - c0


def noop():
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=0.2,
                    help="sequential time of one measurement")
    ap.add_argument("--budget", type=float, default=4.0)
    ap.add_argument("--min-rounds", type=int, default=3)
    ap.add_argument("--max-rounds", type=int, default=30)
    a = ap.parse_args()
    if a.workers < 1 or a.seconds <= 0:
        ap.error("--workers and --seconds must be positive")

    # Calibrate: elements per second of one thread.
    n = 100
    while True:
        t0 = time.perf_counter()
        kernel(0, n)
        dt = time.perf_counter() - t0
        if dt > 0.02:
            break
        n *= 4
    tasks = 4 * a.workers
    elems = max(tasks, int(n / dt * a.seconds))
    cuts = [(elems * i // tasks, elems * (i + 1) // tasks) for i in range(tasks)]

    def sequential():
        c0 = time.process_time()
        s = 0
        for lo, hi in cuts:
            s = (s + kernel(lo, hi)) & MASK
        return s, time.process_time() - c0

    def on(pool):
        s, cpu = 0, 0.0
        for part, c in pool.map(task, *zip(*cuts)):
            s = (s + part) & MASK
            cpu += c
        return s, cpu

    samples = {"sequential": {"wall": [], "cpu": []},
               "thread": {"wall": [], "cpu": []},
               "process": {"wall": [], "cpu": []}}
    with cf.ThreadPoolExecutor(a.workers) as tp, \
            cf.ProcessPoolExecutor(a.workers) as pp:
        # Start every worker before any timing.
        list(tp.map(lambda _: noop(), range(a.workers)))
        list(pp.map(noop_arg, range(4 * a.workers)))
        modes = [("sequential", sequential), ("thread", lambda: on(tp)),
                 ("process", lambda: on(pp))]
        sums = set()
        start = time.perf_counter()
        last = {}
        for r in range(a.max_rounds):
            for k in range(len(modes)):
                name, fn = modes[(k + r) % len(modes)]
                t0 = time.perf_counter()
                s, cpu = fn()
                samples[name]["wall"].append(time.perf_counter() - t0)
                samples[name]["cpu"].append(cpu)
                sums.add(s)
            stable = r + 1 >= 2
            for name in samples:
                m = statistics.median(samples[name]["wall"])
                if abs(m - last.get(name, 0)) >= 0.03 * m:
                    stable = False
                last[name] = m
            if r + 1 >= a.min_rounds and stable:
                break
            if time.perf_counter() - start >= a.budget and r + 1 >= 1:
                break
    if len(sums) != 1:
        print("cpython_cpu.py: the modes computed different sums", file=sys.stderr)
        return 1
    out = {"python": sys.version.split()[0], "workers": a.workers,
           "tasks": tasks, "elems": elems, "sum": "%016x" % sums.pop()}
    out.update(samples)
    json.dump(out, sys.stdout)
    print()
    return 0


def noop_arg(_):
    return None


if __name__ == "__main__":
    sys.exit(main())
