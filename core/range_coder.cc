#include "core/range_coder.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/limits.h"

namespace coset {
namespace {

constexpr int kScaleBits = 12;
constexpr uint32_t kScale = 1u << kScaleBits;  // a segment's frequencies sum to this
constexpr uint32_t kStateLow = 1u << 16;       // lane states stay in [2^16, 2^32): 16-bit words move in and out
constexpr int kLanes = 4;                      // counter i is coded by lane i % kLanes
static_assert(kOverloadSegment / kLanes + 3 < (1 << 16), "a lane's word count is a u16");
constexpr int kAlphabet = 256;  // counters are bytes
// A value present in a segment gets at least this frequency: a reciprocal of 1 would need 65 bits.
constexpr uint32_t kMinFrequency = 2;
static_assert(kMaxTMax < 64, "the decoder's slot entries hold a value in 6 bits");

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the stream's words are little-endian");
uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
void AppendU16(uint32_t v, std::vector<uint8_t>* out) {
  out->push_back(static_cast<uint8_t>(v));
  out->push_back(static_cast<uint8_t>(v >> 8));
}
void AppendU32(uint32_t v, std::vector<uint8_t>* out) {
  for (int b = 0; b < 4; ++b) out->push_back(static_cast<uint8_t>(v >> (8 * b)));
}

// A segment's frequency table: its counters' histogram scaled to sum to kScale.
struct Frequencies {
  int top = 0;                             // the largest value present
  std::array<int64_t, kAlphabet> count{};  // the histogram
  std::array<uint32_t, kAlphabet> freq{};  // zero for the values absent
};

Frequencies Measure(const uint8_t* t, int64_t count) {
  Frequencies f;
  CountValues(t, count, f.count.data());
  uint32_t sum = 0;
  for (int v = 0; v < kAlphabet; ++v) {
    const int64_t n = f.count[v];
    if (n == 0) continue;
    f.top = v;
    f.freq[v] = std::max<uint32_t>(kMinFrequency, static_cast<uint32_t>((n * int64_t{kScale} + count / 2) / count));
    sum += f.freq[v];
  }
  // Rounding and the minimum leave the sum a few units off kScale: the largest frequencies absorb them.
  while (sum != kScale) {
    uint32_t& largest = *std::max_element(f.freq.begin(), f.freq.begin() + f.top + 1);
    if (sum > kScale) {
      --largest, --sum;
    } else {
      ++largest, ++sum;
    }
  }
  return f;
}

// What the encoder needs of a value: state x becomes x + start + (x / freq) * (kScale - freq),
// i.e. (x / freq) * kScale + x % freq + start, with the division as a multiplication. 16 bytes, so
// that a value's entry is one cache line's quarter.
struct EncodeSymbol {
  uint64_t reciprocal = 0;      // ceil(2^64 / freq): the high word of x * reciprocal is x / freq for x < 2^32
  uint32_t renormalize_at = 0;  // a state at or above freq * 2^20 first shifts out its low 16 bits
  uint16_t start = 0;           // the frequencies of the smaller values (< kScale)
  uint16_t complement = 0;      // kScale - freq
};
static_assert(sizeof(EncodeSymbol) == 16, "a value's coding entry is 16 bytes");

// One lane's step: codes `value` into state x, first shifting x's low word out to *--next when x
// would leave its range. The word is stored whether or not it shifts out (no branch on the data).
inline __attribute__((always_inline)) void PutValue(const EncodeSymbol& s, uint32_t& x, uint16_t*& next) {
  const bool shift = x >= s.renormalize_at;
  next[-1] = static_cast<uint16_t>(x);
  next -= shift;
  const uint32_t y = shift ? x >> 16 : x;
  const uint64_t q = static_cast<uint64_t>((static_cast<unsigned __int128>(y) * s.reciprocal) >> 64);
  x = static_cast<uint32_t>(y + s.start + q * s.complement);
}

// A segment: its top value (u8) and frequencies (u16 each, top + 1 of them), and unless one value
// takes the whole scale (every counter equal: nothing more to say), the word counts of all lanes
// but the last (u16 each: a lane has at most kOverloadSegment / 4 + 2 words) and the lanes' words:
// a lane's final state (low word, high word), then the words it shifts in.
void EncodeSegment(const uint8_t* t, int64_t count, std::vector<uint8_t>* out, std::array<int64_t, kAlphabet>* counts) {
  const Frequencies f = Measure(t, count);
  *counts = f.count;
  out->push_back(static_cast<uint8_t>(f.top));
  for (int v = 0; v <= f.top; ++v) AppendU16(f.freq[v], out);
  if (f.freq[f.top] == kScale) return;  // the only value present (any other would hold >= kMinFrequency)

  std::array<EncodeSymbol, kAlphabet> symbols;
  uint32_t start = 0;
  for (int v = 0; v <= f.top; ++v) {
    if (f.freq[v] == 0) continue;
    symbols[v].reciprocal = ~uint64_t{0} / f.freq[v] + 1;
    symbols[v].renormalize_at = f.freq[v] << (32 - kScaleBits);  // < 2^32: freq < kScale here
    symbols[v].start = static_cast<uint16_t>(start);
    symbols[v].complement = static_cast<uint16_t>(kScale - f.freq[v]);
    start += f.freq[v];
  }
  // rANS codes the last value first, so that the decoder reads front to back: each lane's words are
  // written from the end of its part of `words`, at most one per value plus the final state's two.
  const int64_t lane_capacity = count / kLanes + 3;
  std::vector<uint16_t> words(kLanes * lane_capacity);
  uint16_t* lane_end[kLanes];
  for (int k = 0; k < kLanes; ++k) lane_end[k] = words.data() + (k + 1) * lane_capacity;
  // Each lane's state and write position in a local of its own: with arrays indexed by lane, the
  // compiler kept the positions on the stack (1.5-1.7x slower).
  uint32_t x0 = kStateLow, x1 = kStateLow, x2 = kStateLow, x3 = kStateLow;
  uint16_t *next0 = lane_end[0], *next1 = lane_end[1], *next2 = lane_end[2], *next3 = lane_end[3];
  int64_t i = count;
  while (i % kLanes != 0) {  // the lanes past the last whole group of four
    --i;
    if (i % kLanes == 2) {
      PutValue(symbols[t[i]], x2, next2);
    } else if (i % kLanes == 1) {
      PutValue(symbols[t[i]], x1, next1);
    } else {
      PutValue(symbols[t[i]], x0, next0);
    }
  }
  while (i > 0) {
    i -= kLanes;
    PutValue(symbols[t[i + 3]], x3, next3);
    PutValue(symbols[t[i + 2]], x2, next2);
    PutValue(symbols[t[i + 1]], x1, next1);
    PutValue(symbols[t[i]], x0, next0);
  }
  uint16_t* next[kLanes] = {next0, next1, next2, next3};
  const uint32_t state[kLanes] = {x0, x1, x2, x3};
  for (int k = 0; k < kLanes; ++k) {
    *--next[k] = static_cast<uint16_t>(state[k] >> 16);
    *--next[k] = static_cast<uint16_t>(state[k]);
  }
  for (int k = 0; k + 1 < kLanes; ++k) {  // the last lane takes the rest of the segment
    AppendU16(static_cast<uint32_t>(lane_end[k] - next[k]), out);
  }
  for (int k = 0; k < kLanes; ++k) {  // the words as they are: little-endian u16
    const size_t bytes = 2 * static_cast<size_t>(lane_end[k] - next[k]);
    out->resize(out->size() + bytes);
    std::memcpy(out->data() + out->size() - bytes, next[k], bytes);
  }
}

absl::Status Corrupt(const std::string& what) {
  return absl::DataLossError(absl::StrCat("overload-counter segment ", what, " (truncated or corrupt)"));
}

absl::Status DecodeSegment(const uint8_t* data, int64_t size, int64_t count, int t_max, uint8_t* t) {
  if (size < 1) return Corrupt("is empty");
  const int top = data[0];
  if (top > std::min(t_max, kMaxTMax)) return Corrupt(absl::StrCat("holds values up to ", top, ", above t_max"));
  const int64_t table_bytes = 1 + 2 * (top + 1);
  if (size < table_bytes) return Corrupt("ends inside its frequency table");
  // Per slot of the scale: (freq << 18) | (slot - start) << 6 | value. freq < kScale here: a value
  // that takes the whole scale ends the segment below.
  std::array<uint32_t, kScale> slots;
  uint32_t sum = 0;
  for (int v = 0; v <= top; ++v) {
    const uint32_t freq = LoadU16(data + 1 + 2 * v);
    if (freq > kScale - sum) return Corrupt("has frequencies above the scale");
    if (freq == kScale) {
      if (size != table_bytes) return Corrupt("has bytes after a table of one value");
      std::memset(t, v, static_cast<size_t>(count));
      return absl::OkStatus();
    }
    for (uint32_t k = 0; k < freq; ++k) slots[sum + k] = freq << 18 | k << 6 | static_cast<uint32_t>(v);
    sum += freq;
  }
  if (sum != kScale) return Corrupt("has frequencies that do not sum to the scale");
  const int64_t lanes_at = table_bytes + 2 * (kLanes - 1);
  if (size < lanes_at) return Corrupt("ends before its lanes");
  const uint8_t* w[kLanes];
  const uint8_t* end[kLanes];
  uint32_t state[kLanes];
  int64_t offset = lanes_at;
  for (int k = 0; k < kLanes; ++k) {
    const int64_t words = k + 1 < kLanes ? LoadU16(data + table_bytes + 2 * k) : (size - offset) / 2;
    if (words < 2 || 2 * words > size - offset) return Corrupt("has lanes that do not fit it");
    w[k] = data + offset + 4;
    end[k] = data + offset + 2 * words;
    state[k] = LoadU16(data + offset) | uint32_t{LoadU16(data + offset + 2)} << 16;
    if (state[k] < kStateLow) return Corrupt("has a lane state out of range");
    offset += 2 * words;
  }
  if (offset != size) return Corrupt("has bytes after its lanes");
  bool overrun = false;
  // A table lookup, a multiply and an add per value; a lane shifts a word in when its state falls
  // below 2^16 (about every 13 values of a D4 code's T).
  auto get = [&](int lane) __attribute__((always_inline)) {
    uint32_t x = state[lane];
    const uint32_t e = slots[x & (kScale - 1)];
    x = (e >> 18) * (x >> kScaleBits) + ((e >> 6) & (kScale - 1));
    if (x < kStateLow) {
      if (w[lane] == end[lane]) {
        overrun = true;
      } else {
        x = x << 16 | LoadU16(w[lane]);
        w[lane] += 2;
      }
    }
    state[lane] = x;
    return static_cast<uint8_t>(e & 0x3F);
  };
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    t[i] = get(0);
    t[i + 1] = get(1);
    t[i + 2] = get(2);
    t[i + 3] = get(3);
  }
  for (; i < count; ++i) t[i] = get(static_cast<int>(i % kLanes));
  if (overrun) return Corrupt("ends early");
  for (int k = 0; k < kLanes; ++k) {
    // An encoder's lanes start at kStateLow and its words are all read: anything else is not its stream.
    if (w[k] != end[k] || state[k] != kStateLow) return Corrupt("has a lane that does not end where its encoder began");
  }
  return absl::OkStatus();
}

int64_t Segments(int64_t count) { return (count + kOverloadSegment - 1) / kOverloadSegment; }

}  // namespace

void CountValues(const uint8_t* t, int64_t n, int64_t* histogram) {
  // Four histograms, taken in turn: nearly every counter is 0, and with one histogram each
  // increment waited for the previous one's store (1.45 ns per counter).
  int64_t counts[4][kAlphabet] = {};
  const int64_t n4 = n / 4 * 4;
  for (int64_t i = 0; i < n4; i += 4) {
    ++counts[0][t[i]];
    ++counts[1][t[i + 1]];
    ++counts[2][t[i + 2]];
    ++counts[3][t[i + 3]];
  }
  for (int64_t i = n4; i < n; ++i) ++counts[0][t[i]];
  for (int v = 0; v < kAlphabet; ++v) histogram[v] += counts[0][v] + counts[1][v] + counts[2][v] + counts[3][v];
}

std::vector<uint8_t> EncodeOverloadCounts(const uint8_t* t, int64_t count, int t_max, Executor* executor,
                                          std::vector<int64_t>* histogram) {
  const int64_t segments = Segments(count);
  std::vector<std::vector<uint8_t>> coded(segments);
  std::vector<std::array<int64_t, kAlphabet>> counts(segments);
  if (executor == nullptr) executor = InlineExecutor();
  executor->ParallelFor(segments, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) {
      const int64_t first = s * kOverloadSegment;
      EncodeSegment(t + first, std::min(kOverloadSegment, count - first), &coded[s], &counts[s]);
    }
  });
  if (histogram != nullptr) {  // the segments' tables name the values they hold: t_max only sizes this
    histogram->assign(t_max + 1, 0);
    for (const auto& c : counts) {
      for (int v = 0; v <= std::min(t_max, kAlphabet - 1); ++v) (*histogram)[v] += c[v];
    }
  }
  // Layout: u32 byte length of every segment, then the segments in order.
  size_t total = 4 * segments;
  for (const auto& c : coded) total += c.size();
  std::vector<uint8_t> out;
  out.reserve(total);
  for (const auto& c : coded) AppendU32(static_cast<uint32_t>(c.size()), &out);
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
    offsets[s + 1] = offsets[s] + LoadU32(data + 4 * s);
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
