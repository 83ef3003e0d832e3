#include "server/tensor_store.h"

#include "core/format.h"
#include "gtest/gtest.h"

namespace coset {
namespace {

std::shared_ptr<ResidentTensor> Resident(const std::string& name, int64_t rows) {
  std::vector<float> x(rows * 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 13) - 6.0f;
  auto r = std::make_shared<ResidentTensor>();
  r->name = name;
  r->tensor = *TensorCodec::Create(CodecParams{})->Encode(x.data(), {rows, 64});
  const std::vector<uint8_t> blob = Serialize(r->tensor);
  r->blob.assign(blob.begin(), blob.end());
  return r;
}

TEST(TensorStoreTest, PutGetDeleteAndOverwrite) {
  TensorStore store(1 << 20);
  auto a = Resident("layers/0:w", 8);
  ASSERT_TRUE(store.Put(a, false).ok());
  EXPECT_EQ(store.count(), 1);
  EXPECT_EQ(store.bytes(), a->bytes());
  EXPECT_EQ((*store.Get("layers/0:w"))->blob, a->blob);
  EXPECT_EQ(store.Put(Resident("layers/0:w", 4), false).code(), absl::StatusCode::kAlreadyExists);
  auto b = Resident("layers/0:w", 4);
  ASSERT_TRUE(store.Put(b, true).ok());
  EXPECT_EQ(store.bytes(), b->bytes());
  EXPECT_EQ(store.List().size(), 1u);
  ASSERT_TRUE(store.Delete("layers/0:w").ok());
  EXPECT_EQ(store.bytes(), 0);
  EXPECT_EQ(store.Get("layers/0:w").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.Delete("layers/0:w").code(), absl::StatusCode::kNotFound);
}

TEST(TensorStoreTest, NamesAndBudgetAreEnforced) {
  EXPECT_TRUE(TensorStore::ValidateName("a/b.c_d-e:f").ok());
  EXPECT_FALSE(TensorStore::ValidateName("").ok());
  EXPECT_FALSE(TensorStore::ValidateName("bad name").ok());
  EXPECT_FALSE(TensorStore::ValidateName(std::string(257, 'x')).ok());
  auto big = Resident("big", 64);
  TensorStore store(big->bytes() - 1);
  EXPECT_EQ(store.Put(big, false).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(store.count(), 0);
}

TEST(TensorStoreTest, MatrixIsBuiltOnceAndAccounted) {
  TensorStore store(1 << 22);
  ASSERT_TRUE(store.Put(Resident("w", 16), false).ok());
  const auto m1 = *store.Matrix("w", kDefaultLutBudgetBytes);
  const auto m2 = *store.Matrix("w", kDefaultLutBudgetBytes);
  EXPECT_EQ(m1.get(), m2.get());
  EXPECT_EQ(store.lut_bytes(), m1->packed_bytes());
  ASSERT_TRUE(store.Delete("w").ok());
  EXPECT_EQ(store.lut_bytes(), 0);
  EXPECT_EQ(store.Matrix("w", kDefaultLutBudgetBytes).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace coset
