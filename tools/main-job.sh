#!/usr/bin/env bash
# The main job: builds what is needed and runs Vigil's default example graph on an embedded
# cluster (a coordinator and 2 workers inside one process, talking over 127.0.0.1).
# Usage: tools/main-job.sh [graph.yaml]   (default: examples/windowed_counts.yaml)
#        VIGIL_WORKERS=0 tools/main-job.sh   runs it on the single-process executor instead.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${VIGIL_BUILD_DIR:-$root/build}
graph=${1:-$root/examples/windowed_counts.yaml}

"$root/tools/build.sh" vigil >&2
cd "$root"
exec "$build_dir/vigil" run --workers "${VIGIL_WORKERS:-2}" "$graph"
