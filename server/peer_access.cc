#include "server/peer_access.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/auth_context.h"

namespace coset {
namespace {

// Whether user `uid` (primary group `gid`) belongs to `group`, supplementary groups included.
bool IsMember(uid_t uid, gid_t gid, gid_t group) {
  if (gid == group) return true;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return false;
  std::vector<gid_t> groups(64);
  int n = static_cast<int>(groups.size());
  if (getgrouplist(pw.pw_name, gid, groups.data(), &n) < 0) {
    groups.resize(n);
    if (getgrouplist(pw.pw_name, gid, groups.data(), &n) < 0) return false;
  }
  for (int i = 0; i < n; ++i) {
    if (groups[i] == group) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<PeerCredentials> PeerCredentialsOf(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("cannot read the peer's credentials: ", std::strerror(errno)));
  }
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

PeerPolicy::PeerPolicy() : daemon_uid_(geteuid()) {}

absl::StatusOr<PeerPolicy> PeerPolicy::WithGroup(const std::string& group) {
  PeerPolicy policy;
  if (group.empty()) return policy;
  uint32_t number = 0;
  if (absl::SimpleAtoi(group, &number)) {
    policy.group_ = static_cast<gid_t>(number);
  } else {
    std::vector<char> buf(16384);
    struct group gr {};
    struct group* found = nullptr;
    if (getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
      return absl::NotFoundError(absl::StrCat("no group named '", group.substr(0, 64), "'"));
    }
    policy.group_ = gr.gr_gid;
  }
  policy.group_name_ = group;
  return policy;
}

absl::Status PeerPolicy::Admit(const PeerCredentials& peer) const {
  if (peer.uid == daemon_uid_ || peer.uid == 0) return absl::OkStatus();
  if (group_.has_value() && IsMember(peer.uid, peer.gid, *group_)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("uid ", peer.uid, " may not use this daemon: only ",
                   daemon_uid_ == 0 ? std::string("root") : absl::StrCat("uid ", daemon_uid_, " and root"),
                   group_.has_value() ? absl::StrCat(" and members of group ", group_name_) : std::string(),
                   " (cosetd --allow-group)"));
}

std::string UidPrincipal(uid_t uid) { return absl::StrCat("uid:", uid); }

namespace {

// The listening Unix stream socket systemd passed for `path`, or -1. The passed descriptors are
// read once per process (and the LISTEN_* variables cleared, so no child takes them for its own).
int InheritedUnixSocket(const std::string& path) {
  static const int passed = std::max(0, sd_listen_fds(1));
  for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + passed; ++fd) {
    if (sd_is_socket_unix(fd, SOCK_STREAM, 1, path.c_str(), 0) > 0) return fd;
  }
  return -1;
}

}  // namespace

absl::StatusOr<UnixSocket> ListenUnix(const std::string& path, const PeerPolicy& policy) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("unix socket path '", path.substr(0, 128), "' is ", path.size(),
                                                   " bytes; the limit is ", sizeof(addr.sun_path) - 1));
  }
  if (const int inherited = InheritedUnixSocket(path); inherited >= 0) {
    // systemd hands sockets over blocking and inheritable; the event loops want neither.
    fcntl(inherited, F_SETFL, fcntl(inherited, F_GETFL) | O_NONBLOCK);
    fcntl(inherited, F_SETFD, FD_CLOEXEC);
    return UnixSocket{inherited, true};
  }
  unlink(path.c_str());  // a stale socket from a previous run
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 256) != 0) {
    const int error = errno;
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat("cannot listen on ", path, ": ", std::strerror(error)));
  }
  RestrictToPolicy(path, policy, false);
  return UnixSocket{fd, false};
}

AcceptedPeer AcceptPeer(int listen_fd, const PeerPolicy& policy) {
  AcceptedPeer peer;
  peer.fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (peer.fd < 0) {
    if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return peer;
  }
  absl::StatusOr<PeerCredentials> cred = PeerCredentialsOf(peer.fd);
  const absl::Status admitted = cred.ok() ? policy.Admit(*cred) : cred.status();
  if (cred.ok()) peer.cred = *cred;
  if (admitted.ok()) {
    peer.principal = UidPrincipal(peer.cred.uid);
  } else {
    peer.principal = admitted;
  }
  return peer;
}

void RestrictToPolicy(const std::string& path, const PeerPolicy& policy, bool directory) {
  if (!policy.group().has_value()) {
    chmod(path.c_str(), directory ? 0700 : 0600);
    return;
  }
  (void)!chown(path.c_str(), static_cast<uid_t>(-1), *policy.group());
  chmod(path.c_str(), directory ? 0750 : 0660);
}

void UnixPeers::Add(int fd, absl::StatusOr<std::string> principal) {
  std::lock_guard<std::mutex> lock(mu_);
  by_peer_.insert_or_assign(absl::StrCat("fd:", fd), std::move(principal));
}

absl::StatusOr<std::string> UnixPeers::PrincipalOf(const std::string& peer) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_peer_.find(peer);
  if (it == by_peer_.end()) return absl::NotFoundError("not a Unix-socket peer");
  return it->second;
}

absl::StatusOr<std::string> PrincipalOf(const grpc::ServerContext& ctx, const UnixPeers* unix_peers) {
  const std::string peer = ctx.peer();
  if (unix_peers != nullptr && peer.rfind("fd:", 0) == 0) return unix_peers->PrincipalOf(peer);
  const std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    for (const grpc::string_ref& identity : auth->GetPeerIdentity()) {
      return absl::StrCat("x509:", std::string(identity.data(), identity.size()));
    }
  }
  return std::string("tcp");
}

}  // namespace coset
