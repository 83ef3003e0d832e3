#!/usr/bin/env bash
# The main job. Installs what is missing (idempotent), builds cosetctl optimized and runs it.
#   scripts/run.sh                      # demo: N(0,1) rate/distortion and encode/decode throughput
#   scripts/run.sh encode x.npy x.coset # any cosetctl command
# The cosetd daemon (issue #4) will take over this script once it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bazel build -c opt --color=no --curses=no //client:cosetctl >&2
ctl=bazel-bin/client/cosetctl
if (($# == 0)); then
  "$ctl" eval --lattice D4 --q 4 --M 2 --scale none --samples 1048576
  "$ctl" eval --lattice E8 --q 4 --M 2 --scale none --samples 1048576
  "$ctl" bench --lattice D4 --mib 64
else
  exec "$ctl" "$@"
fi
