// A minimal JSON object writer for `--json` output (keys, numbers, strings, arrays, nested objects).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace coset {

class JsonObject {
 public:
  JsonObject& Add(const std::string& key, const std::string& value) {
    Key(key);
    out_ << '"' << Escape(value) << '"';
    return *this;
  }
  JsonObject& Add(const std::string& key, const char* value) { return Add(key, std::string(value)); }
  JsonObject& Add(const std::string& key, double value) {
    Key(key);
    if (std::isfinite(value)) {
      out_.precision(9);
      out_ << value;
    } else {
      out_ << "null";
    }
    return *this;
  }
  JsonObject& Add(const std::string& key, int64_t value) {
    Key(key);
    out_ << value;
    return *this;
  }
  JsonObject& Add(const std::string& key, int value) { return Add(key, static_cast<int64_t>(value)); }
  JsonObject& Add(const std::string& key, bool value) {
    Key(key);
    out_ << (value ? "true" : "false");
    return *this;
  }
  JsonObject& Add(const std::string& key, const std::vector<int64_t>& values) {
    Key(key);
    out_ << '[';
    for (size_t i = 0; i < values.size(); ++i) out_ << (i ? "," : "") << values[i];
    out_ << ']';
    return *this;
  }
  // A nested object (for example min / median / max of a benchmark's runs).
  JsonObject& Add(const std::string& key, const JsonObject& value) {
    Key(key);
    out_ << value.str();
    return *this;
  }
  std::string str() const { return "{" + out_.str() + "}"; }

 private:
  void Key(const std::string& key) {
    if (!first_) out_ << ',';
    first_ = false;
    out_ << '"' << Escape(key) << "\":";
  }
  static std::string Escape(const std::string& s) {
    std::string r;
    for (char c : s) {
      if (c == '"' || c == '\\') {
        r += '\\';
        r += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        r += buf;
      } else {
        r += c;
      }
    }
    return r;
  }
  std::ostringstream out_;
  bool first_ = true;
};

// min / median / max of a few runs' values: how every benchmark reports a timed quantity.
inline JsonObject Spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  JsonObject j;
  if (!v.empty()) j.Add("min", v.front()).Add("median", v[v.size() / 2]).Add("max", v.back());
  return j;
}

}  // namespace coset
