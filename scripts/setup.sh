#!/usr/bin/env bash
# Installs every Debian package coset needs. Idempotent: packages already present are skipped,
# so the README commands can run it every time at almost no cost.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap bazel-platforms   # Bazel 4.2.3 and the @platforms repository it needs offline
  g++ pkg-config zlib1g-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev libsystemd-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas-dev            # without it every float baseline is ~10x too slow
  libtorch-dev python3-torch python3-numpy python3-pytest
  dataset-fashion-mnist
  clang-format-14            # the formatting check of scripts/test.sh
  clang-14                   # libFuzzer (scripts/fuzz.sh)
  openssl util-linux         # the TLS tests make certificates; the access tests run a client under setpriv
  python3-pip python3-setuptools python3-wheel python3-venv ninja-build  # pip install ./torch_ext
  python3-matplotlib iproute2  # bench/ddp_time_to_accuracy.py: the plot, and tc for the shaped link
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: all ${#PACKAGES[@]} packages present" >&2
