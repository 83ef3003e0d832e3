// Bounded randomized fuzzing of the blob decoder (the input every daemon client controls):
// mutated valid blobs, with the checksum recomputed so the mutations reach the field checks, and
// random bytes. Parse must fail cleanly or yield a tensor that decodes (or fails) without crashing.
#include <random>

#include "core/crc32c.h"
#include "core/format.h"
#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace coset {
namespace {

std::vector<std::vector<uint8_t>> Seeds() {
  std::vector<std::vector<uint8_t>> seeds;
  const std::vector<float> x = testing_util::Gaussian(3 * 77, 1, 2.0f);
  for (const char* lattice : {"D4", "E8", "Z1", "A2"}) {
    for (bool rotate : {false, true}) {
      CodecParams p;
      p.lattice = *Lattice::Parse(lattice);
      p.q = 3;
      p.rotate = rotate;
      p.scale = rotate ? ScaleMode::kAbsMax : ScaleMode::kRms;
      seeds.push_back(Serialize(*TensorCodec::Create(p)->Encode(x.data(), {3, 77})));
    }
  }
  return seeds;
}

void FixCrc(std::vector<uint8_t>& blob) {
  if (blob.size() < 4) return;
  const uint32_t crc = Crc32c(blob.data(), blob.size() - 4);
  std::memcpy(blob.data() + blob.size() - 4, &crc, 4);
}

TEST(FormatFuzzTest, MutatedBlobsNeverCrash) {
  std::mt19937 rng(2025);
  const auto seeds = Seeds();
  int parsed = 0, decoded = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> blob = seeds[iter % seeds.size()];
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations; ++m) {
      switch (rng() % 5) {
        case 0:  // flip a bit anywhere
          blob[rng() % blob.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        case 1:  // a random byte in the header, where the sizes and enums live
          blob[rng() % std::min<size_t>(blob.size(), 100)] = static_cast<uint8_t>(rng());
          break;
        case 2:  // truncate
          blob.resize(rng() % blob.size() + 1);
          break;
        case 3:  // extend with garbage
          for (int k = 0; k < 1 + static_cast<int>(rng() % 16); ++k) blob.push_back(static_cast<uint8_t>(rng()));
          break;
        default:  // overwrite a little-endian 64-bit field with an extreme value
          if (blob.size() > 48) {
            const uint64_t v = (rng() % 2) ? ~uint64_t{0} >> (rng() % 64) : rng();
            std::memcpy(blob.data() + 40 + 8 * (rng() % 2), &v, 8);
          }
      }
    }
    if (rng() % 4 != 0) FixCrc(blob);
    auto t = Parse(blob.data(), blob.size());
    if (!t.ok()) continue;
    ++parsed;
    if (t->layout.numel > (int64_t{1} << 22)) continue;  // valid but huge: not worth decoding here
    std::vector<float> out(t->layout.numel);
    decoded += DecodeTensor(*t, out.data()).ok();
  }
  // Some mutations (e.g. in the symbols) leave a valid blob: the decoder saw real inputs too.
  EXPECT_GT(parsed, 100);
  EXPECT_GT(decoded, 100);
}

TEST(FormatFuzzTest, RandomBytesNeverParse) {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> blob(rng() % 256);
    for (auto& b : blob) b = static_cast<uint8_t>(rng());
    if (blob.size() >= 4 && rng() % 2) std::memcpy(blob.data(), "CSET", 4);
    FixCrc(blob);
    auto t = Parse(blob.data(), blob.size());
    if (t.ok()) {
      std::vector<float> out(std::min<int64_t>(t->layout.numel, 1 << 20));
      if (t->layout.numel <= (1 << 20)) (void)DecodeTensor(*t, out.data());
    }
  }
  SUCCEED();
}

}  // namespace
}  // namespace coset
