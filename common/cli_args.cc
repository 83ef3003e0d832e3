#include "common/cli_args.h"

#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace coset {

absl::StatusOr<CliArgs> CliArgs::Parse(const std::vector<std::string>& argv, const std::set<std::string>& value_flags,
                                       const std::set<std::string>& switches) {
  CliArgs args;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      args.positionals_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (switches.count(name) && !inline_value) {
      args.switches_[name] = true;
    } else if (name.compare(0, 3, "no-") == 0 && switches.count(name.substr(3)) && !inline_value) {
      args.switches_[name.substr(3)] = false;
    } else if (value_flags.count(name)) {
      if (!inline_value) {
        if (i + 1 >= argv.size()) return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
        value = argv[++i];
      }
      args.values_[name] = value;
      args.all_values_[name].push_back(value);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
  }
  return args;
}

std::string CliArgs::Get(const std::string& flag, const std::string& fallback) const {
  auto it = values_.find(flag);
  return it == values_.end() ? fallback : it->second;
}

std::vector<std::string> CliArgs::GetAll(const std::string& flag) const {
  auto it = all_values_.find(flag);
  return it == all_values_.end() ? std::vector<std::string>{} : it->second;
}

absl::StatusOr<int64_t> CliArgs::GetInt(const std::string& flag, int64_t fallback) const {
  auto it = values_.find(flag);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (errno != 0 || end == it->second.c_str() || *end != '\0') {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " (='", it->second, "') must be an integer"));
  }
  return v;
}

absl::StatusOr<double> CliArgs::GetDouble(const std::string& flag, double fallback) const {
  auto it = values_.find(flag);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(it->second.c_str(), &end);
  if (errno != 0 || end == it->second.c_str() || *end != '\0') {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " (='", it->second, "') must be a number"));
  }
  return v;
}

bool CliArgs::Switch(const std::string& name, bool fallback) const {
  auto it = switches_.find(name);
  return it == switches_.end() ? fallback : it->second;
}

}  // namespace coset
