#include "core/format.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/crc32c.h"
#include "core/dtype.h"
#include "core/range_coder.h"
#include "core/status_macros.h"

namespace coset {
namespace {

constexpr size_t kFixedHeaderBytes = 40;
constexpr size_t kSectionTableBytes = 24;
constexpr size_t kTrailerBytes = 4;
constexpr uint8_t kFlagRotate = 1;
constexpr uint8_t kFlagCapZero = 2;

// Little-endian writer into a buffer sized in advance (PlanSerialization).
class Writer {
 public:
  explicit Writer(uint8_t* out) : out_(out) {}
  void U8(uint8_t v) { *out_++ = v; }
  void U16(uint16_t v) { Raw(&v, 2); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void F32(float v) { Raw(&v, 4); }
  void Bytes(const uint8_t* p, size_t n) {
    if (n > 0) std::memcpy(out_, p, n);
    out_ += n;
  }
  uint8_t* position() const { return out_; }

 private:
  // x86-64 and aarch64 are little-endian; the static_assert below guards other hosts.
  void Raw(const void* p, size_t n) { Bytes(static_cast<const uint8_t*>(p), n); }
  uint8_t* out_;
};
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "format.cc assumes a little-endian host");

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool Has(size_t k) const { return n_ - pos_ >= k; }
  uint8_t U8() { return p_[pos_++]; }
  uint16_t U16() { return Get<uint16_t>(); }
  uint32_t U32() { return Get<uint32_t>(); }
  uint64_t U64() { return Get<uint64_t>(); }
  float F32() { return Get<float>(); }
  const uint8_t* Here() const { return p_ + pos_; }
  void Skip(size_t k) { pos_ += k; }
  size_t pos() const { return pos_; }

 private:
  template <typename T>
  T Get() {
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

}  // namespace

SerializationPlan PlanSerialization(const CompressedTensor& tensor, Executor* executor) {
  SerializationPlan plan;
  plan.t_stream = EncodeOverloadCounts(tensor.t.data(), static_cast<int64_t>(tensor.t.size()), tensor.params.t_max,
                                       executor, &plan.t_histogram);
  plan.size = kFixedHeaderBytes + 8 * tensor.shape.size() + kSectionTableBytes + 2 * tensor.scales.size() +
              plan.t_stream.size() + tensor.symbols.size() + kTrailerBytes;
  return plan;
}

void SerializeTo(const CompressedTensor& tensor, const SerializationPlan& plan, uint8_t* out) {
  const CodecParams& p = tensor.params;
  const Lattice& lattice = p.lattice;
  Writer w(out);
  w.Bytes(reinterpret_cast<const uint8_t*>(kFormatMagic), 4);
  w.U16(kFormatVersion);
  w.U8(static_cast<uint8_t>(lattice.kind()));
  w.U8(static_cast<uint8_t>(lattice.dim()));
  w.U8(static_cast<uint8_t>(p.q));
  w.U8(static_cast<uint8_t>(p.M));
  w.U8(static_cast<uint8_t>(p.scale));
  w.U8(static_cast<uint8_t>(tensor.dtype));
  w.U8(static_cast<uint8_t>((p.rotate ? kFlagRotate : 0) | (p.on_cap == CapPolicy::kZero ? kFlagCapZero : 0)));
  w.U8(static_cast<uint8_t>(tensor.shape.size()));
  w.U8(static_cast<uint8_t>(p.t_max));
  w.U8(0);
  w.F32(p.alpha);
  w.F32(p.beta);
  w.U32(static_cast<uint32_t>(p.block));
  w.U32(static_cast<uint32_t>(tensor.layout.padded_cols - tensor.layout.cols));
  w.U64(p.seed);
  for (int64_t dim : tensor.shape) w.U64(static_cast<uint64_t>(dim));
  w.U64(tensor.scales.size() * 2);
  w.U64(plan.t_stream.size());
  w.U64(tensor.symbols.size());
  w.Bytes(reinterpret_cast<const uint8_t*>(tensor.scales.data()), 2 * tensor.scales.size());  // little-endian host
  w.Bytes(plan.t_stream.data(), plan.t_stream.size());
  w.Bytes(tensor.symbols.data(), tensor.symbols.size());
  const uint32_t crc = Crc32c(out, static_cast<size_t>(w.position() - out));
  w.U32(crc);
}

std::vector<uint8_t> Serialize(const CompressedTensor& tensor, Executor* executor) {
  const SerializationPlan plan = PlanSerialization(tensor, executor);
  std::vector<uint8_t> out(plan.size);
  SerializeTo(tensor, plan, out.data());
  return out;
}

absl::StatusOr<BlobHeader> PeekHeader(const uint8_t* data, size_t size) {
  if (data == nullptr || size < kFixedHeaderBytes || std::memcmp(data, kFormatMagic, 4) != 0) {
    return absl::InvalidArgumentError("not a coset blob (bad magic or too short)");
  }
  uint16_t version;
  std::memcpy(&version, data + 4, 2);
  if (version != kFormatVersion)
    return absl::FailedPreconditionError(absl::StrCat("unsupported coset format version ", version));
  const uint8_t dtype = data[11], rank = data[13];
  if (rank > kMaxRank || !IsKnownDType(dtype) || size < kFixedHeaderBytes + 8 * rank)
    return absl::DataLossError("blob header is corrupt");
  BlobHeader h;
  h.dtype = static_cast<DType>(dtype);
  h.numel = 1;
  for (int i = 0; i < rank; ++i) {
    uint64_t d;
    std::memcpy(&d, data + kFixedHeaderBytes + 8 * i, 8);
    if (d > static_cast<uint64_t>(kMaxElements) || !CheckedMul(h.numel, static_cast<int64_t>(d), &h.numel) ||
        h.numel > kMaxElements) {
      return absl::DataLossError("blob shape is corrupt");
    }
    h.shape.push_back(static_cast<int64_t>(d));
  }
  // Counters: rows x (cols + padding) / dim (byte 7: dim; bytes 28-31: padding), then the scales'
  // and symbols' sections as the table states them; sizes past the element limit are refused here.
  const size_t table = kFixedHeaderBytes + 8 * rank;
  if (size >= table + kSectionTableBytes && data[7] > 0) {
    uint32_t padding;
    std::memcpy(&padding, data + 28, 4);
    uint64_t scales_bytes, symbols_bytes;
    std::memcpy(&scales_bytes, data + table, 8);
    std::memcpy(&symbols_bytes, data + table + 16, 8);
    const int64_t cols = rank > 0 ? h.shape.back() : 1;
    const int64_t rows = cols > 0 ? h.numel / cols : 0;
    const uint64_t limit = static_cast<uint64_t>(kMaxElements) * 8;
    int64_t counters = 0;
    if (scales_bytes > limit || symbols_bytes > limit ||
        !CheckedMul(rows, (cols + static_cast<int64_t>(padding)) / data[7], &counters)) {
      return absl::DataLossError("blob section table is corrupt");
    }
    h.parsed_bytes = counters + static_cast<int64_t>(scales_bytes + symbols_bytes);
  }
  return h;
}

absl::StatusOr<CompressedTensor> Parse(const uint8_t* data, size_t size, Executor* executor) {
  CompressedTensor t;
  COSET_RETURN_IF_ERROR(ParseInto(data, size, executor, &t));
  return t;
}

absl::Status ParseInto(const uint8_t* data, size_t size, Executor* executor, CompressedTensor* out) {
  // A fresh tensor with out's buffers: every field below is set, every byte of the buffers written.
  CompressedTensor t;
  t.scales = std::move(out->scales);
  t.t = std::move(out->t);
  t.symbols = std::move(out->symbols);
  *out = CompressedTensor();
  if (data == nullptr && size > 0) return absl::InvalidArgumentError("blob pointer is null");
  if (size < 6 || std::memcmp(data, kFormatMagic, 4) != 0) {
    return absl::InvalidArgumentError("not a coset blob (bad magic; expected \"CSET\")");
  }
  uint16_t version;
  std::memcpy(&version, data + 4, 2);
  if (version != kFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("unsupported coset format version ", version, " (this build reads version ", kFormatVersion, ")"));
  }
  if (size < kFixedHeaderBytes + kSectionTableBytes + kTrailerBytes) {
    return absl::DataLossError(absl::StrCat("blob truncated: ", size, " bytes is shorter than the header"));
  }
  uint32_t stored_crc;
  std::memcpy(&stored_crc, data + size - kTrailerBytes, 4);
  const uint32_t actual_crc = Crc32c(data, size - kTrailerBytes);

  Reader r(data, size - kTrailerBytes);
  r.Skip(6);
  const uint8_t kind = r.U8();
  const uint8_t dim = r.U8();
  t.params.q = r.U8();
  t.params.M = r.U8();
  const uint8_t scale = r.U8();
  const uint8_t dtype = r.U8();
  const uint8_t flags = r.U8();
  const uint8_t rank = r.U8();
  t.params.t_max = r.U8();
  r.Skip(1);
  t.params.alpha = r.F32();
  t.params.beta = r.F32();
  t.params.block = static_cast<int>(r.U32());
  const uint32_t padding = r.U32();
  t.params.seed = r.U64();
  // Checksum before trusting any size field: a truncated blob fails here with a clear message.
  if (stored_crc != actual_crc) {
    return absl::DataLossError(absl::StrCat("checksum mismatch (stored 0x", absl::Hex(stored_crc), ", computed 0x",
                                            absl::Hex(actual_crc), "): blob is truncated or corrupted"));
  }
  if (kind > static_cast<uint8_t>(LatticeKind::kE8))
    return absl::DataLossError(absl::StrCat("unknown lattice kind ", kind));
  COSET_ASSIGN_OR_RETURN(t.params.lattice, Lattice::Create(static_cast<LatticeKind>(kind), dim));
  if (scale > 2) return absl::DataLossError(absl::StrCat("unknown scale mode ", scale));
  t.params.scale = static_cast<ScaleMode>(scale);
  if (!IsKnownDType(dtype)) return absl::DataLossError(absl::StrCat("unknown dtype ", dtype));
  t.dtype = static_cast<DType>(dtype);
  if (flags & ~(kFlagRotate | kFlagCapZero))
    return absl::DataLossError(absl::StrCat("unknown flags 0x", absl::Hex(flags)));
  t.params.rotate = flags & kFlagRotate;
  t.params.on_cap = (flags & kFlagCapZero) ? CapPolicy::kZero : CapPolicy::kFail;
  if (rank > kMaxRank) return absl::DataLossError(absl::StrCat("rank ", rank, " exceeds ", kMaxRank));
  if (t.params.beta <= 0.0f) return absl::DataLossError("beta must be positive");
  COSET_RETURN_IF_ERROR(ValidateParams(t.params));
  if (!r.Has(rank * 8 + kSectionTableBytes)) return absl::DataLossError("blob truncated inside the shape");
  for (int i = 0; i < rank; ++i) {
    const uint64_t d = r.U64();
    if (d > static_cast<uint64_t>(kMaxElements))
      return absl::DataLossError(absl::StrCat("shape[", i, "] = ", d, " is too large"));
    t.shape.push_back(static_cast<int64_t>(d));
  }
  COSET_ASSIGN_OR_RETURN(t.layout, Layout::Make(t.params, t.shape));
  if (t.layout.numel > kMaxElements) {
    return absl::DataLossError(absl::StrCat("blob claims ", t.layout.numel, " elements (limit ", kMaxElements, ")"));
  }
  if (padding != t.layout.padded_cols - t.layout.cols) {
    return absl::DataLossError(absl::StrCat("padding field ", padding, " disagrees with the shape (",
                                            t.layout.padded_cols - t.layout.cols, ")"));
  }
  const uint64_t scales_bytes = r.U64();
  const uint64_t t_bytes = r.U64();
  const uint64_t symbols_bytes = r.U64();
  const SymbolPacking packing = PackingOf(t.params, t.layout);
  t.row_bytes = packing.row_bytes();
  const uint64_t want_scales = t.params.scale == ScaleMode::kNone ? 0 : 2 * t.layout.rows * t.layout.blocks_per_row;
  const uint64_t want_symbols = static_cast<uint64_t>(t.layout.rows * t.row_bytes);
  if (scales_bytes != want_scales || symbols_bytes != want_symbols) {
    return absl::DataLossError(absl::StrCat("section sizes (scales ", scales_bytes, ", symbols ", symbols_bytes,
                                            ") disagree with the shape (", want_scales, ", ", want_symbols, ")"));
  }
  const size_t remaining = size - kTrailerBytes - r.pos();
  if (t_bytes > remaining || scales_bytes + symbols_bytes != remaining - t_bytes) {
    return absl::DataLossError(absl::StrCat("sections need ", scales_bytes + t_bytes + symbols_bytes,
                                            " bytes but the blob holds ", remaining));
  }
  t.scales.resize(scales_bytes / 2);
  for (auto& s : t.scales) s = r.U16();
  t.t.resize(t.layout.rows * t.layout.chunks_per_row);
  COSET_RETURN_IF_ERROR(DecodeOverloadCounts(r.Here(), static_cast<int64_t>(t_bytes), static_cast<int64_t>(t.t.size()),
                                             t.params.t_max, t.t.data(), executor));
  r.Skip(t_bytes);
  t.symbols.assign(r.Here(), r.Here() + symbols_bytes);
  *out = std::move(t);
  return absl::OkStatus();
}

double StoredBitsPerEntry(const CompressedTensor& tensor, size_t blob_size) {
  return tensor.layout.numel > 0 ? 8.0 * static_cast<double>(blob_size) / static_cast<double>(tensor.layout.numel)
                                 : 0.0;
}

}  // namespace coset
