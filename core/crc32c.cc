#include "core/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "core/simd/dispatch.h"

namespace coset {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78u;  // reflected Castagnoli

std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
    table[i] = c;
  }
  return table;
}

#if defined(__x86_64__)
// The crc32 instruction takes 3 cycles and issues one per cycle: one dependency chain uses a third
// of it. Large inputs run three chains over three consecutive stretches of kStretch bytes and join
// them: a CRC register is linear, so reg(A B) = Shift(reg(A), |B|) ^ reg(0 then B), where Shift
// appends |B| zero bytes (a multiplication by x^(8 |B|) mod P, tabulated below per byte of the
// register).
constexpr size_t kStretch = 8192;

class ShiftByStretch {
 public:
  ShiftByStretch() {
    const std::array<uint32_t, 256> table = MakeTable();
    uint32_t image[32];  // where each bit of the register goes after kStretch zero bytes
    for (int bit = 0; bit < 32; ++bit) {
      uint32_t c = 1u << bit;
      for (size_t i = 0; i < kStretch; ++i) c = table[c & 0xFF] ^ (c >> 8);
      image[bit] = c;
    }
    for (int k = 0; k < 4; ++k) {
      for (uint32_t byte = 0; byte < 256; ++byte) {
        uint32_t c = 0;
        for (int b = 0; b < 8; ++b) {
          if (byte & (1u << b)) c ^= image[8 * k + b];
        }
        tables_[k][byte] = c;
      }
    }
  }
  uint32_t operator()(uint32_t c) const {
    return tables_[0][c & 0xFF] ^ tables_[1][(c >> 8) & 0xFF] ^ tables_[2][(c >> 16) & 0xFF] ^ tables_[3][c >> 24];
  }

 private:
  uint32_t tables_[4][256];
};

__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(const uint8_t* data, size_t size, uint32_t crc) {
  uint64_t c = ~crc;
  if (size >= 3 * kStretch) {
    static const ShiftByStretch shift;
    while (size >= 3 * kStretch) {
      uint64_t c1 = 0, c2 = 0;
      for (size_t i = 0; i < kStretch; i += 8) {
        uint64_t w0, w1, w2;
        std::memcpy(&w0, data + i, 8);
        std::memcpy(&w1, data + kStretch + i, 8);
        std::memcpy(&w2, data + 2 * kStretch + i, 8);
        c = _mm_crc32_u64(c, w0);
        c1 = _mm_crc32_u64(c1, w1);
        c2 = _mm_crc32_u64(c2, w2);
      }
      c = shift(shift(static_cast<uint32_t>(c)) ^ static_cast<uint32_t>(c1)) ^ static_cast<uint32_t>(c2);
      data += 3 * kStretch;
      size -= 3 * kStretch;
    }
  }
  while (size >= 8) {
    uint64_t word;
    std::memcpy(&word, data, 8);
    c = _mm_crc32_u64(c, word);
    data += 8;
    size -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (size-- > 0) c32 = _mm_crc32_u8(c32, *data++);
  return ~c32;
}
#endif

}  // namespace

uint32_t Crc32cRef(const uint8_t* data, size_t size, uint32_t crc) {
  static const std::array<uint32_t, 256> table = MakeTable();
  uint32_t c = ~crc;
  for (size_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return ~c;
}

uint32_t Crc32c(const uint8_t* data, size_t size, uint32_t crc) {
#if defined(__x86_64__)
  // The dispatch facility decides (override included); it never reports an unsupported level.
  if (ActiveSimdLevel() >= SimdLevel::kSse42) return Crc32cSse42(data, size, crc);
#endif
  return Crc32cRef(data, size, crc);
}

}  // namespace coset
