#!/usr/bin/env bash
# The main job: builds what is needed and runs Vigil's default example graph in one process.
# Usage: tools/main-job.sh [graph.yaml]   (default: examples/windowed_counts.yaml)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${VIGIL_BUILD_DIR:-$root/build}
graph=${1:-$root/examples/windowed_counts.yaml}

"$root/tools/build.sh" vigil >&2
cd "$root"
exec "$build_dir/vigil" run "$graph"
