#!/usr/bin/env python3
"""bench/bench_mpi_py.py - mpi4py.futures, the Python peer of bench_mpi.

Run under the same launcher and rank count as bench_mpi:
  mpirun -n 3 python3 bench/bench_mpi_py.py --out mpi4py.txt
Options: --tasks N, --map N, --pingpong N, --out FILE (as bench_mpi's).

With mpi4py.futures.MPICommExecutor on MPI_COMM_WORLD, rank 0 submits and
ranks 1..N-1 compute "return x + 1":
  (a) submit: --tasks calls, a future each, all waited for; tasks/s, the
      sum checked;
  (b) map: --map records through executor.map with chunksize 256 (the raw
      C loop's batch); records/s;
  (c) ping-pong: submit one, wait its result, --pingpong times; p50 and p99
      in microseconds.
Prints bench_mpi's `name value` lines, and writes them to --out for
`bench_mpi --compare-mpi4py FILE`. Without mpi4py (Debian: python3-mpi4py)
it prints one line and exits 0, writing nothing.
"""
import os
import sys
import time


def inc(x):
    return x + 1


def args():
    opts = {"--tasks": 20000, "--map": 200000, "--pingpong": 2000, "--out": None}
    a = sys.argv[1:]
    if len(a) % 2:
        sys.exit("bench_mpi_py: %s needs a value" % a[-1])
    for k, v in zip(a[::2], a[1::2]):
        if k not in opts:
            sys.exit("bench_mpi_py: unknown option %s" % k)
        opts[k] = v if k == "--out" else int(v)
    if min(opts["--tasks"], opts["--map"], opts["--pingpong"]) < 1:
        sys.exit("bench_mpi_py: sizes must be >= 1")
    return opts


def main():
    o = args()
    try:
        from mpi4py import MPI
        from mpi4py.futures import MPICommExecutor
    except ImportError:
        if os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")) == "0":
            print("# mpi4py: skipped (python3-mpi4py is not installed)")
        return 0
    comm = MPI.COMM_WORLD
    if comm.Get_size() < 2:
        sys.exit("bench_mpi_py: needs at least 2 ranks")
    with MPICommExecutor(comm, root=0) as ex:
        if ex is None:
            return 0  # a worker rank: served until rank 0 left the block
        # Warm-up: the workers are up and have imported this module.
        sum(f.result() for f in [ex.submit(inc, i) for i in range(100)])

        n = o["--tasks"]
        t0 = time.perf_counter()
        fs = [ex.submit(inc, i) for i in range(n)]
        total = sum(f.result() for f in fs)
        submit = n / (time.perf_counter() - t0)
        if total != n * (n + 1) // 2:
            sys.exit("bench_mpi_py: wrong submit sum")

        n = o["--map"]
        t0 = time.perf_counter()
        total = sum(ex.map(inc, range(n), chunksize=256))
        mapr = n / (time.perf_counter() - t0)
        if total != n * (n + 1) // 2:
            sys.exit("bench_mpi_py: wrong map sum")

        lat = []
        for i in range(o["--pingpong"]):
            t0 = time.perf_counter_ns()
            if ex.submit(inc, i).result() != i + 1:
                sys.exit("bench_mpi_py: wrong ping-pong result")
            lat.append(time.perf_counter_ns() - t0)
        lat.sort()
        p50 = lat[len(lat) // 2] / 1e3
        p99 = lat[len(lat) * 99 // 100] / 1e3

    res = [("submit_tasks_per_s", submit), ("map_records_per_s", mapr),
           ("pingpong_p50_us", p50), ("pingpong_p99_us", p99)]
    print("# mpi4py: %d tasks, %d map records, %d ping-pongs"
          % (o["--tasks"], o["--map"], o["--pingpong"]))
    for k, v in res:
        print("%s %.2f" % (k, v))
    if o["--out"]:
        with open(o["--out"], "w") as f:
            for k, v in res:
                f.write("%s %.6f\n" % (k, v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
