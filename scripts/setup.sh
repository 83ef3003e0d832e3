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
  python3-grpcio python3-protobuf python3-yaml  # the Python client (client/python) and the deploy tests
  prometheus                 # prometheus + promtool: the rules' unit tests and the real-Prometheus test
  systemd                    # systemd-analyze verify / security for deploy/systemd
)
# Node.js runs the Kubernetes schema validator (deploy/kubernetes/validate); a node already on the
# PATH (another distribution of it) is used as it is.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PACKAGES+=(nodejs npm)
fi

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

# The validator's npm packages, pinned by deploy/kubernetes/validate/package-lock.json, installed
# once per lock file into /opt/coset-tools/k8s-validate (the tests read it there).
VALIDATE_SRC="$(cd "$(dirname "$0")/.." && pwd)/deploy/kubernetes/validate"
VALIDATE_DIR=/opt/coset-tools/k8s-validate
if ! cmp -s "$VALIDATE_SRC/package-lock.json" "$VALIDATE_DIR/package-lock.json" ||
   [[ ! -d "$VALIDATE_DIR/node_modules/kubernetes-models" ]]; then
  echo "setup: installing the Kubernetes schema validator into $VALIDATE_DIR" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO mkdir -p "$VALIDATE_DIR"
  $SUDO cp "$VALIDATE_SRC/package.json" "$VALIDATE_SRC/package-lock.json" "$VALIDATE_DIR/"
  (cd "$VALIDATE_DIR" && $SUDO npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
