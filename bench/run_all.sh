#!/usr/bin/env bash
# bench/run_all.sh - builds the benchmarks optimised and runs them all, then
# writes one markdown table of every measure against its target.
#
# Usage: bench/run_all.sh [--quick] [--rounds N] [--out DIR] [--build DIR]
#                         [--no-build]
#   --quick      smaller sizes and 3 rounds: under 3 minutes on 2 CPUs
#                once built
#                (the default run: 7 rounds, about 10 minutes)
#   --rounds N   rounds per benchmark (each round runs every peer once,
#                interleaved, inside the benchmark)
#   --out DIR    where the outputs go (default bench-results/)
#   --build DIR  the build directory (default build-bench/, RelWithDebInfo
#                as the README's figures were built)
#   --no-build   use the binaries already in the build directory
#
# Two runs side by side: python3 bench/summarize.py --compare DIR1 DIR2.
# Writes DIR/summary.md (also printed), DIR/results.txt (every RESULT line
# the benchmarks printed, one per measure, peer and round), DIR/machine.txt
# (the machine and how busy it was) and each benchmark's full output as
# DIR/NAME.txt. A benchmark that is not built (bench_channel, until it
# exists) is skipped with a line; one that fails is reported and the others
# still run. Exit status: 0 when every benchmark ran, 1 otherwise, 2 on a
# usage error. Whether targets are met does not change the status: the
# table says it, and figures from a busy machine (see its load and stolen
# CPU lines) are not results.
set -uo pipefail
cd "$(dirname "$0")/.."

quick=0
rounds=
out=bench-results
build=build-bench
do_build=1
usage() { # usage STATUS: 0 prints to stdout (--help), else to stderr
	if [ "$1" = 0 ]; then
		sed -n '5,15p' "$0" | sed 's/^# \{0,1\}//'
	else
		sed -n '5,15p' "$0" | sed 's/^# \{0,1\}//' >&2
	fi
	exit "$1"
}
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--rounds) [ $# -ge 2 ] || usage 2; rounds=$2; shift ;;
	--out) [ $# -ge 2 ] || usage 2; out=$2; shift ;;
	--build) [ $# -ge 2 ] || usage 2; build=$2; shift ;;
	--no-build) do_build=0 ;;
	-h|--help) usage 0 ;;
	*) echo "run_all.sh: unknown option '$1'" >&2; usage 2 ;;
	esac
	shift
done
if [ -z "$rounds" ]; then
	if [ $quick = 1 ]; then rounds=3; else rounds=7; fi
fi
case "$rounds" in
'' | *[!0-9]*) echo "run_all.sh: --rounds needs a number 1..60" >&2; exit 2 ;;
esac
if [ "$rounds" -lt 1 ] || [ "$rounds" -gt 60 ]; then
	echo "run_all.sh: --rounds needs a number 1..60" >&2
	exit 2
fi
command -v python3 >/dev/null || { echo "run_all.sh: python3 is needed for the summary" >&2; exit 1; }

benches=(bench_threadpool bench_procpool bench_ring bench_io bench_channel)
if [ $do_build = 1 ]; then
	echo "== build ($build, RelWithDebInfo)"
	cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPX_BUILD_BENCH=ON \
		>"$build.configure.log" 2>&1 ||
		{ cat "$build.configure.log" >&2; exit 1; }
	rm -f "$build.configure.log"
	targets=()
	known=$(cmake --build "$build" --target help 2>/dev/null)
	for b in "${benches[@]}"; do
		grep -qw "$b" <<<"$known" && targets+=("$b")
	done
	cmake --build "$build" -j "$(nproc)" --target "${targets[@]}" >/dev/null ||
		{ echo "run_all.sh: build failed" >&2; exit 1; }
fi
mkdir -p "$out" || exit 1
rm -f "$out"/results.txt "$out"/machine.txt

# bench_channel is being written elsewhere: pass --rounds and --quick only
# when its --help lists them.
channel_args() {
	local h
	h=$("$build/bench/bench_channel" --help 2>&1)
	grep -q -- --rounds <<<"$h" && printf -- '--rounds %s ' "$1"
	[ "$2" = 1 ] && grep -q -- --quick <<<"$h" && printf -- '--quick'
	echo
}

# Per benchmark: arguments and environment, default and --quick.
args_for() {
	local b=$1 n=$rounds
	if [ $quick = 1 ]; then
		case $b in
		bench_threadpool) echo "--rounds $n --tasks 50000 --pingpong 5000 --py-tasks 5000 --py-pingpong 500 --sporadic 100" ;;
		bench_procpool) echo "--rounds $n --tasks 50000 --map 500000 --pingpong 5000 --py-submit 5000 --py-map1 2000 --py-map256 50000 --py-pingpong 500 --sporadic 100" ;;
		bench_ring) echo "$n" ;;
		bench_io) echo "--reps $n --reads 50000" ;;
		bench_channel) channel_args "$n" 1 ;;
		esac
	else
		case $b in
		bench_threadpool | bench_procpool) echo "--rounds $n --sporadic 500" ;;
		bench_channel) channel_args "$n" 0 ;;
		bench_ring) echo "$n" ;;
		bench_io) echo "--reps $n" ;;
		esac
	fi
}
env_for() {
	if [ "$1" = bench_ring ]; then
		if [ $quick = 1 ]; then
			echo "PX_BENCH_N=500000 PX_BENCH_PINGS=5000 PX_BENCH_SPORADIC=100"
		else
			echo "PX_BENCH_N=2000000 PX_BENCH_PINGS=20000 PX_BENCH_SPORADIC=500"
		fi
	fi
}

# CPU accounting from /proc/stat (all CPUs, in clock ticks): busy (user,
# nice, system, irq, softirq) and steal; and the CPU time of this shell's
# finished children (the benchmarks and every process they waited for),
# from /proc/$$/stat. Other programs' CPU = busy - ours.
hz=$(getconf CLK_TCK)
ncpu=$(nproc)
stat_busy_steal() {
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat
}
our_ticks() {
	# fields 16 and 17: cutime, cstime (waited-for children); the command
	# name in field 2 has no spaces here (bash).
	awk '{ print $16 + $17 }' "/proc/$$/stat"
}
now_s() { date +%s.%N; }

{
	echo "date $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "cpus $ncpu"
	echo "model $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "kernel $(uname -srm)"
	echo "mode $([ $quick = 1 ] && echo quick || echo default), $rounds rounds"
	echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
	echo "load_before $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"

read -r busy0 steal0 < <(stat_busy_steal)
ours0=$(our_ticks)
t0=$(now_s)
status=0
for b in "${benches[@]}"; do
	bin="$build/bench/$b"
	if [ ! -x "$bin" ]; then
		echo "== $b: not built, skipped"
		echo "skipped $b not built" >>"$out/machine.txt"
		continue
	fi
	a=$(args_for "$b")
	e=$(env_for "$b")
	echo "== $b $a${e:+ ($e)}"
	read -r bb0 bs0 < <(stat_busy_steal)
	bo0=$(our_ticks)
	bt0=$(now_s)
	# shellcheck disable=SC2086
	env $e "$bin" $a >"$out/$b.txt" 2>"$out/$b.err"
	rc=$?
	bt1=$(now_s)
	bo1=$(our_ticks)
	read -r bb1 bs1 < <(stat_busy_steal)
	if [ $rc != 0 ]; then
		echo "== $b FAILED (exit $rc), see $out/$b.err" >&2
		echo "failed $b exit $rc" >>"$out/machine.txt"
		status=1
	fi
	grep '^RESULT ' "$out/$b.txt" >>"$out/results.txt"
	grep -v '^RESULT ' "$out/$b.txt"
	# bench NAME wall_s our_cpu_s other_cpu_s steal_s
	awk -v n="$b" -v w0="$bt0" -v w1="$bt1" -v o0="$bo0" -v o1="$bo1" \
		-v b0="$bb0" -v b1="$bb1" -v s0="$bs0" -v s1="$bs1" -v hz="$hz" 'BEGIN {
		ours = (o1 - o0) / hz; other = (b1 - b0) / hz - ours;
		if (other < 0) other = 0;
		printf "bench %s %.1f %.1f %.1f %.1f\n", n, w1 - w0, ours, other, (s1 - s0) / hz
	}' >>"$out/machine.txt"
done
t1=$(now_s)
ours1=$(our_ticks)
read -r busy1 steal1 < <(stat_busy_steal)
echo "load_after $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
awk -v w0="$t0" -v w1="$t1" -v o0="$ours0" -v o1="$ours1" -v b0="$busy0" \
	-v b1="$busy1" -v s0="$steal0" -v s1="$steal1" -v hz="$hz" 'BEGIN {
	ours = (o1 - o0) / hz; other = (b1 - b0) / hz - ours;
	if (other < 0) other = 0;
	printf "total %.1f %.1f %.1f %.1f\n", w1 - w0, ours, other, (s1 - s0) / hz
}' >>"$out/machine.txt"
touch "$out/results.txt"

python3 bench/summarize.py "$out/machine.txt" "$out/results.txt" >"$out/summary.md" ||
	{ echo "run_all.sh: summary failed" >&2; exit 1; }
echo
cat "$out/summary.md"
echo
echo "summary: $out/summary.md"
exit $status
