// AVX-512 build of the row kernels: the same source compiled with AVX512_COPTS (fp-contract off);
// the batch encoder takes 16 chunks per batch (simd/hnlq_avx512.h).
#include "core/simd/avx512_unit.h"
#define COSET_ISA avx512
#include "core/simd/row_codec_impl.h"
