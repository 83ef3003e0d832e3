// The gRPC Unix socket, accepted by cosetd itself: gRPC's own Unix listener does not say who is
// on the other end, and access control needs it. Each accepted connection's peer is read
// (SO_PEERCRED) and checked against the PeerPolicy, recorded in UnixPeers, and then handed to the
// gRPC server (grpc::AddInsecureChannelFromFd), whose transport names it "fd:<n>".
//
// A refused peer's connection is served too, so that each of its calls gets PERMISSION_DENIED
// saying who may connect (a bare close would look like a daemon that is down); the service
// refuses such calls before reading anything they ask for.
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "grpcpp/server.h"
#include "server/peer_access.h"

namespace coset {

class UnixListener {
 public:
  // peers: where connections are recorded; not owned, must outlive the listener.
  UnixListener(PeerPolicy policy, UnixPeers* peers) : policy_(std::move(policy)), peers_(peers) {}
  ~UnixListener() { Stop(); }
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  // Binds `path` (a stale socket file is replaced; owner-only, or group-accessible for the
  // policy's group) and hands connections to `server`, which must be started and outlive Stop.
  absl::Status Start(const std::string& path, grpc::Server* server);
  // Stops accepting and removes the socket file (unless systemd passed the socket); connections
  // already handed over are the server's (its Shutdown ends them).
  void Stop();

 private:
  void AcceptLoop();

  PeerPolicy policy_;
  UnixPeers* peers_;
  grpc::Server* server_ = nullptr;
  std::string path_;
  int listen_fd_ = -1;
  bool inherited_ = false;  // passed by systemd (socket activation)
  int wake_fd_[2] = {-1, -1};
  std::thread thread_;
  std::atomic<bool> stopping_{false};
};

}  // namespace coset
