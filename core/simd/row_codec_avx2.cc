// AVX2 build of the row kernels: the same source compiled with -mavx2 -mfma (fp-contract off).
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__BMI2__)
#error "row_codec_avx2.cc needs AVX2_COPTS (third_party/coset.bzl); dispatch would pick it on AVX2 CPUs"
#endif
#define COSET_ISA avx2
#include "core/simd/row_codec_impl.h"
