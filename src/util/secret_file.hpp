// Reading a secret (password, API key, DKIM key) from a file (SPEC §6).
//
// Policy: a secret file must be a regular file owned by the user running
// blindcast and carry no group or other permission bits; otherwise the read is
// refused with the file's name and the chmod/chown that fixes it. The checks
// are made on the opened descriptor (fstat), so the file cannot be swapped
// between check and read. Secrets are never read from environment variables.
// The value is returned in a Secret that never prints itself.
#pragma once

#include <filesystem>
#include <string>

#include "util/error.hpp"

namespace blindcast::util {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : m_value(std::move(value)) {}
  Secret(const Secret&) = default;
  Secret& operator=(const Secret&) = default;
  ~Secret();

  // The secret itself, for the one place that needs it (AUTH, signing).
  [[nodiscard]] const std::string& reveal() const { return m_value; }
  [[nodiscard]] bool empty() const { return m_value.empty(); }

 private:
  std::string m_value;
};

// Reads the secret in `path` (`shown` is the name used in messages); one
// trailing line break is removed.
Result<Secret> read_secret_file(const std::filesystem::path& path, const std::string& shown);

}  // namespace blindcast::util
