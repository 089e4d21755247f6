#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every px_* function libparex.so exports has a section 3 page generated
# from its header comment, and every page belongs to an exported function.
# Pages render without warnings where groff or mandoc is installed.
# Usage: check_man.sh LIBPAREX.so MAN3_DIR MAN7_PAGE
set -uo pipefail
lib=$1
man3=$2
man7=$3
status=0
[ -f "$man3/undocumented.txt" ] || { echo "check_man.sh: $man3 was not generated" >&2; exit 1; }

syms=$(LC_ALL=C readelf --dyn-syms --wide "$lib" |
	awk '$1 ~ /^[0-9]+:$/ && $7 != "UND" && $8 ~ /^px_/ && $8 !~ /^px__/ { sub(/@.*/, "", $8); print $8 }' |
	LC_ALL=C sort -u)
pages=$(find "$man3" -maxdepth 1 -name 'px_*.3' -printf '%f\n' | sed 's/\.3$//' |
	LC_ALL=C sort -u)
[ -n "$syms" ] || { echo "check_man.sh: no px_* symbols in $lib" >&2; exit 1; }

for s in $(LC_ALL=C comm -23 <(echo "$syms") <(echo "$pages")); do
	why=$(awk -v s="$s" '$1 == s { print $2 }' "$man3/undocumented.txt")
	if [ -n "$why" ]; then
		echo "check_man.sh: $s has no page: no comment documents it at $why" >&2
	else
		echo "check_man.sh: $s is exported but declared in no public header" >&2
	fi
	status=1
done
for p in $(LC_ALL=C comm -13 <(echo "$syms") <(echo "$pages")); do
	echo "check_man.sh: $p is declared in a public header but libparex.so does not export it" >&2
	status=1
done

render=""
if command -v groff >/dev/null; then
	render+=$(groff -man -ww -z "$man3"/px_*.3 "$man7" 2>&1)
fi
if command -v mandoc >/dev/null; then
	render+=$(mandoc -Tlint -Wwarning "$man3"/px_*.3 "$man7" 2>&1)
fi
if [ -n "$render" ]; then
	echo "check_man.sh: pages render with warnings (first 10 lines):" >&2
	printf '%s\n' "$render" | head -n 10 >&2
	status=1
fi
[ $status -eq 0 ] && echo "check_man.sh: $(echo "$syms" | wc -l) exported functions, each with its page"
exit $status
