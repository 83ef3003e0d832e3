// AVX-512 build of the row kernels: the same source compiled with AVX512_COPTS (fp-contract off);
// the batch encoder takes 16 chunks per batch (simd/hnlq_avx512.h).
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || !defined(__AVX512VBMI__)
#error "row_codec_avx512.cc needs AVX512_COPTS (third_party/coset.bzl); dispatch would pick it on AVX-512 CPUs"
#endif
// GCC 12's AVX-512 intrinsics headers trip -W(maybe-)uninitialized on their own _mm512_undefined_*
// placeholders (GCC PR 105593); off for this unit only (clang has no such false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#define COSET_ISA avx512
#include "core/simd/row_codec_impl.h"
