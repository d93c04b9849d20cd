#!/usr/bin/env bash
# Installs missing packages, configures and builds Vigil into build/ (or $VIGIL_BUILD_DIR).
# Usage: tools/build.sh [cmake --build targets...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${VIGIL_BUILD_DIR:-$root/build}
jobs=${VIGIL_JOBS:-2}

"$root/tools/bootstrap.sh"
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j "$jobs" "${targets[@]}"
