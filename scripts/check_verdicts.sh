#!/usr/bin/env bash
# scripts/check_verdicts.sh - are demo_cpu's verdicts robust? Runs demo_cpu N
# times on the machine as it is ("idle") and N times with one CPU kept busy by
# another process ("busy"), reads each run's verdicts from its --json output
# and classifies the run:
#   idle: correct when threads and processes scale CPU work in C and the
#         emulated GIL does not; wrong when any of the three says the
#         opposite; inconclusive otherwise.
#   busy: wrong when any verdict states the opposite of the above (an
#         inconclusive verdict, or a right one, is fine); correct when all
#         three are right; inconclusive otherwise.
# Prints one line per run and the counts; exits 1 when any run was wrong.
#
# Usage: scripts/check_verdicts.sh [-n N] [-b BUILD_DIR] [-o DIR] [-- DEMO_ARGS...]
#   -n N          runs per condition (default 2)
#   -b BUILD_DIR  where demo_cpu was built (default build)
#   -o DIR        keep each run's JSON and text there (default: a temporary
#                 folder, removed afterwards)
#   DEMO_ARGS     passed to demo_cpu (e.g. --budget 30)
set -euo pipefail
cd "$(dirname "$0")/.."

n=2
build=build
out=""
while getopts "n:b:o:h" opt; do
	case "$opt" in
	n) n="$OPTARG" ;;
	b) build="$OPTARG" ;;
	o) out="$OPTARG" ;;
	h) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "check_verdicts.sh: bad option (try -h)" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
case "$n" in '' | *[!0-9]* | 0) echo "check_verdicts.sh: -n needs a positive integer" >&2; exit 2 ;; esac
demo="$build/demos/demo_cpu"
[ -x "$demo" ] || { echo "check_verdicts.sh: $demo not found (build first, or give -b)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "check_verdicts.sh: needs python3 to read the JSON" >&2; exit 1; }

keep=1
if [ -z "$out" ]; then
	out="$(mktemp -d)"
	keep=0
fi
mkdir -p "$out"
spinner=""
cleanup() {
	[ -n "$spinner" ] && kill "$spinner" 2>/dev/null || true
	[ "$keep" = 1 ] || rm -rf "$out"
}
trap cleanup EXIT

# classify CONDITION JSON -> prints "correct|inconclusive|wrong details"
classify() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
cond, path = sys.argv[1], sys.argv[2]
try:
    v = json.load(open(path))["verdicts"]
except (OSError, ValueError, KeyError) as e:
    print("wrong", f"no verdicts in {path}: {e}")
    sys.exit(0)
want = {"threads_scale": "yes", "processes_scale": "yes", "gil_scales": "no"}
opposite = {"yes": "no", "no": "yes"}
got = {k: v.get(k, "missing") for k in want}
detail = " ".join(f"{k}={got[k]}" for k in want)
if any(got[k] == opposite[want[k]] or got[k] == "missing" for k in want):
    print("wrong", detail)
elif all(got[k] == want[k] for k in want):
    print("correct", detail)
else:
    print("inconclusive", detail)
EOF
}

declare -A count
for cond in idle busy; do
	for k in correct inconclusive wrong; do count[$cond.$k]=0; done
	if [ "$cond" = busy ]; then
		sh -c 'while :; do :; done' &
		spinner=$!
	fi
	for i in $(seq 1 "$n"); do
		j="$out/$cond-$i.json"
		if ! "$demo" --json "$j" "$@" >"$out/$cond-$i.txt" 2>&1; then
			echo "$cond run $i: demo_cpu failed, see $out/$cond-$i.txt" >&2
		fi
		read -r verdict detail < <(classify "$cond" "$j")
		count[$cond.$verdict]=$((count[$cond.$verdict] + 1))
		avail=$(python3 -c 'import json,sys
try: print("%.2f" % json.load(open(sys.argv[1]))["machine"]["available_cpus"])
except Exception: print("?")' "$j")
		echo "$cond run $i: $verdict ($detail; CPUs free: $avail)"
	done
	if [ -n "$spinner" ]; then
		kill "$spinner" 2>/dev/null || true
		wait "$spinner" 2>/dev/null || true
		spinner=""
	fi
done
echo
for cond in idle busy; do
	echo "$cond: ${count[$cond.correct]} correct, ${count[$cond.inconclusive]} inconclusive, ${count[$cond.wrong]} wrong (of $n)"
done
[ "$keep" = 1 ] && echo "runs kept in $out"
[ "${count[idle.wrong]}" = 0 ] && [ "${count[busy.wrong]}" = 0 ]
