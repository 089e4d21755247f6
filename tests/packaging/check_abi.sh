#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The built libparex.so against the committed baseline (scripts/abi.sh
# check), then the check itself against doctored baselines: it must fail on
# a removed symbol and on an added one, naming it.
# Usage: check_abi.sh SOURCE_DIR LIBPAREX.so
set -uo pipefail
src=$1
lib=$2
abi="$src/scripts/abi.sh"
"$abi" check "$lib" || exit 1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "check_abi.sh: $*" >&2; exit 1; }

# A baseline that holds one more symbol: the library "lost" it.
{ cat "$src/abi/parex.symbols"; echo "px_gone_function@@PAREX_0.2 FUNC"; } |
	LC_ALL=C sort >"$work/more"
out=$(PX_ABI_BASELINE="$work/more" "$abi" check "$lib" 2>&1) &&
	fail "a removed symbol passed"
grep -q 'ABI BREAK' <<<"$out" && grep -q px_gone_function <<<"$out" ||
	fail "a removed symbol was not named: $out"

# A baseline missing one symbol: the library "added" it.
victim=$(grep -v '^#' "$src/abi/parex.symbols" | grep '@@PAREX_0.2 ' | head -n1)
grep -vxF "$victim" "$src/abi/parex.symbols" >"$work/less"
out=$(PX_ABI_BASELINE="$work/less" "$abi" check "$lib" 2>&1) &&
	fail "an added symbol passed"
grep -q 'scripts/abi.sh update' <<<"$out" && grep -qF "${victim%% *}" <<<"$out" ||
	fail "an added symbol was not named with the way to accept it: $out"

# The same symbol under another version node is a change, hence a break.
sed "s/^${victim%%@@*}@@PAREX_0.2/${victim%%@@*}@@PAREX_0.0/" \
	"$src/abi/parex.symbols" >"$work/moved"
out=$(PX_ABI_BASELINE="$work/moved" "$abi" check "$lib" 2>&1) &&
	fail "a symbol that changed version node passed"
grep -q 'ABI BREAK' <<<"$out" || fail "a changed node was not a break: $out"
echo "check_abi.sh: baseline matches; removed, added and moved symbols are caught"
