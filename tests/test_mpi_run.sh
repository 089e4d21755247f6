#!/bin/sh
# tests/test_mpi_run.sh MPIRUN TEST_MPI TEST_MPI_PEER TEST_EXECUTOR_MPI SANITIZERS [DEMO_CPU]
# Runs the mpi backend's tests under the launcher, as CI does (as root, 3
# ranks on 2 CPUs), and checks what the job leaves behind:
#  1. test_mpi under `mpirun -n 3`: the mpi backend's tests, on rank 0
#     (cmocka), then the common executor test body (test_executor.c) on mpi;
#     and once more with local=thread;
#  2. an MPMD launch of two different programs: every rank's open fails
#     with PX_EVERSION, and no task is sent;
#  3. a single rank: a clear one-line error, not a hang;
#  4. demo_cpu --backend mpi (when the demos are built): its table and its
#     verdict have the mpi row, printed once (by rank 0);
#  5. test_mpi --trace: rank 0's trace file has every task once, on tracks
#     named after the rank and host each ran on (tests/check_trace.py);
#  6. test_mpi --exit-inflight: rank 0 exits with large results on their
#     way, and the job still ends with status 0;
#  7. no process running either test binary after each job.
# Skips (77) under ThreadSanitizer: Open MPI is not TSan-clean.
set -u
mpirun=$1 prog=$2 peer=$3 common=$4 san=${5:-} demo=${6:-}
# check_trace.py, next to this script; python3 needed to run it.
checker="$(dirname "$0")/check_trace.py"
command -v python3 >/dev/null 2>&1 || checker=""
case "$san" in
*thread*) echo "test_mpi: skipped under ThreadSanitizer (Open MPI is not TSan-clean)"; exit 77 ;;
*address*)
	# Open MPI leaks at MPI_Init/Finalize: leak checking off for these
	# tests only; every other ASan/UBSan check stays on.
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" ;;
esac
# Open MPI refuses root and more ranks than cores without these.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
unset PAREX_CONFIG
fail=0
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT

# Processes (ranks, fork servers, pool workers) still running binary $1.
leftovers() {
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
	done
}
check_gone() {
	sleep 0.2
	left=$(leftovers "$(readlink -f "$1")")
	if [ -n "$left" ]; then
		echo "FAIL: processes of $1 left behind: $left"
		fail=1
	fi
}

echo "== mpirun -n 3 test_mpi"
if ! timeout 240 "$mpirun" -n 3 "$prog"; then
	echo "FAIL: test_mpi"
	fail=1
fi
check_gone "$prog"

echo "== mpirun -n 3 test_mpi --local-thread"
if ! timeout 120 "$mpirun" -n 3 "$prog" --local-thread; then
	echo "FAIL: test_mpi --local-thread"
	fail=1
fi
check_gone "$prog"

echo "== mpirun -n 3 test_executor_mpi mpi"
if ! timeout 240 "$mpirun" -n 3 "$common" mpi; then
	echo "FAIL: test_executor_mpi"
	fail=1
fi
check_gone "$common"

echo "== mpirun -n 3 test_mpi --trace"
trace=$(mktemp) || exit 1
if ! timeout 120 "$mpirun" -n 3 "$prog" --trace "$trace"; then
	echo "FAIL: test_mpi --trace"
	fail=1
elif [ -n "$checker" ]; then
	# Every task once (39 ran, one of them crashed its worker, one
	# failed), disjoint per track; tracks named after both serving ranks.
	if ! python3 "$checker" "$trace" --tasks 40 --crashed 1 --errors 1 \
		--not-run 0 ||
	   ! grep -q '"name":"rank 1 (' "$trace" ||
	   ! grep -q '"name":"rank 2 (' "$trace"; then
		echo "FAIL: rank 0's trace of the mpi tasks"
		fail=1
	fi
fi
rm -f "$trace"
check_gone "$prog"

echo "== mpirun -n 3 test_mpi --exit-inflight"
if ! timeout 60 "$mpirun" -n 3 "$prog" --exit-inflight; then
	echo "FAIL: rank 0 leaving with large results out must end the job (rc 0)"
	fail=1
fi
check_gone "$prog"

echo "== mpirun -n 1 test_mpi --mismatch : -n 2 test_mpi_peer --mismatch"
timeout 120 "$mpirun" -n 1 "$prog" --mismatch : -n 2 "$peer" --mismatch >"$out" 2>&1
rc=$?
cat "$out"
if [ $rc -ne 0 ] || [ "$(grep -c '^mismatch .*: -4004 ' "$out")" -ne 3 ] ||
   ! grep -q 'runs a different program than rank 0' "$out"; then
	echo "FAIL: a build-id mismatch must fail every rank's open with PX_EVERSION (rc $rc)"
	fail=1
fi
check_gone "$prog"
check_gone "$peer"

echo "== mpirun -n 1 test_mpi (one rank: nobody to serve)"
timeout 120 "$mpirun" -n 1 "$prog" >"$out" 2>&1
rc=$?
if [ $rc -eq 0 ] || [ $rc -eq 124 ] || ! grep -q 'needs at least 2 ranks' "$out"; then
	cat "$out"
	echo "FAIL: one rank must fail the open with a clear message (rc $rc)"
	fail=1
fi
check_gone "$prog"
if [ -n "$demo" ]; then
	echo "== mpirun -n 3 demo_cpu --backend mpi"
	timeout 120 "$mpirun" -n 3 "$demo" --backend mpi --workers 2 --seconds 0.01 \
		--tiny 200 --budget 0 --min-rounds 1 --max-rounds 1 >"$out" 2>&1
	rc=$?
	if [ $rc -ne 0 ] || [ "$(grep -c '^mpi  *2 ' "$out")" -ne 2 ] ||
	   ! grep -q '^  \* mpi, ' "$out" || [ "$(grep -c '^demo_cpu: ' "$out")" -ne 1 ]; then
		cat "$out"
		echo "FAIL: demo_cpu --backend mpi must print its mpi rows and verdict once (rc $rc)"
		fail=1
	fi
	check_gone "$demo"
fi
exit $fail
