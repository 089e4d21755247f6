#!/usr/bin/env python3
"""bench/summarize.py - one markdown table of benchmark results and targets.

Usage: summarize.py MACHINE_TXT RESULTS_TXT > summary.md

RESULTS_TXT holds "RESULT measure peer value unit" lines (bench/bench_util.h),
one per measure, peer and round, in round order. MACHINE_TXT is what
bench/run_all.sh wrote about the machine and its load. For every target in
TARGETS the table gives parex's median, min and max over rounds, the peer's,
the ratio of the medians (parex / peer, in the measure's unit), the target,
met or missed, and in how many rounds the round's own ratio met it. Measures
without a target follow in a second table.

With --compare RUN1_DIR RUN2_DIR (two run_all.sh output folders) it prints
one table of every target's ratio in both runs and whether it held in both:
a target counts as met only then. README's performance section is that
table.
"""
import os
import statistics
import sys

# (label, measure, parex's peer name, peer name or [names: the better one],
#  comparison of parex / peer, target ratio). Throughputs are rates (higher
# is better, ">="), latencies and times are durations ("<=").
TARGETS = [
    ("thread pool: tiny tasks vs GLib", "tp.tiny_tasks", "parex", "glib", ">=", 2),
    ("thread pool: tiny tasks vs libuv", "tp.tiny_tasks", "parex", "libuv", ">=", 2),
    ("thread pool: tiny tasks vs oneTBB", "tp.tiny_tasks", "parex", "onetbb", ">=", 2),
    ("thread pool: tiny tasks vs OpenMP", "tp.tiny_tasks", "parex", "openmp", ">=", 1),
    ("thread pool: round trip p50 vs GLib", "tp.round_trip_p50", "parex", "glib", "<=", 0.1),
    ("process pool: submit vs naive pipe pool", "pp.submit", "parex", "naive_pipe", ">=", 3),
    ("process pool: submit vs Python", "pp.submit", "parex", "python", ">=", 150),
    ("process pool: map vs batched pipe pool", "pp.map", "parex", "batched_pipe", ">=", 1),
    ("process pool: map_stream vs the array map", "pp.map_stream", "parex",
     "parex_array_map", ">=", 0.8),
    ("process pool: ping-pong p50 vs pipe", "pp.pingpong_p50", "parex", "pipe", "<=", 0.25),
    ("ring: SPSC vs ck_ring", "ring.spsc_1p_single", "parex", "ck_ring", ">=", 1),
    ("ring: SPSC burst-32 vs rte_ring", "ring.spsc_1p_burst", "parex", "rte_ring", ">=", 1),
    ("ring: MPMC 1P/1C vs the better peer", "ring.mpmc_1p_single", "parex",
     ["ck_ring", "rte_ring"], ">=", 1),
    ("io (a): px_wait(ALL) on 10,000 sleeps vs liburing", "io.sleeps_10k", "parex",
     "liburing", "<=", 1.2),
    ("io (b): 200 exchanges vs liburing", "io.exchanges_200", "parex", "liburing", "<=", 1.15),
    ("io (c): reads, callback refill vs liburing", "io.reads_qd32", "parex_callbacks",
     "liburing", "<=", 1.15),
    ("io (c): reads, px_wait per 32 vs liburing", "io.reads_qd32", "parex_wait32",
     "liburing", "<=", 1.3),
]
for bench, what in (("tp", "thread pool"), ("pp", "process pool"), ("ring", "ring")):
    for gap in (200, 1000, 5000):
        for q in ("p50", "p99"):
            TARGETS.append((f"{what}: idle wake {q}, gap {gap} us, vs pipe",
                            f"{bench}.idle_wake_{gap}us_{q}", "parex", "pipe", "<=", 1))


def read_results(path):
    """{(measure, peer): ([values in round order], unit)}"""
    res = {}
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) != 5 or w[0] != "RESULT":
                continue
            try:
                v = float(w[3])
            except ValueError:
                continue
            res.setdefault((w[1], w[2]), ([], w[4]))[0].append(v)
    return res


def read_machine(path):
    info, benches, notes = {}, [], []
    with open(path) as f:
        for line in f:
            key, _, rest = line.rstrip("\n").partition(" ")
            if key == "bench":
                benches.append(rest.split())
            elif key in ("skipped", "failed"):
                notes.append(f"{key}: {rest}")
            else:
                info[key] = rest
    return info, benches, notes


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 100000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def stats(vals):
    return statistics.median(vals), min(vals), max(vals)


def meets(r, op, target):
    return r >= target if op == ">=" else r <= target


def pct(x, total):
    return f"{100.0 * x / total:.0f}%" if total > 0 else "-"


def target_ratio(res, measure, me, peer, op):
    """(peer name, ratio of medians or None) for one target."""
    if isinstance(peer, list):
        best = None
        for pn in peer:
            if (measure, pn) in res:
                m = statistics.median(res[(measure, pn)][0])
                if best is None or (m > best[1] if op == ">=" else m < best[1]):
                    best = (pn, m)
        pname = best[0] if best else "/".join(peer)
    else:
        pname = peer
    mine, theirs = res.get((measure, me)), res.get((measure, pname))
    if not mine or not theirs:
        return pname, None
    pm = statistics.median(theirs[0])
    if pm <= 0:
        return pname, None
    return pname, statistics.median(mine[0]) / pm


def compare(dir1, dir2):
    """Markdown: every target's ratio in two runs of run_all.sh, and whether
    it held in both (the README's performance table)."""
    runs = []
    for d in (dir1, dir2):
        info, _, _ = read_machine(os.path.join(d, "machine.txt"))
        runs.append((info, read_results(os.path.join(d, "results.txt"))))
    out = []
    p = out.append
    for i, (info, _) in enumerate(runs, 1):
        tot = info.get("total", "").split()
        ncpu = int(info.get("cpus", "1") or 1)
        busy = ""
        if len(tot) == 4:
            wall, _, other, steal = (float(x) for x in tot)
            cap = wall * ncpu
            busy = (f"; other processes {pct(other, cap)}, stolen {pct(steal, cap)} "
                    "of the CPUs")
        p(f"- run {i}: {info.get('date', '?')}, {info.get('mode', '')}, commit "
          f"{info.get('commit', '?')}; {ncpu} CPUs, {info.get('model', '?')}, "
          f"{info.get('kernel', '?')}; load before {info.get('load_before', '?')}, "
          f"after {info.get('load_after', '?')}{busy}")
    p("")
    p("| target | peer | run 1 | run 2 | target | held in both runs |")
    p("|---|---|---|---|---|---|")
    n_held = n_missed = 0
    for label, measure, me, peer, op, target in TARGETS:
        cells, oks, pname = [], [], None
        for _, res in runs:
            pname, r = target_ratio(res, measure, me, peer, op)
            if r is None:
                cells.append("-")
                oks.append(None)
            else:
                ok = meets(r, op, target)
                cells.append(f"{r:.3g}x" + ("" if ok else " (missed)"))
                oks.append(ok)
        if None in oks:
            verdict = "not measured"
        elif all(oks):
            verdict = "yes"
            n_held += 1
        else:
            verdict = "**no**"
            n_missed += 1
        p(f"| {label} | {pname} | {cells[0]} | {cells[1]} | {op} {target:g}x | {verdict} |")
    p("")
    p(f"Held in both runs: {n_held} targets; missed in at least one: {n_missed}.")
    print("\n".join(out))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) != 3:
        sys.exit("usage: summarize.py MACHINE_TXT RESULTS_TXT\n"
                 "       summarize.py --compare RUN1_DIR RUN2_DIR")
    info, benches, notes = read_machine(sys.argv[1])
    res = read_results(sys.argv[2])
    ncpu = int(info.get("cpus", "1") or 1)
    out = []
    p = out.append
    p("# parex benchmarks: summary")
    p("")
    p(f"- date: {info.get('date', '?')}; {info.get('mode', '')}; commit {info.get('commit', '?')}")
    p(f"- machine: {ncpu} CPUs, {info.get('model', '?')}; {info.get('kernel', '?')}")
    p(f"- load average (1, 5, 15 min): before {info.get('load_before', '?')}, "
      f"after {info.get('load_after', '?')}")
    tot = info.get("total", "").split()
    if len(tot) == 4:
        wall, ours, other, steal = (float(x) for x in tot)
        cap = wall * ncpu
        p(f"- CPU during the run ({wall:.0f} s wall x {ncpu} CPUs = {cap:.0f} CPU-s): "
          f"benchmarks {ours:.0f} s ({pct(ours, cap)}), other processes {other:.0f} s "
          f"({pct(other, cap)}), stolen by the hypervisor {steal:.0f} s ({pct(steal, cap)})")
        if other + steal > 0.1 * cap:
            p("- **other processes or the hypervisor took more than 10% of the CPUs: "
              "these figures are from a busy machine, not results**")
    for n in notes:
        p(f"- {n}")
    p("")
    p("Ratio: median of parex / median of the peer, in the measure's unit (rates: higher "
      "is better; times: lower is better). Rounds: in how many rounds that round's own "
      "ratio met the target.")
    p("")
    p("| target | measure | parex median | min | max | peer | peer median | min | max "
      "| unit | ratio | target | verdict | rounds |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    used = set()
    n_met = n_missed = n_na = 0
    for label, measure, me, peer, op, target in TARGETS:
        mine = res.get((measure, me))
        if isinstance(peer, list):
            # the better peer by its median
            cands = [(pn, res[(measure, pn)]) for pn in peer if (measure, pn) in res]
            best = None
            for pn, (vals, unit) in cands:
                m = statistics.median(vals)
                better = best is None or (m > best[1] if op == ">=" else m < best[1])
                if better:
                    best = (pn, m)
            pname = best[0] if best else "/".join(peer)
            for pn in peer:
                used.add((measure, pn))
        else:
            pname = peer
            used.add((measure, peer))
        used.add((measure, me))
        theirs = res.get((measure, pname))
        row = [label, f"`{measure}`"]
        if mine:
            row += [fmt(x) for x in stats(mine[0])]
        else:
            row += ["-", "-", "-"]
        row.append(pname)
        if theirs:
            row += [fmt(x) for x in stats(theirs[0])]
        else:
            row += ["-", "-", "-"]
        row.append((mine or theirs or ([], "-"))[1])
        tgt = f"{op} {target:g}x"
        if not mine or not theirs:
            row += ["-", tgt, "n/a (not measured)", "-"]
            n_na += 1
        else:
            mm, pm = statistics.median(mine[0]), statistics.median(theirs[0])
            if pm <= 0:
                row += ["-", tgt, "n/a (peer 0)", "-"]
                n_na += 1
            else:
                r = mm / pm
                ok = meets(r, op, target)
                pairs = list(zip(mine[0], theirs[0]))
                k = sum(1 for a, b in pairs if b > 0 and meets(a / b, op, target))
                row += [f"{r:.3g}x", tgt, "met" if ok else "**missed**", f"{k}/{len(pairs)}"]
                if ok:
                    n_met += 1
                else:
                    n_missed += 1
        p("| " + " | ".join(row) + " |")
    p("")
    p(f"Targets: {n_met} met, {n_missed} missed, {n_na} not measured.")
    p("")
    rest = sorted(k for k in res if k not in used)
    if rest:
        p("Other measures (no target; references and peers):")
        p("")
        p("| measure | peer | median | min | max | unit | rounds |")
        p("|---|---|---|---|---|---|---|")
        for measure, peer in rest:
            vals, unit = res[(measure, peer)]
            md, lo, hi = stats(vals)
            p(f"| `{measure}` | {peer} | {fmt(md)} | {fmt(lo)} | {fmt(hi)} | {unit} | {len(vals)} |")
        p("")
    if benches:
        p("Per benchmark (CPU-seconds; other = CPU busy time not used by the benchmarks):")
        p("")
        p("| benchmark | wall s | benchmark CPU s | other processes CPU s | stolen s |")
        p("|---|---|---|---|---|")
        for b in benches:
            if len(b) == 5:
                p(f"| {b[0]} | {b[1]} | {b[2]} | {b[3]} | {b[4]} |")
        p("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
