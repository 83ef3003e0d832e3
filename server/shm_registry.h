// Shared-memory regions registered by clients on the daemon's side socket.
//
// Protocol on the side socket (a Unix stream socket next to the gRPC one, "<path>.shm"; the
// structs are in proto/shm_protocol.h): the client sends one 56-byte ShmRequest {u32 magic 'CSHM',
// u32 op, u64 size, char token[33]} with the region's memfd attached (SCM_RIGHTS) for op REGISTER,
// and gets back one 128-byte ShmReply {u32 status, char token[33], char message[91]} (status 0 =
// ok, otherwise an absl::StatusCode; token = 32 hex digits + NUL). op UNREGISTER carries the token
// instead of an fd. Extra descriptors on a message are closed.
//
// Connections (one epoll loop on one thread serves them all): the peers the PeerPolicy admits (SO_PEERCRED: the
// daemon's uid, root, the
// --allow-group), at most max_connections in all and
// max_connections_per_peer per client process; a refused peer gets one ShmReply saying why
// (PERMISSION_DENIED or RESOURCE_EXHAUSTED) before the close. A connection that holds no region
// is closed after idle_seconds without a message.
//
// A region must be a memfd sealed against shrinking (memfd_create(MFD_ALLOW_SEALING), then
// fcntl(F_ADD_SEALS, F_SEAL_SHRINK); the client library does this): the daemon reads and writes it
// without a guard, and a file shrunk under a live mapping would kill the daemon with SIGBUS. Other
// files (regular disk files included) are refused with FAILED_PRECONDITION. A connection may register
// one inode once (ALREADY_EXISTS) and at most ShmLimits::max_regions_per_connection regions; the
// daemon maps at most max_regions regions and max_bytes bytes in all (RESOURCE_EXHAUSTED). Regions
// belong to the connection that registered them: they are released when it closes, which is what
// happens when a client exits or dies. gRPC requests name a region by its token (128 random bits)
// and are served only for the uid that registered it (PERMISSION_DENIED for any other caller, so a
// leaked token is no key); every (offset, length) is bounds-checked.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "core/limits.h"
#include "proto/shm_protocol.h"
#include "server/peer_access.h"

namespace coset {

class ShmRegion {
 public:
  // keep: what the registry's region hook returned for this mapping (may be null), released before
  // the mapping goes.
  ShmRegion(void* base, int64_t size, std::string owner, std::shared_ptr<void> keep = nullptr)
      : base_(static_cast<uint8_t*>(base)), size_(size), owner_(std::move(owner)), keep_(std::move(keep)) {}
  ~ShmRegion();
  uint8_t* base() const { return base_; }
  int64_t size() const { return size_; }
  // The principal (peer_access.h) that registered it.
  const std::string& owner() const { return owner_; }

 private:
  uint8_t* base_;
  int64_t size_;
  std::string owner_;
  std::shared_ptr<void> keep_;
};

// A validated byte range of a region; keeps the mapping alive while a request uses it.
struct ShmSpan {
  std::shared_ptr<ShmRegion> region;
  uint8_t* data = nullptr;
  int64_t length = 0;
};

// What the registry accepts (defaults from core/limits.h).
struct ShmLimits {
  int max_regions_per_connection = kMaxRegionsPerConnection;
  int max_regions = kMaxRegions;
  int64_t max_bytes = kDefaultShmBudgetBytes;  // --shm-budget
  int max_connections = 1024;                  // side connections in all
  int max_connections_per_peer = 64;           // per client process (SO_PEERCRED pid)
  int idle_seconds = 10;                       // a connection holding no region is closed after this
};

class ShmRegistry {
 public:
  explicit ShmRegistry(const ShmLimits& limits = ShmLimits(), PeerPolicy policy = PeerPolicy());
  ~ShmRegistry();

  // Listens on `path` (removes a stale file first) and serves registrations on a thread.
  absl::Status Start(const std::string& path);
  void Stop();

  // The range [offset, offset + length) of region `token` for a call of `caller` (a principal), or
  // an error: NOT_FOUND for an unknown token, PERMISSION_DENIED for another principal's region,
  // OUT_OF_RANGE for a range outside the region.
  absl::StatusOr<ShmSpan> Resolve(const std::string& token, uint64_t offset, uint64_t length,
                                  const std::string& caller) const;

  int64_t regions() const;
  int64_t bytes() const;
  // Called (from the registry's thread) after every registration change: (regions, bytes).
  void SetObserver(std::function<void(int64_t, int64_t)> observer) { observer_ = std::move(observer); }
  // Called (from the registry's thread; set it before Start) for every region mapped, before any
  // request can use it; what it returns is kept with the region and released before the region is
  // unmapped (after the last request using it). cosetd's pipelined CUDA staging page-locks regions
  // with it, so that the device copies client memory in place. A null result keeps nothing.
  using RegionHook = std::function<std::shared_ptr<void>(uint8_t* base, int64_t size)>;
  void SetRegionHook(RegionHook hook) { region_hook_ = std::move(hook); }

 private:
  struct Connection;
  // One thread serves every connection: accepts, requests (one message per readiness, in turn)
  // and idle timeouts, all from one epoll set; registrations are short (fstat, seals, mmap).
  void EventLoop();
  void Accept();
  // Serves one message of a readable connection; false when the connection must be closed.
  bool OnReadable(Connection& conn);
  void CloseIdle(std::chrono::steady_clock::time_point now);
  // Closes a connection and releases its regions.
  void CloseConnection(int fd);
  ShmReply HandleRegister(Connection& conn, const ShmRequest& req, int memfd);
  ShmReply HandleUnregister(Connection& conn, const ShmRequest& req);
  // Forgets these regions (their mappings go when the last request using them finishes).
  void Release(const std::vector<std::string>& tokens);
  std::string NewToken();

  const ShmLimits limits_;
  const PeerPolicy policy_;
  std::string path_;
  int listen_fd_ = -1;
  bool inherited_ = false;  // passed by systemd (socket activation): its file is left in place
  int epoll_fd_ = -1;
  int wake_fd_[2] = {-1, -1};
  std::thread thread_;
  // Touched only by the loop thread.
  std::map<int, std::unique_ptr<Connection>> connections_;
  std::map<pid_t, int> connections_per_pid_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<ShmRegion>> regions_;  // token -> region
  int64_t bytes_ = 0;                                          // registered (guarded by mu_)
  std::atomic<bool> stopping_{false};
  std::function<void(int64_t, int64_t)> observer_;
  RegionHook region_hook_;
  void Notify();
};

}  // namespace coset
