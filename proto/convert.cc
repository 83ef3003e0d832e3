#include "proto/convert.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace coset {

namespace {

using google::protobuf::FieldDescriptor;

// The proto field that mirrors a table field (same name; convert_test checks that all exist).
const FieldDescriptor* ProtoField(const CodecField& f) {
  return v1::CodecConfig::descriptor()->FindFieldByName(f.name);
}

// Longest lattice name accepted from a client ("Z16"); longer strings are not echoed back.
constexpr size_t kMaxLatticeNameBytes = 16;

}  // namespace

absl::StatusOr<CodecParams> ParamsFromProto(const v1::CodecConfig& c) {
  CodecParams p;
  const google::protobuf::Reflection* r = c.GetReflection();
  for (const CodecField& f : CodecFields()) {
    const FieldDescriptor* fd = ProtoField(f);
    if (fd == nullptr) return absl::InternalError(absl::StrCat("coset.v1.CodecConfig lacks field ", f.name));
    if (!r->HasField(c, fd)) continue;  // unset: the table's default
    std::string text;
    switch (fd->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        text = r->GetString(c, fd);
        if (text.size() > kMaxLatticeNameBytes) {
          return absl::InvalidArgumentError(absl::StrCat("config.", f.name, " is ", text.size(), " bytes long"));
        }
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        text = std::to_string(r->GetUInt32(c, fd));
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        text = std::to_string(r->GetUInt64(c, fd));
        break;
      case FieldDescriptor::CPPTYPE_FLOAT: {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(r->GetFloat(c, fd)));
        text = buf;
        break;
      }
      case FieldDescriptor::CPPTYPE_BOOL:
        text = r->GetBool(c, fd) ? "true" : "false";
        break;
      case FieldDescriptor::CPPTYPE_ENUM: {
        const int number = r->GetEnumValue(c, fd);
        if (f.enum_names == nullptr || number < 0 || number >= static_cast<int>(f.enum_names->size())) {
          return absl::InvalidArgumentError(absl::StrCat("config.", f.name, " (=", number, ") is unknown"));
        }
        text = (*f.enum_names)[number];
        break;
      }
      default:
        return absl::InternalError(absl::StrCat("coset.v1.CodecConfig.", f.name, " has an unexpected type"));
    }
    if (absl::Status s = f.set(text, &p); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("config.", s.message()));
    }
  }
  return p;
}

v1::CodecConfig ParamsToProto(const CodecParams& p) {
  v1::CodecConfig c;
  const google::protobuf::Reflection* r = c.GetReflection();
  for (const CodecField& f : CodecFields()) {
    const FieldDescriptor* fd = ProtoField(f);
    if (fd == nullptr) continue;  // convert_test fails first
    const std::string text = f.get(p);
    switch (fd->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        r->SetString(&c, fd, text);
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        r->SetUInt32(&c, fd, static_cast<uint32_t>(f.number(p)));
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        r->SetUInt64(&c, fd, std::strtoull(text.c_str(), nullptr, 10));  // exact beyond 2^53
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        r->SetFloat(&c, fd, static_cast<float>(f.number(p)));
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        r->SetBool(&c, fd, f.number(p) != 0);
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        r->SetEnumValue(&c, fd, static_cast<int>(f.number(p)));
        break;
      default:
        break;
    }
  }
  return c;
}

absl::StatusOr<DType> DTypeFromProto(int value, const char* field) {
  if (!IsKnownDType(value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " (=", value, ") must be float32, float64, bfloat16 or float16 (0-3)"));
  }
  return static_cast<DType>(value);
}

absl::StatusOr<TensorShape> CheckTensor(const v1::Tensor& t, int64_t max_elements) {
  TensorShape out;
  COSET_ASSIGN_OR_RETURN(out.dtype, DTypeFromProto(t.dtype(), "tensor.dtype"));
  if (t.shape_size() > kMaxRank) {
    return absl::InvalidArgumentError(absl::StrCat("tensor rank (=", t.shape_size(), ") exceeds ", kMaxRank));
  }
  out.shape.assign(t.shape().begin(), t.shape().end());
  COSET_ASSIGN_OR_RETURN(out.numel, CheckedNumel(out.shape, max_elements));
  const int item = DTypeBytes(out.dtype);
  const uint64_t want = static_cast<uint64_t>(out.numel) * item;
  const char* name = DTypeName(out.dtype);
  if (!t.has_shm()) {
    if (t.data().size() != want) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor.data holds ", t.data().size(), " bytes; shape needs ", want, " (", name, ")"));
    }
    return out;
  }
  if (!t.data().empty()) return absl::InvalidArgumentError("tensor sets both data and shm");
  if (t.shm().offset() % item != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor.shm.offset (=", t.shm().offset(), ") must be a multiple of ", item, " (", name, ")"));
  }
  if (t.shm().length() != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor.shm.length (=", t.shm().length(), ") must be ", want, " for the shape (", name, ")"));
  }
  return out;
}

absl::StatusOr<FloatTensor> TensorFromProto(const v1::Tensor& t, int64_t max_elements) {
  if (t.has_shm()) return absl::InvalidArgumentError("tensor is in shared memory; expected inline data");
  COSET_ASSIGN_OR_RETURN(TensorShape checked, CheckTensor(t, max_elements));
  FloatTensor out;
  out.shape = std::move(checked.shape);
  out.values.resize(checked.numel);
  ToFloat(t.data().data(), checked.dtype, checked.numel, out.values.data());
  return out;
}

void TensorToProto(const std::vector<int64_t>& shape, const float* values, DType dtype, v1::Tensor* out) {
  out->clear_shape();
  int64_t numel = 1;
  for (int64_t d : shape) {
    out->add_shape(d);
    numel *= d;
  }
  out->set_dtype(static_cast<v1::DataType>(dtype));
  std::string* data = out->mutable_data();
  data->resize(static_cast<size_t>(numel) * DTypeBytes(dtype));
  FromFloat(values, numel, dtype, data->data());
}

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace coset
