// Included first by every translation unit compiled with AVX512_COPTS (third_party/coset.bzl):
// fails the build when the flags are missing (dispatch would still pick the unit on AVX-512 CPUs)
// and silences GCC 12's -W(maybe-)uninitialized on the AVX-512 headers' own _mm512_undefined_*
// placeholders (GCC PR 105593; clang has no such false positive) for the rest of the unit.
#pragma once

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || !defined(__AVX512VBMI__)
#error "this unit needs AVX512_COPTS (third_party/coset.bzl)"
#endif
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
