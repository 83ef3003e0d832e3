// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/), checked in:
//   bazel run //tests/fuzz:seed_corpus -- $PWD/tests/fuzz/corpus
// Small valid inputs of every kind each target reads, so fuzzing starts from the real formats.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "client/npy.h"
#include "core/format.h"
#include "coset/v1/coset.pb.h"
#include "proto/convert.h"
#include "proto/shm_protocol.h"

namespace coset {
namespace {

std::filesystem::path g_root;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  std::filesystem::create_directories(g_root / target);
  std::ofstream(g_root / target / name, std::ios::binary) << bytes;
}

std::string Blob(const std::string& text, int64_t rows, int64_t cols) {
  std::vector<float> x(rows * cols);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 23) / 7.0f - 1.5f;
  const CodecParams p = *ParamsFromText(text);
  const std::vector<uint8_t> b = Serialize(*TensorCodec::Create(p)->Encode(x.data(), {rows, cols}));
  return std::string(b.begin(), b.end());
}

void Blobs() {
  const char* configs[] = {"lattice=D4,q=4,M=2", "lattice=E8,q=3,M=2,rotate=1,scale=absmax", "lattice=Z1,q=8,M=1",
                           "lattice=A2,q=5,M=2,block=16", "lattice=D4,q=3,M=4,scale=none,on_cap=zero"};
  int i = 0;
  for (const char* c : configs) Write("blob_parser_fuzz", "blob" + std::to_string(i++), Blob(c, 3, 40));
}

void Npys() {
  const std::filesystem::path dir = g_root / "npy_fuzz";
  std::filesystem::create_directories(dir);
  const std::vector<float> v = {1, -2, 3.5f, 0, 7, 8};
  (void)WriteNpy((dir / "f32_2x3").string(), {2, 3}, v.data(), DType::kFloat32);
  (void)WriteNpy((dir / "f64_6").string(), {6}, v.data(), DType::kFloat64);
  (void)WriteNpy((dir / "f16_3x2").string(), {3, 2}, v.data(), DType::kFloat16);
  (void)WriteNpy((dir / "f32_scalar").string(), {}, v.data(), DType::kFloat32);
  (void)WriteNpy((dir / "f32_empty").string(), {0, 4}, v.data(), DType::kFloat32);
}

void ShmMessages() {
  auto record = [](uint8_t control, uint32_t magic, uint32_t op, uint64_t size, const char* token) {
    ShmRequest req{};
    req.magic = magic;
    req.op = op;
    req.size = size;
    std::strncpy(req.token, token, sizeof(req.token) - 1);
    return std::string(1, static_cast<char>(control)) + std::string(reinterpret_cast<const char*>(&req), sizeof(req));
  };
  const uint8_t sealed_4k = 1 | 2 | (1 << 3), unsealed_4k = 1 | (1 << 3), two_fds = 1 | 2 | 4 | (2 << 3);
  Write("shm_protocol_fuzz", "register", record(sealed_4k, kShmMagic, kShmOpRegister, 4096, ""));
  Write("shm_protocol_fuzz", "register_unsealed", record(unsealed_4k, kShmMagic, kShmOpRegister, 4096, ""));
  Write("shm_protocol_fuzz", "register_twice",
        record(sealed_4k, kShmMagic, kShmOpRegister, 4096, "") + record(two_fds, kShmMagic, kShmOpRegister, 65536, ""));
  Write("shm_protocol_fuzz", "unregister_unknown",
        record(0, kShmMagic, kShmOpUnregister, 0, "0123456789abcdef0123456789abcdef"));
  Write("shm_protocol_fuzz", "bad_magic", record(0, 0x12345678, kShmOpRegister, 4096, ""));
  Write("shm_protocol_fuzz", "too_large", record(sealed_4k, kShmMagic, kShmOpRegister, 1 << 20, ""));
}

void Rpcs() {
  auto write = [](const std::string& name, uint8_t method, const google::protobuf::Message& m) {
    Write("rpc_fuzz", name, std::string(1, static_cast<char>(method)) + m.SerializeAsString());
  };
  const std::vector<float> x(2 * 32, 0.75f);
  const std::string blob = Blob("lattice=D4,q=4,M=2", 2, 32);
  v1::EncodeRequest encode;
  *encode.mutable_codec()->mutable_config() = ParamsToProto(*ParamsFromText("lattice=E8,q=3,M=2"));
  TensorToProto({2, 32}, x.data(), DType::kFloat32, encode.mutable_input());
  write("encode", 0, encode);
  v1::EncodeRequest encode_half = encode;
  TensorToProto({2, 32}, x.data(), DType::kBfloat16, encode_half.mutable_input());
  write("encode_bfloat16", 0, encode_half);
  v1::DecodeRequest decode;
  decode.mutable_codes()->set_blob(blob);
  write("decode", 1, decode);
  decode.set_dtype(v1::DATA_TYPE_FLOAT16);
  write("decode_float16", 1, decode);
  v1::QuantizeRequest quantize;
  *quantize.mutable_codec() = encode.codec();
  *quantize.mutable_input() = encode.input();
  write("quantize", 2, quantize);
  v1::InnerProductRequest gemv;
  gemv.mutable_weights()->set_blob(blob);
  TensorToProto({32}, x.data(), DType::kFloat32, gemv.mutable_queries());
  write("inner_product", 3, gemv);
  v1::InnerProductRequest dot;
  dot.mutable_weights()->set_blob(blob);
  dot.mutable_codes()->set_blob(blob);
  write("inner_product_codes", 3, dot);
  v1::AddCodesRequest add;
  add.add_codes()->set_blob(blob);
  add.add_codes()->set_blob(blob);
  add.set_validate(true);
  write("add_codes", 4, add);
  v1::PutTensorRequest put;
  put.set_name("layers/0:w");
  put.set_blob(blob);
  write("put_tensor", 5, put);
  v1::GetTensorRequest get;
  get.set_name("layers/0:w");
  write("get_tensor", 6, get);
  v1::DeleteTensorRequest del;
  del.set_name("layers/0:w");
  write("delete_tensor", 7, del);
  write("list_tensors", 8, v1::ListTensorsRequest());
  v1::RegisterConfigRequest reg;
  *reg.mutable_config() = encode.codec().config();
  write("register_config", 9, reg);
  write("server_info", 10, v1::ServerInfoRequest());
}

}  // namespace
}  // namespace coset

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: seed_corpus OUT_DIR\n");
    return 2;
  }
  coset::g_root = argv[1];
  coset::Blobs();
  coset::Npys();
  coset::ShmMessages();
  coset::Rpcs();
  return 0;
}
