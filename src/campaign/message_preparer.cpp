#include "campaign/message_preparer.hpp"

#include <thread>

#include "audience/audience_loader.hpp"
#include "campaign/secrets.hpp"
#include "delivery/providers.hpp"
#include "util/strings.hpp"

namespace blindcast::campaign {

struct MessagePreparer::Worker {
  LoadedCampaign campaign;
  std::unique_ptr<MessageBuilder> builder;
};

MessagePreparer::MessagePreparer() = default;
MessagePreparer::~MessagePreparer() = default;

Result<std::unique_ptr<MessagePreparer>> MessagePreparer::create(
    const LoadedCampaign& campaign, std::shared_ptr<const guard::PrivacyGuard> guard, int workers) {
  std::unique_ptr<MessagePreparer> p(new MessagePreparer());
  p->m_guard = std::move(guard);
  p->m_lanes = std::make_unique<delivery::LaneTable>(campaign.config.shaping);
  auto header = audience::AudienceLoader::open(campaign.audience_path(), {});
  if (!header) return std::unexpected(header.error());
  const auto columns = header->columns();
  p->m_name_column = header->column_index("name");
  auto secrets = load_campaign_secrets(campaign);
  if (!secrets) return std::unexpected(secrets.error());
  for (int i = 0; i < std::max(workers, 1); ++i) {
    util::Diagnostics diags;
    auto own = load_campaign(campaign.dir, diags);
    if (!own) return fail("the campaign changed while sending; run lint and send again");
    auto w = std::make_unique<Worker>();
    w->campaign = std::move(*own);
    w->builder = std::make_unique<MessageBuilder>(w->campaign, columns, diags);
    w->builder->use_secrets(*secrets);
    if (util::error_count(diags) > 0) return fail("the campaign has errors: " + diags.front().str());
    p->m_envelope_from = w->builder->envelope_from();
    p->m_workers.push_back(std::move(w));
  }
  return p;
}

std::vector<PreparedMessage> MessagePreparer::prepare(const std::vector<store::StoredRecipient>& rows) {
  std::vector<PreparedMessage> out(rows.size());
  auto work = [&](Worker& w, std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const auto& r = rows[i];
      auto& p = out[i];
      p.id = r.id;
      p.line = r.line;
      p.email = r.email;
      p.attempts = r.attempts;
      p.first_attempt_at = r.first_attempt_at;
      p.lane = m_lanes->lane_for(r.email.substr(r.email.rfind('@') + 1)).name;
      const std::string name =
          m_name_column >= 0 && static_cast<std::size_t>(m_name_column) < r.fields.size()
              ? std::string(util::trim(r.fields[static_cast<std::size_t>(m_name_column)]))
              : std::string();
      auto built = w.builder->build(r.fields, r.email, name, r.locale);
      if (!built) {
        p.render_error = built.error();
        continue;
      }
      const std::string rcpt[] = {r.email};
      p.violation = m_guard->check(built->data, {m_envelope_from, rcpt});
      p.data = std::move(built->data);
    }
  };
  const std::size_t n = rows.size();
  const std::size_t workers = std::min(m_workers.size(), std::max<std::size_t>(1, n / 64));
  if (workers <= 1) {
    work(*m_workers[0], 0, n);
    return out;
  }
  std::vector<std::thread> threads;
  const std::size_t chunk = (n + workers - 1) / workers;
  for (std::size_t t = 1; t < workers; ++t) {
    const std::size_t b = t * chunk;
    const std::size_t e = std::min(n, b + chunk);
    if (b < e) threads.emplace_back(work, std::ref(*m_workers[t]), b, e);
  }
  work(*m_workers[0], 0, std::min(n, chunk));
  for (auto& th : threads) th.join();
  return out;
}

}  // namespace blindcast::campaign
