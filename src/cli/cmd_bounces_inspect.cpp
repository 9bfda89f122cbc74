// bounces inspect FILE|DIR...: what each returned message is (SPEC §9), read
// only. A directory stands for every regular file under it (sorted); a file
// that starts with "From " is an mbox and holds several messages. A file
// that cannot be read is named on stderr and the others go on (exit 1).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bounce/report.hpp"
#include "cli/context.hpp"
#include "cli/returned_mail.hpp"
#include "util/mask.hpp"

namespace blindcast::cli {

namespace {

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
  return for_each_returned_message(paths, [&](const std::string& file, int message, std::string_view raw) {
    const bounce::Report r = bounce::parse(raw);
    if (json) {
      print_json_line(to_json(file, message, r));
    } else {
      print_human(file, message, r, show_addresses);
    }
    return true;
  });
}

}  // namespace blindcast::cli
