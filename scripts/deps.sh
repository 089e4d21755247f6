#!/usr/bin/env bash
# scripts/deps.sh - installs the Debian 12 packages parex needs, if missing.
# Usage: scripts/deps.sh build|test|demo|bench   (each implies build)
# Uses apt-get directly as root, through sudo otherwise.
set -euo pipefail

# libjansson-dev: JSON output of the demos (optional for the library itself).
build_pkgs=(gcc make cmake pkg-config liburing-dev libinih-dev libjansson-dev)
# g++: the C++ header and linkage tests; binutils (readelf, nm): the ABI
# check; mandoc, groff-base, man-db: man pages are linted and rendered;
# clang and its runtime libraries (libFuzzer, sanitizers): scripts/fuzz.sh;
# openmpi-bin, libopenmpi-dev: libparex-mpi and its tests under mpirun.
test_pkgs=(libcmocka-dev valgrind python3 g++ binutils mandoc groff-base man-db
	clang libclang-rt-14-dev openmpi-bin libopenmpi-dev)
# Optional peers for bench/ (skipped cleanly by CMake when absent).
# python3-mpi4py: mpi4py.futures, bench_mpi's Python peer (bench_mpi_py.py).
bench_pkgs=(libglib2.0-dev libuv1-dev libck-dev libtbb-dev g++ libdpdk-dev python3
	python3-mpi4py)
# python3: the CPython comparisons and report.html (skipped without it).
demo_pkgs=(gnuplot-nox python3)

want=("${build_pkgs[@]}")
for kind in "$@"; do
	case "$kind" in
	build) ;;
	test) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
	demo) want+=("${demo_pkgs[@]}") ;;
	bench) want+=("${bench_pkgs[@]}") ;;
	*) echo "deps.sh: unknown kind '$kind' (build, test, demo, bench)" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
	sudo="sudo"
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Optional packages may be missing from a mirror: install what exists.
avail=()
for p in $(printf '%s\n' "${missing[@]}" | sort -u); do
	if apt-cache show "$p" >/dev/null 2>&1; then avail+=("$p"); else echo "deps.sh: $p not available, skipped" >&2; fi
done
$sudo apt-get install -y -qq --no-install-recommends "${avail[@]}" >/dev/null
