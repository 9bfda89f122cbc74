#include "util/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "util/sha256.hpp"

namespace blindcast::util {

bool make_private_dirs(const std::filesystem::path& dir) {
  std::error_code ec;
  if (dir.empty() || std::filesystem::is_directory(dir, ec)) return !dir.empty();
  if (dir.has_parent_path() && dir.parent_path() != dir && !make_private_dirs(dir.parent_path())) return false;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return false;
  return std::filesystem::is_directory(dir, ec);
}

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail(fmt::format("{}: cannot read: {}", path.string(), std::strerror(errno)));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return fail(fmt::format("{}: read error", path.string()));
  return buf.str();
}

Result<std::string> file_sha256_hex(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail(fmt::format("{}: cannot read: {}", path.string(), std::strerror(errno)));
  }
  Sha256 hash;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    hash.update(std::string_view(buf.data(), static_cast<std::size_t>(in.gcount())));
  }
  if (in.bad()) return fail(fmt::format("{}: read error", path.string()));
  return hash.hex_digest();
}

Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view content,
                               unsigned mode) {
  auto file = AtomicFile::create(path, mode);
  if (!file) return std::unexpected(file.error());
  if (auto w = file->write(content); !w) return w;
  return file->commit();
}

AtomicFile::AtomicFile(std::filesystem::path target, std::filesystem::path tmp, int fd)
    : m_target(std::move(target)), m_tmp(std::move(tmp)), m_fd(fd) {}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : m_target(std::move(other.m_target)),
      m_tmp(std::move(other.m_tmp)),
      m_fd(other.m_fd),
      m_committed(other.m_committed) {
  other.m_fd = -1;
  other.m_committed = true;
}

Result<AtomicFile> AtomicFile::create(const std::filesystem::path& path, unsigned mode) {
  auto tmp = path;
  tmp += fmt::format(".tmp.{}", ::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return fail(fmt::format("{}: cannot create: {}", tmp.string(), std::strerror(errno)),
                ExitCode::k_runtime);
  }
  ::fchmod(fd, mode);  // umask must not widen or narrow what the caller asked for
  return AtomicFile(path, tmp, fd);
}

AtomicFile::~AtomicFile() {
  if (m_fd >= 0) ::close(m_fd);
  if (!m_committed) ::unlink(m_tmp.c_str());
}

Result<void> AtomicFile::write(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(m_fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(fmt::format("{}: write failed: {}", m_tmp.string(), std::strerror(errno)),
                  ExitCode::k_runtime);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<void> AtomicFile::commit() {
  if (::fsync(m_fd) != 0 || ::close(m_fd) != 0) {
    m_fd = -1;
    return fail(fmt::format("{}: fsync failed: {}", m_tmp.string(), std::strerror(errno)),
                ExitCode::k_runtime);
  }
  m_fd = -1;
  if (::rename(m_tmp.c_str(), m_target.c_str()) != 0) {
    return fail(fmt::format("{}: rename failed: {}", m_target.string(), std::strerror(errno)),
                ExitCode::k_runtime);
  }
  m_committed = true;
  return {};
}

}  // namespace blindcast::util
