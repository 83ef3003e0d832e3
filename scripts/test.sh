#!/usr/bin/env bash
# The whole test suite: installs what is missing (idempotent), checks the formatting, builds
# everything (CUDA-free targets and benchmarks included, so they keep compiling), runs every test,
# then the C++ tests again under ASan + UBSan, the daemon's concurrency tests under TSan, and the
# libFuzzer targets (scripts/fuzz.sh: clang-14, FUZZ_SECONDS each), and the Python tests against a
# `pip install ./torch_ext` of the package. Ends with the line "N passed, M failed", counted from
# the gtest/pytest XML results of every pass (a test counts once per configuration) plus one case
# per fuzz target.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

# Formatting: the tree must stay as clang-format-14 writes it (.clang-format). Counted as one case.
format_failed=0
if ! git ls-files '*.cc' '*.h' '*.cu' '*.cuh' | xargs clang-format-14 --dry-run -Werror; then
  echo "format check: run \`git ls-files '*.cc' '*.h' | xargs clang-format-14 -i\`" >&2
  format_failed=1
fi

BAZEL_FLAGS=(--color=no --curses=no)
bazel build "${BAZEL_FLAGS[@]}" //... || { echo "0 passed, 1 failed"; exit 1; }
bazel test "${BAZEL_FLAGS[@]}" //...
bazel_rc=$?

# The C++ tests again under AddressSanitizer + UndefinedBehaviorSanitizer (.bazelrc --config=asan,
# its own output tree): core, proto, common, client library, daemon and the real-process tests.
# The torch tests are left out: Debian's LibTorch is not built for ASan.
ASAN_TESTS=(//tests/core/... //tests/proto/... //tests/common/... //tests/server/... //tests/integration/...
            //tests/client:commands_test //tests/client:daemon_backend_test //tests/client:coset_client_test
            //tests/client:npy_test //tests/fuzz/...)
bazel test "${BAZEL_FLAGS[@]}" --config=asan "${ASAN_TESTS[@]}" || bazel_rc=1

# The daemon's shared state under ThreadSanitizer: the codec pool, the codebook cache, the memory
# budget, the request context, the side socket's registry (real sockets, a thread per connection)
# and the service called from many threads. Real-process daemon tests stay out: Debian's gRPC is
# not built with TSan, and its uninstrumented handoffs (arena memory passed to handler threads)
# read as races that cannot be suppressed without hiding races in our handlers too.
TSAN_TESTS=(//tests/core:thread_pool_test //tests/core:codebook_test //tests/server/...)
bazel test "${BAZEL_FLAGS[@]}" --config=tsan "${TSAN_TESTS[@]}" || bazel_rc=1

# libFuzzer: replay each seed corpus, then fuzz each target for FUZZ_SECONDS (default 30).
FUZZ_WORK=$(mktemp -d /tmp/coset-fuzz-XXXXXX)
export FUZZ_WORK
if ! bash scripts/fuzz.sh; then
  bazel_rc=1
  echo "fuzz work (crash inputs, logs): $FUZZ_WORK" >&2
fi

# The pip build: `pip install ./torch_ext` into a temporary target (setup.py compiles core's
# sources itself against the installed torch), then the Python tests against that install, so
# the Bazel and pip builds cannot drift. The daemon test stays out: the pip build has no gRPC.
PIP_WORK=$(mktemp -d /tmp/coset-pip-XXXXXX)
PIP_TESTS=()
for t in ops_test config_test qlinear_test ddp_test examples_test install_test; do
  PIP_TESTS+=("$PWD/tests/torch_ext/$t.py")
done
if /usr/bin/python3 -m pip install --no-build-isolation --no-deps --no-index --target "$PIP_WORK/site" \
    ./torch_ext >"$PIP_WORK/install.log" 2>&1; then
  COSETCTL="$(bazel info "${BAZEL_FLAGS[@]}" output_path 2>/dev/null)/k8-fastbuild/bin/client/cosetctl"
  TEST_DIR="$PWD/tests/torch_ext"  # (expanded before the cd below)
  (cd "$PIP_WORK" && export COSETCTL && COSET_EXPECT_PACKAGE_ROOT="$PIP_WORK/site" \
    PYTHONPATH="$PIP_WORK/site:$TEST_DIR" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$PIP_WORK/pytest.xml" "${PIP_TESTS[@]}" \
    >"$PIP_WORK/pytest.log" 2>&1) || { tail -40 "$PIP_WORK/pytest.log" >&2; bazel_rc=1; }
else
  tail -30 "$PIP_WORK/install.log" >&2
  bazel_rc=1
fi
rm -rf ./torch_ext/build ./torch_ext/*.egg-info  # setuptools' in-tree leftovers

# Count test cases (not targets) from the XML reports of the targets each pass ran: a testlogs tree
# also keeps reports of targets run by hand earlier, which must not count.
# The main build's output tree, from Bazel itself rather than the bazel-out link.
OUTPUT_PATH=$(bazel info "${BAZEL_FLAGS[@]}" output_path 2>/dev/null)
query_tests() { bazel query "${BAZEL_FLAGS[@]}" "tests(set($*))" 2>/dev/null; }
TARGET_LISTS=$(mktemp -d /tmp/coset-targets-XXXXXX)
query_tests //... >"$TARGET_LISTS/k8-fastbuild"
query_tests "${ASAN_TESTS[@]}" >"$TARGET_LISTS/k8-fastbuildasan"
query_tests "${TSAN_TESTS[@]}" >"$TARGET_LISTS/k8-fastbuildtsan"
/usr/bin/python3 - "$bazel_rc" "$format_failed" "$FUZZ_WORK/results.tsv" "$OUTPUT_PATH" "$TARGET_LISTS" \
    "$PIP_WORK/pytest.xml" <<'PY'
import os, sys
import xml.etree.ElementTree as ET
format_failed = int(sys.argv[2])
passed, failed, skipped = 1 - format_failed, format_failed, 0
# One testlogs tree per configuration (the default, ASan and TSan ones), and in each the reports
# of the targets that pass ran ("//tests/core:foo" -> tests/core/foo/test.xml).
reports = []
for tree in ("k8-fastbuild", "k8-fastbuildasan", "k8-fastbuildtsan"):
    for label in open(os.path.join(sys.argv[5], tree)).read().split():
        package, name = label.lstrip("/").split(":")
        path = os.path.join(sys.argv[4], tree, "testlogs", package, name, "test.xml")
        if os.path.exists(path):
            reports.append(path)
# The Python tests against the pip-installed package (one pytest report; missing = failed).
if os.path.exists(sys.argv[6]):
    reports.append(sys.argv[6])
else:
    failed += 1
for path in reports:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        failed += 1
        continue
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None or case.get("result") == "suppressed" or case.get("status") == "notrun":
            skipped += 1
        else:
            passed += 1
# One case per fuzz target (scripts/fuzz.sh's results: target, status, executions, ...).
fuzz_targets = 0
if os.path.exists(sys.argv[3]):
    for line in open(sys.argv[3]):
        fields = line.rstrip("\n").split("\t")
        fuzz_targets += 1
        if fields[1] == "ok":
            passed += 1
        else:
            failed += 1
if fuzz_targets == 0:
    failed += 1  # the fuzz pass must run
if int(sys.argv[1]) != 0 and failed == 0:
    failed = 1  # a target failed without a per-case report (crash, timeout): never report green
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(0 if failed == 0 else 1)
PY
status=$?
rm -rf "$TARGET_LISTS" "$PIP_WORK"
# Fuzz findings stay for a look when something failed (path printed above); a green run cleans up.
((status == 0)) && rm -rf "$FUZZ_WORK"
exit $status
