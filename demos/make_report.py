#!/usr/bin/env python3
"""demos/make_report.py - one self-contained HTML report from the demos'
outputs in a folder (what scripts/demo.sh writes there).

Usage: make_report.py DIR        (writes DIR/report.html)

Reads DIR/demo_cpu.json and DIR/demo_io.json (either may be missing), their
CSV files and pictures (DIR/demo_*.png, inlined as data: URIs), and
DIR/run.json (the load average before and after the whole run, written by
scripts/demo.sh). The report holds the machine's description (CPUs, model,
kernel), how busy it was (load average, CPU that other programs took while
each demo ran), and per demo its verdicts, notes and table. Nothing in it
refers to a file or a network address outside the report.
"""
import base64
import html
import json
import os
import sys

DEMOS = [("demo_cpu", "CPU-bound work: threads, processes, the emulated GIL "
          "and CPython"),
         ("demo_io", "I/O-bound work: pools, parex io and CPython's "
          "ThreadPoolExecutor")]

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 78em;
       color: #1d1d1f; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; font-size: 13px; margin: 0.6em 0; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f3; } td.s { text-align: left; }
.yes { color: #0a6b1f; font-weight: 600; } .no { color: #a31010; font-weight: 600; }
.inconclusive { color: #8a5a00; font-weight: 600; }
.placeholder { border: 2px dashed #bbb; padding: 1em; color: #666; }
img { max-width: 100%; border: 1px solid #ddd; }
ul.verdict li { margin: 0.3em 0; }
"""


def esc(x):
    return html.escape("" if x is None else str(x))


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def picture(path, alt):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if not data.startswith(b"\x89PNG"):
        return None
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    return f'<img src="{uri}" alt="{esc(alt)}">'


def machine_section(docs, run):
    m = next((d["machine"] for d in docs.values() if d and "machine" in d), {})
    out = ['<h2 id="machine">The machine and how busy it was</h2>', "<table>"]
    rows = [("CPUs online", m.get("cpus")), ("CPU model", m.get("model")),
            ("kernel", m.get("kernel"))]
    lb = run.get("load_before") or m.get("load_before")
    la = run.get("load_after") or m.get("load_after")
    if lb:
        rows.append(("load average before (1, 5, 15 min)", ", ".join(fmt(x) for x in lb)))
    if la:
        rows.append(("load average after (1, 5, 15 min)", ", ".join(fmt(x) for x in la)))
    for name, d in docs.items():
        mm = (d or {}).get("machine") or {}
        if "others_cpus" in mm:
            rows.append((f"CPUs used by other programs during {name} (average)",
                         fmt(mm.get("others_cpus"))))
            rows.append((f"CPUs stolen by the hypervisor during {name}",
                         fmt(mm.get("steal_cpus"))))
            rows.append((f"CPUs left to {name}", fmt(mm.get("available_cpus"))))
    for k, v in rows:
        out.append(f'<tr><th class="s">{esc(k)}</th><td class="s">{esc(v)}</td></tr>')
    out.append("</table>")
    busy = [d["machine"].get("others_cpus") for d in docs.values()
            if d and d.get("machine") and d["machine"].get("others_cpus") is not None]
    if busy and max(busy) >= 0.25:
        out.append("<p>Other programs took CPU time while the demos ran: wall "
                   "times are inflated and some verdicts may say "
                   "<em>inconclusive</em>. For a clean run, stop other jobs "
                   "and run <code>scripts/demo.sh</code> again.</p>")
    return "\n".join(out)


def demo_section(name, title, doc, folder):
    out = [f'<h2 id="{name}">{esc(name)}: {esc(title)}</h2>']
    if doc is None:
        out.append(f"<p>{esc(name)} did not run or wrote no JSON.</p>")
        return "\n".join(out)
    verdicts = doc.get("verdicts") or {}
    if verdicts:
        out.append('<table class="verdicts"><tr><th class="s">question</th>'
                   '<th class="s">answer on this run</th></tr>')
        for k, v in verdicts.items():
            out.append(f'<tr><td class="s">{esc(k)}</td>'
                       f'<td class="s {esc(v)}">{esc(v)}</td></tr>')
        out.append("</table>")
    out.append("<h3>Verdict</h3><ul class=\"verdict\">")
    out += [f"<li>{esc(v)}</li>" for v in doc.get("verdict", [])]
    out.append("</ul>")
    if doc.get("notes"):
        out.append("<h3>Notes</h3><ul>")
        out += [f"<li>{esc(v)}</li>" for v in doc["notes"]]
        out.append("</ul>")
    img = picture(os.path.join(folder, name + ".png"), name)
    out.append("<h3>Picture</h3>")
    out.append(img or "<p>No picture: gnuplot is not installed (Debian: "
               "gnuplot-nox) or did not draw it.</p>")
    # Task timelines: drawn from parex's own traces (trace=PATH) with
    # --timeline, named by the JSON member timeline_png, beside the JSON.
    tl = doc.get("timeline_png")
    tl_img = picture(os.path.join(folder, tl), "task timeline") if tl else None
    if name == "demo_cpu":
        out.append('<h3 id="timeline">Task timeline</h3>')
        out.append("<p>Which worker ran which task, and when: one lane per "
                   "worker, for threads, threads under the emulated GIL and "
                   "processes, on one time axis.</p>" if tl_img else "")
        out.append(tl_img or '<div class="placeholder">Task timeline: not '
                   "drawn on this run (run demo_cpu with --timeline PNG, as "
                   "scripts/demo.sh does; it needs gnuplot).</div>")
    elif name == "demo_io" and tl_img:
        out.append('<h3 id="io-timeline">Requests in flight</h3>')
        out.append("<p>How many requests were in flight over time, on the "
                   "thread pool and with parex io.</p>")
        out.append(tl_img)
    rows = doc.get("rows") or []
    if rows:
        cols = list(rows[0].keys())
        out.append("<h3>Measurements</h3><table class=\"rows\"><tr>")
        out += [f"<th>{esc(c)}</th>" for c in cols]
        out.append("</tr>")
        for r in rows:
            out.append("<tr>" + "".join(
                f'<td class="{"s" if isinstance(r[c], str) else "n"}">{esc(fmt(r[c]))}</td>'
                for c in cols) + "</tr>")
        out.append("</table>")
    return "\n".join(out)


def main():
    if len(sys.argv) != 2:
        print("usage: make_report.py DIR", file=sys.stderr)
        return 2
    folder = sys.argv[1]
    if not os.path.isdir(folder):
        print(f"make_report.py: {folder} is not a folder", file=sys.stderr)
        return 2
    docs = {name: load_json(os.path.join(folder, name + ".json")) for name, _ in DEMOS}
    if not any(docs.values()):
        print(f"make_report.py: no demo_cpu.json or demo_io.json in {folder}",
              file=sys.stderr)
        return 1
    run = load_json(os.path.join(folder, "run.json")) or {}
    version = next((d.get("parex") for d in docs.values() if d), "?")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>parex demos: report</title><style>{CSS}</style></head><body>",
             f"<h1>parex {esc(version)}: what this machine says about threads, "
             "processes and the GIL</h1>",
             "<p>Every figure below was measured on this machine by "
             "<code>scripts/demo.sh</code>; every verdict was computed from "
             "those figures, and says <em>inconclusive</em> where they do "
             "not support a conclusion.</p>",
             machine_section(docs, run)]
    for name, title in DEMOS:
        parts.append(demo_section(name, title, docs[name], folder))
    parts.append("</body></html>")
    path = os.path.join(folder, "report.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
