#include "send/bounce_ingest.hpp"

#include <chrono>
#include <filesystem>

#include <fmt/format.h>

#include "store/pg_store.hpp"
#include "util/mask.hpp"
#include "util/secret_file.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace blindcast::send {

namespace {

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

BounceIngester::BounceIngester(store::OrgList& org, std::shared_ptr<const bounce::VerpKey> service_key,
                               MessageLookup messages)
    : m_org(org), m_service_key(std::move(service_key)), m_messages(std::move(messages)) {}

BounceIngester::~BounceIngester() = default;

Result<std::optional<BounceIngester::Target>> BounceIngester::resolve(std::string_view token, std::string& why) {
  using Kind = bounce::TokenSubject::Kind;
  const auto claimed = bounce::peek_token(token);
  if (!claimed) {
    why = "the token is not one of blindcast's";
    return std::optional<Target>();
  }
  if (claimed->kind == Kind::k_message) {
    const auto subject = m_service_key ? m_service_key->open(token) : std::nullopt;
    if (!subject) {
      why = m_service_key ? "the token does not verify (forged, altered, or made with another key)"
                          : "a transactional message's token, and no service key to verify it (give --config)";
      return std::optional<Target>();
    }
    if (!m_messages) {
      why = "a transactional message's token, and no service store to find it in (give --config)";
      return std::optional<Target>();
    }
    auto found = m_messages(subject->message_id);
    if (!found) return std::unexpected(found.error());
    if (!*found) {
      why = fmt::format("message {} is not in the service store", subject->message_id);
      return std::optional<Target>();
    }
    return std::optional<Target>(
        Target{util::to_lower_ascii((*found)->recipient), (*found)->lane, (*found)->stream, subject->message_id});
  }
  auto record = m_org.campaign_of_tag(claimed->campaign_tag);
  if (!record) return std::unexpected(record.error());
  if (!*record) {
    why = fmt::format("no campaign with tag {} has sent from this state store (give the --state the campaigns "
                      "sent with: a shared one, not a campaign's file beside it)",
                      claimed->campaign_tag);
    return std::optional<Target>();
  }
  auto& key = m_keys[(*record)->secret_file];
  if (!key) {
    // A campaign moved or deleted since it sent: this report cannot be
    // verified; the others still can.
    auto secret = util::read_secret_file((*record)->secret_file, (*record)->secret_file);
    if (!secret) {
      m_keys.erase((*record)->secret_file);
      why = fmt::format("campaign {}'s bounce key cannot be read ({}); restore it to apply its reports",
                        (*record)->id, secret.error().message);
      return std::optional<Target>();
    }
    key = std::make_shared<const bounce::VerpKey>(secret->reveal());
  }
  const auto subject = key->open(token);
  if (!subject) {
    why = "the token does not verify (forged, altered, or made with another key)";
    return std::optional<Target>();
  }
  auto& campaign_store = m_campaigns[(*record)->store_path];
  if (!campaign_store) {
    std::error_code ec;
    if (!store::is_postgres((*record)->store_path) && !std::filesystem::exists((*record)->store_path, ec)) {
      why = fmt::format("campaign {}'s state store {} is gone", (*record)->id, (*record)->store_path);
      return std::optional<Target>();
    }
    auto opened = store::open_state_store((*record)->store_path);
    if (!opened) return std::unexpected(opened.error());
    campaign_store = std::move(*opened);
  }
  const std::int64_t ids[] = {subject->recipient_id};
  auto rows = campaign_store->load(ids);
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty()) {
    why = fmt::format("campaign {} has no recipient {}", (*record)->id, subject->recipient_id);
    return std::optional<Target>();
  }
  const auto& row = rows->front();
  return std::optional<Target>(
      Target{util::to_lower_ascii(row.email), row.lane, (*record)->id, std::to_string(subject->recipient_id)});
}

Result<IngestOutcome> BounceIngester::apply(const bounce::Report& report, std::string_view raw,
                                            std::string_view envelope_token) {
  IngestOutcome out;
  if (report.type != bounce::Type::k_bounce && report.type != bounce::Type::k_complaint) {
    out.outcome = "ignored";
    out.detail = fmt::format("{}: not a bounce or a complaint", bounce::to_string(report.type));
    return out;
  }
  const std::string token = !envelope_token.empty() ? std::string(envelope_token) : report.token;
  if (token.empty()) {
    out.outcome = "refused";
    out.detail = "no VERP token (bounce+TOKEN@ recipient or X-Blindcast-Token header): it names nobody";
    return out;
  }
  std::string why;
  auto target = resolve(token, why);
  if (!target) return std::unexpected(target.error());
  if (!*target) {
    out.outcome = "refused";
    out.detail = why;
    return out;
  }
  const auto& t = **target;
  out.address = t.address;
  out.scope = t.scope;
  // The recipient result about this message: the one naming the token's
  // address, else the first (a forwarded address reports its final one).
  bounce::RecipientResult r;
  if (!report.recipients.empty()) {
    r = report.recipients.front();
    for (const auto& each : report.recipients) {
      if (util::to_lower_ascii(each.address) == t.address) r = each;
    }
  } else if (report.type == bounce::Type::k_bounce) {
    out.outcome = "ignored";
    out.detail = "a bounce that names no failed recipient";
    return out;
  }
  const bool complaint = report.type == bounce::Type::k_complaint;
  store::BounceEvent e;
  e.at = now_seconds();
  e.kind = complaint ? "complaint" : "bounce";
  e.hard = complaint || r.hard;
  e.address = t.address;
  e.scope = t.scope;
  e.ref = t.ref;
  e.lane = t.lane;
  e.status = r.status;
  e.reason = complaint ? (report.feedback_type.empty() ? "abuse" : report.feedback_type)
                       : std::string(bounce::to_string(r.reason));
  e.diagnostic = util::mask_addresses_in(r.diagnostic);
  e.fingerprint = util::sha256_hex(std::string(raw)) + ":" + t.scope + ":" + t.ref;
  auto fresh = m_org.record_event(e);
  if (!fresh) return std::unexpected(fresh.error());
  if (!*fresh) {
    out.outcome = "duplicate";
    out.detail = "this report was applied before";
    return out;
  }
  const std::string masked = util::mask_address(t.address);
  if (e.hard) {
    // The reason names the message that caused it (a campaign's recipient, or a message id).
    const std::string reason = complaint ? fmt::format("complaint ({}) on message {}", e.reason, t.ref)
                                         : fmt::format("hard bounce: {} {} on message {}", e.reason, e.status, t.ref);
    auto s = m_org.suppress({t.address, reason, "all", t.scope, e.at});
    if (!s) return std::unexpected(s.error());
    out.outcome = *s ? "suppressed" : "duplicate";
    out.detail = *s ? fmt::format("{}: {}", masked, reason)
                    : fmt::format("{}: already on the suppression list ({})", masked, reason);
    return out;
  }
  out.outcome = "counted";
  out.detail = fmt::format("{}: soft bounce {} {}", masked, e.reason, e.status);
  if (store::soft_reason_counts(e.reason)) {
    auto n = m_org.soft_bounces(t.address, e.at - store::k_soft_bounce_window);
    if (!n) return std::unexpected(n.error());
    if (*n >= store::k_soft_bounce_limit) {
      const std::string reason = fmt::format("{} soft bounces in {} days, the last {} {} on message {}", *n,
                                             store::k_soft_bounce_window / 86400, e.reason, e.status, t.ref);
      auto s = m_org.suppress({t.address, reason, "all", t.scope, e.at});
      if (!s) return std::unexpected(s.error());
      out.outcome = "suppressed";
      out.detail = fmt::format("{}: {}", masked, reason);
    }
  }
  return out;
}

}  // namespace blindcast::send
