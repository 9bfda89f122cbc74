// A finding about an input file, printed as `file:line: severity: message`
// (the format compilers use, so editors can jump to it).
#pragma once

#include <string>
#include <vector>

#include <fmt/format.h>

namespace blindcast::util {

enum class Severity { k_warning, k_error };

struct Diagnostic {
  std::string file;   // relative to the campaign directory
  long line = 0;      // 0 when the finding is about the whole file
  Severity severity = Severity::k_error;
  std::string message;

  [[nodiscard]] std::string str() const {
    const char* sev = severity == Severity::k_error ? "error" : "warning";
    if (line > 0) return fmt::format("{}:{}: {}: {}", file, line, sev, message);
    return fmt::format("{}: {}: {}", file, sev, message);
  }
};

using Diagnostics = std::vector<Diagnostic>;

// Returns how many of `diags` are errors.
inline std::size_t error_count(const Diagnostics& diags) {
  std::size_t n = 0;
  for (const auto& d : diags) n += d.severity == Severity::k_error ? 1 : 0;
  return n;
}

}  // namespace blindcast::util
