#!/usr/bin/env bash
# Builds everything and runs the tests (all ctest labels: unit, integration, chaos, bench).
# Extra arguments go to ctest, e.g. tools/test.sh -L unit
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${VIGIL_BUILD_DIR:-$root/build}

"$root/tools/build.sh"
cd "$build_dir"
ctest --output-on-failure --timeout 600 -j "${VIGIL_JOBS:-2}" "$@"
