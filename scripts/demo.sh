#!/usr/bin/env bash
# scripts/demo.sh - the main job: builds parex and runs demo_cpu and demo_io,
# which measure on this machine which backend suits CPU-bound and which
# suits I/O-bound work, then writes one report. Installs missing Debian
# packages first.
#
# Usage: scripts/demo.sh [-o DIR | --out DIR] [-b DIR | --build DIR]
#   -o, --out DIR     results folder (default demo-results/): each demo's CSV,
#                     JSON, text output and picture, and report.html, a
#                     self-contained page with all of them
#   -b, --build DIR   build folder (default build/)
# For other options (--workers, --budget, ...) run the demos themselves from
# build/demos/ afterwards; see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

out=demo-results
build=build
while [ $# -gt 0 ]; do
	case "$1" in
	-o | --out) [ $# -ge 2 ] || { echo "demo.sh: $1 needs a folder" >&2; exit 2; }; out="$2"; shift 2 ;;
	--out=*) out="${1#--out=}"; shift ;;
	-b | --build) [ $# -ge 2 ] || { echo "demo.sh: $1 needs a folder" >&2; exit 2; }; build="$2"; shift 2 ;;
	--build=*) build="${1#--build=}"; shift ;;
	-h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "demo.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
done
[ -n "$out" ] || { echo "demo.sh: empty results folder" >&2; exit 2; }
mkdir -p "$out" || { echo "demo.sh: cannot create $out" >&2; exit 1; }

scripts/deps.sh build demo
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DPX_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target demo_cpu demo_io >/dev/null

read -r l1 l5 l15 _ </proc/loadavg
load_before="[$l1, $l5, $l15]"
for demo in demo_cpu demo_io; do
	"$build/demos/$demo" --csv "$out/$demo.csv" --json "$out/$demo.json" \
		--plot "$out/$demo.png" --timeline "$out/${demo#demo_}-timeline.png" |
		tee "$out/$demo.txt"
	echo
done
read -r l1 l5 l15 _ </proc/loadavg
printf '{"load_before": %s, "load_after": [%s, %s, %s]}\n' \
	"$load_before" "$l1" "$l5" "$l15" >"$out/run.json"

if command -v python3 >/dev/null; then
	python3 "$build/demos/make_report.py" "$out" >/dev/null
	echo "report: $out/report.html"
else
	echo "demo.sh: python3 is not installed: no report.html (the CSV and JSON are in $out)" >&2
fi
