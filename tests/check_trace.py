#!/usr/bin/env python3
"""tests/check_trace.py - checks a parex task timeline (Chrome trace-event
JSON, lib/trace.c) the way Perfetto would read it, plus what parex promises.

Run: check_trace.py FILE [--tasks N] [--not-run N] [--crashed N]
                         [--errors N] [--timed-out N] [--cancelled N]
                         [--process] [--io] [--max-worker W]

Checks that FILE parses as JSON with a traceEvents list; that every task
(or I/O operation) appears exactly once (task numbers unique, 0..N-1 when
--tasks is given), with start <= end and submit <= start; that each sits
on its worker's track (tid = worker + 1, named by a thread_name event) and
that tasks on one worker's track are disjoint or nested (one worker runs
one task at a time; a task that waits inside parex may run others on its
stack); the counts of not-run, crashed and failed tasks; with --process,
that every task that ran names its worker's pid. Exits 0, or 1 with one
line per problem.
"""
import argparse
import json
import sys


def fail(problems):
    for p in problems[:20]:
        print("check_trace:", p)
    if len(problems) > 20:
        print("check_trace: ... and %d more" % (len(problems) - 20))
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--tasks", type=int)
    ap.add_argument("--not-run", type=int)
    ap.add_argument("--crashed", type=int)
    ap.add_argument("--errors", type=int)
    ap.add_argument("--timed-out", type=int)
    ap.add_argument("--cancelled", type=int)
    ap.add_argument("--max-worker", type=int)
    ap.add_argument("--process", action="store_true")
    ap.add_argument("--io", action="store_true")
    a = ap.parse_args()

    with open(a.file) as fp:
        try:
            doc = json.load(fp)
        except ValueError as e:
            fail(["%s: not JSON: %s" % (a.file, e)])
    problems = []
    evs = doc.get("traceEvents") if isinstance(doc, dict) else None
    if not isinstance(evs, list):
        fail(["%s: no traceEvents list" % a.file])

    names = {}
    tasks = []  # (task, worker, start_us, end_us, args)
    opened = {}
    for e in evs:
        ph = e.get("ph")
        if ph == "M" and e.get("name") == "thread_name":
            names[e["tid"]] = e["args"]["name"]
        elif ph == "X":
            if a.io:
                problems.append("complete event in an I/O trace: %r" % e)
            tasks.append((e["args"]["task"], e["tid"], e["ts"],
                          e["ts"] + e["dur"], e["args"]))
            if e["dur"] < 0:
                problems.append("task %s ends before it starts" % e["args"]["task"])
        elif ph == "b":
            if e["id"] in opened:
                problems.append("operation %s begins twice" % e["id"])
            opened[e["id"]] = e
        elif ph == "e":
            b = opened.pop(e["id"], None)
            if b is None:
                problems.append("operation %s ends without a begin" % e["id"])
                continue
            tasks.append((b["args"]["task"], b["tid"], b["ts"], e["ts"],
                          b["args"]))
            if e["ts"] < b["ts"]:
                problems.append("operation %s ends before it starts" % e["id"])
    for i in opened:
        problems.append("operation %s never ends" % i)

    seen = {}
    for t, tid, start, end, args in tasks:
        if t in seen:
            problems.append("task %s appears twice" % t)
        seen[t] = True
        if tid != args["worker"] + 1:
            problems.append("task %s: tid %s is not worker %s's track"
                            % (t, tid, args["worker"]))
        if tid not in names:
            problems.append("task %s: track %s has no name" % (t, tid))
        if "submit_us" in args and args["submit_us"] > start + 0.001:
            problems.append("task %s starts before it was submitted" % t)
        if a.max_worker is not None and args["worker"] > a.max_worker:
            problems.append("task %s on worker %s" % (t, args["worker"]))
        if a.process and args["worker"] >= 0 and not args.get("pid"):
            problems.append("task %s: no worker pid" % t)
    if a.tasks is not None:
        if len(tasks) != a.tasks:
            problems.append("%d tasks in the trace, expected %d"
                            % (len(tasks), a.tasks))
        if sorted(seen) != list(range(a.tasks)):
            problems.append("task numbers are not 0..%d" % (a.tasks - 1))

    def count(pred):
        return sum(1 for t in tasks if pred(t[4]))
    for want, what, pred in (
            (a.not_run, "not run", lambda g: g["worker"] < 0),
            (a.crashed, "crashed", lambda g: g["outcome"] == "crashed"),
            (a.errors, "failed", lambda g: g["outcome"] == "error"),
            (a.timed_out, "timed out", lambda g: g["outcome"] == "timed out"),
            (a.cancelled, "cancelled", lambda g: g["outcome"] == "cancelled")):
        if want is not None and count(pred) != want:
            problems.append("%d tasks %s, expected %d" % (count(pred), what, want))

    if not a.io:
        # One worker runs one task at a time: on a worker's track, tasks
        # are disjoint or nested, never overlapping.
        by_tid = {}
        for t in tasks:
            if t[1] > 0:
                by_tid.setdefault(t[1], []).append(t)
        for tid, ts in by_tid.items():
            ts.sort(key=lambda t: (t[2], -t[3]))
            stack = []
            for t in ts:
                while stack and stack[-1][3] <= t[2]:
                    stack.pop()
                if stack and t[3] > stack[-1][3]:
                    problems.append("tasks %s and %s overlap on track %s"
                                    % (stack[-1][0], t[0], names.get(tid, tid)))
                stack.append(t)
    if problems:
        fail(problems)
    print("check_trace: %s: %d tasks, %d tracks" % (a.file, len(tasks), len(names)))


if __name__ == "__main__":
    main()
