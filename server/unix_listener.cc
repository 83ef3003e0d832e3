#include "server/unix_listener.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "grpcpp/server_posix.h"

namespace coset {

absl::Status UnixListener::Start(const std::string& path, grpc::Server* server) {
  server_ = server;
  path_ = path;
  absl::StatusOr<UnixSocket> socket = ListenUnix(path, policy_);
  if (!socket.ok()) return socket.status();
  listen_fd_ = socket->fd;
  inherited_ = socket->inherited;
  if (pipe2(wake_fd_, O_CLOEXEC) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot make a wake-up pipe: ", std::strerror(errno)));
  }
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
  if (!inherited_) unlink(path_.c_str());  // a socket unit's file stays for the next activation
}

void UnixListener::AcceptLoop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents) return;
    AcceptedPeer peer = AcceptPeer(listen_fd_, policy_);  // non-blocking, as gRPC's event loop expects
    if (peer.fd < 0) continue;
    // Recorded before gRPC sees the connection, so its first call finds it.
    peers_->Add(peer.fd, std::move(peer.principal));
    grpc::AddInsecureChannelFromFd(server_, peer.fd);
  }
}

}  // namespace coset
