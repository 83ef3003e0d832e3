#include "server/shm_registry.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"

namespace coset {
namespace {

void FillReply(ShmReply* reply, absl::StatusCode code, const std::string& message) {
  std::memset(reply, 0, sizeof(*reply));
  reply->status = static_cast<uint32_t>(code);
  std::strncpy(reply->message, message.c_str(), sizeof(reply->message) - 1);
}

}  // namespace

ShmRegion::~ShmRegion() {
  keep_.reset();  // e.g. a page-locking of the mapping: undone while the mapping is still there
  if (base_ != nullptr) munmap(base_, static_cast<size_t>(size_));
}

ShmRegistry::ShmRegistry(const ShmLimits& limits, PeerPolicy policy) : limits_(limits), policy_(std::move(policy)) {}

ShmRegistry::~ShmRegistry() { Stop(); }

// One side-socket connection: its peer and the regions it registered, released when it closes.
struct ShmRegistry::Connection {
  int fd = -1;
  pid_t pid = 0;
  std::string owner;  // the peer's principal: its regions serve only its calls
  std::chrono::steady_clock::time_point last_message;
  std::vector<std::string> owned;
  std::set<std::pair<dev_t, ino_t>> inodes;                 // registered files, one registration each
  std::map<std::string, std::pair<dev_t, ino_t>> inode_of;  // token -> its file
};

absl::Status ShmRegistry::Start(const std::string& path) {
  path_ = path;
  absl::StatusOr<UnixSocket> socket = ListenUnix(path, policy_);
  if (!socket.ok()) return socket.status();
  listen_fd_ = socket->fd;
  inherited_ = socket->inherited;
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0 || pipe2(wake_fd_, O_CLOEXEC) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot set up the side socket's event loop: ", std::strerror(errno)));
  }
  for (int fd : {listen_fd_, wake_fd_[0]}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
  thread_ = std::thread([this] { EventLoop(); });
  return absl::OkStatus();
}

void ShmRegistry::Stop() {
  if (listen_fd_ < 0 || stopping_.exchange(true)) return;
  (void)!write(wake_fd_[1], "x", 1);
  if (thread_.joinable()) thread_.join();  // the loop closes every connection on its way out
  close(listen_fd_);
  close(epoll_fd_);
  close(wake_fd_[0]);
  close(wake_fd_[1]);
  if (!inherited_) unlink(path_.c_str());  // a socket unit's file stays for the next activation
  std::lock_guard<std::mutex> lock(mu_);
  regions_.clear();
  bytes_ = 0;
}

void ShmRegistry::EventLoop() {
  constexpr int kEvents = 64;
  epoll_event events[kEvents];
  auto last_sweep = std::chrono::steady_clock::now();
  while (!stopping_) {
    // Wakes at least once a second to close idle connections.
    const int n = epoll_wait(epoll_fd_, events, kEvents, 1000);
    for (int i = 0; i < n && !stopping_; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd_[0]) break;
      if (fd == listen_fd_) {
        Accept();
        continue;
      }
      auto it = connections_.find(fd);
      if (it == connections_.end()) continue;
      // One message per readiness, so every connection gets its turn.
      if ((events[i].events & (EPOLLHUP | EPOLLERR)) != 0 || !OnReadable(*it->second)) CloseConnection(fd);
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_sweep >= std::chrono::milliseconds(500)) {
      last_sweep = now;
      CloseIdle(now);
    }
  }
  while (!connections_.empty()) CloseConnection(connections_.begin()->first);
}

void ShmRegistry::Accept() {
  AcceptedPeer peer = AcceptPeer(listen_fd_, policy_);
  if (peer.fd < 0) return;
  const int fd = peer.fd;
  absl::Status refused = peer.principal.status();
  if (refused.ok() && static_cast<int>(connections_.size()) >= limits_.max_connections) {
    refused = absl::ResourceExhaustedError("the daemon holds its maximum of side connections; retry later");
  } else if (refused.ok() && connections_per_pid_[peer.cred.pid] >= limits_.max_connections_per_peer) {
    refused = absl::ResourceExhaustedError(
        absl::StrCat("a process may hold at most ", limits_.max_connections_per_peer, " side connections"));
  }
  if (!refused.ok()) {
    // Say why before closing, so the client reports it instead of a bare disconnect.
    ShmReply reply;
    FillReply(&reply, refused.code(), std::string(refused.message()));
    (void)!send(fd, &reply, sizeof(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
    return;
  }
  auto conn = std::make_unique<Connection>();
  conn->fd = fd;
  conn->pid = peer.cred.pid;
  conn->owner = *peer.principal;
  conn->last_message = std::chrono::steady_clock::now();
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    close(fd);
    return;
  }
  ++connections_per_pid_[conn->pid];
  connections_[fd] = std::move(conn);
}

void ShmRegistry::CloseIdle(std::chrono::steady_clock::time_point now) {
  // A connection that holds no region and sent nothing for idle_seconds is closed, so idle
  // connections cannot hold the daemon's connection slots for good.
  std::vector<int> idle;
  for (const auto& [fd, conn] : connections_) {
    if (conn->owned.empty() && now - conn->last_message >= std::chrono::seconds(limits_.idle_seconds)) {
      idle.push_back(fd);
    }
  }
  for (int fd : idle) CloseConnection(fd);
}

void ShmRegistry::CloseConnection(int fd) {
  auto it = connections_.find(fd);
  if (it == connections_.end()) return;
  // Requests still using a region keep its mapping alive until they finish (shared_ptr).
  Release(it->second->owned);
  if (--connections_per_pid_[it->second->pid] == 0) connections_per_pid_.erase(it->second->pid);
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
  connections_.erase(it);
}

std::string ShmRegistry::NewToken() {
  static thread_local std::random_device device;
  static const char* kHex = "0123456789abcdef";
  std::string token;
  for (int i = 0; i < 4; ++i) {
    uint32_t v = device();
    for (int k = 0; k < 8; ++k, v >>= 4) token.push_back(kHex[v & 15]);
  }
  return token;
}

namespace {

// A descriptor received from a client, closed when the handler is done with it (registration maps
// the memory first; the mapping outlives the descriptor).
class ReceivedFd {
 public:
  ReceivedFd() = default;
  ~ReceivedFd() { Reset(-1); }
  ReceivedFd(const ReceivedFd&) = delete;
  ReceivedFd& operator=(const ReceivedFd&) = delete;
  int get() const { return fd_; }
  void Reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Receives one request. Keeps the first descriptor a message carries and closes any others (a
// client that sends several must not pin memory through the extras). Returns recvmsg's result.
ssize_t ReceiveRequest(int fd, ShmRequest* req, ReceivedFd* passed) {
  iovec iov{req, sizeof(*req)};
  alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (passed->get() < 0) {
        passed->Reset(received);
      } else {
        close(received);
      }
    }
  }
  return n;
}

}  // namespace

bool ShmRegistry::OnReadable(Connection& conn) {
  ShmRequest req{};
  ReceivedFd passed;
  const ssize_t n = ReceiveRequest(conn.fd, &req, &passed);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
  if (n <= 0) return false;  // the client closed or died
  conn.last_message = std::chrono::steady_clock::now();
  ShmReply reply;
  if (n != sizeof(req) || req.magic != kShmMagic) {
    FillReply(&reply, absl::StatusCode::kInvalidArgument, "malformed shared-memory request");
  } else if (req.op == kShmOpRegister) {
    reply = HandleRegister(conn, req, passed.get());
  } else if (req.op == kShmOpUnregister) {
    reply = HandleUnregister(conn, req);
  } else {
    FillReply(&reply, absl::StatusCode::kInvalidArgument, absl::StrCat("unknown op ", req.op));
  }
  // A client that does not read its replies (its socket buffer full) is dropped, not waited for.
  return send(conn.fd, &reply, sizeof(reply), MSG_NOSIGNAL | MSG_DONTWAIT) == sizeof(reply);
}

ShmReply ShmRegistry::HandleRegister(Connection& conn, const ShmRequest& req, int memfd) {
  ShmReply reply;
  auto refuse = [&reply](absl::StatusCode code, const std::string& message) {
    FillReply(&reply, code, message);
    return reply;
  };
  if (memfd < 0) return refuse(absl::StatusCode::kInvalidArgument, "REGISTER needs a file descriptor (SCM_RIGHTS)");
  if (req.size == 0 || req.size > static_cast<uint64_t>(kMaxRegionBytes)) {
    return refuse(absl::StatusCode::kInvalidArgument,
                  absl::StrCat("region size ", req.size, " must be in [1, ", kMaxRegionBytes, "]"));
  }
  // Only a memfd sealed against shrinking: its size can never drop under the daemon's mapping.
  const int seals = fcntl(memfd, F_GET_SEALS);
  if (seals < 0) {
    return refuse(absl::StatusCode::kFailedPrecondition,
                  "region must be a memfd (memfd_create with MFD_ALLOW_SEALING), not another file");
  }
  if ((seals & F_SEAL_SHRINK) == 0) {
    return refuse(absl::StatusCode::kFailedPrecondition,
                  "region must be sealed against shrinking (fcntl F_ADD_SEALS F_SEAL_SHRINK) before REGISTER");
  }
  struct stat st {};
  if (fstat(memfd, &st) != 0 || static_cast<uint64_t>(st.st_size) < req.size) {
    return refuse(absl::StatusCode::kInvalidArgument, absl::StrCat("region size ", req.size, " is beyond the file"));
  }
  const std::pair<dev_t, ino_t> inode{st.st_dev, st.st_ino};
  if (conn.inodes.count(inode)) {
    return refuse(absl::StatusCode::kAlreadyExists, "this memfd is already registered on this connection");
  }
  if (static_cast<int>(conn.owned.size()) >= limits_.max_regions_per_connection) {
    return refuse(absl::StatusCode::kResourceExhausted,
                  absl::StrCat("a connection may register at most ", limits_.max_regions_per_connection, " regions"));
  }
  const int64_t size = static_cast<int64_t>(req.size);
  {
    // Registrations all run on the loop thread, so nothing can change the counts between this
    // check and the insertion below (other threads only resolve regions).
    std::lock_guard<std::mutex> lock(mu_);
    if (static_cast<int>(regions_.size()) >= limits_.max_regions) {
      return refuse(absl::StatusCode::kResourceExhausted,
                    absl::StrCat("the daemon holds its maximum of ", limits_.max_regions, " regions"));
    }
    if (bytes_ + size > limits_.max_bytes) {
      return refuse(absl::StatusCode::kResourceExhausted,
                    absl::StrCat("registering ", size, " bytes would exceed the shared-memory budget of ",
                                 limits_.max_bytes, " bytes (", bytes_, " registered)"));
    }
  }
  void* base = mmap(nullptr, req.size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (base == MAP_FAILED) {
    return refuse(absl::StatusCode::kResourceExhausted, absl::StrCat("mmap failed: ", std::strerror(errno)));
  }
  const std::string token = NewToken();
  std::shared_ptr<void> keep = region_hook_ ? region_hook_(static_cast<uint8_t*>(base), size) : nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    bytes_ += size;
    regions_[token] = std::make_shared<ShmRegion>(base, size, conn.owner, std::move(keep));
  }
  conn.owned.push_back(token);
  conn.inodes.insert(inode);
  conn.inode_of[token] = inode;
  Notify();
  FillReply(&reply, absl::StatusCode::kOk, "");
  std::memcpy(reply.token, token.c_str(), 33);
  return reply;
}

ShmReply ShmRegistry::HandleUnregister(Connection& conn, const ShmRequest& req) {
  ShmReply reply;
  const std::string token(req.token, strnlen(req.token, sizeof(req.token)));
  auto it = std::find(conn.owned.begin(), conn.owned.end(), token);
  if (it == conn.owned.end()) {
    FillReply(&reply, absl::StatusCode::kNotFound, "no region with that token on this connection");
    return reply;
  }
  conn.owned.erase(it);
  conn.inodes.erase(conn.inode_of[token]);
  conn.inode_of.erase(token);
  Release({token});
  FillReply(&reply, absl::StatusCode::kOk, "");
  return reply;
}

void ShmRegistry::Release(const std::vector<std::string>& tokens) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& token : tokens) {
      auto r = regions_.find(token);
      if (r != regions_.end()) {
        bytes_ -= r->second->size();
        regions_.erase(r);
      }
    }
  }
  Notify();
}

absl::StatusOr<ShmSpan> ShmRegistry::Resolve(const std::string& token, uint64_t offset, uint64_t length,
                                             const std::string& caller) const {
  std::shared_ptr<ShmRegion> region;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = regions_.find(token);
    if (it == regions_.end()) {
      return absl::NotFoundError("unknown shared-memory region (not registered, or released by its client)");
    }
    region = it->second;
  }
  if (region->owner() != caller) {
    return absl::PermissionDeniedError("this shared-memory region belongs to another user");
  }
  const uint64_t size = static_cast<uint64_t>(region->size());
  if (offset > size || length > size - offset) {
    return absl::OutOfRangeError(absl::StrCat("shared-memory range [", offset, ", ", offset + length,
                                              ") is outside the region of ", size, " bytes"));
  }
  return ShmSpan{region, region->base() + offset, static_cast<int64_t>(length)};
}

void ShmRegistry::Notify() {
  if (observer_) observer_(regions(), bytes());
}

int64_t ShmRegistry::regions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(regions_.size());
}

int64_t ShmRegistry::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

}  // namespace coset
