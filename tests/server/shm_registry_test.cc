// ShmRegistry on a real Unix socket with real memfds: register, resolve, bounds, unregister, and
// release when the connection closes; extra descriptors on a message are closed.
#include "server/shm_registry.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

#include "client/shm_client.h"
#include "gtest/gtest.h"
#include "tests/server/shm_test_util.h"

namespace coset {
namespace {

// Descriptors of this process whose target names `name` (memfds read "/memfd:NAME (deleted)").
int OpenDescriptorsNamed(const std::string& name) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(entry.path(), ec).string();
    if (!ec && target.find(name) != std::string::npos) ++count;
  }
  return count;
}

class ShmRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Under /tmp: a Unix socket path must fit in 108 bytes, which Bazel's TEST_TMPDIR may not.
    char pattern[] = "/tmp/coset_shm_testXXXXXX";
    dir_ = mkdtemp(pattern);
    path_ = dir_ + "/cosetd.sock.shm";
    ASSERT_TRUE(registry_.Start(path_).ok());
  }
  void TearDown() override {
    registry_.Stop();
    std::filesystem::remove_all(dir_);
  }

  // Waits for the registry's threads to reach a region count (they release asynchronously).
  bool WaitForRegions(int64_t n) {
    for (int i = 0; i < 500 && registry_.regions() != n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return registry_.regions() == n;
  }

  std::string dir_, path_;
  ShmRegistry registry_;
};

TEST_F(ShmRegistryTest, RegisterResolveAndReleaseOnClose) {
  auto channel = *ShmChannel::Open(path_);
  ASSERT_TRUE(channel->Allocate(4096).ok());
  EXPECT_EQ(registry_.regions(), 1);
  EXPECT_EQ(registry_.bytes(), 4096);
  std::memcpy(channel->data() + 100, "hello", 5);
  const std::string me = UidPrincipal(geteuid());
  const ShmSpan span = *registry_.Resolve(channel->token(), 100, 5, me);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(span.data), 5), "hello");
  EXPECT_EQ(registry_.Resolve(channel->token(), 4000, 200, me).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(registry_.Resolve("0123456789abcdef0123456789abcdef", 0, 1, me).status().code(),
            absl::StatusCode::kNotFound);
  // The token alone is no key: another principal (a TCP client, another uid) is refused.
  EXPECT_EQ(registry_.Resolve(channel->token(), 100, 5, "tcp").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(registry_.Resolve(channel->token(), 100, 5, UidPrincipal(geteuid() + 1)).status().code(),
            absl::StatusCode::kPermissionDenied);
  channel.reset();  // the client goes away: its region goes with it
  EXPECT_TRUE(WaitForRegions(0));
  // The span still maps the memory until the request holding it finishes.
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(span.data), 5), "hello");
}

TEST_F(ShmRegistryTest, ExtraDescriptorsOnAMessageAreClosed) {
  RawSideSocket side(path_);
  ASSERT_TRUE(side.connected());
  const int a = Memfd("coset_test_kept", 4096), b = Memfd("coset_test_extra", 4096);
  const ShmReply reply = side.Register({a, b}, 4096);
  EXPECT_EQ(reply.status, 0u) << reply.message;
  // The registry runs in this process, so a descriptor it kept would show up in our table: b must
  // be open exactly once (ours), not twice (ours and a leaked copy pinning its memory).
  EXPECT_EQ(OpenDescriptorsNamed("memfd:coset_test_extra"), 1);
  EXPECT_EQ(registry_.regions(), 1);
  close(a);
  close(b);
}

TEST_F(ShmRegistryTest, OnlyMemfdsSealedAgainstShrinkingAreAccepted) {
  RawSideSocket side(path_);
  // Unsealed: the client could shrink it under the daemon's mapping (SIGBUS on the next access).
  const int unsealed = Memfd("coset_unsealed", 4096, /*seal=*/false);
  ShmReply reply = side.Register({unsealed}, 4096);
  EXPECT_EQ(reply.status, Code(absl::StatusCode::kFailedPrecondition));
  EXPECT_NE(std::string(reply.message).find("F_SEAL_SHRINK"), std::string::npos) << reply.message;
  // A regular disk file is not a region at all.
  const std::string file = dir_ + "/disk_file";
  const int disk = open(file.c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_EQ(ftruncate(disk, 4096), 0);
  reply = side.Register({disk}, 4096);
  EXPECT_EQ(reply.status, Code(absl::StatusCode::kFailedPrecondition));
  EXPECT_NE(std::string(reply.message).find("memfd"), std::string::npos) << reply.message;
  EXPECT_EQ(registry_.regions(), 0);
  // A sealed memfd registers, and can then no longer shrink.
  const int sealed = Memfd("coset_sealed", 4096);
  EXPECT_EQ(side.Register({sealed}, 4096).status, 0u);
  EXPECT_NE(ftruncate(sealed, 0), 0);
  EXPECT_EQ(errno, EPERM);
  close(unsealed);
  close(disk);
  close(sealed);
}

TEST_F(ShmRegistryTest, OneRegistrationPerInodeAndBoundedCounts) {
  RawSideSocket side(path_);
  const int fd = Memfd("coset_once", 4096);
  EXPECT_EQ(side.Register({fd}, 4096).status, 0u);
  // The same file again (the 65,100-registrations attack): refused, no second mapping.
  for (int i = 0; i < 100; ++i) EXPECT_EQ(side.Register({fd}, 4096).status, Code(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(registry_.regions(), 1);
  // Distinct files: at most kMaxRegionsPerConnection on one connection.
  std::vector<int> fds;
  int accepted = 1;
  for (int i = 0; i < kMaxRegionsPerConnection + 10; ++i) {
    fds.push_back(Memfd("coset_many", 4096));
    accepted += side.Register({fds.back()}, 4096).status == 0;
  }
  EXPECT_EQ(accepted, kMaxRegionsPerConnection);
  EXPECT_EQ(registry_.regions(), kMaxRegionsPerConnection);
  close(fd);
  for (int f : fds) close(f);
}

// The region hook (cosetd's page-locking for pipelined CUDA staging) sees every mapping before a
// request can, and what it keeps is released after the last request using the region is done,
// while the memory is still mapped (a page-locking must be undone before the unmap).
TEST(ShmRegistryHookTest, KeepsWhatTheHookReturnsUntilTheMappingGoes) {
  char pattern[] = "/tmp/coset_shm_testXXXXXX";
  const std::string dir = mkdtemp(pattern);
  ShmRegistry registry;
  struct Seen {
    uint8_t* base = nullptr;
    int64_t size = 0;
    bool released = false;
    bool mapped_when_released = false;
  };
  auto seen = std::make_shared<Seen>();
  registry.SetRegionHook([seen](uint8_t* base, int64_t size) -> std::shared_ptr<void> {
    seen->base = base;
    seen->size = size;
    return std::shared_ptr<void>(base, [seen](void* p) {
      seen->released = true;
      // mincore fails with ENOMEM on an address that is not mapped.
      unsigned char resident = 0;
      seen->mapped_when_released = mincore(p, 1, &resident) == 0;
    });
  });
  ASSERT_TRUE(registry.Start(dir + "/cosetd.sock.shm").ok());
  auto channel = *ShmChannel::Open(dir + "/cosetd.sock.shm");
  ASSERT_TRUE(channel->Allocate(8192).ok());
  std::memcpy(channel->data(), "pinned", 6);
  ShmSpan span = *registry.Resolve(channel->token(), 0, 6, UidPrincipal(geteuid()));
  EXPECT_EQ(seen->base, span.data);
  EXPECT_EQ(seen->size, 8192);
  channel.reset();  // the client goes: the registry forgets the region, the span still holds it
  for (int i = 0; i < 500 && registry.regions() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(registry.regions(), 0);
  EXPECT_FALSE(seen->released);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(span.data), 6), "pinned");
  span.region.reset();  // the last request is done
  EXPECT_TRUE(seen->released);
  EXPECT_TRUE(seen->mapped_when_released);
  registry.Stop();
  std::filesystem::remove_all(dir);
}

TEST(ShmRegistryLimitsTest, EachProcessHasAShareOfConnectionsAndIdleOnesAreClosed) {
  char pattern[] = "/tmp/coset_shm_testXXXXXX";
  const std::string dir = mkdtemp(pattern);
  ShmLimits limits;
  limits.max_connections_per_peer = 4;
  limits.idle_seconds = 1;
  ShmRegistry registry(limits);
  ASSERT_TRUE(registry.Start(dir + "/s.shm").ok());
  // Before: one thread per connection, 1,024 of them, no share and no timeout.
  std::vector<std::unique_ptr<RawSideSocket>> sockets;
  for (int i = 0; i < 6; ++i) sockets.push_back(std::make_unique<RawSideSocket>(dir + "/s.shm"));
  const ShmReply refused = sockets[5]->ReceiveReply();  // the fifth and sixth are told why
  EXPECT_EQ(refused.status, Code(absl::StatusCode::kResourceExhausted));
  EXPECT_NE(std::string(refused.message).find("at most 4 side connections"), std::string::npos) << refused.message;
  // A connection that holds a region outlives the idle timeout; the idle ones are closed.
  const int fd = Memfd("coset_keep", 4096);
  EXPECT_EQ(sockets[0]->Register({fd}, 4096).status, 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  EXPECT_EQ(sockets[1]->ReceiveReply().status, 999u) << "an idle connection without a region is closed";
  EXPECT_EQ(registry.regions(), 1);
  const int fd2 = Memfd("coset_keep2", 4096);
  EXPECT_EQ(sockets[0]->Register({fd2}, 4096).status, 0u) << "the connection with a region still serves";
  // With the idle ones gone, the process has room for new connections again.
  RawSideSocket again(dir + "/s.shm");
  const int fd3 = Memfd("coset_again", 4096);
  EXPECT_EQ(again.Register({fd3}, 4096).status, 0u);
  close(fd);
  close(fd2);
  close(fd3);
  sockets.clear();
  registry.Stop();
  std::filesystem::remove_all(dir);
}

TEST(ShmRegistryLimitsTest, TheBudgetBoundsMappedBytesAndRegions) {
  char pattern[] = "/tmp/coset_shm_testXXXXXX";
  const std::string dir = mkdtemp(pattern);
  ShmLimits limits;
  limits.max_bytes = 1 << 20;
  limits.max_regions = 3;
  ShmRegistry registry(limits);
  ASSERT_TRUE(registry.Start(dir + "/s.shm").ok());
  RawSideSocket side(dir + "/s.shm");
  // A sparse 1 TiB memfd costs no memory to create but would take the address space.
  const int huge = Memfd("coset_huge", int64_t{1} << 40);
  ASSERT_GE(huge, 0);
  const ShmReply reply = side.Register({huge}, uint64_t{1} << 40);
  EXPECT_EQ(reply.status, Code(absl::StatusCode::kResourceExhausted));
  EXPECT_NE(std::string(reply.message).find("shared-memory budget"), std::string::npos) << reply.message;
  RawSideSocket other(dir + "/s.shm");
  int accepted = 0;
  std::vector<int> fds;
  for (int i = 0; i < 5; ++i) {
    fds.push_back(Memfd("coset_small", 4096));
    accepted += (i % 2 ? other : side).Register({fds.back()}, 4096).status == 0;
  }
  EXPECT_EQ(accepted, 3);  // the daemon-wide cap, across connections
  EXPECT_EQ(registry.bytes(), 3 * 4096);
  close(huge);
  for (int f : fds) close(f);
  registry.Stop();
  std::filesystem::remove_all(dir);
}

TEST_F(ShmRegistryTest, MalformedRequestsGetErrorsAndTheConnectionStaysUsable) {
  auto channel = *ShmChannel::Open(path_);
  const int sock = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ShmRequest req{};
  req.magic = kShmMagic;
  req.op = kShmOpRegister;  // without a descriptor
  req.size = 4096;
  ASSERT_EQ(send(sock, &req, sizeof(req), 0), static_cast<ssize_t>(sizeof(req)));
  ShmReply reply{};
  ASSERT_EQ(recv(sock, &reply, sizeof(reply), MSG_WAITALL), static_cast<ssize_t>(sizeof(reply)));
  EXPECT_EQ(reply.status, static_cast<uint32_t>(absl::StatusCode::kInvalidArgument));
  req.op = kShmOpUnregister;
  std::strcpy(req.token, "not-mine");
  ASSERT_EQ(send(sock, &req, sizeof(req), 0), static_cast<ssize_t>(sizeof(req)));
  ASSERT_EQ(recv(sock, &reply, sizeof(reply), MSG_WAITALL), static_cast<ssize_t>(sizeof(reply)));
  EXPECT_EQ(reply.status, static_cast<uint32_t>(absl::StatusCode::kNotFound));
  req.op = 99;
  ASSERT_EQ(send(sock, &req, sizeof(req), 0), static_cast<ssize_t>(sizeof(req)));
  ASSERT_EQ(recv(sock, &reply, sizeof(reply), MSG_WAITALL), static_cast<ssize_t>(sizeof(reply)));
  EXPECT_EQ(reply.status, static_cast<uint32_t>(absl::StatusCode::kInvalidArgument));
  close(sock);
}

}  // namespace
}  // namespace coset
