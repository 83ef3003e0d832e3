#include "core/symbol_packing.h"

#include <cstring>

namespace coset {

int BitWidth(unsigned __int128 v) {
  int bits = 0;
  while (v != 0) {
    ++bits;
    v >>= 1;
  }
  return bits;
}

namespace {

// LSB-first bit writer over a byte buffer; fields up to 64 bits.
class BitWriter {
 public:
  explicit BitWriter(uint8_t* out) : out_(out) {}
  void Write(uint64_t value, int bits) {
    acc_ |= static_cast<unsigned __int128>(value) << filled_;
    filled_ += bits;
    while (filled_ >= 8) {
      *out_++ = static_cast<uint8_t>(acc_);
      acc_ >>= 8;
      filled_ -= 8;
    }
  }
  void Flush() {
    if (filled_ > 0) *out_++ = static_cast<uint8_t>(acc_);
    acc_ = 0;
    filled_ = 0;
  }

 private:
  uint8_t* out_;
  unsigned __int128 acc_ = 0;
  int filled_ = 0;
};

class BitReader {
 public:
  explicit BitReader(const uint8_t* in) : in_(in) {}
  uint64_t Read(int bits) {
    while (filled_ < bits) {
      acc_ |= static_cast<unsigned __int128>(*in_++) << filled_;
      filled_ += 8;
    }
    const unsigned __int128 mask = (static_cast<unsigned __int128>(1) << bits) - 1;
    const uint64_t value = static_cast<uint64_t>(acc_ & mask);
    acc_ >>= bits;
    filled_ -= bits;
    return value;
  }

 private:
  const uint8_t* in_;
  unsigned __int128 acc_ = 0;
  int filled_ = 0;
};

}  // namespace

SymbolPacking::SymbolPacking(uint64_t alphabet, int64_t symbols_per_row)
    : alphabet_(alphabet), symbols_per_row_(symbols_per_row) {
  const unsigned __int128 two64 = static_cast<unsigned __int128>(1) << 64;
  unsigned __int128 power = alphabet;
  group_size_ = 1;
  while (power * alphabet <= two64) {
    power *= alphabet;
    ++group_size_;
  }
  group_limit_ = power;
  group_bits_ = BitWidth(power - 1);
  if ((alphabet & (alphabet - 1)) == 0) pow2_bits_ = BitWidth(alphabet - 1);
  tail_size_ = static_cast<int>(symbols_per_row % group_size_);
  tail_limit_ = 1;
  for (int i = 0; i < tail_size_; ++i) tail_limit_ *= alphabet;
  tail_bits_ = BitWidth(tail_limit_ - 1);
  row_bits_ = (symbols_per_row / group_size_) * group_bits_ + tail_bits_;
  row_bytes_ = (row_bits_ + 7) / 8;
}

void SymbolPacking::PackRow(const uint32_t* symbols, uint8_t* out) const {
  BitWriter writer(out);
  const int64_t groups = symbols_per_row_ / group_size_;
  auto write_group = [&](const uint32_t* s, int count, int bits) {
    unsigned __int128 value = 0;
    for (int j = count - 1; j >= 0; --j) value = value * alphabet_ + s[j];
    writer.Write(static_cast<uint64_t>(value), bits);
  };
  for (int64_t g = 0; g < groups; ++g) write_group(symbols + g * group_size_, group_size_, group_bits_);
  if (tail_size_ > 0) write_group(symbols + groups * group_size_, tail_size_, tail_bits_);
  writer.Flush();
}

bool SymbolPacking::UnpackRow(const uint8_t* in, uint32_t* symbols) const {
  BitReader reader(in);
  const int64_t groups = symbols_per_row_ / group_size_;
  auto read_group = [&](uint32_t* s, int count, int bits, unsigned __int128 limit) {
    uint64_t value = reader.Read(bits);
    if (static_cast<unsigned __int128>(value) >= limit) return false;
    if (pow2_bits_ > 0) {
      const uint64_t mask = alphabet_ - 1;
      for (int j = 0; j < count; ++j) {
        s[j] = static_cast<uint32_t>(value & mask);
        value >>= pow2_bits_;
      }
    } else {
      for (int j = 0; j < count; ++j) {
        s[j] = static_cast<uint32_t>(value % alphabet_);
        value /= alphabet_;
      }
    }
    return true;
  };
  for (int64_t g = 0; g < groups; ++g) {
    if (!read_group(symbols + g * group_size_, group_size_, group_bits_, group_limit_)) return false;
  }
  if (tail_size_ > 0 && !read_group(symbols + groups * group_size_, tail_size_, tail_bits_, tail_limit_)) {
    return false;
  }
  return true;
}

}  // namespace coset
