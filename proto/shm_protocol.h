// Wire protocol of cosetd's shared-memory side socket (described in server/shm_registry.h),
// shared by the daemon and the client library.
#pragma once

#include <cstdint>

#include "core/limits.h"  // kMaxRegionBytes

namespace coset {

inline constexpr uint32_t kShmMagic = 0x4d485343;  // "CSHM"
inline constexpr uint32_t kShmOpRegister = 1;
inline constexpr uint32_t kShmOpUnregister = 2;

struct ShmRequest {
  uint32_t magic;
  uint32_t op;
  uint64_t size;
  char token[33];  // UNREGISTER only
};
struct ShmReply {
  uint32_t status;  // 0 ok, otherwise an absl::StatusCode
  char token[33];
  char message[91];
};
static_assert(sizeof(ShmRequest) == 56, "ShmRequest layout is part of the protocol");
static_assert(sizeof(ShmReply) == 128, "ShmReply layout is part of the protocol");

}  // namespace coset
