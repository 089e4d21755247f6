#!/usr/bin/env python3
"""bench/test_summarize.py - checks bench/summarize.py on made-up results.

Run by ctest (test_bench_summarize). The figures are invented, so every
ratio, verdict and round count below is known in advance: medians, the
better of two peers, a missing peer, a target exactly on its bound, a busy
machine, and lines that are not results.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

MACHINE = """date 2026-01-01 00:00:00 UTC
cpus 2
model Test CPU
kernel Linux 6.1 x86_64
mode quick, 3 rounds
commit abc1234
load_before 0.10 0.20 0.30
bench bench_threadpool 10.0 15.0 4.0 1.0
skipped bench_channel not built
load_after 0.40 0.50 0.60
total 100.0 150.0 40.0 10.0
"""

RESULTS = """RESULT tp.tiny_tasks parex 10 tasks/s
RESULT tp.tiny_tasks parex 12 tasks/s
RESULT tp.tiny_tasks parex 11 tasks/s
RESULT tp.tiny_tasks glib 4 tasks/s
RESULT tp.tiny_tasks glib 5 tasks/s
RESULT tp.tiny_tasks glib 6 tasks/s
RESULT tp.tiny_tasks python 1 tasks/s
not a result line
RESULT tp.tiny_tasks parex notanumber tasks/s
RESULT ring.mpmc_1p_single parex 2 M/s
RESULT ring.mpmc_1p_single ck_ring 1 M/s
RESULT ring.mpmc_1p_single rte_ring 3 M/s
RESULT io.sleeps_10k parex 30 ms
RESULT io.sleeps_10k liburing 25 ms
RESULT pp.pingpong_p50 parex 10 us
RESULT pp.pingpong_p50 pipe 20 us
"""


def row(table, label):
    for line in table.splitlines():
        if line.startswith("| " + label + " |"):
            return [c.strip() for c in line.strip("|").split("|")]
    raise AssertionError(f"no row {label!r} in:\n{table}")


def main():
    failures = []

    def check(what, got, want):
        if got != want:
            failures.append(f"{what}: got {got!r}, want {want!r}")

    with tempfile.TemporaryDirectory() as d:
        m, r = os.path.join(d, "machine.txt"), os.path.join(d, "results.txt")
        with open(m, "w") as f:
            f.write(MACHINE)
        with open(r, "w") as f:
            f.write(RESULTS)
        p = subprocess.run([sys.executable, os.path.join(HERE, "summarize.py"), m, r],
                           capture_output=True, text=True, check=False)
    check("exit status", p.returncode, 0)
    out = p.stdout
    # columns: target, measure, parex median/min/max, peer, its median/min/max,
    # unit, ratio, target, verdict, rounds
    g = row(out, "thread pool: tiny tasks vs GLib")
    check("glib: parex median, min, max", g[2:5], ["11.0", "10.0", "12.0"])
    check("glib: peer and median", g[5:7], ["glib", "5.00"])
    check("glib: ratio, target, verdict", g[10:13], ["2.2x", ">= 2x", "met"])
    check("glib: rounds (10/4, 12/5 met; 11/6 not)", g[13], "2/3")
    u = row(out, "thread pool: tiny tasks vs libuv")
    check("libuv absent", u[12], "n/a (not measured)")
    b = row(out, "ring: MPMC 1P/1C vs the better peer")
    check("better peer is the faster one", b[5], "rte_ring")
    check("MPMC verdict", b[10:13], ["0.667x", ">= 1x", "**missed**"])
    io = row(out, "io (a): px_wait(ALL) on 10,000 sleeps vs liburing")
    check("on the bound is met", io[10:13], ["1.2x", "<= 1.2x", "met"])
    pp = row(out, "process pool: ping-pong p50 vs pipe")
    check("time ratio above target", pp[10:13], ["0.5x", "<= 0.25x", "**missed**"])
    check("python in the other measures",
          "| `tp.tiny_tasks` | python | 1.00 | 1.00 | 1.00 | tasks/s | 1 |" in out, True)
    check("busy machine said", "busy machine, not results" in out, True)
    check("load shown", "before 0.10 0.20 0.30, after 0.40 0.50 0.60" in out, True)
    check("CPU shares", "other processes 40 s (20%), stolen by the hypervisor 10 s (5%)" in out,
          True)
    check("skipped benchmark listed", "skipped: bench_channel not built" in out, True)
    check("targets counted", "Targets: 2 met, 2 missed, 31 not measured." in out, True)
    # --compare: two runs; the second halves parex's tiny-task rate, so
    # GLib's target holds in run 1 only.
    with tempfile.TemporaryDirectory() as d:
        for run, scale in (("1", 1), ("2", 0.5)):
            os.mkdir(os.path.join(d, run))
            with open(os.path.join(d, run, "machine.txt"), "w") as f:
                f.write(MACHINE)
            lines = []
            for line in RESULTS.splitlines():
                w = line.split()
                if len(w) == 5 and w[1] == "tp.tiny_tasks" and w[2] == "parex":
                    try:
                        w[3] = f"{float(w[3]) * scale:g}"
                    except ValueError:
                        pass
                lines.append(" ".join(w))
            with open(os.path.join(d, run, "results.txt"), "w") as f:
                f.write("\n".join(lines) + "\n")
        c = subprocess.run([sys.executable, os.path.join(HERE, "summarize.py"), "--compare",
                            os.path.join(d, "1"), os.path.join(d, "2")],
                           capture_output=True, text=True, check=False)
    check("compare: exit status", c.returncode, 0)
    cg = row(c.stdout, "thread pool: tiny tasks vs GLib")
    check("compare: GLib in two runs", cg[1:], ["glib", "2.2x", "1.1x (missed)", ">= 2x", "**no**"])
    ci = row(c.stdout, "io (a): px_wait(ALL) on 10,000 sleeps vs liburing")
    check("compare: io held", ci[2:], ["1.2x", "1.2x", "<= 1.2x", "yes"])
    cu = row(c.stdout, "thread pool: tiny tasks vs libuv")
    check("compare: absent peer", cu[5], "not measured")
    check("compare: machine lines", c.stdout.count("- run "), 2)
    if failures:
        print("\n".join(failures))
        print(out)
        print(c.stdout)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
