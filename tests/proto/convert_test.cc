// The wire mirror of the codec field table: coset.v1.CodecConfig has exactly the table's fields,
// names and enum numbers; unset means the table's default and a set zero is a zero.
#include "proto/convert.h"

#include <cctype>
#include <set>

#include "core/dtype.h"
#include "gtest/gtest.h"

namespace coset {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

TEST(CodecConfigProtoTest, HasExactlyTheTablesFieldsInOrder) {
  const Descriptor* d = v1::CodecConfig::descriptor();
  ASSERT_EQ(d->field_count(), static_cast<int>(CodecFields().size()));
  int i = 0;
  for (const CodecField& f : CodecFields()) {
    const FieldDescriptor* fd = d->field(i++);
    EXPECT_EQ(fd->name(), f.name) << "field " << i;
    EXPECT_TRUE(fd->has_presence()) << f.name << " must be optional: unset is not zero";
    switch (f.type) {
      case FieldType::kLattice:
        EXPECT_EQ(fd->cpp_type(), FieldDescriptor::CPPTYPE_STRING) << f.name;
        break;
      case FieldType::kInt:
        EXPECT_EQ(fd->cpp_type(), FieldDescriptor::CPPTYPE_UINT32) << f.name;
        break;
      case FieldType::kUint64:
        EXPECT_EQ(fd->cpp_type(), FieldDescriptor::CPPTYPE_UINT64) << f.name;
        break;
      case FieldType::kFloat:
        EXPECT_EQ(fd->cpp_type(), FieldDescriptor::CPPTYPE_FLOAT) << f.name;
        break;
      case FieldType::kBool:
        EXPECT_EQ(fd->cpp_type(), FieldDescriptor::CPPTYPE_BOOL) << f.name;
        break;
      case FieldType::kEnum: {
        ASSERT_EQ(fd->cpp_type(), FieldDescriptor::CPPTYPE_ENUM) << f.name;
        // Same numbers as core: value n is PREFIX_<NAME n>, and nothing else.
        const EnumDescriptor* e = fd->enum_type();
        ASSERT_EQ(e->value_count(), static_cast<int>(f.enum_names->size())) << f.name;
        for (int n = 0; n < e->value_count(); ++n) {
          const std::string& proto_name = e->FindValueByNumber(n)->name();
          const std::string want = Upper((*f.enum_names)[n]);
          EXPECT_EQ(proto_name.substr(proto_name.size() - want.size()), want) << f.name << " " << n;
        }
        break;
      }
    }
  }
}

TEST(CodecConfigProtoTest, UnsetFieldsTakeTheTablesDefaults) {
  const auto p = ParamsFromProto(v1::CodecConfig());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(ParamsToText(*p), ParamsToText(CodecParams{}));
}

TEST(CodecConfigProtoTest, SetZerosAreZerosNotDefaults) {
  v1::CodecConfig c;
  c.set_seed(0);
  c.set_t_max(0);
  c.set_scale(v1::SCALE_MODE_NONE);
  ASSERT_TRUE(ParamsFromProto(c).ok());
  const CodecParams p = *ParamsFromProto(c);
  EXPECT_EQ(p.seed, 0u);
  EXPECT_EQ(p.t_max, 0);
  EXPECT_EQ(p.scale, ScaleMode::kNone);
  c.set_alpha(0.0f);
  const CodecParams zero_alpha = *ParamsFromProto(c);
  EXPECT_EQ(zero_alpha.alpha, 0.0f);  // taken as given, then refused by validation
  EXPECT_FALSE(ValidateParams(zero_alpha).ok());
}

TEST(CodecConfigProtoTest, RoundTripsEveryField) {
  const CodecParams p = *ParamsFromText(
      "lattice=A2,q=5,M=3,beta=0.3,alpha=0.5,block=64,scale=absmax,rotate=true,seed=7,t_max=9,on_cap=zero");
  const v1::CodecConfig c = ParamsToProto(p);
  ASSERT_TRUE(ParamsFromProto(c).ok());
  EXPECT_EQ(c.m(), 3u);
  EXPECT_EQ(c.scale(), v1::SCALE_MODE_ABSMAX);
  EXPECT_EQ(c.on_cap(), v1::CAP_POLICY_ZERO);
  EXPECT_EQ(ParamsToText(*ParamsFromProto(c)), ParamsToText(p));
}

TEST(CodecConfigProtoTest, BadValuesNameTheField) {
  v1::CodecConfig c;
  c.set_scale(static_cast<v1::ScaleMode>(7));
  EXPECT_NE(ParamsFromProto(c).status().message().find("config.scale (=7)"), std::string::npos);
  c.Clear();
  c.set_lattice(std::string(8192, 'E'));  // not echoed back
  const auto r = ParamsFromProto(c);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 100u);
  c.Clear();
  c.set_q(1u << 31);
  EXPECT_NE(ParamsFromProto(c).status().message().find("config.q"), std::string::npos);
}

TEST(CheckTensorTest, OneValidatorForInlineAndSharedMemory) {
  v1::Tensor t;
  t.add_shape(2);
  t.add_shape(3);
  t.set_data(std::string(24, '\0'));
  EXPECT_EQ(CheckTensor(t, 100)->numel, 6);
  EXPECT_EQ(CheckTensor(t, 5).status().code(), absl::StatusCode::kResourceExhausted);
  t.set_data(std::string(20, '\0'));
  EXPECT_NE(CheckTensor(t, 100).status().message().find("needs 24"), std::string::npos);
  t.clear_data();
  t.mutable_shm()->set_region("r");
  t.mutable_shm()->set_length(24);
  EXPECT_TRUE(CheckTensor(t, 100).ok());
  t.mutable_shm()->set_offset(2);
  EXPECT_NE(CheckTensor(t, 100).status().message().find("multiple of 4"), std::string::npos);
  t.mutable_shm()->set_offset(0);
  t.mutable_shm()->set_length(20);
  EXPECT_NE(CheckTensor(t, 100).status().message().find("must be 24"), std::string::npos);
  t.set_data("x");
  EXPECT_NE(CheckTensor(t, 100).status().message().find("both data and shm"), std::string::npos);
  t.Clear();
  t.add_shape(-1);
  EXPECT_EQ(CheckTensor(t, 100).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CheckTensorTest, SixteenBitDTypesTakeTwoBytesAnElementAndUnknownOnesAreRefused) {
  v1::Tensor t;
  t.add_shape(2);
  t.add_shape(3);
  t.set_dtype(v1::DATA_TYPE_BFLOAT16);
  t.set_data(std::string(12, '\0'));
  EXPECT_EQ(CheckTensor(t, 100)->dtype, DType::kBfloat16);
  t.set_dtype(v1::DATA_TYPE_FLOAT16);
  t.set_data(std::string(24, '\0'));
  EXPECT_NE(CheckTensor(t, 100).status().message().find("needs 12 (float16)"), std::string::npos);
  t.clear_data();
  t.mutable_shm()->set_region("r");
  t.mutable_shm()->set_length(12);
  t.mutable_shm()->set_offset(2);  // two-byte elements: two-byte alignment
  EXPECT_TRUE(CheckTensor(t, 100).ok());
  t.mutable_shm()->set_offset(3);
  EXPECT_NE(CheckTensor(t, 100).status().message().find("multiple of 2"), std::string::npos);
  t.set_dtype(static_cast<v1::DataType>(4));
  EXPECT_NE(CheckTensor(t, 100).status().message().find("tensor.dtype (=4)"), std::string::npos);
  t.set_dtype(static_cast<v1::DataType>(-1));
  EXPECT_EQ(CheckTensor(t, 100).status().code(), absl::StatusCode::kInvalidArgument);
  t.set_dtype(static_cast<v1::DataType>(256));  // would read as float32 if narrowed to a byte first
  EXPECT_NE(CheckTensor(t, 100).status().message().find("tensor.dtype (=256)"), std::string::npos);
}

TEST(TensorProtoTest, ValuesTravelInEveryDTypeAndComeBackAsFloat32) {
  const std::vector<float> x = {1.0f, -0.1f, 3.0e-6f, 65504.0f, -2.5f, 1e5f};
  for (DType dtype : {DType::kFloat32, DType::kFloat64, DType::kBfloat16, DType::kFloat16}) {
    v1::Tensor t;
    TensorToProto({2, 3}, x.data(), dtype, &t);
    EXPECT_EQ(t.dtype(), static_cast<int>(dtype));
    EXPECT_EQ(t.data().size(), 6u * DTypeBytes(dtype));
    const FloatTensor back = *TensorFromProto(t, 100);
    EXPECT_EQ(back.shape, (std::vector<int64_t>{2, 3}));
    std::vector<float> want(x.size());
    std::vector<uint8_t> narrow(x.size() * DTypeBytes(dtype));
    FromFloat(x.data(), 6, dtype, narrow.data());
    ToFloat(narrow.data(), dtype, 6, want.data());
    EXPECT_EQ(back.values, want) << DTypeName(dtype);
  }
}

}  // namespace
}  // namespace coset
