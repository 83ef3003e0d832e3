// Client side of cosetd's shared-memory data path (server/shm_registry.h has the protocol): a
// memfd region, registered once over the daemon's side socket, which requests then reference by
// (token, offset, length) instead of copying payloads through protobuf.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace coset {

class ShmChannel {
 public:
  ~ShmChannel();
  // Connects to the side socket (the daemon's Unix gRPC socket path + ".shm").
  static absl::StatusOr<std::unique_ptr<ShmChannel>> Open(const std::string& path);

  // Creates a region of `size` bytes (memfd), maps it and registers it; replaces the previous one.
  absl::Status Allocate(int64_t size);
  uint8_t* data() const { return base_; }
  int64_t size() const { return size_; }
  const std::string& token() const { return token_; }

 private:
  ShmChannel() = default;
  void Release();
  int sock_ = -1;
  int memfd_ = -1;
  uint8_t* base_ = nullptr;
  int64_t size_ = 0;
  std::string token_;
};

}  // namespace coset
