#include "core/range_coder.h"

#include <algorithm>

namespace coset {
namespace {

constexpr int kProbBits = 11;
constexpr uint32_t kProbInit = 1u << (kProbBits - 1);
constexpr int kMoveBits = 5;
constexpr uint32_t kTopValue = 1u << 24;
constexpr int kContexts = 16;  // bit positions >= 15 share the last context

class RangeDecoder {
 public:
  RangeDecoder(const uint8_t* data, int64_t size) : data_(data), size_(size) {
    for (int i = 0; i < 5; ++i) code_ = (code_ << 8) | NextByte();
  }
  int DecodeBit(uint16_t& prob) {
    const uint32_t bound = (range_ >> kProbBits) * prob;
    int bit;
    if (code_ < bound) {
      range_ = bound;
      prob = static_cast<uint16_t>(prob + (((1u << kProbBits) - prob) >> kMoveBits));
      bit = 0;
    } else {
      code_ -= bound;
      range_ -= bound;
      prob = static_cast<uint16_t>(prob - (prob >> kMoveBits));
      bit = 1;
    }
    while (range_ < kTopValue) {
      range_ <<= 8;
      code_ = (code_ << 8) | NextByte();
    }
    return bit;
  }
  bool overrun() const { return overrun_; }

 private:
  uint32_t NextByte() {
    if (pos_ < size_) return data_[pos_++];
    overrun_ = true;
    return 0;
  }
  const uint8_t* data_;
  int64_t size_;
  int64_t pos_ = 0;
  uint32_t code_ = 0;
  uint32_t range_ = 0xFFFFFFFFu;
  bool overrun_ = false;
};

// Grows a segment's output to hold at least `need` bytes past the `used` ones; returns its data.
uint8_t* GrowOutput(std::vector<uint8_t>* out, size_t used, size_t need) {
  out->resize(std::max(2 * out->size(), used + need + 64));
  return out->data();
}

// The LZMA binary range coder over one segment. Its state is plain locals (no object, no pointer
// to them ever taken; the coder's steps are lambdas forced inline), so that the compiler can keep
// it in registers: with the state in an encoder object whose output vector grew by push_back in the
// loop, GCC kept the two busiest contexts' probabilities, the index and the input pointer on the
// stack, and every value waited on a store and a load. BM_OverloadStreamEncode (4M counters of a
// D4 code, 27 % above 0): 25.9 -> 23.1 ms. In a standalone g++ -O2 build, with every counter 0 (no
// mispredicted branches): 3.2 -> 1.2 ns per value. What is left is mostly the branches on the data;
// coding both outcomes without branches was slower there (8.4 against 6.3 ns per value: the bit's
// arithmetic then lies on the range's dependency chain). The bytes are the same (range_coder_test
// pins them).
std::vector<uint8_t> EncodeSegment(const uint8_t* t, int64_t count, int t_max) {
  // A first guess of one bit per value; grown by doubling when a segment needs more.
  std::vector<uint8_t> out(static_cast<size_t>(count / 8 + 64));
  uint8_t* data = out.data();
  size_t used = 0, capacity = out.size();
  uint64_t low = 0;
  uint32_t range = 0xFFFFFFFFu;
  uint32_t cache = 0;
  uint64_t cache_size = 1;
  // Emits the top byte of low, holding back 0xFF bytes until a carry is resolved.
  auto shift_low = [&]() __attribute__((always_inline)) {
    if (static_cast<uint32_t>(low) < 0xFF000000u || (low >> 32) != 0) {
      if (capacity - used < cache_size) {
        data = GrowOutput(&out, used, cache_size);
        capacity = out.size();
      }
      const uint32_t carry = static_cast<uint32_t>(low >> 32);
      uint32_t temp = cache;
      do {
        data[used++] = static_cast<uint8_t>(temp + carry);
        temp = 0xFF;
      } while (--cache_size != 0);
      cache = static_cast<uint32_t>(low >> 24) & 0xFF;
    }
    ++cache_size;
    low = (low & 0x00FFFFFFu) << 8;
  };
  auto encode_bit = [&](uint32_t & prob, uint32_t bit) __attribute__((always_inline)) {
    const uint32_t bound = (range >> kProbBits) * prob;
    if (bit == 0) {
      range = bound;
      prob += ((1u << kProbBits) - prob) >> kMoveBits;
    } else {
      low += bound;
      range -= bound;
      prob -= prob >> kMoveBits;
    }
    while (range < kTopValue) {
      range <<= 8;
      shift_low();
    }
  };
  uint32_t first = kProbInit, second = kProbInit;  // contexts 0 and 1
  uint32_t probs[kContexts];                       // contexts 2 and up
  std::fill(probs, probs + kContexts, kProbInit);
  if (t_max > 0) {
    for (const uint8_t* end = t + count; t != end; ++t) {
      // Unary: T ones then a zero; the zero is implied when T reaches t_max.
      const uint32_t value = *t;
      encode_bit(first, value > 0);
      if (value == 0 || t_max == 1) continue;
      encode_bit(second, value > 1);
      if (value == 1) continue;
      for (int bit = 2; bit < t_max; ++bit) {
        const uint32_t one = value > static_cast<uint32_t>(bit);
        encode_bit(probs[std::min(bit, kContexts - 1)], one);
        if (!one) break;
      }
    }
  }
  for (int i = 0; i < 5; ++i) shift_low();
  out.resize(used);
  return out;
}

absl::Status DecodeSegment(const uint8_t* data, int64_t size, int64_t count, int t_max, uint8_t* t) {
  uint16_t first = kProbInit, second = kProbInit;  // contexts 0 and 1, as EncodeSegment
  uint16_t probs[kContexts];
  std::fill(probs, probs + kContexts, kProbInit);
  RangeDecoder decoder(data, size);
  for (int64_t i = 0; i < count; ++i) {
    int value = 0;
    if (t_max > 0 && decoder.DecodeBit(first)) {
      value = 1;
      if (t_max > 1 && decoder.DecodeBit(second)) {
        value = 2;
        while (value < t_max && decoder.DecodeBit(probs[std::min(value, kContexts - 1)])) ++value;
      }
    }
    t[i] = static_cast<uint8_t>(value);
  }
  // An encoder's 5-byte flush means a valid segment never needs bytes beyond its own length.
  if (decoder.overrun()) return absl::DataLossError("overload-counter stream ends early (truncated or corrupt)");
  return absl::OkStatus();
}

int64_t Segments(int64_t count) { return (count + kOverloadSegment - 1) / kOverloadSegment; }

}  // namespace

std::vector<uint8_t> EncodeOverloadCounts(const uint8_t* t, int64_t count, int t_max, Executor* executor) {
  const int64_t segments = Segments(count);
  std::vector<std::vector<uint8_t>> coded(segments);
  if (executor == nullptr) executor = InlineExecutor();
  executor->ParallelFor(segments, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) {
      const int64_t first = s * kOverloadSegment;
      coded[s] = EncodeSegment(t + first, std::min(kOverloadSegment, count - first), t_max);
    }
  });
  // Layout: u32 byte length of every segment, then the segments in order.
  size_t total = 4 * segments;
  for (const auto& c : coded) total += c.size();
  std::vector<uint8_t> out;
  out.reserve(total);
  for (const auto& c : coded) {
    const uint32_t n = static_cast<uint32_t>(c.size());
    for (int b = 0; b < 4; ++b) out.push_back(static_cast<uint8_t>(n >> (8 * b)));
  }
  for (const auto& c : coded) out.insert(out.end(), c.begin(), c.end());
  return out;
}

absl::Status DecodeOverloadCounts(const uint8_t* data, int64_t size, int64_t count, int t_max, uint8_t* t,
                                  Executor* executor) {
  const int64_t segments = Segments(count);
  if (size < 4 * segments) return absl::DataLossError("overload-counter stream is truncated (segment table)");
  std::vector<int64_t> offsets(segments + 1);
  offsets[0] = 4 * segments;
  for (int64_t s = 0; s < segments; ++s) {
    uint32_t n = 0;
    for (int b = 0; b < 4; ++b) n |= static_cast<uint32_t>(data[4 * s + b]) << (8 * b);
    offsets[s + 1] = offsets[s] + n;
    if (offsets[s + 1] > size) return absl::DataLossError("overload-counter segments exceed their section");
  }
  if (offsets[segments] != size) return absl::DataLossError("overload-counter section has trailing bytes");
  std::vector<absl::Status> status(segments);
  if (executor == nullptr) executor = InlineExecutor();
  executor->ParallelFor(segments, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) {
      const int64_t first = s * kOverloadSegment;
      status[s] = DecodeSegment(data + offsets[s], offsets[s + 1] - offsets[s],
                                std::min(kOverloadSegment, count - first), t_max, t + first);
    }
  });
  for (const absl::Status& st : status) {
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace coset
