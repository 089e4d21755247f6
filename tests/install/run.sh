#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, then builds and runs a small
# program against it: CMake package (shared, static) and pkg-config
# (shared, static).
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
echo "install test: 4 consumers built and ran"
