#include "client/cli_common.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/npy.h"
#include "core/format.h"
#include "core/status_macros.h"

namespace coset {

namespace {
std::string& DaemonAddressStorage() {
  static std::string address;
  return address;
}
}  // namespace

const std::string& DaemonAddress() { return DaemonAddressStorage(); }
void SetDaemonAddress(const std::string& address) { DaemonAddressStorage() = address; }

const std::set<std::string> kCodecFlags = {"lattice", "q", "M", "beta", "alpha", "block", "scale", "seed", "t-max", "on-cap"};
const std::set<std::string> kCodecSwitches = {"rotate"};

const char kCodecHelp[] = R"(codec flags:
  --lattice L      Zn (n<=16), A2, Dn (3<=n<=16), E8            [D4]
  --q Q            nesting ratio, >= 2 for Z^n, >= 3 otherwise  [4]
  --M M            levels, 1..8                                  [2]
  --beta B         step relative to the block scale; 0 = measured default for (L, q, M, scale)
  --alpha A        overload ramp exponent: step *= 2^A per retry [0.333333]
  --block N        entries per scale block (multiple of d); 0 = 256 rounded to d
  --scale S        rms | absmax | none (none: one global beta, the paper's setting) [rms]
  --rotate/--no-rotate   randomized Hadamard rotation per block  [off]
  --seed S         rotation seed                                  [24301]
  --t-max T        ramp retries before the cap policy applies     [31]
  --on-cap P       fail | zero: what a chunk still overloaded at t-max does [fail]
)";

absl::StatusOr<CodecParams> CodecParamsFromArgs(const CliArgs& args) {
  CodecParams p;
  p.lattice = args.Get("lattice", p.lattice);
  COSET_ASSIGN_OR_RETURN(int64_t q, args.GetInt("q", p.q));
  COSET_ASSIGN_OR_RETURN(int64_t m, args.GetInt("M", p.levels));
  COSET_ASSIGN_OR_RETURN(double beta, args.GetDouble("beta", p.beta));
  COSET_ASSIGN_OR_RETURN(double alpha, args.GetDouble("alpha", p.alpha));
  COSET_ASSIGN_OR_RETURN(int64_t block, args.GetInt("block", p.block));
  COSET_ASSIGN_OR_RETURN(int64_t seed, args.GetInt("seed", static_cast<int64_t>(p.seed)));
  COSET_ASSIGN_OR_RETURN(int64_t t_max, args.GetInt("t-max", p.t_max));
  COSET_ASSIGN_OR_RETURN(p.scale, ParseScaleMode(args.Get("scale", "rms")));
  const std::string on_cap = args.Get("on-cap", "fail");
  if (on_cap != "fail" && on_cap != "zero") return absl::InvalidArgumentError("--on-cap must be fail or zero");
  p.on_cap = on_cap == "zero" ? CapPolicy::kZero : CapPolicy::kFail;
  auto in_int = [](int64_t v) { return v >= -(int64_t{1} << 30) && v <= (int64_t{1} << 30); };
  if (!in_int(q) || !in_int(m) || !in_int(block) || !in_int(t_max)) {
    return absl::InvalidArgumentError("an integer flag is out of range");
  }
  p.q = static_cast<int>(q);
  p.levels = static_cast<int>(m);
  p.beta = static_cast<float>(beta);
  p.alpha = static_cast<float>(alpha);
  p.block = static_cast<int>(block);
  p.seed = static_cast<uint64_t>(seed);
  p.t_max = static_cast<int>(t_max);
  p.rotate = args.Switch("rotate", false);
  COSET_RETURN_IF_ERROR(ValidateParams(p));
  return p;
}

void AddParams(JsonObject& j, const CodecParams& p) {
  j.Add("lattice", p.lattice).Add("q", p.q).Add("M", p.levels).Add("beta", static_cast<double>(p.beta));
  j.Add("alpha", static_cast<double>(p.alpha)).Add("block", p.block).Add("scale", ScaleModeName(p.scale));
  j.Add("rotate", p.rotate).Add("seed", static_cast<int64_t>(p.seed)).Add("t_max", p.t_max);
  j.Add("on_cap", p.on_cap == CapPolicy::kZero ? "zero" : "fail");
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) absl::StrAppend(&s, i ? ", " : "", shape[i]);
  return s + "]";
}

void Emit(bool json, const JsonObject& j, const std::string& text) {
  if (json) {
    std::cout << j.str() << std::endl;
  } else {
    std::cout << text;
  }
}

int64_t ThreadsFlag(const CliArgs& args) {
  auto t = args.GetInt("threads", 0);
  return t.ok() ? *t : 0;
}

absl::StatusOr<CompressedTensor> ReadCoset(const std::string& path) {
  COSET_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  auto t = Parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (!t.ok()) return absl::Status(t.status().code(), absl::StrCat(path, ": ", t.status().message()));
  return t;
}

}  // namespace coset
