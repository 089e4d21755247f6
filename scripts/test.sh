#!/usr/bin/env bash
# scripts/test.sh - builds parex and runs the whole test suite three times:
# plain, under ThreadSanitizer, and under AddressSanitizer+UBSan; then runs
# the libFuzzer targets for a bounded time (scripts/fuzz.sh).
# Installs missing Debian packages first (scripts/deps.sh).
# Usage: scripts/test.sh [plain|tsan|asan|fuzz ...]   (default: all four)
# PX_FUZZ_SECONDS sets the fuzz variant's seconds per target (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

jobs=$(nproc)
variants=("$@")
[ ${#variants[@]} -eq 0 ] && variants=(plain tsan asan fuzz)

status=0
for v in "${variants[@]}"; do
	if [ "$v" = fuzz ]; then
		scripts/fuzz.sh "${PX_FUZZ_SECONDS:-30}" || status=1
		continue
	fi
	case "$v" in
	plain) san=""; scale=1; bench=ON; type=Release ;;
	tsan) san="thread"; scale=0.1; bench=OFF; type=RelWithDebInfo ;;
	asan) san="address,undefined"; scale=0.1; bench=OFF; type=RelWithDebInfo ;;
	*) echo "test.sh: unknown variant '$v' (plain, tsan, asan, fuzz)" >&2; exit 2 ;;
	esac
	dir="build-test-$v"
	echo "=== $v: configure and build ($dir)"
	# Benchmarks are built (not run) once, in the plain variant, which is
	# the optimised Release build scripts/demo.sh makes too (-O3 finds
	# warnings -O2 does not).
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=$type -DPX_SANITIZE="$san" \
		-DPX_BUILD_BENCH=$bench >/dev/null
	cmake --build "$dir" -j "$jobs" >/dev/null
	echo "=== $v: ctest"
	# Sanitizer runs are 5-20x slower: stress sizes scale down, checks do not.
	if ! (cd "$dir" && PX_TEST_SCALE=$scale \
	      TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	      ASAN_OPTIONS="detect_leaks=1 abort_on_error=1" \
	      UBSAN_OPTIONS="print_stacktrace=1 halt_on_error=1" \
	      ctest --output-on-failure --timeout 600); then
		status=1
	fi
done
if [ $status -eq 0 ]; then echo "test.sh: all variants passed"; else echo "test.sh: FAILED" >&2; fi
exit $status
