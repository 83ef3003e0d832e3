// cosetd: the per-node coset daemon. Thin main: flags (ParseFlags), listeners (StartShm, StartGrpc,
// StartMetrics), then the run loop (RunUntilSignal).
//
//   cosetd [--grpc ADDR[,ADDR...]] [--allow-group G] [--tls-cert F --tls-key F [--tls-client-ca F]]
//          [--metrics HOST:PORT|off] [--threads N] [--max-message-bytes N] [--max-concurrent N]
//          [--memory-budget BYTES] [--lut-budget BYTES] [--shm-budget BYTES] [--drain-seconds S]
//          [--ready-file PATH] [--log-level info|warn|error] [--backend cpu|cuda|auto] [--device N]
//          [--device-memory-budget BYTES] [--cuda-staging whole|pipelined] [--cuda-kernels per-chunk|runs|tensor-cores]
// ADDR is unix:/path or host:port (port 0 picks a free port; --ready-file records the result).
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/cli_args.h"
#include "common/files.h"
#include "core/limits.h"
#include "core/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "kernels/cuda_runtime.h"
#include "prometheus/exposer.h"
#include "server/coset_service.h"
#include "server/peer_access.h"
#include "server/unix_listener.h"
#include "server/watchdog.h"

namespace coset {
namespace {

constexpr char kUsage[] = R"(usage: cosetd [flags]
  --grpc ADDR[,ADDR...]    listen addresses (repeatable): unix:/path or host:port (port 0 = any free port)
                           [unix:$XDG_RUNTIME_DIR/coset/cosetd.sock (or /run/coset/cosetd.sock)]
                           TCP only when asked for (e.g. --grpc 127.0.0.1:50551): a TCP port is open to
                           every local user, so use TLS there; Unix-socket peers are checked (SO_PEERCRED)
  --allow-group G          Unix-socket peers admitted besides the daemon's uid and root: members of G
  --tls-cert FILE          TLS on the TCP listeners: the server's certificate chain (PEM)
  --tls-key FILE           and its private key (PEM)
  --tls-client-ca FILE     mutual TLS: require client certificates signed by this CA (PEM); the
                           certificate's identity then owns the client's resident tensors
  --metrics HOST:PORT|off  Prometheus /metrics endpoint            [127.0.0.1:9464]
  --threads N              codec threads for large requests (0 = all cores) [0]
  --max-message-bytes N    largest request/response                  [268435456]
  --max-concurrent N       requests served at once                   [64]
  --memory-budget BYTES    resident tensors + requests in flight     [4294967296]
  --lut-budget BYTES       largest single LUT                        [1048576]
  --shm-budget BYTES       bytes of clients' shared-memory regions mapped at once [68719476736]
  --shm-idle-seconds S     close side connections that hold no region after S idle seconds [10]
  --drain-seconds S        on SIGTERM/SIGINT, time given to in-flight requests [10]
  --ready-file PATH        write the bound addresses there once serving (for scripts and tests)
  --log-level L            info | warn | error                      [info]
  --backend B              cpu | cuda | auto (cuda when a device is usable, else cpu) [cpu]
  --device N               CUDA device for --backend cuda|auto      [0]
  --device-memory-budget BYTES  device memory the CUDA backend may hold at once; a request
                           that would pass it is refused (RESOURCE_EXHAUSTED)   [4294967296]
  --cuda-staging S         whole | pipelined: how the CUDA backend moves host tensors; pipelined
                           overlaps copies with kernels slice by slice and page-locks clients'
                           shared-memory regions (up to 8 GiB in all) to copy them in place [whole]
  --cuda-kernels K         per-chunk | runs | tensor-cores: the CUDA backend's encode, decode and
                           GEMM kernels; runs takes four chunks per thread where the code allows
                           (D4, D8, E8 at two levels of byte or 16-bit symbols) and the packed GEMM
                           for D4; tensor-cores is runs with D4's and E8's GEMMs of more than 4
                           queries on tensor cores; the same codes either way [per-chunk]
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
    if (eq == std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat(path, ":", number, ": expected name = value"));
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

// Everything the flags say, checked.
struct DaemonFlags {
  ServiceLimits limits;
  ShmLimits shm;
  std::vector<std::string> addresses;  // gRPC listen addresses
  std::string metrics_address = "127.0.0.1:9464";
  int64_t drain_seconds = 10;
  std::string ready_file;  // empty: none
  std::string allow_group;
  std::string tls_cert, tls_key, tls_client_ca;  // PEM files; empty: plaintext TCP
  std::string backend = "cpu";                   // cpu | cuda | auto
  int device = 0;                                // CUDA device index
  int64_t device_memory_budget = kDefaultDeviceMemoryBudgetBytes;
  StagingOptions::Mode cuda_staging = StagingOptions::Mode::kWhole;
  device::KernelPath cuda_kernels = device::KernelPath::kPerChunk;
};

// Parses argv (after --config FILE is expanded in place) into flags. Returns the exit code to use
// when the process should stop here (0 for --help, 2 for a bad flag), or nullopt to go on.
std::optional<int> ParseFlags(int argc, char** argv, DaemonFlags* out) {
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
  // Every flag takes a value. (clang-format would put each name on a line of its own.)
  // clang-format off
  const std::set<std::string> value_flags = {
      "grpc", "metrics", "threads", "max-message-bytes", "max-concurrent", "memory-budget", "lut-budget",
      "shm-budget", "shm-idle-seconds", "drain-seconds", "ready-file", "log-level", "allow-group", "tls-cert",
      "tls-key", "tls-client-ca", "backend", "device", "device-memory-budget", "cuda-staging",
      "cuda-kernels"};
  // clang-format on
  auto parsed = CliArgs::Parse(args, value_flags, {});
  if (!parsed.ok() || !parsed->positionals().empty()) {
    std::cerr << "cosetd: " << (parsed.ok() ? "unexpected argument" : std::string(parsed.status().message())) << "\n"
              << kUsage;
    return 2;
  }
  const CliArgs& flags = *parsed;
  const std::string level = flags.Get("log-level", "info");
  g_log_level = level == "error" ? 2 : level == "warn" ? 1 : 0;
  bool bad = false;
  auto get = [&](const char* name, int64_t fallback, int64_t lo, int64_t hi) -> int64_t {
    auto v = flags.GetInt(name, fallback);
    if (!v.ok() || *v < lo || *v > hi) {
      std::cerr << "cosetd: --" << name << " must be an integer in [" << lo << ", " << hi << "]\n";
      bad = true;
      return fallback;
    }
    return *v;
  };
  // The flag's value when it is one of `choices` (the first is its default), else says which are.
  auto choice = [&](const char* name, const std::vector<std::string>& choices) -> std::string {
    const std::string v = flags.Get(name, choices[0]);
    if (std::find(choices.begin(), choices.end(), v) != choices.end()) return v;
    std::string listed = choices[0];
    for (size_t i = 1; i < choices.size(); ++i) listed += (i + 1 == choices.size() ? " or " : ", ") + choices[i];
    std::cerr << "cosetd: --" << name << " must be " << listed << " (got '" << v.substr(0, 64) << "')\n";
    bad = true;
    return choices[0];
  };
  ServiceLimits& limits = out->limits;
  limits.threads = static_cast<int>(get("threads", 0, 0, 1024));
  limits.max_message_bytes = get("max-message-bytes", limits.max_message_bytes, 1 << 16, int64_t{2047} << 20);
  limits.max_concurrent_requests = get("max-concurrent", limits.max_concurrent_requests, 1, 1 << 16);
  limits.memory_budget_bytes = get("memory-budget", limits.memory_budget_bytes, 1 << 20, int64_t{1} << 50);
  limits.lut_budget_bytes = get("lut-budget", limits.lut_budget_bytes, 1 << 10, int64_t{1} << 40);
  out->shm.max_bytes = get("shm-budget", out->shm.max_bytes, 1 << 20, int64_t{1} << 50);
  out->shm.idle_seconds = static_cast<int>(get("shm-idle-seconds", out->shm.idle_seconds, 1, 3600));
  out->drain_seconds = get("drain-seconds", out->drain_seconds, 0, 3600);
  out->device = static_cast<int>(get("device", 0, 0, 1023));
  out->device_memory_budget = get("device-memory-budget", out->device_memory_budget, 1 << 20, int64_t{1} << 50);
  out->backend = choice("backend", {"cpu", "cuda", "auto"});
  if (choice("cuda-staging", {"whole", "pipelined"}) == "pipelined") {
    out->cuda_staging = StagingOptions::Mode::kPipelined;
  }
  const std::string kernels = choice("cuda-kernels", {"per-chunk", "runs", "tensor-cores"});
  if (kernels == "runs") out->cuda_kernels = device::KernelPath::kRuns;
  if (kernels == "tensor-cores") out->cuda_kernels = device::KernelPath::kTensorCores;
  if (bad) return 2;
  // --grpc is repeatable and takes comma-separated lists; the config file's addresses and the
  // command line's are all served.
  for (const std::string& value : flags.GetAll("grpc")) {
    for (absl::string_view a : absl::StrSplit(value, ',', absl::SkipEmpty())) out->addresses.emplace_back(a);
  }
  // No TCP listener unless asked for: only the Unix socket, whose directory (0700) guards access.
  if (out->addresses.empty()) out->addresses = {DefaultUnixSocket()};
  out->metrics_address = flags.Get("metrics", out->metrics_address);
  out->ready_file = flags.Get("ready-file", "");
  out->allow_group = flags.Get("allow-group", "");
  out->tls_cert = flags.Get("tls-cert", "");
  out->tls_key = flags.Get("tls-key", "");
  out->tls_client_ca = flags.Get("tls-client-ca", "");
  if (out->tls_cert.empty() != out->tls_key.empty() || (!out->tls_client_ca.empty() && out->tls_cert.empty())) {
    std::cerr << "cosetd: --tls-cert and --tls-key go together, and --tls-client-ca needs them\n";
    return 2;
  }
  return std::nullopt;
}

// Resolves --backend: the CUDA codec to serve encode, decode and GEMM with (null: the CPU serves), or
// the exit code when the asked-for backend cannot serve.
struct Backend {
  std::unique_ptr<CudaCodec> cuda;
  std::string cuda_status;  // why CUDA does not serve (ServerInfo)
  std::optional<int> exit_code;
};

Backend SelectBackend(const DaemonFlags& flags) {
  Backend backend;
  if (flags.backend == "cpu") {
    Log(0, "backend cpu");
    const absl::StatusOr<CudaDeviceInfo> probe = ProbeCudaDevice(flags.device);
    backend.cuda_status = probe.ok() ? DescribeCudaDevice(*probe) + " available, not used (--backend cpu)"
                                     : std::string(probe.status().message());
    return backend;
  }
  absl::StatusOr<std::unique_ptr<CudaCodec>> cuda = CudaCodec::Create(flags.device);
  if (cuda.ok()) {
    const bool pipelined = flags.cuda_staging == StagingOptions::Mode::kPipelined;
    Log(0, absl::StrCat("backend cuda: ", DescribeCudaDevice((*cuda)->device()),
                        " serves encode, decode and GEMM on codes; the CPU serves the rest; staging ",
                        pipelined ? "pipelined" : "whole", "; kernels ", device::KernelPathName(flags.cuda_kernels)));
    StagingOptions staging;
    staging.mode = flags.cuda_staging;
    (*cuda)->set_staging(staging);
    (*cuda)->set_codec_kernels(flags.cuda_kernels);
    backend.cuda = *std::move(cuda);
    return backend;
  }
  backend.cuda_status = std::string(cuda.status().message());
  if (flags.backend == "auto") {
    Log(0, absl::StrCat("backend cpu (--backend auto: ", backend.cuda_status, ")"));
  } else {
    Log(2,
        absl::StrCat("--backend cuda: ", backend.cuda_status, "; use --backend cpu, or auto to fall back to the CPU"));
    backend.exit_code = 1;
  }
  return backend;
}

// mkdir -p for a socket's directory. Directories it creates are owner-only (group-accessible for
// --allow-group); existing ones (/tmp, say) are left as they are.
void MakeSocketDirectory(const std::string& socket_path, const PeerPolicy& policy) {
  const std::string dir = socket_path.substr(0, socket_path.find_last_of('/'));
  if (dir.empty()) return;
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    const std::string prefix = dir.substr(0, slash);
    if (mkdir(prefix.c_str(), 0700) == 0 && slash == std::string::npos) RestrictToPolicy(prefix, policy, true);
    if (slash == std::string::npos) break;
  }
}

// The region hook of pipelined CUDA staging: page-locks each region while the regions locked so
// far stay within kMaxPageLockedShmBytes (past it, or when the driver refuses, the region stays
// pageable and is staged through the codec's slots: slower, never refused).
// The gauge coset_shm_page_locked_bytes follows the bytes locked.
ShmRegistry::RegionHook PageLockRegions(Metrics* metrics) {
  auto locked_bytes = std::make_shared<std::atomic<int64_t>>(0);
  auto add = [locked_bytes, metrics](int64_t bytes) {
    metrics->shm_page_locked_bytes().Set(static_cast<double>(*locked_bytes += bytes));
  };
  return [locked_bytes, add](uint8_t* base, int64_t size) -> std::shared_ptr<void> {
    // Registrations run on the registry's one thread; releases (on any) only lower the count.
    if (locked_bytes->load() + size > kMaxPageLockedShmBytes) return nullptr;
    absl::StatusOr<std::unique_ptr<PageLockedRange>> locked = PageLockedRange::Register(base, size);
    if (!locked.ok()) {
      Log(1, absl::StrCat("a shared-memory region stays pageable: ", locked.status().message()));
      return nullptr;
    }
    add(size);
    return std::shared_ptr<PageLockedRange>(locked->release(), [add, size](PageLockedRange* range) {
      delete range;
      add(-size);
    });
  };
}

// The shared-memory side socket, next to the first Unix gRPC socket ("<path>.shm"), with
// region_hook (PageLockRegions, or null) called on each region it maps; null when there is no Unix
// address.
absl::StatusOr<std::unique_ptr<ShmRegistry>> StartShm(const std::vector<std::string>& addresses,
                                                      const ShmLimits& limits, const PeerPolicy& policy,
                                                      Metrics* metrics, ShmRegistry::RegionHook region_hook) {
  for (const std::string& address : addresses) {
    if (address.rfind("unix:", 0) != 0) continue;
    const std::string path = address.substr(5) + ".shm";
    MakeSocketDirectory(path, policy);
    auto shm = std::make_unique<ShmRegistry>(limits, policy);
    shm->SetObserver([metrics](int64_t regions, int64_t bytes) {
      metrics->shm_regions().Set(static_cast<double>(regions));
      metrics->shm_bytes().Set(static_cast<double>(bytes));
    });
    shm->SetRegionHook(std::move(region_hook));
    COSET_RETURN_IF_ERROR(shm->Start(path));
    Log(0, "serving shared-memory registrations on " + path);
    return shm;
  }
  return std::unique_ptr<ShmRegistry>();
}

// Credentials of the TCP listeners: TLS when --tls-cert is given, mutual TLS with --tls-client-ca.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TcpCredentials(const DaemonFlags& flags) {
  if (flags.tls_cert.empty()) return grpc::InsecureServerCredentials();
  COSET_ASSIGN_OR_RETURN(std::string cert, ReadFile(flags.tls_cert));
  COSET_ASSIGN_OR_RETURN(std::string key, ReadFile(flags.tls_key));
  grpc::SslServerCredentialsOptions options(flags.tls_client_ca.empty()
                                                ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                                : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!flags.tls_client_ca.empty()) {
    COSET_ASSIGN_OR_RETURN(options.pem_root_certs, ReadFile(flags.tls_client_ca));
  }
  options.pem_key_cert_pairs.push_back({key, cert});
  return grpc::SslServerCredentials(options);
}

// The gRPC server with its listeners, and the addresses it bound (port 0 resolved). Unix sockets
// are accepted by UnixListener (to know each peer); TCP ports by gRPC itself.
struct Listeners {
  std::unique_ptr<grpc::Server> server;
  std::vector<std::unique_ptr<UnixListener>> unix_listeners;
  std::vector<std::string> bound;
};

absl::StatusOr<Listeners> StartGrpc(const DaemonFlags& flags, const PeerPolicy& policy, UnixPeers* peers,
                                    CosetServiceImpl* service) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(static_cast<int>(flags.limits.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(flags.limits.max_message_bytes));
  builder.RegisterService(service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(service->ReservationInterceptor());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  // Sync-server threads poll with this timeout; a short one lets shutdown finish promptly.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::CQ_TIMEOUT_MSEC, 100);
  COSET_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> tcp_credentials, TcpCredentials(flags));
  Listeners out;
  std::vector<std::string> tcp;
  std::vector<std::unique_ptr<int>> ports;
  for (const std::string& address : flags.addresses) {
    if (address.rfind("unix:", 0) == 0) continue;
    tcp.push_back(address);
    ports.push_back(std::make_unique<int>(0));
    builder.AddListeningPort(address, tcp_credentials, ports.back().get());
  }
  out.server = builder.BuildAndStart();
  if (out.server == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("could not listen on ", absl::StrJoin(tcp, ","), " (address in use, or a bad address?)"));
  }
  for (size_t i = 0; i < tcp.size(); ++i) {
    out.bound.push_back(tcp[i].substr(0, tcp[i].rfind(':')) + ":" + std::to_string(*ports[i]));
  }
  for (const std::string& address : flags.addresses) {
    if (address.rfind("unix:", 0) != 0) continue;
    const std::string path = address.substr(5);
    MakeSocketDirectory(path, policy);
    auto listener = std::make_unique<UnixListener>(policy, peers);
    if (absl::Status s = listener->Start(path, out.server.get()); !s.ok()) {
      out.server->Shutdown();
      return s;
    }
    out.unix_listeners.push_back(std::move(listener));
    out.bound.push_back(address);
  }
  // The standard health service answers for the whole server ("") and for the API by its name.
  out.server->GetHealthCheckService()->SetServingStatus(v1::Coset::service_full_name(), true);
  return out;
}

constexpr int kMetricsThreads = 16;
constexpr int kMetricsRequestTimeoutMs = 2000;

// The Prometheus endpoint (null for "off") and the address it bound.
absl::StatusOr<std::unique_ptr<prometheus::Exposer>> StartMetrics(const std::string& address, Metrics* metrics,
                                                                  std::string* bound) {
  *bound = "off";
  if (address == "off") return std::unique_ptr<prometheus::Exposer>();
  try {
    // Enough threads that a few idle connections cannot occupy them all, and a request timeout
    // that closes idle ones (civetweb's defaults, 2 threads and no timeout, let two idle TCP
    // connections blind /metrics).
    auto exposer = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", address, "num_threads", std::to_string(kMetricsThreads),
                                 "request_timeout_ms", std::to_string(kMetricsRequestTimeoutMs)});
    exposer->RegisterCollectable(metrics->registry());
    const std::vector<int> ports = exposer->GetListeningPorts();
    *bound = address.substr(0, address.rfind(':')) + ":" + std::to_string(ports.empty() ? 0 : ports[0]);
    return exposer;
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("could not serve metrics on ", address, ": ", e.what()));
  }
}

// Records the bound addresses for scripts and tests; the file appears complete or not at all.
void WriteReadyFile(const std::string& path, const std::vector<std::string>& grpc_bound, const std::string& metrics) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    for (const std::string& b : grpc_bound) out << "grpc " << b << "\n";
    out << "metrics " << metrics << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

// systemd's watchdog, when the unit sets WatchdogSec=: each ping follows a ServerInfo call that
// the daemon answered through its first listener (a Unix socket: the path clients use; otherwise
// in-process), so a wedged daemon is restarted. Null when systemd did not ask.
std::unique_ptr<Watchdog> StartWatchdog(const Listeners& listeners) {
  const std::chrono::microseconds period = Watchdog::RequestedPeriod();
  if (period.count() == 0) return nullptr;
  std::shared_ptr<grpc::Channel> channel;
  for (const std::string& address : listeners.bound) {
    if (address.rfind("unix:", 0) == 0) {
      channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
      break;
    }
  }
  if (channel == nullptr) channel = listeners.server->InProcessChannel(grpc::ChannelArguments());
  std::shared_ptr<v1::Coset::Stub> stub = v1::Coset::NewStub(channel);
  Log(0, absl::StrCat("systemd watchdog: a probed ping every ", period.count() / 2000, " ms"));
  return std::make_unique<Watchdog>(
      period,
      [stub](std::chrono::milliseconds deadline) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + deadline);
        v1::ServerInfoRequest request;
        v1::ServerInfoResponse response;
        const grpc::Status status = stub->ServerInfo(&ctx, request, &response);
        // Refused for load is still an answer from a live server.
        return status.ok() || status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
      },
      [](const char* message) { sd_notify(0, message); });
}

// Serves until SIGTERM/SIGINT, then drains in-flight requests for up to drain_seconds.
void RunUntilSignal(const sigset_t& stop_signals, Listeners& listeners, const CosetServiceImpl& service,
                    int64_t drain_seconds) {
  grpc::Server* server = listeners.server.get();
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  Log(0, absl::StrCat("signal ", signal_number, ": draining (up to ", drain_seconds, " s)"));
  sd_notify(0, "STOPPING=1");
  server->GetHealthCheckService()->Shutdown();                       // NOT_SERVING for every service while draining
  for (auto& listener : listeners.unix_listeners) listener->Stop();  // no new connections
  // Shutdown refuses new calls at once and waits for the running ones, but it also waits for every
  // connection to close, so one idle client that keeps its channel open would hold the exit for the
  // whole drain time. Once no request of ours is running (or the drain time is up), the remaining
  // connections are cut.
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(drain_seconds);
  std::thread shutdown([server, deadline] { server->Shutdown(deadline); });
  // Calls accepted just before the signal reach their handler within the sync server's poll period.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  while (service.inflight() > 0 && std::chrono::system_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  grpc_server_cancel_all_calls(server->c_server());  // valid once shutdown has begun; disconnects idle peers
  shutdown.join();
  server->Wait();
}

int Main(int argc, char** argv) {
  DaemonFlags flags;
  if (std::optional<int> exit_code = ParseFlags(argc, argv, &flags)) return *exit_code;
  SetDeviceMemoryBudget(flags.device_memory_budget);
  Backend backend = SelectBackend(flags);
  if (backend.exit_code) return *backend.exit_code;

  // Blocks of 1 MiB and more (decode outputs, serialized replies) are mapped and unmapped on their
  // own: glibc's adaptive threshold would otherwise move them into arenas after the first free,
  // where freed ones stay resident until the next trim, and the daemon's footprint would run past
  // the memory budget its admission accounts for.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);

  // Signals are taken synchronously by the main thread (sigwait); every other thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<PeerPolicy> policy = PeerPolicy::WithGroup(flags.allow_group);
  if (!policy.ok()) {
    Log(2, absl::StrCat("--allow-group: ", policy.status().message()));
    return 2;
  }
  Metrics metrics;
  UnixPeers unix_peers;
  const bool lock_regions = backend.cuda != nullptr && flags.cuda_staging == StagingOptions::Mode::kPipelined;
  auto shm = StartShm(flags.addresses, flags.shm, *policy, &metrics,
                      lock_regions ? PageLockRegions(&metrics) : ShmRegistry::RegionHook());
  if (!shm.ok()) {
    Log(2, std::string(shm.status().message()));
    return 1;
  }
  CosetServiceImpl service(flags.limits, &metrics, shm->get(), &unix_peers);
  if (backend.cuda != nullptr) service.UseCuda(std::move(backend.cuda));
  service.SetCudaStatus(backend.cuda_status);
  auto listeners = StartGrpc(flags, *policy, &unix_peers, &service);
  if (!listeners.ok()) {
    Log(2, std::string(listeners.status().message()));
    return 1;
  }
  std::string metrics_bound;
  auto exposer = StartMetrics(flags.metrics_address, &metrics, &metrics_bound);
  if (!exposer.ok()) {
    Log(2, std::string(exposer.status().message()));
    listeners->server->Shutdown();
    return 1;
  }
  for (const std::string& b : listeners->bound) Log(0, "serving gRPC on " + b);
  Log(0, "serving metrics on " + metrics_bound);
  if (!flags.ready_file.empty()) WriteReadyFile(flags.ready_file, listeners->bound, metrics_bound);

  // READY=1 (harmless when not started by systemd) before the watchdog's first ping: its thread
  // probes the server at once, and a ping ahead of READY=1 was seen on a loaded CI machine.
  sd_notify(0, "READY=1");
  std::unique_ptr<Watchdog> watchdog = StartWatchdog(*listeners);
  RunUntilSignal(stop_signals, *listeners, service, flags.drain_seconds);
  watchdog.reset();
  if (*shm != nullptr) (*shm)->Stop();  // releases every region and removes the side socket
  Log(0, "stopped");
  // The process ends here, without gRPC's teardown: grpc::Server's destructor runs grpc_shutdown,
  // which joins gRPC's executor threads, and after a write to a client blocked (a large reply, a
  // client killed mid-request) one of them sits in gRPC's TCP backup poller, a 10 s poll that
  // re-arms itself while any write is still pending. A stop then took 9 s more after the drain
  // here (seen in gdb: ~Server -> grpc_shutdown -> Executor::ShutdownAll joining a thread in
  // epoll_wait), and with a write that never completes it would not end. Everything the daemon
  // holds outside the process is released above (sockets removed, regions unmapped and unlinked,
  // requests drained), so the kernel's cleanup is all that is left and a stop is bounded by
  // --drain-seconds.
  std::fflush(nullptr);
  std::_Exit(0);
}

}  // namespace
}  // namespace coset

int main(int argc, char** argv) { return coset::Main(argc, argv); }
