#include "server/tensor_store.h"

#include "core/format.h"
#include "gtest/gtest.h"

namespace coset {
namespace {

constexpr char kAlice[] = "uid:1000";
constexpr char kBob[] = "uid:1001";

std::shared_ptr<ResidentTensor> Resident(const std::string& name, int64_t rows, const std::string& owner = kAlice) {
  std::vector<float> x(rows * 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 13) - 6.0f;
  auto r = std::make_shared<ResidentTensor>();
  r->name = name;
  r->owner = owner;
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
  EXPECT_EQ((*store.Get("layers/0:w", kAlice))->blob, a->blob);
  EXPECT_EQ(store.Put(Resident("layers/0:w", 4), false).code(), absl::StatusCode::kAlreadyExists);
  auto b = Resident("layers/0:w", 4);
  ASSERT_TRUE(store.Put(b, true).ok());
  EXPECT_EQ(store.bytes(), b->bytes());
  EXPECT_EQ(store.List(kAlice).size(), 1u);
  ASSERT_TRUE(store.Delete("layers/0:w", kAlice).ok());
  EXPECT_EQ(store.bytes(), 0);
  EXPECT_EQ(store.Get("layers/0:w", kAlice).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.Delete("layers/0:w", kAlice).code(), absl::StatusCode::kNotFound);
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
  const auto m1 = *store.Matrix("w", kAlice, kDefaultLutBudgetBytes);
  const auto m2 = *store.Matrix("w", kAlice, kDefaultLutBudgetBytes);
  EXPECT_EQ(m1.get(), m2.get());
  EXPECT_EQ(store.lut_bytes(), m1->packed_bytes());
  ASSERT_TRUE(store.Delete("w", kAlice).ok());
  EXPECT_EQ(store.lut_bytes(), 0);
  EXPECT_EQ(store.Matrix("w", kAlice, kDefaultLutBudgetBytes).status().code(), absl::StatusCode::kNotFound);
}

TEST(TensorStoreTest, MatrixIsNotBuiltWhenItsMemoryIsRefused) {
  TensorStore store(1 << 22);
  ASSERT_TRUE(store.Put(Resident("w", 16), false).ok());
  int64_t asked = 0;
  const auto refused = store.Matrix("w", kAlice, kDefaultLutBudgetBytes, [&](int64_t bytes) {
    asked = bytes;
    return absl::ResourceExhaustedError("over the request budget");
  });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_GT(asked, 0);
  EXPECT_EQ(store.lut_bytes(), 0);
  const auto built = *store.Matrix("w", kAlice, kDefaultLutBudgetBytes);
  EXPECT_GE(asked, built->packed_bytes());
}

// Device copies are made by the CUDA codec (CudaCodec::Upload); without a device these tests
// upload empty copies (no device memory), which is enough for the store's part: built once and
// kept, owner-checked, dropped with the tensor, failures and replaced tensors not kept.
TEST(TensorStoreTest, DeviceCodesAreUploadedOnceAndDroppedWithTheTensor) {
  TensorStore store(1 << 22);
  auto a = Resident("w", 16);
  ASSERT_TRUE(store.Put(a, false).ok());
  int uploads = 0;
  const CompressedTensor* uploaded = nullptr;
  const TensorStore::DeviceUpload upload = [&](const CompressedTensor& t) {
    ++uploads;
    uploaded = &t;
    return std::make_shared<const CodesOnDevice>();
  };
  const auto d1 = *store.DeviceCodes("w", kAlice, 1 << 20, upload);
  const auto d2 = *store.DeviceCodes("w", kAlice, 1 << 20, upload);
  EXPECT_EQ(d1.get(), d2.get());
  EXPECT_EQ(uploads, 1);
  EXPECT_EQ(uploaded, &a->tensor);  // the resident tensor itself, not a copy
  EXPECT_EQ(store.DeviceCodes("w", kBob, 1 << 20, upload).status().code(), absl::StatusCode::kPermissionDenied);
  // Replacing the tensor drops its copy: the next call uploads the new codes.
  auto b = Resident("w", 8);
  ASSERT_TRUE(store.Put(b, true).ok());
  const auto d3 = *store.DeviceCodes("w", kAlice, 1 << 20, upload);
  EXPECT_NE(d3.get(), d1.get());
  EXPECT_EQ(uploaded, &b->tensor);
  EXPECT_EQ(uploads, 2);
  ASSERT_TRUE(store.Delete("w", kAlice).ok());
  EXPECT_EQ(store.DeviceCodes("w", kAlice, 1 << 20, upload).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(uploads, 2);
  EXPECT_EQ(store.device_bytes(), 0);
}

TEST(TensorStoreTest, FailedOrOverBudgetDeviceCodesAreNotKept) {
  TensorStore store(1 << 22);
  ASSERT_TRUE(store.Put(Resident("w", 16), false).ok());
  int uploads = 0;
  const TensorStore::DeviceUpload refuse =
      [&](const CompressedTensor&) -> absl::StatusOr<std::shared_ptr<const CodesOnDevice>> {
    ++uploads;
    return absl::ResourceExhaustedError("device memory budget");
  };
  EXPECT_EQ(store.DeviceCodes("w", kAlice, 1 << 20, refuse).status().code(), absl::StatusCode::kResourceExhausted);
  const TensorStore::DeviceUpload upload = [&](const CompressedTensor&) {
    ++uploads;
    return std::make_shared<const CodesOnDevice>();
  };
  // A keep budget below what the copy holds (here: below zero): each call uploads for itself.
  ASSERT_TRUE(store.DeviceCodes("w", kAlice, -1, upload).ok());
  ASSERT_TRUE(store.DeviceCodes("w", kAlice, -1, upload).ok());
  EXPECT_EQ(uploads, 3);
  ASSERT_TRUE(store.DeviceCodes("w", kAlice, 0, upload).ok());
  ASSERT_TRUE(store.DeviceCodes("w", kAlice, 0, upload).ok());
  EXPECT_EQ(uploads, 4);  // within the budget: kept
}

TEST(TensorStoreTest, ErrorsDoNotEchoLongClientNames) {
  TensorStore store(1 << 20);
  const std::string huge(8192, 'x');  // unchecked on lookups: a hostile client's name
  EXPECT_LT(store.Get(huge, kAlice).status().message().size(), 100u);
  EXPECT_LT(store.Delete(huge, kAlice).message().size(), 100u);
  EXPECT_LT(TensorStore::ValidateName(std::string(200, 'a') + " ").message().size(), 120u);
}

TEST(TensorStoreTest, TensorsBelongToTheirOwner) {
  TensorStore store(1 << 22);
  auto a = Resident("w", 8, kAlice);
  ASSERT_TRUE(store.Put(a, false).ok());
  // Another principal can neither read, use, list, replace nor delete it.
  EXPECT_EQ(store.Get("w", kBob).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(store.Matrix("w", kBob, kDefaultLutBudgetBytes).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(store.List(kBob).empty());
  EXPECT_EQ(store.Put(Resident("w", 4, kBob), true).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(store.Delete("w", kBob).code(), absl::StatusCode::kPermissionDenied);
  // The owner's tensor is untouched.
  EXPECT_EQ((*store.Get("w", kAlice))->blob, a->blob);
  EXPECT_EQ(store.List(kAlice).size(), 1u);
  EXPECT_EQ(store.bytes(), a->bytes());
}

}  // namespace
}  // namespace coset
