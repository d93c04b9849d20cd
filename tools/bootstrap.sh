#!/usr/bin/env bash
# Installs the Debian packages Vigil needs, only those that are missing, then the npm packages
# of the DuckDB reader the Parquet tests use (tools/duckdb), unless they are up to date with
# tools/duckdb/package-lock.json. Idempotent; needs no network when everything is installed.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  cmake g++ ninja-build pkg-config
  libcaf-dev librocksdb-dev libprotobuf-dev protobuf-compiler
  libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev libxxhash-dev nlohmann-json3-dev libsimdjson-dev
  libgrpc++-dev protobuf-compiler-grpc
  libgtest-dev libgmock-dev libbenchmark-dev
  libsnappy-dev libzstd-dev librdkafka-dev libssl-dev
)
if ! command -v node >/dev/null 2>&1; then
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

# The DuckDB reader: reinstalled only when package-lock.json differs from the one installed.
duckdb_dir="$repo_root/tools/duckdb"
lock_hash="$(sha256sum "$duckdb_dir/package-lock.json" | cut -d' ' -f1)"
stamp="$duckdb_dir/node_modules/.vigil-lock-sha256"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_hash" ]]; then
  echo "bootstrap: installing the npm packages of tools/duckdb" >&2
  npm ci --prefix "$duckdb_dir" --no-audit --no-fund --loglevel=error >/dev/null
  echo "$lock_hash" >"$stamp"
fi
