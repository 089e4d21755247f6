#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every public header (parex/*.h in each INCLUDE_DIR, so headers added later
# are covered) compiles on its own as C11 with -pedantic, and as C++11 and
# C++17; every header that declares functions wraps them in extern "C".
# Exits 77 after the C checks when no C++ compiler is given or found.
# Usage: check_headers.sh CC CXX|"" INCLUDE_DIR...
set -uo pipefail
cc=$1
cxx=$2
shift 2
incs=()
for d in "$@"; do incs+=("-I$d"); done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
n=0
for d in "$@"; do
	for h in "$d"/parex/*.h; do
		[ -e "$h" ] || continue
		name=parex/$(basename "$h")
		n=$((n + 1))
		printf '#include <%s>\n#include <%s>\ntypedef int px_check_not_empty;\n' "$name" "$name" >"$work/t.c"
		cp "$work/t.c" "$work/t.cpp"
		if ! out=$("$cc" -std=c11 -pedantic -Werror -Wall -Wextra "${incs[@]}" \
			-fsyntax-only "$work/t.c" 2>&1); then
			echo "check_headers.sh: $name does not compile alone as C11:" >&2
			echo "$out" | head -n 20 >&2
			status=1
		fi
		if grep -q '^PX_API' "$h" && ! grep -q 'extern "C"' "$h"; then
			echo "check_headers.sh: $name declares functions outside extern \"C\"" >&2
			status=1
		fi
		[ -n "$cxx" ] || continue
		for std in c++11 c++17; do
			if ! out=$("$cxx" -std=$std -pedantic -Werror -Wall -Wextra \
				"${incs[@]}" -fsyntax-only "$work/t.cpp" 2>&1); then
				echo "check_headers.sh: $name does not compile alone as $std:" >&2
				echo "$out" | head -n 20 >&2
				status=1
			fi
		done
	done
done
[ $n -gt 0 ] || { echo "check_headers.sh: no headers found in $*" >&2; exit 1; }
[ $status -eq 0 ] || exit 1
if [ -z "$cxx" ]; then
	echo "check_headers.sh: $n headers compile as C11; no C++ compiler, C++ skipped"
	exit 77
fi
echo "check_headers.sh: $n headers compile alone as C11, C++11 and C++17"
