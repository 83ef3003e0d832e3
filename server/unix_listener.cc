#include "server/unix_listener.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "grpcpp/server_posix.h"

namespace coset {

absl::Status UnixListener::Start(const std::string& path, grpc::Server* server) {
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("unix socket path '", path.substr(0, 128), "' is ", path.size(),
                                                   " bytes; the limit is ", sizeof(sockaddr_un{}.sun_path) - 1));
  }
  server_ = server;
  path_ = path;
  unlink(path.c_str());  // a stale socket from a previous run
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 256) != 0 || pipe2(wake_fd_, O_CLOEXEC) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", path, ": ", std::strerror(errno)));
  }
  RestrictToPolicy(path, policy_, false);
  thread_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void UnixListener::Stop() {
  if (listen_fd_ < 0 || stopping_.exchange(true)) return;
  (void)!write(wake_fd_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
  close(wake_fd_[0]);
  close(wake_fd_[1]);
  unlink(path_.c_str());
}

void UnixListener::AcceptLoop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents) return;
    AcceptedPeer peer = AcceptPeer(listen_fd_, policy_);  // non-blocking, as gRPC's event loop expects
    if (peer.fd < 0) continue;
    absl::StatusOr<std::string> principal =
        peer.admitted.ok() ? absl::StatusOr<std::string>(peer.principal) : absl::StatusOr<std::string>(peer.admitted);
    // Recorded before gRPC sees the connection, so its first call finds it.
    peers_->Add(peer.fd, std::move(principal));
    grpc::AddInsecureChannelFromFd(server_, peer.fd);
  }
}

}  // namespace coset
