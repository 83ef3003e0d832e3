#!/usr/bin/env bash
# The GPU device check, in two halves:
#   scripts/gpu_check.sh bundle   here (Bazel, Debian libraries): builds the GPU test binaries and
#                                 copies them with the shared libraries they need into gpu_bundle/
#                                 (git-ignored, well under 60 MiB; glibc >= 2.36 comes from the host)
#   scripts/gpu_check.sh run      on the GPU machine (no Bazel, no Debian packages), from the
#                                 repository root: runs every check, one summary line each, and
#                                 exits non-zero when one fails; a failed test binary is rerun
#                                 test by test, and the benchmark runs a section per process, so
#                                 that one faulting kernel does not hide the rest
# With the device tool: bundle here, then run with carry ["gpu_bundle"] and this script.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
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

# Logs go to $LOGS ($OUT when the device tool runs this, so that they come back).
LOGS=${OUT:-/tmp}

run() {
  local failed=0
  SECONDS=0
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
  for t in "${TESTS[@]}"; do
    local name=${t##*/} xml
    xml=$(mktemp /tmp/gpu-check-XXXXXX.xml)
    LD_LIBRARY_PATH="$BUNDLE/lib" timeout 240 "$BUNDLE/bin/$name" --gtest_output="xml:$xml" >"$LOGS/$name.log" 2>&1
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
    ((rc == 0)) || { failed=1; grep -m20 -B2 -A8 "Failure" "$LOGS/$name.log"; tail -5 "$LOGS/$name.log"; isolate "$name"; }
    grep -m1 "needs a CUDA device" "$LOGS/$name.log" | sed "s/^/$name: /"
    # A failure on the device: the memory checker over the same test, when the machine has one.
    if ((rc != 0)) && command -v compute-sanitizer >/dev/null; then
      LD_LIBRARY_PATH="$BUNDLE/lib" timeout 90 compute-sanitizer --tool memcheck --print-limit 5 \
        "$BUNDLE/bin/$name" --gtest_brief=1 >"$LOGS/$name.memcheck.log" 2>&1
      echo "$name under compute-sanitizer: exit $?"; grep -m12 -e "=========" "$LOGS/$name.memcheck.log"
    fi
    rm -f "$xml"
    echo "($SECONDS s)"
  done
  # Benchmarks: 1 GiB of float32 per lattice, 3 runs; one JSON line per lattice, shape and kernel.
  # A section, and the GEMM kernels not yet run on a GPU, per process: a kernel's fault (a sticky
  # CUDA error ends the process) costs only its own lines.
  for b in "${BENCHES[@]}"; do
    bench_part "${b##*/}" --sections codec || failed=1
    bench_part "${b##*/}" --sections host || failed=1
    bench_part "${b##*/}" --sections dot || failed=1
    bench_part "${b##*/}" --sections gemm --gemm-methods runs,per-chunk,decode-cublas || failed=1
    bench_part "${b##*/}" --sections gemm --gemm-methods tensor-cores || failed=1
    echo "($SECONDS s)"
  done
  smoke cuda --cuda-staging whole || failed=1
  smoke cuda --cuda-staging pipelined || failed=1
  smoke cuda --cuda-staging whole --cuda-kernels runs || failed=1
  smoke cuda --cuda-staging whole --cuda-kernels tensor-cores || failed=1
  # The same requests to cosetd on the CPU backend on this machine: the CUDA daemon's baseline,
  # shared memory and gRPC included.
  smoke cpu || failed=1
  echo "($SECONDS s)"
  return $failed
}

# bench_part NAME FLAGS...: the benchmark NAME with FLAGS, its lines prefixed with its name.
bench_part() {
  local name=$1 out rc
  shift
  out=$(LD_LIBRARY_PATH="$BUNDLE/lib" timeout 90 "$BUNDLE/bin/$name" --mib 1024 --runs 3 "$@" 2>&1)
  rc=$?
  if grep -q "needs a CUDA device" <<<"$out"; then
    echo "$name: skipped: $out"
    return 0
  fi
  sed "s/^/$name: /" <<<"$out"
  ((rc == 0)) || { echo "$name $*: failed (exit $rc)"; return 1; }
}

# isolate NAME: after a failed run of the test binary NAME, each of its tests in a process of its
# own, one line each that fails alone: a kernel's fault poisons the CUDA context of the process,
# and every later test in it then fails too.
isolate() {
  local name=$1 test log group="" alone=0 passed=0
  while IFS= read -r line; do
    # "Suite." then "  Test" lines (gtest_main's own first line is neither).
    if [[ $line =~ ^[A-Za-z_].*\.$ ]]; then group=$line; continue; fi
    [[ $line == "  "* && -n $group ]] || continue
    line=${line#  }
    test="$group${line%% *}"
    log="$LOGS/$name.${test//\//_}.log"
    if LD_LIBRARY_PATH="$BUNDLE/lib" timeout 120 "$BUNDLE/bin/$name" --gtest_filter="$test" >"$log" 2>&1; then
      passed=$((passed + 1))
      rm -f "$log"
    else
      alone=$((alone + 1))
      echo "$name: $test fails alone:"; grep -m6 -A4 "Failure" "$log" || tail -4 "$log"
    fi
  done < <(LD_LIBRARY_PATH="$BUNDLE/lib" "$BUNDLE/bin/$name" --gtest_list_tests)
  echo "$name, each test alone: $passed passed, $alone failed"
}

# smoke BACKEND [FLAGS...]: cosetd on BACKEND (cuda | cpu) with FLAGS: the same blobs and floats as
# the in-process CPU codec, and a 64 MiB encode and decode through shared memory beside the
# in-process CPU codec (bench/cuda_daemon_smoke).
smoke() {
  local dir bin="$BUNDLE/bin" pid ok=0 backend=$1 label="cosetd $* smoke" logname="${*// /}"
  shift
  dir=$(mktemp -d /tmp/gpu-smoke-XXXXXX)
  LD_LIBRARY_PATH="$BUNDLE/lib" "$bin/cosetd" --backend "$backend" "$@" --grpc "unix:$dir/s.sock" \
    --metrics off --ready-file "$dir/ready" 2>"$dir/cosetd.log" &
  pid=$!
  for _ in $(seq 100); do [[ -s $dir/ready ]] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if grep -q -e "--backend cuda: no CUDA" "$dir/cosetd.log"; then
    echo "$label: skipped: $(grep -o -e "--backend cuda: [^;]*" "$dir/cosetd.log")"
  elif [[ -s $dir/ready ]] &&
    LD_LIBRARY_PATH="$BUNDLE/lib" timeout 120 "$bin/cuda_daemon_smoke" --daemon "unix:$dir/s.sock" \
      --expect-backend "$backend" >"$dir/smoke.json" 2>"$dir/smoke.log"; then
    echo "$label: ok $(cat "$dir/smoke.json")"
  else
    echo "$label: FAILED"; tail -5 "$dir/cosetd.log" "$dir/smoke.log" 2>/dev/null; ok=1
    cp "$dir/cosetd.log" "$LOGS/cosetd-$logname.log" 2>/dev/null; cp "$dir/smoke.log" "$LOGS/smoke-$logname.log" 2>/dev/null
  fi
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  rm -rf "$dir"
  return $ok
}

# Nsight Compute over the benchmark's kernels (hardware counters; clocks left alone), for tuning:
#   profile          time, DRAM and SM throughput (% of peak) of the first 48 kernel launches
#   profile detail   also instructions, divergence, shared-memory bank conflicts, occupancy and
#                    the stall reasons, of the first encode / decode launches per chunk, of the
#                    run, packed and tile paths (KernelPath::kRuns), and of the first GEMM launches
# One line per kernel launch.
NCU_BASIC=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed
NCU_DETAIL=$NCU_BASIC,smsp__inst_executed.sum,smsp__thread_inst_executed_per_inst_executed.ratio,\
l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,sm__warps_active.avg.pct_of_peak_sustained_active,\
smsp__issue_active.avg.pct_of_peak_sustained_active
for reason in long_scoreboard short_scoreboard mio_throttle lg_throttle math_pipe_throttle wait not_selected; do
  NCU_DETAIL+=",smsp__average_warps_issue_stalled_${reason}_per_issue_active.ratio"
done

profile() {
  command -v ncu >/dev/null || { echo "profile: no ncu on this machine"; return 1; }
  local rc=0
  if [[ ${1:-} == detail ]]; then
    ncu_table detail-codec --metrics "$NCU_DETAIL" -k regex:Chunks --launch-count 6 || rc=1
    ncu_table detail-runs --metrics "$NCU_DETAIL" -k 'regex:Runs|Packed|Tiles' --launch-count 6 || rc=1
    ncu_table detail-gemm --metrics "$NCU_DETAIL" -k regex:Gemm --launch-count 6 || rc=1
  else
    ncu_table basic --metrics "$NCU_BASIC" -k regex:Kernel --launch-count 48 || rc=1
  fi
  return $rc
}

# ncu_table NAME NCU-ARGS...: runs the benchmark (256 MiB, one run) under ncu, prints the table.
ncu_table() {
  local name=$1
  shift
  LD_LIBRARY_PATH="$BUNDLE/lib" timeout 240 ncu --clock-control none --csv "$@" \
    "$BUNDLE/bin/cuda_codec_bench" --mib 256 --runs 1 >"$LOGS/ncu-$name.csv" 2>"$LOGS/ncu-$name.log"
  local rc=$?
  python3 - "$LOGS/ncu-$name.csv" <<'PY' || rc=1
import csv, sys
lines = open(sys.argv[1]).read().splitlines()  # the benchmark's own lines first, then ncu's CSV
start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
if start is None:
    sys.exit("profile: no rows")
rows = list(csv.reader(lines[start:]))
head = rows[0]
at = {k: head.index(k) for k in ("ID", "Kernel Name", "Metric Name", "Metric Value")}
def short(metric):
    for old, new in (("smsp__average_warps_issue_stalled_", "stall_"), ("_per_issue_active.ratio", ""),
                     (".avg.pct_of_peak_sustained_elapsed", "%"), (".avg.pct_of_peak_sustained_active", "%"),
                     ("_per_inst_executed.ratio", "/inst"), ("l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum", "smem_conflicts"),
                     ("gpu__time_duration.sum", "ns"), ("__", ".")):
        metric = metric.replace(old, new)
    return metric
by = {}
for r in rows[1:]:
    key = (int(r[at["ID"]]), r[at["Kernel Name"]].split("(")[0][-40:])
    by.setdefault(key, {})[short(r[at["Metric Name"]])] = r[at["Metric Value"]].replace(",", "")
for (i, name), m in sorted(by.items()):
    print(f"ncu {i:3d} {name:40s} " + " ".join(f"{k}={v}" for k, v in m.items()))
PY
  return $rc
}

case "${1:-}" in
  bundle) bundle ;;
  run) run ;;
  profile) profile "${2:-}" ;;
  *) echo "usage: scripts/gpu_check.sh bundle|run|profile [detail]" >&2; exit 2 ;;
esac
