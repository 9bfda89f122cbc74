#include <fmt/format.h>

#include "delivery/maildir_transport.hpp"
#include "delivery/smtp_transport.hpp"
#include "delivery/transport.hpp"

namespace blindcast::delivery {

Result<std::unique_ptr<Transport>> make_transport(const TransportConfig& config) {
  const std::string& url = config.url;
  if (url.starts_with("maildir:")) {
    std::filesystem::path p = url.substr(8);
    if (p.empty()) return fail("transport url 'maildir:' needs a path, e.g. maildir:out/maildir");
    if (p.is_relative()) p = std::filesystem::path(config.base_dir) / p;
    auto t = MaildirTransport::open(p, config.campaign_id);
    if (!t) return std::unexpected(t.error());
    return std::unique_ptr<Transport>(std::move(*t));
  }
  if (url.starts_with("smtp://") || url.starts_with("smtps://")) {
    auto t = SmtpTransport::open(config);
    if (!t) return std::unexpected(t.error());
    return std::unique_ptr<Transport>(std::move(*t));
  }
  return fail(fmt::format("transport '{}' is not understood; use maildir:PATH, smtp://HOST:PORT or "
                          "smtps://HOST:PORT",
                          url));
}

}  // namespace blindcast::delivery
