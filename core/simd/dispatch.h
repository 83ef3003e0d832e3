// The one CPU dispatch facility (FAISS-style): the SIMD level is detected once, can be overridden
// by the environment (COSET_SIMD=portable|sse4.2|avx2|avx512, read at first use) or the API
// (SetSimdLevel, ScopedSimdLevel), and every kernel family asks ActiveSimdLevel():
//   - the row codec (core/simd/row_codec_{portable,avx2,avx512}.cc, GetRowKernels),
//   - the LUT GEMM of LutMatrix's fast paths (core/simd/lut_gemm_{portable,avx2,avx512}.cc),
//   - CRC-32C of the blob trailer (core/crc32c.cc: SSE4.2 crc32 instruction),
//   - the bfloat16 / float16 conversions of core/dtype.cc (simd/dtype_avx512.cc).
// Detection checks exactly the features each level's translation units are compiled with
// (third_party/coset.bzl AVX2_COPTS: -mavx2 -mfma -mbmi2; AVX512_COPTS adds -mavx512f -mavx512bw
// -mavx512vl -mavx512dq -mavx512vbmi), so no unit runs on a CPU that lacks one of its instructions. Every level is
// bit-identical to the portable one (tests check each).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace coset {

// Ordered: a higher level includes the lower ones' instructions.
enum class SimdLevel { kPortable = 0, kSse42 = 1, kAvx2 = 2, kAvx512 = 3 };
// Every level, lowest first (tests and benchmarks run each one the CPU has).
inline constexpr SimdLevel kAllSimdLevels[] = {SimdLevel::kPortable, SimdLevel::kSse42, SimdLevel::kAvx2,
                                               SimdLevel::kAvx512};

const char* SimdLevelName(SimdLevel level);  // "portable", "sse4.2", "avx2", "avx512"
absl::StatusOr<SimdLevel> ParseSimdLevel(const std::string& name);

// The highest level this CPU runs.
SimdLevel DetectedSimdLevel();
// The level kernels use now: the detected one, lowered by COSET_SIMD or SetSimdLevel.
SimdLevel ActiveSimdLevel();
// Sets the active level; a level above DetectedSimdLevel() is refused (OUT_OF_RANGE) and nothing
// changes. Returns the previous level.
absl::StatusOr<SimdLevel> SetSimdLevel(SimdLevel level);

// Sets a level for the lifetime of a scope (tests and benchmarks); `ok()` is false when the CPU
// lacks it, and then the active level is left as it was.
class ScopedSimdLevel {
 public:
  explicit ScopedSimdLevel(SimdLevel level);
  ~ScopedSimdLevel();
  ScopedSimdLevel(const ScopedSimdLevel&) = delete;
  ScopedSimdLevel& operator=(const ScopedSimdLevel&) = delete;
  bool ok() const { return ok_; }

 private:
  SimdLevel previous_;
  bool ok_;
};

}  // namespace coset
