// What kind of client a call comes from: each client library sends it as gRPC metadata with every
// call, and cosetd labels its request metrics with it (`client`), so a dashboard can tell the DDP
// hook's offloaded encodes from inference services and the CLI. The label set is this fixed list
// (anything else, or nothing, counts as "other"): no client can grow the series count.
#pragma once

#include <string>

namespace coset {

inline constexpr char kClientKindMetadata[] = "x-coset-client";

// The C++ client library, the CLI, client/python's coset_client, and torch_ext (the DDP hook's
// offload and daemon_encode).
inline constexpr const char* kClientKinds[] = {"cxx", "cosetctl", "python", "torch"};

// The metrics label for a sent value.
inline std::string ClientKindLabel(const std::string& sent) {
  for (const char* kind : kClientKinds) {
    if (sent == kind) return sent;
  }
  return "other";
}

}  // namespace coset
