// Raw clients of cosetd's shared-memory side socket, for tests that play a buggy or hostile
// client: memfds sealed or not, REGISTER messages carrying any descriptors.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proto/shm_protocol.h"

namespace coset {

// A memfd of `size` bytes, sealed against shrinking unless `seal` is false.
inline int Memfd(const char* name, int64_t size, bool seal = true) {
  const int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ftruncate(fd, size) != 0) return -1;
  if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) != 0) return -1;
  return fd;
}

// A raw side-socket client: sends any request (REGISTER with any descriptors), returns the reply.
class RawSideSocket {
 public:
  explicit RawSideSocket(const std::string& path) : sock_(socket(AF_UNIX, SOCK_STREAM, 0)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = connect(sock_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawSideSocket() { close(sock_); }
  bool connected() const { return connected_; }

  // A reply the daemon sent unasked (a refused connection), or status 999 when none came (closed).
  ShmReply ReceiveReply() {
    ShmReply reply{};
    if (recv(sock_, &reply, sizeof(reply), MSG_WAITALL) != static_cast<ssize_t>(sizeof(reply))) reply.status = 999;
    return reply;
  }

  ShmReply Register(const std::vector<int>& fds, uint64_t size) {
    ShmRequest req{};
    req.magic = kShmMagic;
    req.op = kShmOpRegister;
    req.size = size;
    return Exchange(req, fds);
  }

  // Sends any request with any descriptors attached and returns the reply, or status 999 when the
  // connection failed. Interrupted calls (EINTR: a fuzzer's timers) are retried.
  ShmReply Exchange(const ShmRequest& request, const std::vector<int>& fds) {
    ShmRequest req = request;
    iovec iov{&req, sizeof(req)};
    alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (!fds.empty()) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
      std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
    }
    ShmReply reply{};
    reply.status = 999;
    ssize_t sent;
    do sent = sendmsg(sock_, &msg, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent != static_cast<ssize_t>(sizeof(req))) return reply;
    size_t got = 0;
    while (got < sizeof(reply)) {
      const ssize_t n = recv(sock_, reinterpret_cast<char*>(&reply) + got, sizeof(reply) - got, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    if (got != sizeof(reply)) reply.status = 999;
    return reply;
  }

  // Whether the daemon closed the connection or sent something unasked (nothing should be waiting).
  bool Disturbed() const {
    pollfd p{sock_, POLLIN, 0};
    return poll(&p, 1, 0) != 0;
  }

 private:
  int sock_;
  bool connected_ = false;
};

inline uint32_t Code(absl::StatusCode code) { return static_cast<uint32_t>(code); }

}  // namespace coset
