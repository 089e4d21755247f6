#!/usr/bin/env python3
"""tests/test_demos.py - runs the demos with tiny sizes and checks what they
promise: exit 0, a table and a computed verdict on stdout, a CSV with the
expected columns (every row complete, numbers where numbers belong), valid
JSON, one-line errors with a non-zero exit for bad input, and the executor
taken from $PAREX_EXECUTOR or parex.conf. Never checks timings.

Usage: test_demos.py DEMO_DIR CASE   (CASE: cpu, io, io_refused, race,
       pipeline, badinput, config, plot, options, json_url, nopython,
       cpython_workers,
       report)
The report case also renders report.html with headless chromium where it
is installed (and says SKIP otherwise).
"""
import csv
import html.parser
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib

COLUMNS = {
    "demo_cpu": ["backend", "workers", "tasks", "task_us", "runs", "wall_s",
                 "speedup", "speedup_lo", "speedup_hi", "cpus_used",
                 "efficiency", "cpu_s", "ovh_us", "ovh_noise_us",
                 "peak_rss_mb", "procs", "threads", "start_ms", "balance"],
    "demo_io": ["mode", "requests", "concurrency", "runs", "wall_s", "speedup",
                "speedup_lo", "speedup_hi", "req_per_s", "cpu_s", "cpu_us_per_req", "peak_rss_mb",
                "threads", "procs", "errors", "server_peak_conns", "balance"],
    "demo_race": ["workers_kind", "sync", "workers", "expected", "count",
                  "lost", "lost_pct", "wall_ms", "ns_per_inc"],
    "demo_pipeline": ["workers_kind", "producers", "consumers", "items",
                      "item_bytes", "wall_s", "items_per_s", "mb_per_s",
                      "cpu_s", "received", "missing", "duplicates",
                      "malformed", "out_of_order", "queued_at_close"],
}
TEXT = {"backend", "mode", "workers_kind", "sync"}

demo_dir = sys.argv[1]
case = sys.argv[2]
tmp = tempfile.mkdtemp(prefix="px-test-demos-")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def run(demo, args, env=None, cwd=None, timeout=120):
    full_env = dict(os.environ)
    # The demos must not pick up a configuration from the test environment.
    for k in ("PAREX_EXECUTOR", "PAREX_CONFIG", "PAREX_DEMO_PYTHON"):
        full_env.pop(k, None)
    full_env.update(env or {})
    cmd = [os.path.join(demo_dir, demo)] + args
    print("$", " ".join(cmd), flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env,
                       cwd=cwd or tmp, timeout=timeout)
    sys.stdout.write(p.stdout)
    sys.stdout.write(p.stderr)
    return p


def check_csv(demo, path, min_rows):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != COLUMNS[demo]:
        fail(f"{demo}: CSV header {rows[0] if rows else None} != {COLUMNS[demo]}")
        return []
    out = []
    for r in rows[1:]:
        if len(r) != len(COLUMNS[demo]):
            fail(f"{demo}: CSV row with {len(r)} fields: {r}")
            continue
        rec = dict(zip(COLUMNS[demo], r))
        for k, v in rec.items():
            if k in TEXT:
                if not v:
                    fail(f"{demo}: empty {k}")
            elif v != "":
                try:
                    float(v)
                except ValueError:
                    fail(f"{demo}: column {k} is not a number: {v!r}")
        out.append(rec)
    if len(out) < min_rows:
        fail(f"{demo}: {len(out)} CSV rows, expected at least {min_rows}")
    return out


def check_ok(demo, args, min_rows, env=None, cwd=None):
    c = os.path.join(tmp, demo + ".csv")
    j = os.path.join(tmp, demo + ".json")
    for f in (c, j):
        if os.path.exists(f):
            os.unlink(f)
    p = run(demo, args + ["--csv", c, "--json", j], env=env, cwd=cwd)
    if p.returncode != 0:
        fail(f"{demo} {args}: exit {p.returncode}")
        return [], p
    if "Verdict" not in p.stdout:
        fail(f"{demo}: no verdict printed")
    rows = check_csv(demo, c, min_rows)
    with open(j) as f:
        doc = json.load(f)
    if doc.get("demo") != demo or len(doc.get("rows", [])) != len(rows):
        fail(f"{demo}: JSON demo/rows do not match the CSV")
    if not doc.get("verdict"):
        fail(f"{demo}: JSON has no verdict")
    if not isinstance(doc.get("verdicts"), dict):
        fail(f"{demo}: JSON has no verdicts object")
    check_ok.doc = doc
    return rows, p


def check_bad(demo, args, want_rc=None, want_text=None):
    p = run(demo, args, timeout=60)
    err = p.stderr.strip().splitlines()
    if p.returncode == 0:
        fail(f"{demo} {args}: exit 0 on bad input")
    if want_rc is not None and p.returncode != want_rc:
        fail(f"{demo} {args}: exit {p.returncode}, expected {want_rc}")
    if len(err) != 1:
        fail(f"{demo} {args}: expected a one-line error, got {err}")
    elif want_text and want_text not in err[0]:
        fail(f"{demo} {args}: error {err[0]!r} lacks {want_text!r}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused
    return port


VERDICT_VALUES = {"yes", "no", "inconclusive"}


def serve_http(reply_body=b"ok"):
    """A loopback server answering every request with 200; returns the port."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)

    def loop():
        while True:
            c, _ = srv.accept()
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n%s" % (len(reply_body), reply_body))
            c.close()
    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


class Page(html.parser.HTMLParser):
    """What the report holds: ids, table headers, list items, images, links."""
    def __init__(self):
        super().__init__()
        self.ids, self.imgs, self.refs, self.tables = set(), [], [], []
        self.items, self.text = [], []
        self._cell = None
        self._li = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        for k in ("src", "href"):
            if k in a and tag != "img":
                self.refs.append(a[k])
        if tag == "table":
            self.tables.append([])
        if tag == "th":
            self._cell = []
        if tag == "li":
            self._li = []

    def handle_endtag(self, tag):
        if tag == "th" and self._cell is not None and self.tables:
            self.tables[-1].append("".join(self._cell))
            self._cell = None
        if tag == "li" and self._li is not None:
            self.items.append("".join(self._li))
            self._li = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._li is not None:
            self._li.append(data)


def check_report(page, folder):
    with open(page, encoding="utf-8") as f:
        src = f.read()
    pg = Page()
    pg.feed(src)
    text = "".join(pg.text)
    for i in ("machine", "demo_cpu", "demo_io", "timeline"):
        if i not in pg.ids:
            fail(f"report: no section #{i}")
    for word in ("CPUs online", "CPU model", "kernel", "load average before",
                 "load average after", "other programs"):
        if word not in text:
            fail(f"report: the machine section lacks {word!r}")
    for demo in ("demo_cpu", "demo_io"):
        with open(os.path.join(folder, demo + ".json")) as f:
            doc = json.load(f)
        if COLUMNS[demo] not in pg.tables:
            fail(f"report: no {demo} table with the CSV's columns")
        for line in doc["verdict"]:
            if line not in pg.items:
                fail(f"report: {demo} verdict line missing: {line[:60]}")
        for k, v in doc["verdicts"].items():
            if k not in text:
                fail(f"report: verdict field {k} missing")
    # Self-contained: pictures inline, nothing fetched from elsewhere.
    if any(not i.startswith("data:image/png;base64,") for i in pg.imgs):
        fail("report: a picture that is not inline")
    if pg.refs:
        fail(f"report: references outside the page: {pg.refs}")
    if shutil.which("gnuplot") and len(pg.imgs) < 2:
        fail(f"report: {len(pg.imgs)} pictures, expected both demos' with gnuplot")


def png_pixels(path):
    """The decompressed scanlines of a PNG (no library needed)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos, idat = 8, b""
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return zlib.decompress(idat)


def shot_report(page):
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser",
                                                "google-chrome") if shutil.which(b)), None)
    if not browser:
        print("SKIP: report screenshot: chromium is not installed")
        return
    shot = os.path.join(tmp, "report.png")
    p = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        "--window-size=1200,1600", f"--screenshot={shot}",
                        "file://" + os.path.abspath(page)],
                       capture_output=True, text=True, timeout=120)
    px = png_pixels(shot) if os.path.exists(shot) else None
    if px is None:
        fail(f"report: chromium wrote no screenshot (exit {p.returncode}): {p.stderr[-300:]}")
    elif len(set(px)) < 16:
        fail("report: the screenshot is blank")


if case == "cpu":
    rows, p = check_ok("demo_cpu", ["--seconds", "0.02", "--tiny", "64",
                                     "--workers", "2", "--budget", "1"], 2,
                       env={"PAREX_DEMO_PYTHON": sys.executable})
    doc = check_ok.doc
    backends = {r["backend"] for r in rows}
    for b in ("inline", "thread", "thread:gil=1", "cpython:ThreadPoolExecutor",
              "cpython:ProcessPoolExecutor"):
        if b not in backends:
            fail(f"demo_cpu: no {b} rows ({backends})")
    for r in rows:
        if r["backend"] == "inline" and float(r["speedup"]) != 1.0:
            fail("demo_cpu: the baseline's speedup is not 1")
        if r["ovh_us"] != "" and float(r["ovh_us"]) < 0:
            fail(f"demo_cpu: negative per-task overhead {r}")
        if r["ovh_us"] != "" and float(r["ovh_us"]) <= float(r["ovh_noise_us"]):
            fail(f"demo_cpu: an overhead within the noise is shown {r}")
        lo, sp, hi = (float(r[k]) for k in ("speedup_lo", "speedup", "speedup_hi"))
        if not lo <= sp <= hi:
            fail(f"demo_cpu: speedup {sp} outside its spread {lo}..{hi}")
        if int(r["runs"]) < 1:
            fail(f"demo_cpu: no runs behind {r}")
    v = doc["verdicts"]
    for k in ("threads_scale", "gil_scales", "cpython_threads_scale",
              "cpython_processes_scale", "emulation_matches_cpython"):
        if v.get(k) not in VERDICT_VALUES:
            fail(f"demo_cpu: verdicts.{k} = {v.get(k)!r}")
    # A verdict that concludes must not contradict the numbers beside it.
    text = "\n".join(doc["verdict"])
    if v.get("threads_scale") == "yes" and "on threads does not scale" in text:
        fail("demo_cpu: contradictory thread verdict")
    if v.get("threads_scale") == "inconclusive" and "inconclusive" not in text:
        fail("demo_cpu: an inconclusive verdict that does not say so")
    m = doc.get("machine", {})
    for k in ("cpus", "model", "kernel", "load_before", "load_after",
              "others_cpus", "available_cpus"):
        if k not in m:
            fail(f"demo_cpu: machine.{k} missing")
    if "timeline_png" not in doc:
        fail("demo_cpu: no place for the timeline picture")
elif case == "affinity":
    # Pinned to one CPU of several (taskset), the demo must not blame the
    # backends for the CPUs it was not allowed to use.
    if not shutil.which("taskset") or (os.cpu_count() or 1) < 2:
        print("SKIP: affinity: needs taskset and 2 CPUs")
    else:
        j = os.path.join(tmp, "pinned.json")
        cmd = ["taskset", "-c", "0", os.path.join(demo_dir, "demo_cpu"),
               "--seconds", "0.02", "--tiny", "16", "--budget", "2",
               "--json", j]
        env = {k: v for k, v in os.environ.items()
               if k not in ("PAREX_EXECUTOR", "PAREX_CONFIG")}
        env["PAREX_DEMO_PYTHON"] = ""
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        print(p.stdout, p.stderr)
        if p.returncode != 0:
            fail(f"pinned demo_cpu: exit {p.returncode}")
        else:
            with open(j) as f:
                doc = json.load(f)
            if doc["machine"]["cpus"] != 1:
                fail(f"pinned demo_cpu counted {doc['machine']['cpus']} CPUs")
            for k, v in doc["verdicts"].items():
                if v == "no":
                    fail(f"pinned demo_cpu: {k} = no, blamed on the backend")
elif case == "cpython_workers":
    # CPython runs on at most 4 workers while the parex rows the verdict
    # compares it with are at min(CPUs, sweep); on a machine with more than
    # 4 CPUs the two differ. The CPython line must quote parex at CPython's
    # own workers count. A stand-in interpreter reports 1 worker (the
    # sweep has 1 and 2 here), so the quoted figures must be the 1-worker
    # rows, not the 2-worker ones.
    fake = os.path.join(tmp, "fakepy")
    samples = {"wall": [1.0, 1.0, 1.0], "cpu": [1.0, 1.0, 1.0]}
    with open(fake, "w") as f:
        f.write("#!/bin/sh\ncat <<'END'\n" + json.dumps(
            {"python": "0.fake", "workers": 1, "tasks": 4, "elems": 100,
             "sequential": samples, "thread": samples, "process": samples})
            + "\nEND\n")
    os.chmod(fake, 0o755)
    rows, p = check_ok("demo_cpu", ["--seconds", "0.02", "--tiny", "64",
                                     "--budget", "1", "--min-rounds", "3"], 2,
                       env={"PAREX_DEMO_PYTHON": fake})
    m = re.search(r"thread:gil=1 ([0-9.]+|nan)x\), ProcessPoolExecutor .*?"
                  r"process pool ([0-9.]+|nan)x\), (\d+) workers", p.stdout)
    if not m:
        fail("demo_cpu: no CPython verdict line with a stand-in interpreter")
    else:
        # The large tasks: the first granularity, whose baseline row is first.
        coarse = int(rows[0]["tasks"])
        want = {}
        for r in rows:
            if r["workers"] == m.group(3) and int(r["tasks"]) == coarse:
                want[r["backend"]] = "%.2f" % float(r["speedup"])
        got = {"thread:gil=1": m.group(1), "process": m.group(2)}
        for b, v in got.items():
            if b in want and want[b] != v:
                fail(f"demo_cpu: the CPython line quotes {b} at {v}x, but its "
                     f"{m.group(3)}-worker row says {want[b]}x")
elif case == "nopython":
    # No interpreter: the CPython comparison is skipped with one line.
    empty = tempfile.mkdtemp(dir=tmp)
    for env in ({"PAREX_DEMO_PYTHON": ""},
                {"PAREX_DEMO_PYTHON": os.path.join(empty, "python3")},
                {"PATH": empty}):
        rows, p = check_ok("demo_cpu", ["--seconds", "0.01", "--tiny", "16",
                                         "--workers", "2", "--budget", "0.5"],
                           2, env=env)
        skips = [l for l in p.stdout.splitlines() if "CPython comparison skipped" in l]
        if len(skips) != 1:
            fail(f"demo_cpu {env}: expected one 'skipped' line, got {skips}")
        if any(r["backend"].startswith("cpython") for r in rows):
            fail(f"demo_cpu {env}: CPython rows without an interpreter")
        if "emulation_matches_cpython" in check_ok.doc["verdicts"]:
            fail(f"demo_cpu {env}: a CPython verdict without CPython")
    rows, p = check_ok("demo_io", ["--requests", "4", "--latency-ms", "1",
                                   "--workers", "2", "--no-burst", "--rounds", "1"],
                       3, env={"PAREX_DEMO_PYTHON": ""})
    if p.stdout.count("CPython comparison skipped") != 1:
        fail("demo_io: no one-line skip without python")
elif case == "options":
    p = run("demo_cpu", ["--version"])
    if p.returncode != 0 or not re.match(r"demo_cpu \(parex\) \d+\.\d+", p.stdout):
        fail(f"demo_cpu --version: {p.stdout!r}")
    for demo in COLUMNS:
        p = run(demo, ["--help"])
        if p.returncode != 0:
            fail(f"{demo} --help: exit {p.returncode}")
        for var in ("PAREX_EXECUTOR", "PAREX_CONFIG", "PAREX_IO"):
            if var not in p.stdout:
                fail(f"{demo} --help: no {var} in the environment section")
        long_lines = [l for l in p.stdout.splitlines() if len(l) > 79]
        if long_lines:
            fail(f"{demo} --help: lines over 79 columns: {long_lines}")
        # An output that cannot be created fails before the run.
        t0 = time.monotonic()
        check_bad(demo, ["--csv", "/nonexistent/x.csv"], want_rc=2,
                  want_text="/nonexistent/x.csv")
        check_bad(demo, ["--json", "/nonexistent/x.json"], want_rc=2)
        if time.monotonic() - t0 > 10:
            fail(f"{demo}: a bad output file was reported only after the run")
    # Abbreviations and short options; an ambiguous prefix is an error.
    rows, _ = check_ok("demo_cpu", ["--sec", "0.01", "--tin", "16", "-w", "2",
                                     "--bud", "0.3", "-b", "thread"], 2,
                       env={"PAREX_DEMO_PYTHON": ""})
    if {r["workers"] for r in rows if r["backend"] == "thread"} != {"2"}:
        fail("demo_cpu: -w 2 not honoured")
    check_bad("demo_cpu", ["--m", "3"], want_rc=2, want_text="ambiguous")
    # A label with a comma and a quote: the CSV quotes it (check_csv counts
    # the fields) and the JSON keeps it.
    rows, _ = check_ok("demo_cpu", ["--seconds", "0.01", "--tiny", "16",
                                     "--budget", "0.3", "-w", "1",
                                     "--backend", "thread:gil=0,spin_us=0"], 2,
                       env={"PAREX_DEMO_PYTHON": ""})
    if "thread:gil=0,spin_us=0" not in {r["backend"] for r in rows}:
        fail(f"demo_cpu: the label with a comma did not survive the CSV: {rows}")
elif case == "json_url":
    # URLs with control characters, quotes, non-ASCII and bytes that are not
    # UTF-8: the JSON must parse whatever the URL holds.
    port = serve_http()
    paths = [b"/a\x01b\x1b[31m\tc\x7f", "/caf\u00e9/\u2603".encode(), b"/x\xff\xfe",
             b"/q?a='1'&b=<2>"]
    for path in paths:
        url = b"http://127.0.0.1:%d%s" % (port, path)
        j = os.path.join(tmp, "io.json")
        cmd = [os.fsencode(os.path.join(demo_dir, "demo_io")), b"--url", url,
               b"--requests", b"3", b"--workers", b"2", b"--json", os.fsencode(j),
               b"--backend", b"thread"]
        pr = subprocess.run(cmd, capture_output=True, timeout=120,
                            env={k: v for k, v in os.environ.items()
                                 if k not in ("PAREX_EXECUTOR", "PAREX_CONFIG")}
                            | {"PAREX_DEMO_PYTHON": ""})
        print("$ demo_io --url", url, "->", pr.returncode)
        sys.stdout.write(pr.stderr.decode(errors="replace"))
        if pr.returncode != 0:
            fail(f"demo_io --url {url!r}: exit {pr.returncode}")
            continue
        try:
            with open(j, encoding="utf-8") as f:
                doc = json.load(f)
        except (ValueError, UnicodeDecodeError) as e:
            fail(f"demo_io --url {url!r}: JSON does not parse: {e}")
            continue
        try:
            want = url.decode("utf-8")
        except UnicodeDecodeError:
            want = None
        if want is not None and doc.get("url") != want:
            fail(f"demo_io: url {doc.get('url')!r} != {want!r}")
    # A run that fails leaves no half-written output behind.
    j = os.path.join(tmp, "fail.json")
    check_bad("demo_io", ["--url", f"http://127.0.0.1:{free_port()}/",
                          "--timeout-ms", "2000", "--json", j], want_rc=1)
    if os.path.exists(j):
        fail("demo_io: an empty JSON file left after a failed run")
elif case == "io":
    rows, _ = check_ok("demo_io", ["--requests", "12", "--latency-ms", "5",
                                   "--workers", "4", "--burst", "64",
                                   "--burst-latency-ms", "50"], 4,
                       env={"PAREX_DEMO_PYTHON": sys.executable})
    v = check_ok.doc["verdicts"]
    for k in ("threads_help_io", "gil_threads_help_io", "cpython_threads_help_io",
              "emulation_matches_cpython", "io_beats_pool"):
        if v.get(k) not in VERDICT_VALUES:
            fail(f"demo_io: verdicts.{k} = {v.get(k)!r}")
    if not any(r["mode"] == "cpython ThreadPoolExecutor" for r in rows):
        fail("demo_io: no CPython row although python3 is present")
    modes = [r["mode"] for r in rows]
    if modes[:1] != ["sequential"] or not any(m.startswith("parex io (") for m in modes) \
            or not any(m.startswith("parex io burst") for m in modes) \
            or "thread pool" not in modes:
        fail(f"demo_io: unexpected modes {modes}")
    for r in rows:
        if r["errors"] != "0":
            fail(f"demo_io: {r['mode']}: {r['errors']} errors")
        if r["speedup"] != "" and not (float(r["speedup_lo"]) <= float(r["speedup"])
                                       <= float(r["speedup_hi"])):
            fail(f"demo_io: speedup outside its spread: {r}")
    burst = [r for r in rows if r["mode"].startswith("parex io burst")]
    if burst and burst[0]["server_peak_conns"] in ("", "0"):
        fail("demo_io: no server peak reported for the burst")
elif case == "io_refused":
    port = free_port()
    check_bad("demo_io", ["--url", f"http://127.0.0.1:{port}/", "--timeout-ms",
                          "2000"], want_rc=1, want_text="refused")
    check_bad("demo_io", ["--url", "http://127.0.0.1:notaport/"], want_rc=2)
    check_bad("demo_io", ["--url", "https://127.0.0.1/"], want_rc=2)
elif case == "race":
    rows, _ = check_ok("demo_race", ["--workers", "3", "--iters", "2000",
                                     "--runs", "2"], 6)
    for r in rows:
        if r["sync"] != "none" and r["count"] != r["expected"]:
            fail(f"demo_race: {r['workers_kind']} {r['sync']} counted {r['count']}")
        if int(r["count"]) > int(r["expected"]):
            fail("demo_race: counted more than expected")
elif case == "pipeline":
    for extra in ([], ["--size", "200", "--producers", "3", "--consumers", "1"]):
        rows, _ = check_ok("demo_pipeline", ["--items", "3000"] + extra, 2)
        for r in rows:
            total = int(r["items"])
            if (int(r["received"]) != total or r["missing"] != "0"
                    or r["duplicates"] != "0" or r["malformed"] != "0"
                    or r["out_of_order"] != "0"):
                fail(f"demo_pipeline: {r}")
elif case == "badinput":
    for demo in COLUMNS:
        check_bad(demo, ["--no-such-option"], want_rc=2, want_text="unknown option")
        check_bad(demo, ["--workers", "0"], want_rc=2, want_text="--workers")
        check_bad(demo, ["--workers", "x"], want_rc=2)
        p = run(demo, ["--help"])
        if p.returncode != 0 or "--backend" not in p.stdout:
            fail(f"{demo} --help")
    check_bad("demo_cpu", ["--backend", "bogus", "--seconds", "0.01"], want_rc=2,
              want_text="bogus")
    check_bad("demo_io", ["--backend", "fork"], want_rc=2, want_text="fork")
    check_bad("demo_race", ["--backend", "bogus"], want_rc=2)
    p = run("demo_cpu", ["--seconds", "0.01"], env={"PAREX_EXECUTOR": "thread:workers=zero"})
    if p.returncode == 0 or len(p.stderr.strip().splitlines()) != 1:
        fail("demo_cpu: a bad PAREX_EXECUTOR must give a one-line error")
elif case == "config":
    # By environment: only the configured executor runs (plus the baseline).
    rows, _ = check_ok("demo_cpu", ["--seconds", "0.02", "--tiny", "32", "--budget", "1"], 2,
                       env={"PAREX_EXECUTOR": "thread:gil=1,workers=2"})
    # (CPython's rows stand beside a GIL-emulating pool when python runs.)
    rows = [r for r in rows if not r["backend"].startswith("cpython:")]
    names = {r["backend"] for r in rows}
    if names != {"inline", "thread:gil=1 (config)"}:
        fail(f"demo_cpu by PAREX_EXECUTOR ran {names}")
    if {r["workers"] for r in rows if r["backend"] != "inline"} != {"2"}:
        fail("demo_cpu: workers from PAREX_EXECUTOR not honoured")
    # By parex.conf in the working directory.
    d = tempfile.mkdtemp(dir=tmp)
    with open(os.path.join(d, "parex.conf"), "w") as f:
        f.write("[executor]\nbackend = inline\nworkers = 1\n")
    rows, _ = check_ok("demo_cpu", ["--seconds", "0.02", "--tiny", "32", "--budget", "1"], 2, cwd=d)
    names = {r["backend"] for r in rows}
    if names != {"inline", "inline (config)"}:
        fail(f"demo_cpu by parex.conf ran {names}")
    rows, _ = check_ok("demo_race", ["--iters", "100", "--runs", "1"], 3, cwd=d)
    if {r["workers"] for r in rows} != {"1"} or {r["workers_kind"] for r in rows} != {"threads"}:
        fail("demo_race: parex.conf (inline, 1 worker) not honoured")
    # --backend wins over the configuration.
    rows, _ = check_ok("demo_cpu", ["--seconds", "0.02", "--tiny", "32", "--budget", "1",
                                    "--backend", "thread", "--workers", "1"], 2, cwd=d)
    if {r["backend"] for r in rows} != {"inline", "thread"}:
        fail("demo_cpu: --backend did not override parex.conf")
elif case == "plot":
    png = os.path.join(tmp, "race.png")
    p = run("demo_race", ["--workers", "2", "--iters", "100", "--runs", "1",
                          "--plot", png])
    if p.returncode != 0:
        fail(f"demo_race --plot: exit {p.returncode}")
    if shutil.which("gnuplot"):
        with open(png, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                fail("demo_race --plot: not a PNG")
    elif "gnuplot is not installed" not in p.stderr:
        fail("demo_race --plot without gnuplot: no plain message")
elif case == "timeline":
    # --timeline: the demos trace a run with parex (trace=FILE, PAREX_TRACE)
    # and draw it; the JSON names the picture; no trace file is left over.
    own_tmp = tempfile.mkdtemp(dir=tmp)
    d = tempfile.mkdtemp(dir=tmp)
    for demo, args in (("demo_cpu", ["--seconds", "0.01", "--tiny", "16", "-w", "2",
                                     "--budget", "0.5"]),
                       ("demo_io", ["--requests", "6", "--latency-ms", "2", "-w", "2",
                                    "--no-burst"])):
        png = os.path.join(d, demo[5:] + "-timeline.png")
        j = os.path.join(d, demo + ".json")
        p = run(demo, args + ["--json", j, "--timeline", png],
                env={"PAREX_DEMO_PYTHON": "", "TMPDIR": own_tmp})
        if p.returncode != 0:
            fail(f"{demo} --timeline: exit {p.returncode}: {p.stderr[-300:]}")
        with open(j) as f:
            doc = json.load(f)
        if shutil.which("gnuplot"):
            with open(png, "rb") as f:
                if f.read(8) != b"\x89PNG\r\n\x1a\n":
                    fail(f"{demo} --timeline: not a PNG")
            if doc.get("timeline_png") != os.path.basename(png):
                fail(f"{demo}: timeline_png = {doc.get('timeline_png')!r}")
        else:
            if "gnuplot is not installed" not in p.stderr:
                fail(f"{demo} --timeline without gnuplot: no plain message")
            if doc.get("timeline_png") is not None:
                fail(f"{demo}: timeline_png names a picture not drawn")
        left = [n for n in os.listdir(own_tmp) if n.startswith("parex-trace-")]
        if left:
            fail(f"{demo} --timeline left trace files: {left}")
elif case == "report":
    # The report's structure, from real (tiny) runs of both demos.
    d = tempfile.mkdtemp(dir=tmp)
    for demo, args in (("demo_cpu", ["--seconds", "0.01", "--tiny", "16", "-w", "2",
                                     "--budget", "0.5"]),
                       ("demo_io", ["--requests", "6", "--latency-ms", "2", "-w", "2",
                                    "--burst", "16", "--burst-latency-ms", "20"])):
        p = run(demo, args + ["--csv", os.path.join(d, demo + ".csv"),
                              "--json", os.path.join(d, demo + ".json"),
                              "--plot", os.path.join(d, demo + ".png")],
                env={"PAREX_DEMO_PYTHON": sys.executable})
        if p.returncode != 0:
            fail(f"{demo} for the report: exit {p.returncode}")
    with open(os.path.join(d, "run.json"), "w") as f:
        json.dump({"load_before": [0.5, 0.4, 0.3], "load_after": [1.5, 0.6, 0.3]}, f)
    script = os.path.join(demo_dir, "make_report.py")
    p = subprocess.run([sys.executable, script, d], capture_output=True, text=True)
    print(p.stdout, p.stderr)
    page = os.path.join(d, "report.html")
    if p.returncode != 0 or not os.path.exists(page):
        fail(f"make_report.py: exit {p.returncode}")
    else:
        check_report(page, d)
        shot_report(page)
    p = subprocess.run([sys.executable, script, tempfile.mkdtemp(dir=tmp)],
                       capture_output=True, text=True)
    if p.returncode == 0 or len(p.stderr.strip().splitlines()) != 1:
        fail("make_report.py on an empty folder: expected a one-line error")
else:
    print("unknown case", case)
    sys.exit(2)

shutil.rmtree(tmp, ignore_errors=True)
if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("ok")
