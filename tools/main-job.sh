#!/usr/bin/env bash
# The main job: builds what is needed and runs the sepsis-watch demo (tools/demo): an embedded
# Kafka broker and cluster, the bundled PhysioNet 2019 ICU stays replayed into it as HL7 v2 and
# FHIR messages, examples/sepsis-watch.yaml scoring and alerting, live progress, and a summary.
# The Delta tables stay in ./vigil-demo/lake (replaced by the next run).
# Usage: tools/main-job.sh [vigil-demo flags, e.g. --speed 10 --data-dir /tmp/demo]
#        tools/main-job.sh GRAPH.yaml   runs another graph on an embedded 2-worker cluster
#                                       (VIGIL_WORKERS=0: on the single-process executor).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${VIGIL_BUILD_DIR:-$root/build}

if [[ $# -ge 1 && "$1" == *.yaml ]]; then
  "$root/tools/build.sh" vigil >&2
  exec "$build_dir/vigil" run --workers "${VIGIL_WORKERS:-2}" "$1"
fi
"$root/tools/build.sh" vigil-demo >&2
cd "$root"
exec "$build_dir/tools/vigil-demo" "$@"
