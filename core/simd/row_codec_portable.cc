// Portable build of the row kernels (the reference every other ISA must match bit for bit).
#define COSET_ISA portable
#include "core/simd/row_codec_impl.h"
