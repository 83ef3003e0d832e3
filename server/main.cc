// cosetd: the per-node coset daemon. Thin main: flags, listeners, metrics exposer, signals.
//
//   cosetd [--grpc ADDR[,ADDR...]] [--metrics HOST:PORT|off] [--threads N]
//          [--max-message-bytes N] [--max-concurrent N] [--memory-budget BYTES]
//          [--lut-budget BYTES] [--drain-seconds S] [--ready-file PATH] [--log-level info|warn|error]
// ADDR is unix:/path or host:port (port 0 picks a free port; --ready-file records the result).
#include <signal.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/cli_args.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "prometheus/exposer.h"
#include "server/coset_service.h"

namespace coset {
namespace {

constexpr char kUsage[] = R"(usage: cosetd [flags]
  --grpc ADDR[,ADDR...]    listen addresses (repeatable): unix:/path or host:port (port 0 = any free port)
                           [unix:$XDG_RUNTIME_DIR/coset/cosetd.sock (or /run/coset/cosetd.sock), 127.0.0.1:50551]
  --metrics HOST:PORT|off  Prometheus /metrics endpoint            [127.0.0.1:9464]
  --threads N              codec threads for large requests (0 = all cores) [0]
  --max-message-bytes N    largest request/response                  [268435456]
  --max-concurrent N       requests served at once                   [64]
  --memory-budget BYTES    resident tensors + requests in flight     [4294967296]
  --lut-budget BYTES       largest single LUT                        [1048576]
  --drain-seconds S        on SIGTERM/SIGINT, time given to in-flight requests [10]
  --ready-file PATH        write the bound addresses there once serving (for scripts and tests)
  --log-level L            info | warn | error                      [info]
  --config FILE            flags from a file, one "name = value" per line (# comments);
                           command-line flags override it
)";

// Reads "name = value" lines into --name=value arguments (placed before the command line's).
absl::StatusOr<std::vector<std::string>> ConfigFileArgs(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::vector<std::string> args;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    line = line.substr(0, line.find('#'));
    const size_t eq = line.find('=');
    auto trim = [](std::string v) {
      const size_t b = v.find_first_not_of(" \t"), e = v.find_last_not_of(" \t\r");
      return b == std::string::npos ? std::string() : v.substr(b, e - b + 1);
    };
    if (trim(line).empty()) continue;
    if (eq == std::string::npos) return absl::InvalidArgumentError(absl::StrCat(path, ":", number, ": expected name = value"));
    args.push_back("--" + trim(line.substr(0, eq)) + "=" + trim(line.substr(eq + 1)));
  }
  return args;
}

int g_log_level = 0;  // 0 info, 1 warn, 2 error

void Log(int level, const std::string& message) {
  if (level < g_log_level) return;
  static const char* kNames[] = {"info", "warn", "error"};
  std::fprintf(stderr, "cosetd %s: %s\n", kNames[level], message.c_str());
  std::fflush(stderr);
}

std::string DefaultUnixSocket() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  const std::string dir = runtime != nullptr && *runtime != '\0' ? std::string(runtime) + "/coset" : "/run/coset";
  return "unix:" + dir + "/cosetd.sock";
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    std::string path;
    if (args[i] == "--config" && i + 1 < args.size()) path = args[i + 1];
    if (args[i].rfind("--config=", 0) == 0) path = args[i].substr(9);
    if (path.empty()) continue;
    auto from_file = ConfigFileArgs(path);
    if (!from_file.ok()) {
      std::cerr << "cosetd: " << from_file.status().message() << "\n";
      return 2;
    }
    args.erase(args.begin() + i, args.begin() + i + (args[i] == "--config" ? 2 : 1));
    args.insert(args.begin(), from_file->begin(), from_file->end());
    break;
  }
  auto parsed = CliArgs::Parse(args,
                               {"grpc", "metrics", "threads", "max-message-bytes", "max-concurrent", "memory-budget",
                                "lut-budget", "drain-seconds", "ready-file", "log-level"},
                               {});
  if (!parsed.ok() || !parsed->positionals().empty()) {
    std::cerr << "cosetd: " << (parsed.ok() ? "unexpected argument" : std::string(parsed.status().message())) << "\n"
              << kUsage;
    return 2;
  }
  const CliArgs& flags = *parsed;
  const std::string level = flags.Get("log-level", "info");
  g_log_level = level == "error" ? 2 : level == "warn" ? 1 : 0;
  ServiceLimits limits;
  auto get = [&](const char* name, int64_t fallback, int64_t lo, int64_t hi) -> int64_t {
    auto v = flags.GetInt(name, fallback);
    if (!v.ok() || *v < lo || *v > hi) {
      std::cerr << "cosetd: --" << name << " must be an integer in [" << lo << ", " << hi << "]\n";
      std::exit(2);
    }
    return *v;
  };
  limits.threads = static_cast<int>(get("threads", 0, 0, 1024));
  limits.max_message_bytes = get("max-message-bytes", limits.max_message_bytes, 1 << 16, int64_t{2047} << 20);
  limits.max_concurrent_requests = get("max-concurrent", limits.max_concurrent_requests, 1, 1 << 16);
  limits.memory_budget_bytes = get("memory-budget", limits.memory_budget_bytes, 1 << 20, int64_t{1} << 50);
  limits.lut_budget_bytes = get("lut-budget", limits.lut_budget_bytes, 1 << 10, int64_t{1} << 40);
  const int64_t drain_seconds = get("drain-seconds", 10, 0, 3600);

  // Signals are taken synchronously by this thread (sigwait); every other thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Metrics metrics;
  // The shared-memory side socket sits next to the first Unix gRPC socket: "<path>.shm".
  std::unique_ptr<ShmRegistry> shm;
  // --grpc is repeatable and takes comma-separated lists; the config file's addresses and the
  // command line's are all served.
  std::vector<std::string> addresses;
  for (const std::string& value : flags.GetAll("grpc")) {
    for (absl::string_view a : absl::StrSplit(value, ',', absl::SkipEmpty())) addresses.emplace_back(a);
  }
  if (addresses.empty()) addresses = {DefaultUnixSocket(), "127.0.0.1:50551"};
  for (const std::string& address : addresses) {
    if (address.rfind("unix:", 0) != 0) continue;
    const std::string path = address.substr(5) + ".shm";
    const std::string dir = path.substr(0, path.find_last_of('/'));
    for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
      mkdir(dir.substr(0, slash).c_str(), 0700);
      if (slash == std::string::npos) break;
    }
    shm = std::make_unique<ShmRegistry>();
    shm->SetObserver([&metrics](int64_t regions, int64_t bytes) {
      metrics.shm_regions().Set(static_cast<double>(regions));
      metrics.shm_bytes().Set(static_cast<double>(bytes));
    });
    if (absl::Status s = shm->Start(path); !s.ok()) {
      Log(2, std::string(s.message()));
      return 1;
    }
    Log(0, "serving shared-memory registrations on " + path);
    break;
  }
  CosetServiceImpl service(limits, &metrics, shm.get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(static_cast<int>(limits.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(limits.max_message_bytes));
  builder.RegisterService(&service);
  // Sync-server threads poll with this timeout; a short one lets shutdown finish promptly.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::CQ_TIMEOUT_MSEC, 100);

  std::vector<std::string> unix_paths;
  std::vector<std::unique_ptr<int>> ports;
  for (const std::string& address : addresses) {
    if (address.rfind("unix:", 0) == 0) {
      const std::string path = address.substr(5);
      if (path.size() > 107) {
        Log(2, absl::StrCat("unix socket path '", path, "' is ", path.size(), " bytes; the limit is 107"));
        return 1;
      }
      const std::string dir = path.substr(0, path.find_last_of('/'));
      if (!dir.empty()) {
        // mkdir -p, owner-only: the socket directory guards who may connect.
        for (size_t slash = dir.find('/', 1); ; slash = dir.find('/', slash + 1)) {
          mkdir(dir.substr(0, slash).c_str(), 0700);
          if (slash == std::string::npos) break;
        }
      }
      unlink(path.c_str());  // a stale socket from a previous run
      unix_paths.push_back(path);
    }
    ports.push_back(std::make_unique<int>(0));
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), ports.back().get());
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    Log(2, absl::StrCat("could not listen on ", flags.Get("grpc", "the default addresses"),
                        " (address in use, or no permission for the socket directory?)"));
    return 1;
  }
  std::vector<std::string> bound;
  for (size_t i = 0; i < addresses.size(); ++i) {
    const std::string& a = addresses[i];
    if (a.rfind("unix:", 0) == 0) {
      bound.push_back(a);
    } else {
      bound.push_back(a.substr(0, a.rfind(':')) + ":" + std::to_string(*ports[i]));
    }
  }
  std::unique_ptr<prometheus::Exposer> exposer;
  const std::string metrics_address = flags.Get("metrics", "127.0.0.1:9464");
  std::string metrics_bound = "off";
  if (metrics_address != "off") {
    try {
      exposer = std::make_unique<prometheus::Exposer>(metrics_address);
      exposer->RegisterCollectable(metrics.registry());
      const std::vector<int> metric_ports = exposer->GetListeningPorts();
      metrics_bound = metrics_address.substr(0, metrics_address.rfind(':')) + ":" +
                      std::to_string(metric_ports.empty() ? 0 : metric_ports[0]);
    } catch (const std::exception& e) {
      Log(2, absl::StrCat("could not serve metrics on ", metrics_address, ": ", e.what()));
      server->Shutdown();
      return 1;
    }
  }
  for (const std::string& b : bound) Log(0, "serving gRPC on " + b);
  Log(0, "serving metrics on " + metrics_bound);
  if (flags.Has("ready-file")) {
    const std::string path = flags.Get("ready-file", "");
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp);
      for (const std::string& b : bound) out << "grpc " << b << "\n";
      out << "metrics " << metrics_bound << "\n";
    }
    std::rename(tmp.c_str(), path.c_str());  // appears complete or not at all
  }
  sd_notify(0, "READY=1");  // harmless when not started by systemd

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  Log(0, absl::StrCat("signal ", signal_number, ": draining (up to ", drain_seconds, " s)"));
  sd_notify(0, "STOPPING=1");
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(drain_seconds));
  server->Wait();
  if (shm != nullptr) shm->Stop();  // releases every region and removes the side socket
  for (const std::string& path : unix_paths) unlink(path.c_str());
  Log(0, "stopped");
  return 0;
}

}  // namespace
}  // namespace coset

int main(int argc, char** argv) { return coset::Main(argc, argv); }
