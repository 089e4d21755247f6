#!/bin/sh
# tests/test_mpi_readme.sh MPIRUN EXAMPLE EXAMPLE_MPI SANITIZERS
# README.md's example, unchanged (EXAMPLE_MPI is the same source linked with
# libparex-mpi), must print the same on thread, process and mpi, the
# backend chosen by PAREX_EXECUTOR alone. Skips under ThreadSanitizer.
set -u
mpirun=$1 ex=$2 exmpi=$3 san=${4:-}
case "$san" in
*thread*) echo "skipped under ThreadSanitizer (Open MPI is not TSan-clean)"; exit 77 ;;
*address*) export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" ;;
esac
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
unset PAREX_CONFIG
d=$(mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
PAREX_EXECUTOR=thread:workers=2 "$ex" >"$d/thread" || exit 1
PAREX_EXECUTOR=process:workers=2 "$ex" >"$d/process" || exit 1
PAREX_EXECUTOR=mpi:workers_per_rank=2 timeout 100 "$mpirun" -n 3 "$exmpi" >"$d/mpi" || exit 1
cat "$d/mpi"
[ "$(wc -l <"$d/thread")" -eq 10 ] || { echo "FAIL: expected 10 lines"; exit 1; }
for b in process mpi; do
	cmp -s "$d/thread" "$d/$b" || {
		echo "FAIL: $b output differs from thread:"
		diff "$d/thread" "$d/$b"
		exit 1
	}
done
echo "same output on thread, process and mpi"
