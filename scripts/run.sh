#!/usr/bin/env bash
# The main job: installs what is missing (idempotent), builds cosetd optimized and runs it in the
# foreground on the embedded CPU backend. Arguments go to cosetd (see `cosetd --help`):
#   scripts/run.sh                                  # unix:$XDG_RUNTIME_DIR/coset/cosetd.sock (or
#                                                   # /run/coset/...), metrics 127.0.0.1:9464; no TCP
#   scripts/run.sh --grpc unix:/tmp/c.sock,127.0.0.1:50551   # add a TCP listener (any local user)
#   scripts/run.sh --grpc unix:/tmp/coset.sock      # elsewhere
# Stop it with Ctrl-C or SIGTERM (in-flight requests are drained). The CLI is
# bazel-bin/client/cosetctl (add --daemon ADDR to go through the daemon).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bazel build -c opt --color=no --curses=no //server:cosetd //client:cosetctl >&2
exec bazel-bin/server/cosetd "$@"
