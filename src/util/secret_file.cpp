#include "util/secret_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace blindcast::util {

Secret::~Secret() {
  // Best effort: do not leave the value in freed memory.
  volatile char* p = m_value.data();
  for (std::size_t i = 0; i < m_value.size(); ++i) p[i] = 0;
}

Result<Secret> read_secret_file(const std::filesystem::path& path, const std::string& shown) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    return fail(fmt::format("secret file {}: cannot open: {}", shown, std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return fail(fmt::format("secret file {}: cannot stat: {}", shown, std::strerror(errno)));
  }
  auto refuse = [&](std::string why) {
    ::close(fd);
    return fail(fmt::format("secret file {}: {}; blindcast refuses to start", shown, why));
  };
  // The command that fixes it names the file so that it works from any directory.
  std::error_code ec;
  auto absolute = std::filesystem::absolute(path, ec).lexically_normal();
  if (ec) absolute = path;
  if (!S_ISREG(st.st_mode)) return refuse("not a regular file");
  if (st.st_uid != ::geteuid()) {
    return refuse(fmt::format("owned by uid {}, not by the user running blindcast (uid {}); run: chown {} '{}'",
                              st.st_uid, ::geteuid(), ::geteuid(), absolute.string()));
  }
  if ((st.st_mode & 077) != 0) {
    return refuse(fmt::format("readable or writable by group or others (mode {:04o}); run: chmod 600 '{}'",
                              st.st_mode & 07777, absolute.string()));
  }
  if (st.st_size > 1 << 20) return refuse("larger than 1 MiB");
  std::string value(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < value.size()) {
    const ssize_t n = ::read(fd, value.data() + got, value.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  value.resize(got);
  if (!value.empty() && value.back() == '\n') value.pop_back();
  if (!value.empty() && value.back() == '\r') value.pop_back();
  if (value.empty()) return fail(fmt::format("secret file {}: empty", shown));
  return Secret(std::move(value));
}

}  // namespace blindcast::util
