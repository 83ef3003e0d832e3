#!/usr/bin/env bash
# COSET_SIMD lowers the level for a whole process: cosetctl info reports it.
set -euo pipefail
COSETCTL="$1"
out=$(COSET_SIMD=portable "$COSETCTL" info --json)
echo "$out"
echo "$out" | grep -q '"simd":"portable"'
# An unknown value is ignored (the detected level stays).
COSET_SIMD=bogus "$COSETCTL" info --json | grep -q '"simd":"'
echo "1 passed"
