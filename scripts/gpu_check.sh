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

bundle() {
  local targets=()
  for t in "${TESTS[@]}"; do targets+=("//${t%/*}:${t##*/}"); done
  bazel build -c opt --color=no --curses=no "${targets[@]}" || return 1
  rm -rf "$BUNDLE" && mkdir -p "$BUNDLE/bin" "$BUNDLE/lib"
  for t in "${TESTS[@]}"; do
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
  return $failed
}

case "${1:-}" in
  bundle) bundle ;;
  run) run ;;
  *) echo "usage: scripts/gpu_check.sh bundle|run" >&2; exit 2 ;;
esac
