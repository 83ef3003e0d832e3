// Starts a real cosetd process (the built binary) on a Unix socket and a loopback TCP port 0, and
// stops it with a signal. Used by the integration tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace coset {

class Daemon {
 public:
  // dir: a private directory for the socket and the ready file.
  explicit Daemon(std::string dir) : dir_(std::move(dir)) {}
  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // A file of the test's runfiles by its path in the workspace ("server/cosetd").
  static std::string Runfile(const std::string& path) {
    const char* srcdir = std::getenv("TEST_SRCDIR");
    return std::string(srcdir != nullptr ? srcdir : ".") + "/coset/" + path;
  }

  // The cosetd under test: built on the CUDA runtime, or for the *_cuda_emulated tests on the CUDA
  // emulation (kernels/cuda_emulation.h), whose --backend cuda serves from the CPU.
  static std::string Binary() {
#if defined(COSET_CUDA_EMULATION)
    return Runfile("server/cosetd_emulated");
#else
    return Runfile("server/cosetd");
#endif
  }

  // Starts cosetd and waits until it has written its ready file. Returns false on failure.
  bool Start(const std::vector<std::string>& extra = {}) {
    ready_ = dir_ + "/ready";
    std::remove(ready_.c_str());
    std::vector<std::string> args = {Binary(),
                                     "--grpc",
                                     "unix:" + socket_path() + ",127.0.0.1:0",
                                     "--metrics",
                                     "127.0.0.1:0",
                                     "--ready-file",
                                     ready_,
                                     "--log-level",
                                     "warn",
                                     "--threads",
                                     "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 400; ++i) {
      std::ifstream in(ready_);
      if (in) {
        std::string kind, address;
        while (in >> kind >> address) {
          if (kind == "grpc" && address.rfind("unix:", 0) != 0) tcp_ = address;
          if (kind == "metrics") metrics_port_ = std::stoi(address.substr(address.rfind(':') + 1));
        }
        return true;
      }
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
  }

  // Sends `sig` and waits for the exit status (-1 if it was killed by a signal). A daemon still
  // running kStopLimit after the signal (the default drain time is 10 s) is killed and reported
  // as kDidNotStop, so a stop that hangs fails its test with that value instead of running the
  // whole test binary into Bazel's timeout, which loses every case's report.
  static constexpr int kDidNotStop = -2;
  static constexpr std::chrono::seconds kStopLimit{60};
  int Stop(int sig = SIGTERM) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    const auto limit = std::chrono::steady_clock::now() + kStopLimit;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > limit) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
        return kDidNotStop;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  pid_t pid() const { return pid_; }
  // The daemon's resident set (VmRSS) in bytes, or -1.
  int64_t RssBytes() const { return Status("VmRSS:") * 1024; }
  // The daemon's threads, or -1.
  int Threads() const { return static_cast<int>(Status("Threads:")); }
  // A number from /proc/PID/status (kB for sizes), or -1.
  int64_t Status(const std::string& field) const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string key;
    while (in >> key) {
      if (key == field) {
        int64_t value;
        in >> value;
        return value;
      }
    }
    return -1;
  }
  // The daemon's open file descriptors.
  int OpenFds() const {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/fd")) {
      (void)e;
      ++n;
    }
    return n;
  }
  std::string socket_path() const { return dir_ + "/cosetd.sock"; }
  std::string unix_address() const { return "unix:" + socket_path(); }
  std::string tcp_address() const { return tcp_; }
  int metrics_port() const { return metrics_port_; }

  // GET /metrics from the Prometheus exposer.
  std::string ScrapeMetrics() const {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    // Bounded: a scrape that cannot be served fails the test instead of hanging it.
    timeval timeout{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(metrics_port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string body;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      const std::string req = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
      (void)!write(fd, req.data(), req.size());
      char buf[65536];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) body.append(buf, n);
    }
    close(fd);
    return body;
  }

  // Value of the first sample line starting with `prefix` (metric name plus labels), or -1.
  // The sum of the samples of `name` whose labels include every one of `labels` (`key="value"`),
  // whatever their other labels; -1 if none.
  double MetricSum(const std::string& name, const std::vector<std::string>& labels) const {
    std::istringstream in(ScrapeMetrics());
    std::string line;
    double sum = -1;
    while (std::getline(in, line)) {
      if (line.rfind(name + "{", 0) != 0) continue;
      const std::string label_set = line.substr(0, line.find('}') + 1);
      bool all = true;
      for (const std::string& l : labels) all = all && label_set.find(l) != std::string::npos;
      if (all) sum = std::max(sum, 0.0) + std::stod(line.substr(line.rfind(' ') + 1));
    }
    return sum;
  }

  double Metric(const std::string& prefix) const {
    std::istringstream in(ScrapeMetrics());
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(line.rfind(' ') + 1));
    }
    return -1;
  }

 private:
  std::string dir_;
  std::string ready_;
  std::string tcp_;
  int metrics_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace coset
