#!/usr/bin/env python3
"""demos/cpython_io.py - the seed's URL fetcher on CPython, so that demo_io
can put a real ThreadPoolExecutor beside its GIL emulation.

Run by demo_io (found next to it) against its own loopback server; by hand:
    python3 demos/cpython_io.py --url http://127.0.0.1:8080/ --requests 50

Fetches the URL with urllib.request, sequentially and on a
ThreadPoolExecutor of --workers threads (started before the clock starts),
in interleaved rounds. Prints one JSON object with the wall time per
request of every round for each mode, and the errors seen.
"""
import argparse
import concurrent.futures as cf
import json
import sys
import time
import urllib.request


def fetch(url, timeout):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return len(r.read())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--seq-requests", type=int, default=0,
                    help="requests of the sequential run (default: --requests)")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args()
    nseq = a.seq_requests or a.requests
    fetch(a.url, a.timeout)  # answers at all? (raises otherwise)

    out = {"python": sys.version.split()[0], "workers": a.workers,
           "requests": a.requests, "seq_requests": nseq,
           "sequential": {"per_request": []}, "thread": {"per_request": []}}
    with cf.ThreadPoolExecutor(a.workers) as pool:
        list(pool.map(lambda _: None, range(a.workers)))  # start the threads

        def sequential():
            for _ in range(nseq):
                fetch(a.url, a.timeout)
            return nseq

        def threaded():
            list(pool.map(lambda _: fetch(a.url, a.timeout), range(a.requests)))
            return a.requests

        modes = [("sequential", sequential), ("thread", threaded)]
        for r in range(a.rounds):
            for k in range(len(modes)):
                name, fn = modes[(k + r) % len(modes)]
                t0 = time.perf_counter()
                n = fn()
                out[name]["per_request"].append((time.perf_counter() - t0) / n)
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # one line for demo_io's note
        print(f"cpython_io.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
