// Parameters of the HNLQ codec and the layout they induce on a tensor.
//
// The codec configuration is written once, in the field table (CodecFields() below): name, type,
// default, range and help of every field. Validation, the text form (`lattice=D4,q=4,M=2`, used by
// the torch ops and the CLI), the CLI flags and their help, the JSON writers, the proto
// conversion (proto/convert.cc, by field name) and the "same scales" comparison of code arithmetic
// all iterate that table. Adding a field means adding it to CodecParams, to the table, to
// coset.v1.CodecConfig (same name) and to the code that uses it; tests/core/params_test.cc and
// tests/proto/convert_test.cc fail when a mirror disagrees.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/lattice.h"
#include "core/limits.h"

namespace coset {

// Numbering shared by core, the blob format and coset.v1 (the proto enums use the same numbers).
enum class ScaleMode : uint8_t { kNone = 0, kRms = 1, kAbsMax = 2 };
// What happens to a chunk still overloaded after t_max ramp steps (see README "Overload").
enum class CapPolicy : uint8_t { kFail = 0, kZero = 1 };
// A tensor's element type (core/dtype.h: names, sizes, conversions; the codec computes in float32).
enum class DType : uint8_t { kFloat32 = 0, kFloat64 = 1, kBfloat16 = 2, kFloat16 = 3 };

struct CodecParams {
  Lattice lattice = Lattice::D4();
  int q = 4;
  int M = 2;                  // levels (the paper's M)
  float beta = 0.0f;          // 0 = the default for (lattice, q, M, scale) from beta_table.h
  float alpha = 1.0f / 3.0f;  // overload ramp: chunk step grows by 2^alpha per retry
  int block = 0;              // entries per scale block; 0 = 256 rounded down to a multiple of d
  ScaleMode scale = ScaleMode::kRms;
  bool rotate = false;     // randomized Hadamard rotation of each block
  uint64_t seed = 0x5eed;  // rotation signs
  int t_max = 31;          // retries before CapPolicy applies
  CapPolicy on_cap = CapPolicy::kFail;
};

// --- The field table -----------------------------------------------------------------------------

enum class FieldType { kLattice, kInt, kUint64, kFloat, kBool, kEnum };

// Which fields codes must agree on to be combined (code arithmetic, CheckShareScales).
enum class ShareRule { kIgnored, kMustMatch, kMustMatchIfRotated };

struct CodecField {
  const char* name;  // the one spelling: C++ member, proto field, Python Config, CLI flag, JSON key
  FieldType type;
  double min = 0, max = 0;  // numeric range (kInt, kUint64, kFloat); checked by ValidateParams
  const std::vector<const char*>* enum_names = nullptr;  // kEnum: names indexed by the enum's number
  ShareRule share = ShareRule::kIgnored;
  const char* help = "";
  // The field's value as canonical text (floats round-trip exactly: %.9g).
  std::string (*get)(const CodecParams&) = nullptr;
  // Parses `text` into the field (type and syntax only; ranges are ValidateParams's job).
  absl::Status (*set)(const std::string& text, CodecParams*) = nullptr;
  // The value as a number (kInt, kUint64, kFloat, kBool, kEnum: its number); 0 for kLattice.
  double (*number)(const CodecParams&) = nullptr;

  std::string DefaultText() const { return get(CodecParams{}); }
};

// Every codec field, in the order of coset.v1.CodecConfig.
const std::vector<CodecField>& CodecFields();
// The field called `name`, or null.
const CodecField* FindCodecField(const std::string& name);

// Checks every field (table ranges, then the rules that join fields); names the bad one and its value.
absl::Status ValidateParams(const CodecParams& params);

// Text form "name=value,name=value" (any subset of fields; the rest keep their defaults). Unknown
// names, bad values and repeated names are errors; the result is validated.
absl::StatusOr<CodecParams> ParamsFromText(const std::string& text);
// Every field, in table order.
std::string ParamsToText(const CodecParams& params);
// The first field (in table order) whose rule requires equality and whose values differ, or null.
const CodecField* FirstSharedFieldMismatch(const CodecParams& a, const CodecParams& b);

const char* ScaleModeName(ScaleMode mode);
absl::StatusOr<ScaleMode> ParseScaleMode(const std::string& name);
const char* CapPolicyName(CapPolicy policy);

// --- Layout --------------------------------------------------------------------------------------

// Where each part of a tensor lives once encoded. Leading dimensions are flattened into rows;
// the last dimension (cols) is padded with zeros to a multiple of the lattice dimension d.
struct Layout {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t padded_cols = 0;
  int dim = 0;         // d
  int symbol_dim = 0;  // s: d for A2/D_n/E8, 1 for Z^n
  int64_t chunks_per_row = 0;
  int64_t blocks_per_row = 0;
  int64_t symbols_per_chunk = 0;  // M * d / s
  int64_t symbols_per_row = 0;
  int64_t numel = 0;

  // Fails for a rank above kMaxRank, a negative dimension or more than kMaxElements elements.
  static absl::StatusOr<Layout> Make(const CodecParams& params, const std::vector<int64_t>& shape);
};

// Multiplies with overflow detection; false on overflow or a negative operand.
bool CheckedMul(int64_t a, int64_t b, int64_t* out);

// Elements of `shape` (product of its dimensions), or an error naming the bad dimension:
// INVALID_ARGUMENT for a rank above kMaxRank or a negative dimension, RESOURCE_EXHAUSTED above
// max_elements. The one shape check of encoder, reader, service, client and torch ops.
absl::StatusOr<int64_t> CheckedNumel(const std::vector<int64_t>& shape, int64_t max_elements = kMaxElements);

}  // namespace coset
