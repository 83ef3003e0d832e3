// AVX2 build of the row kernels: the same source compiled with -mavx2 -mfma (fp-contract off).
#define COSET_ISA avx2
#include "core/simd/row_codec_impl.h"
