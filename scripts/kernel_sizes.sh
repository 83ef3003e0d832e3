#!/bin/bash
# Static SASS instruction counts of the CUDA kernels, for kernel work without a GPU (there is no
# SASS disassembler here): nvcc compiles kernels/cuda_codec.cu for sm_90 into a cubin, whose
# .text.<kernel> sections hold 16 bytes per instruction (sm_70 onwards). A static count covers
# every path of a kernel, the ones it seldom takes included: compare variants of one kernel (its
# instances with more rows per warp give the cost of a row's loop body by difference), not
# kernels with each other. Usage: scripts/kernel_sizes.sh [regex on the demangled kernel names]
set -euo pipefail
cd "$(dirname "$0")/.."
filter="${1:-}"
work="$(mktemp -d /tmp/coset-kernel-sizes-XXXXXX)"
trap 'rm -rf "$work"' EXIT
absl="$(bazel info output_base 2>/dev/null)/external/com_google_absl"
/usr/local/cuda/bin/nvcc -O3 -std=c++17 -fmad=false -I. -I"$absl" -arch=sm_90 -cubin kernels/cuda_codec.cu \
  -o "$work/kernels.cubin"
readelf -SW "$work/kernels.cubin" 2>/dev/null | sed -n 's/.*\] \.text\.\([^ ]*\) *PROGBITS *[0-9a-f]* *[0-9a-f]* *\([0-9a-f]*\).*/\2 \1/p' |
  while read -r size name; do
    printf "%6d %s\n" $((16#$size / 16)) "$(c++filt "$name" | sed -e "s/coset::device::(anonymous namespace):://g" -e "s/^void //" -e "s/(.*//")"
  done | { grep -E -- "$filter" || true; } | sort -k2
