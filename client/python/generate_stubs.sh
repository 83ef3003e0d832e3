#!/usr/bin/env bash
# generate_stubs.sh PROTO OUT_DIR: coset_pb2.py and coset_pb2_grpc.py for the coset_client package
# (used by the Bazel genrule and by setup.py). The stubs import each other package-relative.
set -euo pipefail
proto=$1 out=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/coset/v1" "$out"
cp "$proto" "$work/coset/v1/coset.proto"
protoc --proto_path="$work" --python_out="$work" --grpc_python_out="$work" \
  --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" "$work/coset/v1/coset.proto"
cp "$work/coset/v1/coset_pb2.py" "$out/coset_pb2.py"
sed 's/^from coset\.v1 import coset_pb2/from coset_client import coset_pb2/' \
  "$work/coset/v1/coset_pb2_grpc.py" >"$out/coset_pb2_grpc.py"
grep -q '^from coset_client import coset_pb2' "$out/coset_pb2_grpc.py"
