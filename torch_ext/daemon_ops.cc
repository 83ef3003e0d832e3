// torch.ops.coset operators that compress through cosetd (gRPC + shared memory), for the DDP hook's
// backend='daemon'. Linked only by the Bazel build, which has gRPC; a pip-installed coset_torch
// lacks them and the hook says so (coset_torch.ddp.State).
//
//   coset::daemon_encode(Tensor x, str address, str config) -> Tensor   (the blob encode() gives)
//   coset::daemon_bucket_encode(Tensor x, Tensor(a!)? residual, str address, str config, int parts,
//       int skip) -> Tensor   (the packets bucket_encode() gives, each shard encoded by the daemon)
#include <ATen/ATen.h>
#include <torch/library.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "client/daemon_backend.h"
#include "core/format.h"
#include "core/status_macros.h"
#include "torch_ext/bucket_ops.h"
#include "torch_ext/op_util.h"

namespace coset {
namespace {

// One backend per daemon address, kept for the process: short timeouts and no retries, because the
// caller (the DDP hook) falls back to the embedded backend instead of waiting.
Backend& DaemonFor(const std::string& address) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<DaemonBackend>> backends;
  std::lock_guard<std::mutex> lock(mu);
  auto& backend = backends[address];
  if (backend == nullptr) {
    Client::Options o;
    o.address = address;
    o.timeout = std::chrono::milliseconds(2000);
    o.max_attempts = 1;
    o.client_kind = "torch";  // the request metrics' client label (the DDP hook's offload)
    backend = Take(DaemonBackend::Connect(o));
  }
  return *backend;
}

at::Tensor DaemonEncode(const at::Tensor& x, const std::string& address, const std::string& config) {
  const TypedInput in = TypedInputOf(x);  // sent in its own dtype
  return BlobTensor(
      Take(DaemonFor(address).EncodeTyped(in.values.data_ptr(), in.dtype, in.shape, ParamsFrom(config))).blob);
}

at::Tensor DaemonBucketEncode(const at::Tensor& x, const c10::optional<at::Tensor>& residual,
                              const std::string& address, const std::string& config, int64_t parts, int64_t skip) {
  Backend& daemon = DaemonFor(address);
  return EncodeBucket(
      x, residual, config, parts,
      [&](const TensorCodec& codec, const float* shard_x, const std::vector<int64_t>& shape,
          CompressedTensor* shard) -> absl::Status {
        COSET_ASSIGN_OR_RETURN(EncodeResult r, daemon.Encode(shard_x, shape, codec.params(), DType::kFloat32));
        COSET_ASSIGN_OR_RETURN(CompressedTensor parsed, Parse(r.blob.data(), r.blob.size()));
        // The daemon resolves defaults as this process does; anything else is a
        // different codec, whose packets the other ranks could not read.
        if (parsed.shape != shape || FirstSharedFieldMismatch(parsed.params, codec.params()) != nullptr ||
            parsed.params.t_max != codec.params().t_max) {
          return absl::FailedPreconditionError(
              "cosetd encoded with other parameters than this process (versions differ?)");
        }
        *shard = std::move(parsed);
        return absl::OkStatus();
      },
      {}, skip);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(coset, m) {
  m.def("daemon_encode(Tensor x, str address, str config) -> Tensor");
  m.def(
      "daemon_bucket_encode(Tensor x, Tensor(a!)? residual, str address, str config, int parts, int skip=-1) "
      "-> Tensor");
}

TORCH_LIBRARY_IMPL(coset, CPU, m) {
  m.impl("daemon_encode", &DaemonEncode);
  m.impl("daemon_bucket_encode", &DaemonBucketEncode);
}

}  // namespace coset
