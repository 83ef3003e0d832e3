#!/usr/bin/env bash
# The GPU device check, in two halves:
#   scripts/gpu_check.sh bundle   here (Bazel, Debian libraries): builds the GPU test binaries and
#                                 copies them with the shared libraries they need into gpu_bundle/
#                                 (git-ignored, well under 60 MiB; glibc >= 2.36 comes from the host)
#   scripts/gpu_check.sh run      on the GPU machine (no Bazel, no Debian packages), from the
#                                 repository root: runs every check, one summary line each, and
#                                 exits non-zero when one fails
# With the device tool: bundle here, then run with carry ["gpu_bundle"] and this script.
set -uo pipefail
cd "$(dirname "$0")/.."
BUNDLE=gpu_bundle
TESTS=(tests/kernels/cuda_codec_test)
BENCHES=(bench/cuda_codec_bench)
TOOLS=(server/cosetd bench/cuda_daemon_smoke)

bundle() {
  local targets=()
  for t in "${TESTS[@]}" "${BENCHES[@]}" "${TOOLS[@]}"; do targets+=("//${t%/*}:${t##*/}"); done
  bazel build -c opt --color=no --curses=no "${targets[@]}" || return 1
  rm -rf "$BUNDLE" && mkdir -p "$BUNDLE/bin" "$BUNDLE/lib"
  for t in "${TESTS[@]}" "${BENCHES[@]}" "${TOOLS[@]}"; do
    cp "bazel-bin/$t" "$BUNDLE/bin/"
    # Every shared library but glibc's own, which must be the host's.
    ldd "bazel-bin/$t" | awk '/=> \// {print $3}' |
      grep -Ev '/(libc|libm|libdl|libpthread|librt|ld-linux-x86-64)\.so' |
      xargs -r cp -L -t "$BUNDLE/lib/"
  done
  du -sh "$BUNDLE"
}

run() {
  local failed=0
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
  for t in "${TESTS[@]}"; do
    local name=${t##*/} xml
    xml=$(mktemp /tmp/gpu-check-XXXXXX.xml)
    LD_LIBRARY_PATH="$BUNDLE/lib" timeout 420 "$BUNDLE/bin/$name" --gtest_output="xml:$xml" >"/tmp/$name.log" 2>&1
    local rc=$?
    python3 - "$xml" "$name" "$rc" <<'PY'
import sys, xml.etree.ElementTree as ET
path, name, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    cases = list(ET.parse(path).getroot().iter("testcase"))
except Exception:
    cases = []
failed = [c.get("name") for c in cases if c.find("failure") is not None]
skipped = [c.get("name") for c in cases if c.find("skipped") is not None]
passed = len(cases) - len(failed) - len(skipped)
line = f"{name}: {passed} passed, {len(failed)} failed, {len(skipped)} skipped (exit {rc})"
if failed:
    line += " failed: " + ",".join(failed)
print(line)
PY
    ((rc == 0)) || { failed=1; tail -30 "/tmp/$name.log"; }
    grep -m1 "needs a CUDA device" "/tmp/$name.log" | sed "s/^/$name: /"
    rm -f "$xml"
  done
  # Benchmarks: 1 GiB of float32 per lattice, 3 runs; one JSON line per lattice.
  for b in "${BENCHES[@]}"; do
    local name=${b##*/} out
    out=$(LD_LIBRARY_PATH="$BUNDLE/lib" timeout 300 "$BUNDLE/bin/$name" --mib 1024 --runs 3 2>&1)
    local rc=$?
    if grep -q "needs a CUDA device" <<<"$out"; then
      echo "$name: skipped: $out"
    else
      sed "s/^/$name: /" <<<"$out"
      ((rc == 0)) || { echo "$name: failed (exit $rc)"; failed=1; }
    fi
  done
  smoke || failed=1
  return $failed
}

# cosetd on the CUDA backend: the same blobs and floats as the in-process CPU codec, and a 64 MiB
# encode and decode through shared memory beside the in-process CPU codec (bench/cuda_daemon_smoke).
smoke() {
  local dir bin="$BUNDLE/bin" pid ok=0
  dir=$(mktemp -d /tmp/gpu-smoke-XXXXXX)
  LD_LIBRARY_PATH="$BUNDLE/lib" "$bin/cosetd" --backend cuda --grpc "unix:$dir/s.sock" --metrics off \
    --ready-file "$dir/ready" 2>"$dir/cosetd.log" &
  pid=$!
  for _ in $(seq 100); do [[ -s $dir/ready ]] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if grep -q -e "--backend cuda: no CUDA" "$dir/cosetd.log"; then
    echo "cosetd cuda smoke: skipped: $(grep -o -e "--backend cuda: [^;]*" "$dir/cosetd.log")"
  elif [[ -s $dir/ready ]] &&
    LD_LIBRARY_PATH="$BUNDLE/lib" timeout 120 "$bin/cuda_daemon_smoke" --daemon "unix:$dir/s.sock" \
      >"$dir/smoke.json" 2>"$dir/smoke.log"; then
    echo "cosetd cuda smoke: ok $(cat "$dir/smoke.json")"
  else
    echo "cosetd cuda smoke: FAILED"; tail -5 "$dir/cosetd.log" "$dir/smoke.log" 2>/dev/null; ok=1
  fi
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  rm -rf "$dir"
  return $ok
}

case "${1:-}" in
  bundle) bundle ;;
  run) run ;;
  *) echo "usage: scripts/gpu_check.sh bundle|run" >&2; exit 2 ;;
esac
