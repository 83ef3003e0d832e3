#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang-14, ASan and UBSan in their own Bazel output
# base, then fuzzes each one for FUZZ_SECONDS (30 by default), starting from its checked-in seed
# corpus. New inputs go to a scratch corpus outside the tree; a crash leaves its input in
# $FUZZ_WORK/<target>/ and fails the run. One result line per target, "fuzz <target>: ...", plus
# a machine-readable summary in $FUZZ_WORK/results.tsv (target, status, executions, seconds,
# seeds, corpus at the end) that scripts/test.sh counts.
#
#   scripts/fuzz.sh                         # what .ci/run does: 30 s per target
#   FUZZ_SECONDS=3600 scripts/fuzz.sh rpc_fuzz   # a longer local run of one target
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-30}
# One fuzz output base per checkout (Bazel ties an output base to one workspace).
OUTPUT_BASE=${COSET_FUZZ_OUTPUT_BASE:-$HOME/.cache/coset-fuzz-bazel/$(pwd | md5sum | cut -c1-12)}
FUZZ_WORK=${FUZZ_WORK:-$(mktemp -d /tmp/coset-fuzz-XXXXXX)}
mkdir -p "$FUZZ_WORK"
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(blob_parser_fuzz npy_fuzz shm_protocol_fuzz rpc_fuzz)

BAZEL=(bazel --output_base="$OUTPUT_BASE")
# --symlink_prefix=/: no bazel-out/bazel-bin links in the tree; they belong to the main build.
FUZZ_FLAGS=(--color=no --curses=no --symlink_prefix=/ --config=fuzz)
LABELS=("${TARGETS[@]/#/\/\/tests\/fuzz:}")
: >"$FUZZ_WORK/results.tsv"
if ! "${BAZEL[@]}" build "${FUZZ_FLAGS[@]}" "${LABELS[@]}"; then
  for t in "${TARGETS[@]}"; do printf '%s\tbuild-failed\t0\t0\t0\t0\n' "$t" >>"$FUZZ_WORK/results.tsv"; done
  echo "fuzz: build failed" >&2
  exit 1
fi
BIN=$("${BAZEL[@]}" info "${FUZZ_FLAGS[@]}" bazel-bin 2>/dev/null)

rc=0
for t in "${TARGETS[@]}"; do
  seeds=tests/fuzz/corpus/$t
  work=$FUZZ_WORK/$t
  mkdir -p "$work"
  log=$FUZZ_WORK/$t.log
  # -artifact_prefix: crash inputs land in the scratch dir; -timeout: an input slower than 25 s is
  # a hang; -rss_limit_mb: a leak or blow-up fails the run.
  (cd "$work" && "$BIN/tests/fuzz/$t" -max_total_time="$SECONDS_EACH" -timeout=25 -rss_limit_mb=4096 \
      -print_final_stats=1 -artifact_prefix="$work/" "$work" "$OLDPWD/$seeds") >"$log" 2>&1
  status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  nseeds=$(find "$seeds" -type f | wc -l)
  ncorpus=$(find "$work" -maxdepth 1 -type f | wc -l)
  if ((status == 0)); then verdict=ok; else verdict=FAILED; rc=1; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$verdict" "${execs:-0}" "$SECONDS_EACH" "$nseeds" "$ncorpus" \
    >>"$FUZZ_WORK/results.tsv"
  echo "fuzz $t: $verdict, ${execs:-0} executions in ${SECONDS_EACH} s (${secs:-0}/s), corpus $nseeds seeds -> $ncorpus inputs"
  if ((status != 0)); then
    tail -40 "$log" >&2
  fi
done
echo "fuzz: results in $FUZZ_WORK/results.tsv"
# The fuzz build's Bazel server is not needed between runs: free its memory.
"${BAZEL[@]}" shutdown 2>/dev/null
exit $rc
