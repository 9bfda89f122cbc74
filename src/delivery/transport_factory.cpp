#include <algorithm>

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
  if (url.starts_with("smtp://") || url.starts_with("smtps://") || url == "mx:") {
    auto t = SmtpTransport::open(config);
    if (!t) return std::unexpected(t.error());
    return std::unique_ptr<Transport>(std::move(*t));
  }
  return fail(fmt::format("transport '{}' is not understood; use maildir:PATH, smtp://HOST:PORT, "
                          "smtps://HOST:PORT or mx:",
                          url));
}

}  // namespace blindcast::delivery

namespace blindcast::delivery {

Result<std::vector<DeliveryResult>> deliver_all(Transport& transport, std::vector<OutgoingMessage> messages) {
  std::vector<std::int64_t> order;
  order.reserve(messages.size());
  for (const auto& m : messages) order.push_back(m.recipient_id);
  transport.submit(std::move(messages));
  std::vector<DeliveryResult> got;
  while (transport.unfinished() > 0) {
    if (auto r = transport.poll(std::chrono::milliseconds(50), got); !r) return std::unexpected(r.error());
  }
  std::vector<DeliveryResult> out;
  out.reserve(order.size());
  for (const auto id : order) {
    const auto it = std::find_if(got.begin(), got.end(), [&](const DeliveryResult& r) { return r.recipient_id == id; });
    if (it == got.end()) return fail("transport: a result went missing", ExitCode::k_runtime);
    out.push_back(std::move(*it));
    got.erase(it);
  }
  return out;
}

}  // namespace blindcast::delivery
