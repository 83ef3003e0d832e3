#include "common/codec_flags.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace coset {

std::set<std::string> CodecValueFlags() {
  std::set<std::string> flags;
  for (const CodecField& f : CodecFields()) {
    if (f.type != FieldType::kBool) flags.insert(f.name);
  }
  return flags;
}

std::set<std::string> CodecSwitches() {
  std::set<std::string> switches;
  for (const CodecField& f : CodecFields()) {
    if (f.type == FieldType::kBool) switches.insert(f.name);
  }
  return switches;
}

std::string CodecFlagsHelp() {
  std::string help = "codec flags:\n";
  for (const CodecField& f : CodecFields()) {
    std::string flag =
        f.type == FieldType::kBool ? absl::StrCat("--", f.name, "/--no-", f.name) : absl::StrCat("--", f.name, " V");
    flag.resize(std::max<size_t>(flag.size() + 1, 22), ' ');
    absl::StrAppend(&help, "  ", flag, f.help, " [", f.DefaultText(), "]\n");
  }
  return help;
}

absl::StatusOr<CodecParams> CodecParamsFromArgs(const CliArgs& args) {
  CodecParams p;
  for (const CodecField& f : CodecFields()) {
    if (f.type == FieldType::kBool) {
      if (args.HasSwitch(f.name)) COSET_RETURN_IF_ERROR(f.set(args.Switch(f.name, false) ? "true" : "false", &p));
    } else if (args.Has(f.name)) {
      if (absl::Status s = f.set(args.Get(f.name, ""), &p); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("--", s.message()));
      }
    }
  }
  COSET_RETURN_IF_ERROR(ValidateParams(p));
  return p;
}

void AddParams(JsonObject& j, const CodecParams& p) {
  for (const CodecField& f : CodecFields()) {
    switch (f.type) {
      case FieldType::kInt:
        j.Add(f.name, static_cast<int64_t>(f.number(p)));
        break;
      case FieldType::kUint64:  // through the text: a double would round seeds above 2^53
        j.Add(f.name, static_cast<int64_t>(std::stoull(f.get(p))));
        break;
      case FieldType::kFloat:
        j.Add(f.name, f.number(p));
        break;
      case FieldType::kBool:
        j.Add(f.name, f.number(p) != 0);
        break;
      case FieldType::kLattice:
      case FieldType::kEnum:
        j.Add(f.name, f.get(p));
        break;
    }
  }
}

}  // namespace coset
