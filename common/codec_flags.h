// Codec parameters on the command line and in JSON output, generated from core's field table
// (core/params.h, CodecFields()): one flag per field, named exactly like the field (--lattice,
// --q, --M, --beta, --alpha, --block, --scale, --rotate/--no-rotate, --seed, --t_max, --on_cap),
// help text with the table's defaults, and one JSON key per field.
#pragma once

#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "common/cli_args.h"
#include "common/json_writer.h"
#include "core/params.h"

namespace coset {

// Flags that take a value, and boolean switches (--name / --no-name).
std::set<std::string> CodecValueFlags();
std::set<std::string> CodecSwitches();
// "codec flags:" and one line per field: flag, help, [default].
std::string CodecFlagsHelp();

// The parameters the flags ask for (the table's defaults for the rest), validated.
absl::StatusOr<CodecParams> CodecParamsFromArgs(const CliArgs& args);

// Adds every field to j: numbers as numbers, booleans as booleans, the rest as text.
void AddParams(JsonObject& j, const CodecParams& params);

}  // namespace coset
