#pragma once
// Writers for the Prometheus text exposition format 0.0.4, shared by every
// binary's /metrics. Label values are written as given: callers pass only
// values that need no escaping (ids of a restricted alphabet, addresses,
// fixed reason words), or pass the others through escape_label_value.
#include <fmt/format.h>

#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

namespace mf::prometheus {

// "# HELP" and "# TYPE" lines of a metric family; `type` is counter or gauge.
inline void family(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} {2}\n", name, help, type);
}

// One sample; `labels` is empty or the inside of the braces, e.g.
// `backend="127.0.0.1:8446"`.
template <class Value>
void sample(std::string& out, std::string_view name, std::string_view labels, Value value) {
  if (labels.empty()) fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
  else fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, labels, value);
}

// A label value as the format wants it between quotes: backslash, double
// quote and newline escaped (file paths are chosen by the operator).
inline std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

inline void counter(std::string& out, std::string_view name, std::string_view help, uint64_t value) {
  family(out, name, help, "counter");
  sample(out, name, {}, value);
}

inline void gauge(std::string& out, std::string_view name, std::string_view help, uint64_t value) {
  family(out, name, help, "gauge");
  sample(out, name, {}, value);
}

}  // namespace mf::prometheus
