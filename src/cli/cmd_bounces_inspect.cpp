// bounces inspect FILE|DIR...: what each returned message is (SPEC §9), read
// only. A directory stands for every regular file under it (sorted); a file
// that starts with "From " is an mbox and holds several messages. A file
// that cannot be read is named on stderr and the others go on (exit 1).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bounce/report.hpp"
#include "cli/context.hpp"
#include "util/mask.hpp"

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

nlohmann::json to_json(const std::string& file, int message, const bounce::Report& r) {
  nlohmann::json j = {{"file", file}};
  if (message > 0) j["message"] = message;
  j["type"] = bounce::to_string(r.type);
  auto recipients = nlohmann::json::array();
  for (const auto& x : r.recipients) {
    recipients.push_back({{"address", x.address},
                          {"status", x.status},
                          {"reply_code", x.reply_code},
                          {"hard", x.hard},
                          {"reason", bounce::to_string(x.reason)},
                          {"diagnostic", x.diagnostic}});
  }
  j["recipients"] = std::move(recipients);
  if (!r.token.empty()) j["token"] = r.token;
  if (!r.feedback_type.empty()) j["feedback_type"] = r.feedback_type;
  return j;
}

void print_human(const std::string& file, int message, const bounce::Report& r, bool show_addresses) {
  const std::string where = message > 0 ? fmt::format("{}#{}", file, message) : file;
  const std::string token = r.token.empty() ? "" : fmt::format(" token={}", r.token);
  if (r.recipients.empty()) {
    std::printf("%s: %s%s\n", where.c_str(), std::string(bounce::to_string(r.type)).c_str(), token.c_str());
    return;
  }
  for (const auto& x : r.recipients) {
    const std::string address = show_addresses ? x.address : util::mask_address(x.address);
    std::string diagnostic = show_addresses ? x.diagnostic : util::mask_addresses_in(x.diagnostic);
    if (diagnostic.size() > 100) diagnostic = diagnostic.substr(0, 97) + "...";
    std::printf("%s: %s %s %s %s %s %s%s%s%s\n", where.c_str(), std::string(bounce::to_string(r.type)).c_str(),
                address.c_str(), x.hard ? "hard" : "soft", std::string(bounce::to_string(x.reason)).c_str(),
                x.status.empty() ? "-" : x.status.c_str(), x.reply_code.empty() ? "-" : x.reply_code.c_str(),
                token.c_str(), diagnostic.empty() ? "" : " ", diagnostic.c_str());
  }
}

}  // namespace

int cmd_bounces_inspect(const std::vector<std::string>& paths, bool json, bool show_addresses) {
  int rc = 0;
  for (const auto& path : paths) {
    std::vector<std::string> errors;
    const auto files = expand(path, errors);
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
        const bounce::Report r = bounce::parse(m);
        if (json) {
          print_json_line(to_json(file, mbox ? n : 0, r));
        } else {
          print_human(file, mbox ? n : 0, r, show_addresses);
        }
      }
    }
    for (const auto& e : errors) {
      say(util::LogLevel::k_error, fmt::format("blindcast: {}", e), {{"file", path}});
      rc = 1;
    }
  }
  return rc;
}

}  // namespace blindcast::cli
