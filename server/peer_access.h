// Who may use cosetd, and who a call comes from.
//
// Unix sockets (the gRPC socket and the shared-memory side socket) admit by SO_PEERCRED: the
// daemon's own uid, root, and members of one configured group (--allow-group). Every call then has
// a principal, which owns what the call creates (resident tensors, shared-memory regions):
//   "uid:<n>"          a peer on a Unix socket
//   "x509:<identity>"  a TCP client that presented a certificate the daemon verified (mutual TLS)
//   "tcp"              any other TCP client (plaintext, or TLS without a client certificate): all of
//                      them are one principal, which is why TCP is off unless asked for
// Another principal's tensor or region gets PERMISSION_DENIED.
#pragma once

#include <sys/types.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"

namespace coset {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// The credentials of a connected Unix-socket peer (SO_PEERCRED).
absl::StatusOr<PeerCredentials> PeerCredentialsOf(int fd);

class PeerPolicy {
 public:
  // The daemon's effective uid and root only.
  PeerPolicy();
  // Also members (primary or supplementary) of `group`, a name or a number; "" = no group.
  static absl::StatusOr<PeerPolicy> WithGroup(const std::string& group);

  // OK for an admitted peer, else PERMISSION_DENIED saying who may connect.
  absl::Status Admit(const PeerCredentials& peer) const;
  const std::optional<gid_t>& group() const { return group_; }

 private:
  uid_t daemon_uid_;
  std::optional<gid_t> group_;
  std::string group_name_;
};

std::string UidPrincipal(uid_t uid);

// One connection accepted from a Unix listening socket and checked against a policy.
struct AcceptedPeer {
  int fd = -1;  // -1: nothing was pending (or accept failed); the rest is then unset
  PeerCredentials cred;
  // "uid:<n>" for an admitted peer, else why the policy (or reading the credentials) refused it.
  absl::StatusOr<std::string> principal;
};

// A listening Unix stream socket at `path`, non-blocking and close-on-exec: the one systemd passed
// for that path (socket activation: LISTEN_FDS; the socket unit owns the file and its mode, and
// `inherited` says to leave the file in place on exit), otherwise one bound here (a stale socket
// file there is replaced) with its file mode set by RestrictToPolicy. INVALID_ARGUMENT for a path
// longer than a socket address holds, UNAVAILABLE when it cannot bind.
struct UnixSocket {
  int fd = -1;
  bool inherited = false;
};
absl::StatusOr<UnixSocket> ListenUnix(const std::string& path, const PeerPolicy& policy);

// Accepts one pending connection (non-blocking, close-on-exec, as event loops want it) and checks
// its peer. Out of descriptors, it waits a little first, so a caller polling the listening socket
// does not spin on a connection that stays pending.
AcceptedPeer AcceptPeer(int listen_fd, const PeerPolicy& policy);

// File modes second the SO_PEERCRED check: a socket (or its directory, with `directory`) is
// owner-only, or group-accessible and owned by the policy's group when it has one.
void RestrictToPolicy(const std::string& path, const PeerPolicy& policy, bool directory);

// The peers of the gRPC Unix socket by the name gRPC's transport gives their connection
// ("fd:<n>", see UnixGrpcListener), so a call can be mapped back to the process that made it.
// Thread-safe. A descriptor number is reused only after gRPC closed its connection, and no call
// of a closed connection is still running, so a live call always finds its own peer.
class UnixPeers {
 public:
  // The connection on `fd`: its principal, or why its peer was refused.
  void Add(int fd, absl::StatusOr<std::string> principal);
  // NOT_FOUND when `peer` is not one of these connections.
  absl::StatusOr<std::string> PrincipalOf(const std::string& peer) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, absl::StatusOr<std::string>> by_peer_;
};

// The principal of a call: from `unix_peers` for a Unix-socket connection (PERMISSION_DENIED for a
// refused peer), from the verified client certificate for mutual TLS, else "tcp".
absl::StatusOr<std::string> PrincipalOf(const grpc::ServerContext& ctx, const UnixPeers* unix_peers);

}  // namespace coset
