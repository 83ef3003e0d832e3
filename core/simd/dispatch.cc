#include "core/simd/dispatch.h"

#include <atomic>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace coset {
namespace {

SimdLevel Detect() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  // The AVX2 units are compiled with -mavx2 -mfma -mbmi2: require all three; the AVX-512 units add
  // F, BW, VL, DQ and VBMI (byte permutes). libgcc also checks that the OS saves the zmm state.
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
  if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vbmi")) {
    return SimdLevel::kAvx512;
  }
  if (avx2) return SimdLevel::kAvx2;
  if (__builtin_cpu_supports("sse4.2")) return SimdLevel::kSse42;
#endif
  return SimdLevel::kPortable;
}

std::atomic<int>& Active() {
  static std::atomic<int> level = [] {
    SimdLevel chosen = DetectedSimdLevel();
    // COSET_SIMD lowers the level for the whole process; unknown or unavailable values are ignored
    // (the detected level stays; `cosetctl info` shows the level in use).
    if (const char* env = std::getenv("COSET_SIMD"); env != nullptr) {
      auto parsed = ParseSimdLevel(env);
      if (parsed.ok() && *parsed <= chosen) chosen = *parsed;
    }
    return static_cast<int>(chosen);
  }();
  return level;
}

}  // namespace

const char* SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kPortable:
      return "portable";
    case SimdLevel::kSse42:
      return "sse4.2";
    case SimdLevel::kAvx2:
      return "avx2";
    case SimdLevel::kAvx512:
      return "avx512";
  }
  return "?";
}

absl::StatusOr<SimdLevel> ParseSimdLevel(const std::string& name) {
  for (SimdLevel level : kAllSimdLevels) {
    if (name == SimdLevelName(level)) return level;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("SIMD level '", name.substr(0, 32), "' is unknown (portable, sse4.2, avx2 or avx512)"));
}

SimdLevel DetectedSimdLevel() {
  static const SimdLevel detected = Detect();
  return detected;
}

SimdLevel ActiveSimdLevel() { return static_cast<SimdLevel>(Active().load(std::memory_order_relaxed)); }

absl::StatusOr<SimdLevel> SetSimdLevel(SimdLevel level) {
  if (level > DetectedSimdLevel()) {
    return absl::OutOfRangeError(absl::StrCat("this CPU does not support ", SimdLevelName(level),
                                              " (best: ", SimdLevelName(DetectedSimdLevel()), ")"));
  }
  return static_cast<SimdLevel>(Active().exchange(static_cast<int>(level)));
}

ScopedSimdLevel::ScopedSimdLevel(SimdLevel level) : previous_(ActiveSimdLevel()) { ok_ = SetSimdLevel(level).ok(); }

ScopedSimdLevel::~ScopedSimdLevel() {
  if (ok_) (void)SetSimdLevel(previous_);
}

}  // namespace coset
