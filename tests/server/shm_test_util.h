// Raw clients of cosetd's shared-memory side socket, for tests that play a buggy or hostile
// client: memfds sealed or not, REGISTER messages carrying any descriptors.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

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

// A raw side-socket client: sends REGISTER with any descriptors, returns the reply.
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
    if (sendmsg(sock_, &msg, 0) != static_cast<ssize_t>(sizeof(req))) return reply;
    if (recv(sock_, &reply, sizeof(reply), MSG_WAITALL) != static_cast<ssize_t>(sizeof(reply))) reply.status = 999;
    return reply;
  }

 private:
  int sock_;
  bool connected_ = false;
};

inline uint32_t Code(absl::StatusCode code) { return static_cast<uint32_t>(code); }

}  // namespace coset
