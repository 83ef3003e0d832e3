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
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/status_macros.h"
#include "server/shm_registry.h"
#include "tests/server/shm_test_util.h"

namespace {

const std::string& SocketPath() {
  static const std::string path = "/tmp/coset_shm_fuzz_" + std::to_string(getpid()) + ".sock";
  return path;
}

coset::ShmRegistry& Registry() {
  static coset::ShmRegistry* registry = [] {
    auto* r = new coset::ShmRegistry();
    COSET_CHECK(r->Start(SocketPath()).ok());
    std::atexit([] { unlink(SocketPath().c_str()); });
    return r;
  }();
  return *registry;
}

// The fuzzer's connection, reopened when the registry closed it (idle for --shm-idle-seconds).
coset::RawSideSocket& Connection() {
  static std::unique_ptr<coset::RawSideSocket> sock;
  if (sock == nullptr || sock->Disturbed()) sock = std::make_unique<coset::RawSideSocket>(SocketPath());
  COSET_CHECK(sock->connected());
  return *sock;
}

int MakeMemfd(uint8_t control) {
  static const int64_t kSizes[4] = {0, 4096, 65536, 1 << 20};
  const int fd = memfd_create("coset_shm_fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  COSET_CHECK(fd >= 0 && ftruncate(fd, kSizes[(control >> 3) & 3]) == 0);
  if (control & 2) fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  coset::ShmRegistry& registry = Registry();
  coset::RawSideSocket& sock = Connection();
  constexpr size_t kRecord = 1 + sizeof(coset::ShmRequest);
  const std::string me = coset::UidPrincipal(geteuid());
  std::vector<std::string> registered;
  for (size_t at = 0; at + kRecord <= size && at < 64 * kRecord; at += kRecord) {
    const uint8_t control = data[at];
    coset::ShmRequest req;
    std::memcpy(&req, data + at + 1, sizeof(req));
    std::vector<int> fds;
    if (control & 1) fds.push_back(MakeMemfd(control));
    if (control & 4) fds.push_back(MakeMemfd(control));
    const coset::ShmReply reply = sock.Exchange(req, fds);
    for (int fd : fds) close(fd);
    COSET_CHECK(reply.status <= 16);  // an absl::StatusCode (999: no reply)
    if (reply.status == 0 && req.op == coset::kShmOpRegister) {
      const std::string token(reply.token, strnlen(reply.token, sizeof(reply.token)));
      COSET_CHECK(registry.Resolve(token, 0, 1, me).ok());
      COSET_CHECK(registry.Resolve(token, 0, 1, "tcp").status().code() == absl::StatusCode::kPermissionDenied);
      COSET_CHECK(!registry.Resolve(token, req.size, 1, me).ok());
      registered.push_back(token);
    }
  }
  // Leave the connection as it was found; a token the input itself unregistered is NOT_FOUND now.
  for (const std::string& token : registered) {
    coset::ShmRequest req{};
    req.magic = coset::kShmMagic;
    req.op = coset::kShmOpUnregister;
    std::memcpy(req.token, token.c_str(), token.size() + 1);
    const coset::ShmReply reply = sock.Exchange(req, {});
    COSET_CHECK(reply.status == 0 || reply.status == static_cast<uint32_t>(absl::StatusCode::kNotFound));
  }
  return 0;
}
