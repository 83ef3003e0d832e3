#include "core/params.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"

namespace coset {
namespace {

const std::vector<const char*> kScaleModeNames = {"none", "rms", "absmax"};
const std::vector<const char*> kCapPolicyNames = {"fail", "zero"};

// Canonical text of a number field: integers in decimal, floats with 9 significant digits (enough
// for every float to parse back to itself).
std::string NumberText(int v) { return std::to_string(v); }
std::string NumberText(uint64_t v) { return std::to_string(v); }
std::string NumberText(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(v));
  return buf;
}

// Numbers in the text form: the whole string, decimal (from_chars: no locale, exact float rounding).
template <typename T>
absl::StatusOr<T> ParseNumber(const char* name, const std::string& text, const char* what) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec == std::errc::result_out_of_range) {
    return absl::InvalidArgumentError(absl::StrCat(name, " (=", text.substr(0, 64), ") is out of range"));
  }
  if (text.empty() || ec != std::errc() || ptr != end) {
    return absl::InvalidArgumentError(absl::StrCat(name, " (='", text.substr(0, 64), "') must be ", what));
  }
  return value;
}

absl::StatusOr<bool> ParseBool(const char* name, const std::string& text) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  return absl::InvalidArgumentError(absl::StrCat(name, " (='", text.substr(0, 64), "') must be true or false"));
}

absl::StatusOr<int> ParseEnum(const char* name, const std::vector<const char*>& names, const std::string& text) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (text == names[i]) return static_cast<int>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(name, " (='", text.substr(0, 64), "') must be one of ", absl::StrJoin(names, ", ")));
}

// One table row per member: the accessors are generated from the member's name and type, so a
// row cannot read one member and write another.
// clang-format off
#define COSET_NUMBER_FIELD(member, type, field_type, lo, hi, share_rule, help_text, what)             \
  CodecField {                                                                                     \
    #member, field_type, lo, hi, nullptr, share_rule, help_text,                                   \
        [](const CodecParams& p) { return NumberText(p.member); },                                 \
        [](const std::string& text, CodecParams* p) -> absl::Status {                              \
          COSET_ASSIGN_OR_RETURN(p->member, ParseNumber<type>(#member, text, what));               \
          return absl::OkStatus();                                                                 \
        },                                                                                         \
        [](const CodecParams& p) { return static_cast<double>(p.member); }                         \
  }
#define COSET_INT_FIELD(member, lo, hi, share_rule, help_text) \
  COSET_NUMBER_FIELD(member, int, FieldType::kInt, lo, hi, share_rule, help_text, "an integer")
#define COSET_FLOAT_FIELD(member, lo, hi, share_rule, help_text) \
  COSET_NUMBER_FIELD(member, float, FieldType::kFloat, lo, hi, share_rule, help_text, "a number")
#define COSET_ENUM_FIELD(member, enum_type, names, share_rule, help_text)                             \
  CodecField {                                                                                        \
    #member, FieldType::kEnum, 0, static_cast<double>(names.size() - 1), &names, share_rule, help_text, \
        [](const CodecParams& p) { return std::string(names[static_cast<size_t>(p.member)]); },       \
        [](const std::string& text, CodecParams* p) -> absl::Status {                                 \
          COSET_ASSIGN_OR_RETURN(int v, ParseEnum(#member, names, text));                             \
          p->member = static_cast<enum_type>(v);                                                      \
          return absl::OkStatus();                                                                    \
        },                                                                                            \
        [](const CodecParams& p) { return static_cast<double>(p.member); }                            \
  }

// clang-format on

const std::vector<CodecField>& Table() {
  static const std::vector<CodecField> table = {
      CodecField{"lattice", FieldType::kLattice, 0, 0, nullptr, ShareRule::kMustMatch,
                 "Zn (n<=16), A2, Dn (3<=n<=16), E8", [](const CodecParams& p) { return p.lattice.name(); },
                 [](const std::string& text, CodecParams* p) -> absl::Status {
                   COSET_ASSIGN_OR_RETURN(p->lattice, Lattice::Parse(text));
                   return absl::OkStatus();
                 },
                 [](const CodecParams&) { return 0.0; }},
      COSET_INT_FIELD(q, 2, kMaxQ, ShareRule::kMustMatch, "nesting ratio, >= 2 for Zn, >= 3 otherwise"),
      COSET_INT_FIELD(M, 1, kMaxLevels, ShareRule::kMustMatch, "levels (digits per chunk)"),
      COSET_FLOAT_FIELD(beta, 0, 3.4e38, ShareRule::kMustMatch,
                        "step relative to the block scale; 0 = measured default for (lattice, q, M, scale)"),
      COSET_FLOAT_FIELD(alpha, 1e-9, kMaxAlpha, ShareRule::kMustMatch,
                        "overload ramp exponent: step *= 2^alpha per retry"),
      COSET_INT_FIELD(block, 0, kMaxBlock, ShareRule::kMustMatch,
                      "entries per scale block (multiple of d); 0 = 256 rounded to d"),
      COSET_ENUM_FIELD(scale, ScaleMode, kScaleModeNames, ShareRule::kMustMatch,
                       "block scale: rms | absmax | none (none: one global beta, the paper's setting)"),
      CodecField{"rotate", FieldType::kBool, 0, 1, nullptr, ShareRule::kMustMatch,
                 "randomized Hadamard rotation per block",
                 [](const CodecParams& p) { return std::string(p.rotate ? "true" : "false"); },
                 [](const std::string& text, CodecParams* p) -> absl::Status {
                   COSET_ASSIGN_OR_RETURN(p->rotate, ParseBool("rotate", text));
                   return absl::OkStatus();
                 },
                 [](const CodecParams& p) { return p.rotate ? 1.0 : 0.0; }},
      COSET_NUMBER_FIELD(seed, uint64_t, FieldType::kUint64, 0, 1.8446744073709552e19, ShareRule::kMustMatchIfRotated,
                         "rotation seed", "an unsigned integer"),
      COSET_INT_FIELD(t_max, 0, kMaxTMax, ShareRule::kIgnored, "ramp retries before the cap policy applies"),
      COSET_ENUM_FIELD(on_cap, CapPolicy, kCapPolicyNames, ShareRule::kIgnored,
                       "fail | zero: what a chunk still overloaded at t_max does"),
  };
  return table;
}

#undef COSET_NUMBER_FIELD
#undef COSET_INT_FIELD
#undef COSET_FLOAT_FIELD
#undef COSET_ENUM_FIELD

bool IsNumeric(FieldType type) {
  return type == FieldType::kInt || type == FieldType::kUint64 || type == FieldType::kFloat;
}

}  // namespace

const std::vector<CodecField>& CodecFields() { return Table(); }

const CodecField* FindCodecField(const std::string& name) {
  for (const CodecField& f : Table()) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

bool CheckedMul(int64_t a, int64_t b, int64_t* out) {
  if (a < 0 || b < 0) return false;
  return !__builtin_mul_overflow(a, b, out);
}

absl::StatusOr<int64_t> CheckedNumel(const std::vector<int64_t>& shape, int64_t max_elements) {
  if (shape.size() > static_cast<size_t>(kMaxRank)) {
    return absl::InvalidArgumentError(absl::StrCat("rank (=", shape.size(), ") must be at most ", kMaxRank));
  }
  int64_t numel = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) return absl::InvalidArgumentError(absl::StrCat("shape[", i, "] (=", shape[i], ") is negative"));
    if (!CheckedMul(numel, shape[i], &numel) || numel > max_elements) {
      return absl::ResourceExhaustedError(absl::StrCat("tensor has more than ", max_elements, " elements"));
    }
  }
  return numel;
}

absl::Status ValidateParams(const CodecParams& p) {
  for (const CodecField& f : Table()) {
    if (!IsNumeric(f.type) && f.type != FieldType::kEnum) continue;
    const double v = f.number(p);
    if (!(std::isfinite(v) && v >= f.min && v <= f.max)) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.name, " (=", f.get(p), ") must be in [", f.min, ", ", f.max, "]"));
    }
  }
  // Rules that join fields.
  const Lattice& lattice = p.lattice;
  if (p.q < lattice.min_q()) {
    return absl::InvalidArgumentError(absl::StrCat("q (=", p.q, ") must be in [", lattice.min_q(), ", ", kMaxQ,
                                                   "] for ", lattice.name(),
                                                   lattice.min_q() > 2 ? " (q = 2 never clears overload there)" : ""));
  }
  if (p.beta != 0.0f) {
    const bool relative = p.scale != ScaleMode::kNone;
    const float lo = relative ? kMinRelativeBeta : kMinStep, hi = relative ? kMaxRelativeBeta : kMaxAbsoluteBeta;
    if (!(p.beta >= lo && p.beta <= hi)) {
      return absl::InvalidArgumentError(
          absl::StrCat("beta (=", NumberText(p.beta), ") must be 0 (the measured default) or in [", lo, ", ", hi,
                       "] for scale ", ScaleModeName(p.scale), "; outside it every chunk decodes to zero"));
    }
  }
  if (p.M * std::log2(static_cast<double>(p.q)) > kMaxLog2QM) {
    return absl::InvalidArgumentError(
        absl::StrCat("q^M (= ", p.q, "^", p.M, ") exceeds 2^", kMaxLog2QM, "; lower q or M"));
  }
  if (std::pow(static_cast<double>(p.q), lattice.symbol_dim()) > static_cast<double>(kMaxCodebookSymbols)) {
    return absl::InvalidArgumentError(absl::StrCat("q^", lattice.symbol_dim(), " (q = ", p.q, ") codebook symbols for ",
                                                   lattice.name(), " exceed the limit of ", kMaxCodebookSymbols,
                                                   "; use a smaller q or lattice"));
  }
  if (p.block != 0 && (p.block < lattice.dim() || p.block % lattice.dim() != 0)) {
    return absl::InvalidArgumentError(absl::StrCat("block (=", p.block,
                                                   ") must be a multiple of the lattice dimension (", lattice.dim(),
                                                   ") in [", lattice.dim(), ", ", kMaxBlock, "]"));
  }
  return absl::OkStatus();
}

absl::StatusOr<CodecParams> ParamsFromText(const std::string& text) {
  CodecParams p;
  std::set<std::string> seen;
  for (absl::string_view raw : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    const absl::string_view item = absl::StripAsciiWhitespace(raw);
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("codec field '", item.substr(0, 64), "' needs name=value"));
    }
    const std::string name(absl::StripAsciiWhitespace(item.substr(0, eq)));
    const CodecField* f = FindCodecField(name);
    if (f == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown codec field '", name.substr(0, 64), "'"));
    }
    if (!seen.insert(name).second)
      return absl::InvalidArgumentError(absl::StrCat("codec field ", name, " is repeated"));
    COSET_RETURN_IF_ERROR(f->set(std::string(absl::StripAsciiWhitespace(item.substr(eq + 1))), &p));
  }
  COSET_RETURN_IF_ERROR(ValidateParams(p));
  return p;
}

std::string ParamsToText(const CodecParams& p) {
  std::string out;
  for (const CodecField& f : Table()) absl::StrAppend(&out, out.empty() ? "" : ",", f.name, "=", f.get(p));
  return out;
}

const CodecField* FirstSharedFieldMismatch(const CodecParams& a, const CodecParams& b) {
  for (const CodecField& f : Table()) {
    const bool compare = f.share == ShareRule::kMustMatch || (f.share == ShareRule::kMustMatchIfRotated && a.rotate);
    if (compare && f.get(a) != f.get(b)) return &f;
  }
  return nullptr;
}

const char* ScaleModeName(ScaleMode mode) {
  const size_t i = static_cast<size_t>(mode);
  return i < kScaleModeNames.size() ? kScaleModeNames[i] : "?";
}

absl::StatusOr<ScaleMode> ParseScaleMode(const std::string& name) {
  COSET_ASSIGN_OR_RETURN(int v, ParseEnum("scale", kScaleModeNames, name));
  return static_cast<ScaleMode>(v);
}

const char* CapPolicyName(CapPolicy policy) {
  const size_t i = static_cast<size_t>(policy);
  return i < kCapPolicyNames.size() ? kCapPolicyNames[i] : "?";
}

absl::StatusOr<Layout> Layout::Make(const CodecParams& params, const std::vector<int64_t>& shape) {
  if (params.block <= 0) return absl::InvalidArgumentError("block must be resolved (> 0) before layout");
  Layout l;
  COSET_ASSIGN_OR_RETURN(l.numel, CheckedNumel(shape));
  l.cols = shape.empty() ? 1 : shape.back();
  l.rows = 1;
  // With an empty last dimension numel is 0 whatever the leading ones are: check them too.
  for (size_t i = 0; i + 1 < shape.size(); ++i) {
    if (!CheckedMul(l.rows, shape[i], &l.rows) || l.rows > kMaxElements) {
      return absl::ResourceExhaustedError(absl::StrCat("tensor has more than ", kMaxElements, " rows"));
    }
  }
  const Lattice& lattice = params.lattice;
  l.dim = lattice.dim();
  l.symbol_dim = lattice.symbol_dim();
  l.padded_cols = (l.cols + l.dim - 1) / l.dim * l.dim;
  l.chunks_per_row = l.padded_cols / l.dim;
  l.blocks_per_row = (l.padded_cols + params.block - 1) / params.block;
  l.symbols_per_chunk = static_cast<int64_t>(params.M) * (l.dim / l.symbol_dim);
  l.symbols_per_row = l.chunks_per_row * l.symbols_per_chunk;
  return l;
}

}  // namespace coset
