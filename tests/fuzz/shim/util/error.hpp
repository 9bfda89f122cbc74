// Stand-in for src/util/error.hpp in the fuzz build of the CSV reader only.
// The fuzzer's compiler (Debian 12's clang 14, the one with libFuzzer) cannot
// compile libstdc++ 12's std::expected, which the reader's one Result use
// (CsvReader::open, not called by the fuzzer) needs; this gives that use the
// same shape. Everything else the fuzzer runs is the real reader.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace blindcast {

enum class ExitCode : int { k_ok = 0, k_runtime = 1, k_usage = 2, k_guard = 3, k_gate = 4, k_halted = 5 };

struct Error {
  std::string message;
  ExitCode exit_code = ExitCode::k_usage;
};

struct Unexpected {
  Error error;
};

template <class T>
class Result {
 public:
  Result(T value) : m_v(std::move(value)) {}
  Result(Unexpected u) : m_v(std::move(u.error)) {}
  explicit operator bool() const { return m_v.index() == 0; }

 private:
  std::variant<T, Error> m_v;
};

inline Unexpected fail(std::string message, ExitCode code = ExitCode::k_usage) {
  return Unexpected{Error{std::move(message), code}};
}

}  // namespace blindcast
