#include "cli/returned_mail.hpp"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

#include "cli/context.hpp"

namespace blindcast::cli {

namespace {

namespace fs = std::filesystem;

// The files `path` stands for, or an error naming it.
std::vector<std::string> expand(const std::string& path, std::vector<std::string>& errors) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return {path};
  std::vector<std::string> files;
  fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec);
  if (ec) {
    errors.push_back(fmt::format("{}: cannot read directory: {}", path, ec.message()));
    return {};
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec)) files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The messages of an mbox (From_ lines separate them; the From_ line itself
// is not part of the message).
std::vector<std::string_view> split_mbox(std::string_view all) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start < all.size()) {
    const auto lf = all.find('\n', start);
    if (lf == std::string_view::npos) break;
    const std::size_t body = lf + 1;
    std::size_t next = all.find("\nFrom ", body);
    const std::size_t end = next == std::string_view::npos ? all.size() : next + 1;
    out.push_back(all.substr(body, end - body));
    start = end;
  }
  return out;
}

}  // namespace

int for_each_returned_message(const std::vector<std::string>& paths,
                              const std::function<bool(const std::string&, int, std::string_view)>& fn) {
  int rc = 0;
  for (const auto& path : paths) {
    std::vector<std::string> errors;
    const auto files = expand(path, errors);
    bool go_on = true;
    for (const auto& file : files) {
      std::ifstream in(file, std::ios::binary);
      std::ostringstream bytes;
      if (in) bytes << in.rdbuf();
      if (!in || in.bad()) {
        errors.push_back(fmt::format("{}: cannot read: {}", file, std::error_code(errno, std::generic_category()).message()));
        continue;
      }
      const std::string all = std::move(bytes).str();
      const bool mbox = std::string_view(all).starts_with("From ");
      const auto messages = mbox ? split_mbox(all) : std::vector<std::string_view>{all};
      int n = 0;
      for (const auto m : messages) {
        ++n;
        if (!fn(file, mbox ? n : 0, m)) {
          go_on = false;
          break;
        }
      }
      if (!go_on) break;
    }
    for (const auto& e : errors) {
      say(util::LogLevel::k_error, fmt::format("blindcast: {}", e), {{"file", path}});
      rc = 1;
    }
    if (!go_on) break;
  }
  return rc;
}

}  // namespace blindcast::cli
