// libFuzzer target: the shared-memory side socket's protocol, against a real ShmRegistry on a
// real Unix socket. An input is a sequence of records, each one control byte and one 56-byte
// ShmRequest; the control byte says which descriptors ride along:
//   bit 0: a memfd, bit 1: sealed against shrinking, bit 2: a second memfd,
//   bits 3-4: the memfd's size (0, 4 KiB, 64 KiB, 1 MiB).
// Every request must get one 128-byte reply with a known status; every token the registry hands
// out resolves for its owner only, and bounds are checked. One connection serves all inputs (as a
// long-lived client's would; a connection per input would soon meet the per-process cap while
// closed ones are still being released); each input unregisters the regions it registered.
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

#include "server/shm_registry.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

coset::ShmRegistry& Registry() {
  static coset::ShmRegistry* registry = [] {
    auto* r = new coset::ShmRegistry();
    static const std::string path = "/tmp/coset_shm_fuzz_" + std::to_string(getpid()) + ".sock";
    COSET_FUZZ_CHECK(r->Start(path).ok());
    std::atexit([] { unlink(path.c_str()); });
    return r;
  }();
  return *registry;
}

int Connect() {
  static const std::string path = "/tmp/coset_shm_fuzz_" + std::to_string(getpid()) + ".sock";
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  COSET_FUZZ_CHECK(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  return fd;
}

// The fuzzer's connection, reopened when the registry closed it (idle for --shm-idle-seconds).
int Connection() {
  static int sock = -1;
  if (sock >= 0) {
    pollfd p{sock, POLLIN, 0};
    if (poll(&p, 1, 0) == 0) return sock;  // nothing unsolicited and not closed: still ours
    close(sock);
  }
  sock = Connect();
  return sock;
}

void Exchange(int sock, const coset::ShmRequest& req, const std::vector<int>& fds, coset::ShmReply* reply) {
  iovec iov{const_cast<coset::ShmRequest*>(&req), sizeof(req)};
  alignas(cmsghdr) char cmsg[CMSG_SPACE(2 * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = cmsg;
    msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  // libFuzzer's timers interrupt system calls (EINTR): retried, as any client would.
  ssize_t sent, received;
  do sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  COSET_FUZZ_CHECK(sent == static_cast<ssize_t>(sizeof(req)));
  size_t got = 0;
  do {
    received = recv(sock, reinterpret_cast<char*>(reply) + got, sizeof(*reply) - got, 0);
    if (received > 0) got += static_cast<size_t>(received);
  } while ((received > 0 && got < sizeof(*reply)) || (received < 0 && errno == EINTR));
  COSET_FUZZ_CHECK(got == sizeof(*reply));
  COSET_FUZZ_CHECK(reply->status <= 16);  // an absl::StatusCode
}

int MakeMemfd(uint8_t control) {
  static const int64_t kSizes[4] = {0, 4096, 65536, 1 << 20};
  const int fd = memfd_create("coset_shm_fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  COSET_FUZZ_CHECK(fd >= 0 && ftruncate(fd, kSizes[(control >> 3) & 3]) == 0);
  if (control & 2) fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  coset::ShmRegistry& registry = Registry();
  constexpr size_t kRecord = 1 + sizeof(coset::ShmRequest);
  const int sock = Connection();
  const std::string me = coset::UidPrincipal(geteuid());
  std::vector<std::string> registered;
  for (size_t at = 0; at + kRecord <= size && at < 64 * kRecord; at += kRecord) {
    const uint8_t control = data[at];
    coset::ShmRequest req;
    std::memcpy(&req, data + at + 1, sizeof(req));
    std::vector<int> fds;
    if (control & 1) fds.push_back(MakeMemfd(control));
    if (control & 4) fds.push_back(MakeMemfd(control));
    coset::ShmReply reply{};
    Exchange(sock, req, fds, &reply);
    for (int fd : fds) close(fd);
    if (reply.status == 0 && req.op == coset::kShmOpRegister) {
      const std::string token(reply.token, strnlen(reply.token, sizeof(reply.token)));
      COSET_FUZZ_CHECK(registry.Resolve(token, 0, 1, me).ok());
      COSET_FUZZ_CHECK(registry.Resolve(token, 0, 1, "tcp").status().code() == absl::StatusCode::kPermissionDenied);
      COSET_FUZZ_CHECK(!registry.Resolve(token, req.size, 1, me).ok());
      registered.push_back(token);
    }
  }
  // Leave the connection as it was found; a token the input itself unregistered is NOT_FOUND now.
  for (const std::string& token : registered) {
    coset::ShmRequest req{};
    req.magic = coset::kShmMagic;
    req.op = coset::kShmOpUnregister;
    std::memcpy(req.token, token.c_str(), token.size() + 1);
    coset::ShmReply reply{};
    Exchange(sock, req, {}, &reply);
    COSET_FUZZ_CHECK(reply.status == 0 || reply.status == static_cast<uint32_t>(absl::StatusCode::kNotFound));
  }
  return 0;
}
