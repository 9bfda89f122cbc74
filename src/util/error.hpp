// Error values for operations that can fail in normal use.
//
// Policy: functions at the edges (files, settings, input rows, the state store)
// return `Result<T>` = std::expected<T, Error>. An Error carries a message a
// person can act on (it names the file, row or field and what to do) and the
// process exit code it maps to if it reaches the command boundary (cli/), which
// is the only place that turns errors into exit codes. Exceptions are used only
// to abort (bugs, out of memory).
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace blindcast {

// Exit codes of the command line contract (SPEC §2).
enum class ExitCode : int {
  k_ok = 0,
  k_runtime = 1,      // finished with undelivered recipients, or a runtime failure
  k_usage = 2,        // usage, configuration or lint error
  k_guard = 3,        // privacy guard violation; campaign halted
  k_gate = 4,         // stage gate refused
  k_halted = 5,       // halted by an operator
};

struct Error {
  std::string message;
  ExitCode exit_code = ExitCode::k_usage;
};

template <class T>
using Result = std::expected<T, Error>;

// Builds an unexpected Error with `message` and `code`.
inline std::unexpected<Error> fail(std::string message, ExitCode code = ExitCode::k_usage) {
  return std::unexpected(Error{std::move(message), code});
}

}  // namespace blindcast
