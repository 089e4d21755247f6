#!/usr/bin/env bash
# scripts/demo.sh - the main job: builds parex and runs demo_cpu and demo_io,
# which measure on this machine which backend suits CPU-bound and which
# suits I/O-bound work. Installs missing Debian packages first.
# For options (--workers, --csv, --plot, ...) run the demos themselves from
# build/demos/ afterwards; see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build demo
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPX_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)" --target demo_cpu demo_io >/dev/null
./build/demos/demo_cpu
echo
./build/demos/demo_io
