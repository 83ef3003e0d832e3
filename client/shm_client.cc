#include "client/shm_client.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/limits.h"
#include "proto/shm_protocol.h"

namespace coset {

ShmChannel::~ShmChannel() {
  Release();
  if (sock_ >= 0) close(sock_);
}

void ShmChannel::Release() {
  if (base_ != nullptr) munmap(base_, static_cast<size_t>(size_));
  if (memfd_ >= 0) close(memfd_);
  base_ = nullptr;
  memfd_ = -1;
  size_ = 0;
  if (!token_.empty() && sock_ >= 0) {
    ShmRequest req{};
    req.magic = kShmMagic;
    req.op = kShmOpUnregister;
    std::memcpy(req.token, token_.c_str(), 33);
    ShmReply reply{};
    if (send(sock_, &req, sizeof(req), MSG_NOSIGNAL) == sizeof(req))
      (void)!recv(sock_, &reply, sizeof(reply), MSG_WAITALL);
  }
  token_.clear();
}

absl::StatusOr<std::unique_ptr<ShmChannel>> ShmChannel::Open(const std::string& path) {
  std::unique_ptr<ShmChannel> c(new ShmChannel());
  c->sock_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return absl::InvalidArgumentError("shared-memory socket path too long");
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (c->sock_ < 0 || connect(c->sock_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", path, ": ", std::strerror(errno)));
  }
  // Bounded replies: a send or recv that waits longer fails (EAGAIN), and the call reports the
  // daemon unavailable instead of blocking for ever.
  const timeval limit{kShmReplySeconds, 0};
  setsockopt(c->sock_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  setsockopt(c->sock_, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  return c;
}

absl::Status ShmChannel::Allocate(int64_t size) {
  Release();
  memfd_ = memfd_create("coset-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (memfd_ < 0 || ftruncate(memfd_, size) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat("memfd of ", size, " bytes: ", std::strerror(errno)));
  }
  // The daemon maps the region for as long as it is registered: it must never shrink (cosetd
  // refuses regions without this seal).
  if (fcntl(memfd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) != 0) {
    return absl::InternalError(absl::StrCat("sealing the memfd: ", std::strerror(errno)));
  }
  void* base = mmap(nullptr, static_cast<size_t>(size), PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0);
  if (base == MAP_FAILED) return absl::ResourceExhaustedError(absl::StrCat("mmap: ", std::strerror(errno)));
  base_ = static_cast<uint8_t*>(base);
  size_ = size;
  ShmRequest req{};
  req.magic = kShmMagic;
  req.op = kShmOpRegister;
  req.size = static_cast<uint64_t>(size);
  iovec iov{&req, sizeof(req)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &memfd_, sizeof(int));
  ShmReply reply{};
  errno = 0;
  if (sendmsg(sock_, &msg, MSG_NOSIGNAL) != sizeof(req) ||
      recv(sock_, &reply, sizeof(reply), MSG_WAITALL) != sizeof(reply)) {
    return absl::UnavailableError(errno == EAGAIN || errno == EWOULDBLOCK
                                      ? absl::StrCat("shared-memory side socket: no answer in ", kShmReplySeconds, " s")
                                      : std::string("shared-memory side socket closed (daemon restarted?)"));
  }
  if (reply.status != 0) {
    reply.message[sizeof(reply.message) - 1] = '\0';
    return absl::Status(static_cast<absl::StatusCode>(reply.status), reply.message);
  }
  reply.token[32] = '\0';
  token_ = reply.token;
  return absl::OkStatus();
}

}  // namespace coset
