// ShmRegistry on a real Unix socket with real memfds: register, resolve, bounds, unregister, and
// release when the connection closes; extra descriptors on a message are closed.
#include "server/shm_registry.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "client/shm_client.h"
#include "gtest/gtest.h"

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
  const ShmSpan span = *registry_.Resolve(channel->token(), 100, 5);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(span.data), 5), "hello");
  EXPECT_EQ(registry_.Resolve(channel->token(), 4000, 200).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(registry_.Resolve("0123456789abcdef0123456789abcdef", 0, 1).status().code(), absl::StatusCode::kNotFound);
  channel.reset();  // the client goes away: its region goes with it
  EXPECT_TRUE(WaitForRegions(0));
  // The span still maps the memory until the request holding it finishes.
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(span.data), 5), "hello");
}

TEST_F(ShmRegistryTest, ExtraDescriptorsOnAMessageAreClosed) {
  const int sock = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const int a = memfd_create("coset_test_kept", 0), b = memfd_create("coset_test_extra", 0);
  ASSERT_EQ(ftruncate(a, 4096), 0);
  ShmRequest req{};
  req.magic = kShmMagic;
  req.op = kShmOpRegister;
  req.size = 4096;
  iovec iov{&req, sizeof(req)};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(2 * sizeof(int));
  const int fds[2] = {a, b};
  std::memcpy(CMSG_DATA(c), fds, sizeof(fds));
  ASSERT_EQ(sendmsg(sock, &msg, 0), static_cast<ssize_t>(sizeof(req)));
  ShmReply reply{};
  ASSERT_EQ(recv(sock, &reply, sizeof(reply), MSG_WAITALL), static_cast<ssize_t>(sizeof(reply)));
  EXPECT_EQ(reply.status, 0u) << reply.message;
  // The registry runs in this process, so a descriptor it kept would show up in our table: b must
  // be open exactly once (ours), not twice (ours and a leaked copy pinning its memory).
  EXPECT_EQ(OpenDescriptorsNamed("memfd:coset_test_extra"), 1);
  EXPECT_EQ(registry_.regions(), 1);
  close(sock);
  close(a);
  close(b);
  EXPECT_TRUE(WaitForRegions(0));
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
