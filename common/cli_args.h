// Command-line parsing for cosetctl's subcommands: positionals, `--key value`, `--key=value` and
// boolean switches (`--rotate` / `--no-rotate`). Unknown flags are errors, never ignored.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace coset {

class CliArgs {
 public:
  // value_flags take a value; switches are booleans (each also accepts a --no- form).
  static absl::StatusOr<CliArgs> Parse(const std::vector<std::string>& argv, const std::set<std::string>& value_flags,
                                       const std::set<std::string>& switches);

  const std::vector<std::string>& positionals() const { return positionals_; }
  bool Has(const std::string& flag) const { return values_.count(flag) > 0; }
  std::string Get(const std::string& flag, const std::string& fallback) const;
  // Every value a repeatable flag was given, in order.
  std::vector<std::string> GetAll(const std::string& flag) const;
  absl::StatusOr<int64_t> GetInt(const std::string& flag, int64_t fallback) const;
  absl::StatusOr<double> GetDouble(const std::string& flag, double fallback) const;
  bool Switch(const std::string& name, bool fallback) const;
  // Whether --name or --no-name was given.
  bool HasSwitch(const std::string& name) const { return switches_.count(name) > 0; }

 private:
  std::vector<std::string> positionals_;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> all_values_;
  std::map<std::string, bool> switches_;
};

}  // namespace coset
