#!/usr/bin/env bash
# Installs the Debian packages Vigil needs, only those that are missing. Idempotent.
set -euo pipefail

packages=(
  cmake g++ ninja-build pkg-config
  libcaf-dev librocksdb-dev libprotobuf-dev protobuf-compiler
  libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev libxxhash-dev nlohmann-json3-dev libsimdjson-dev
  libgrpc++-dev protobuf-compiler-grpc
  libgtest-dev libgmock-dev libbenchmark-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "bootstrap: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
