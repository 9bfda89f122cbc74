// File helpers: whole-file reads with actionable errors, and an atomic file
// that only replaces its target on an explicit commit().
//
// AtomicFile writes to "<path>.tmp.<pid>" and renames over `path` in commit();
// destroyed without commit() it removes the temporary and leaves `path` as it
// was (never commit in a destructor).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "util/error.hpp"

namespace blindcast::util {

// Reads all of `path`; the error names the file and the reason.
Result<std::string> read_file(const std::filesystem::path& path);

// The hex SHA-256 of `path`'s bytes, read a megabyte at a time (memory
// stays bounded whatever the file's size).
Result<std::string> file_sha256_hex(const std::filesystem::path& path);

// Creates `dir` and any missing parents; each directory created here is
// its owner's only (0700): the state directory holds addresses. Existing
// directories keep their mode. False when `dir` cannot be made.
bool make_private_dirs(const std::filesystem::path& dir);

// Writes `content` to `path` atomically with mode `mode` (fsynced).
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view content,
                               unsigned mode = 0644);

class AtomicFile {
 public:
  // Opens a temporary beside `path` with permission bits `mode`.
  static Result<AtomicFile> create(const std::filesystem::path& path, unsigned mode = 0644);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  // Appends `data` to the temporary.
  Result<void> write(std::string_view data);
  // fsyncs the temporary and renames it over the target.
  Result<void> commit();

 private:
  AtomicFile(std::filesystem::path target, std::filesystem::path tmp, int fd);
  std::filesystem::path m_target;
  std::filesystem::path m_tmp;
  int m_fd = -1;
  bool m_committed = false;
};

}  // namespace blindcast::util
