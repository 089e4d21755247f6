#!/usr/bin/env bash
# scripts/fuzz.sh - builds the libFuzzer targets in fuzz/ with clang,
# AddressSanitizer and UBSan, and runs each for a bounded time, starting from
# the committed seeds in fuzz/corpus/<target>/. Fails on any crash,
# sanitizer report, leak, or input that runs past the per-input timeout (a
# hang). New corpus entries and crash inputs stay in the build folder
# (build-fuzz/, ignored by git).
# Usage: scripts/fuzz.sh [seconds-per-target]   (default 35)
#        PX_FUZZ_TARGETS="fuzz_ring fuzz_queue" scripts/fuzz.sh 60
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-35}
case "$secs" in
''|*[!0-9]*) echo "fuzz.sh: seconds must be a positive integer" >&2; exit 2 ;;
esac
scripts/deps.sh test

dir=build-fuzz
echo "=== fuzz: configure and build ($dir)"
CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DPX_SANITIZE=address,undefined -DPX_FUZZ=ON -DPX_BUILD_TESTS=OFF \
	-DPX_BUILD_BENCH=OFF -DPX_BUILD_DEMOS=OFF >/dev/null
cmake --build "$dir" -j "$(nproc)" >/dev/null

targets=${PX_FUZZ_TARGETS:-"fuzz_spec fuzz_ini fuzz_ring fuzz_queue fuzz_shm fuzz_http"}
status=0
for t in $targets; do
	bin="$dir/fuzz/$t"
	if [ ! -x "$bin" ]; then
		echo "=== $t: not built, skipped"
		continue
	fi
	seeds="fuzz/corpus/${t#fuzz_}"
	work="$dir/corpus/${t#fuzz_}"
	art="$dir/artifacts/$t"
	log="$dir/$t.log"
	mkdir -p "$work" "$art"
	rm -f "$art"/*
	before=$(ls "$work" | wc -l)
	echo "=== $t: ${secs}s"
	# The first corpus folder receives new entries; the seeds are only
	# read. -timeout: an input running longer than 10 s is a hang.
	rc=0
	ASAN_OPTIONS="detect_leaks=1 abort_on_error=1" \
	UBSAN_OPTIONS="print_stacktrace=1 halt_on_error=1" \
		"$bin" "$work" "$seeds" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$art/" >"$log" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
	found=$(ls "$art" | wc -l)
	after=$(ls "$work" | wc -l)
	echo "$t: ${runs:-?} executions, ${cov:-cov: ?}, $((after - before)) new corpus entries ($after kept in $work), $found artifacts, exit $rc"
	if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
		status=1
		echo "--- $t failed; last lines of $log:" >&2
		grep -v '^#[0-9]' "$log" | tail -40 >&2
		ls "$art" >&2
	fi
done
if [ $status -eq 0 ]; then echo "fuzz.sh: all targets ran clean"; else echo "fuzz.sh: FAILED" >&2; fi
exit $status
