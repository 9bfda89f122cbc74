#include "store/pg_org_list.hpp"

#include <chrono>

namespace blindcast::store::pg {

namespace {

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class PgOrgList final : public OrgList {
 public:
  explicit PgOrgList(Connection& c) : m_c(c) {}
  // The list on a connection of its own.
  explicit PgOrgList(std::unique_ptr<Connection> owned) : m_owned(std::move(owned)), m_c(*m_owned) {}

  Result<bool> suppress(const SuppressionEntry& e) override {
    Params p;
    p.add(e.address).add(e.category.empty() ? std::string("all") : e.category).add(e.reason).add(e.scope)
        .add(e.at != 0 ? e.at : now_seconds());
    auto r = m_c.query("INSERT INTO org_suppressions (address, category, reason, scope, at) VALUES ($1, $2, $3, $4, $5) "
                       "ON CONFLICT DO NOTHING",
                       p, "adding to the suppression list");
    if (!r) return std::unexpected(r.error());
    return r->affected() > 0;
  }

  Result<std::int64_t> suppress_many(std::span<const std::string> addresses, std::string_view reason,
                                     std::string_view category, std::string_view scope) override {
    Params p;
    p.add_array(addresses).add(category).add(reason).add(scope).add(now_seconds());
    auto r = m_c.query("INSERT INTO org_suppressions (address, category, reason, scope, at) "
                       "SELECT DISTINCT a, $2::text, $3::text, $4::text, $5::bigint FROM unnest($1::text[]) AS a "
                       "ON CONFLICT DO NOTHING",
                       p, "adding to the suppression list");
    if (!r) return std::unexpected(r.error());
    return r->affected();
  }

  Result<std::optional<SuppressionEntry>> suppression(std::string_view address) override {
    Params p;
    p.add(address);
    auto r = m_c.query("SELECT address, reason, category, scope, at FROM org_suppressions WHERE address = $1 "
                       "ORDER BY category = 'all' DESC LIMIT 1",
                       p, "reading the suppression list");
    if (!r) return std::unexpected(r.error());
    if (r->empty()) return std::optional<SuppressionEntry>();
    return std::optional<SuppressionEntry>(SuppressionEntry{std::string(r->text(0, 0)), std::string(r->text(0, 1)),
                                                            std::string(r->text(0, 2)), std::string(r->text(0, 3)),
                                                            r->i64(0, 4)});
  }

  Result<bool> unsuppress(std::string_view address) override {
    Params p;
    p.add(address);
    auto r = m_c.query("DELETE FROM org_suppressions WHERE address = $1", p, "changing the suppression list");
    if (!r) return std::unexpected(r.error());
    return r->affected() > 0;
  }

  Result<std::vector<SuppressionEntry>> suppression_list(std::size_t limit) override {
    Params p;
    p.add(static_cast<std::int64_t>(limit));
    auto r = m_c.query("SELECT address, reason, category, scope, at FROM org_suppressions "
                       "ORDER BY at, address, category LIMIT $1",
                       p, "reading the suppression list");
    if (!r) return std::unexpected(r.error());
    std::vector<SuppressionEntry> out;
    for (int i = 0; i < r->size(); ++i) {
      out.push_back({std::string(r->text(i, 0)), std::string(r->text(i, 1)), std::string(r->text(i, 2)),
                     std::string(r->text(i, 3)), r->i64(i, 4)});
    }
    return out;
  }

  Result<bool> record_event(const BounceEvent& e) override {
    Params p;
    p.add(e.at != 0 ? e.at : now_seconds()).add(e.kind).add(e.hard ? "true" : "false").add(e.address).add(e.scope)
        .add(e.ref).add(e.lane).add(e.status).add(e.reason).add(e.diagnostic).add(e.fingerprint);
    auto r = m_c.query("INSERT INTO bounce_events (at, kind, hard, address, scope, ref, lane, status, reason, "
                       "diagnostic, fingerprint) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                       "ON CONFLICT (fingerprint) DO NOTHING",
                       p, "recording a bounce");
    if (!r) return std::unexpected(r.error());
    return r->affected() > 0;
  }

  Result<std::int64_t> soft_bounces(std::string_view address, std::int64_t since) override {
    Params p;
    p.add(address).add(since);
    auto r = m_c.query("SELECT COUNT(DISTINCT scope || ' ' || ref) FROM bounce_events WHERE address = $1 AND "
                       "kind = 'bounce' AND NOT hard AND at >= $2 AND reason IN ('mailbox-full', 'expired', "
                       "'other', 'user-unknown', 'host-unknown')",
                       p, "counting soft bounces");
    if (!r) return std::unexpected(r.error());
    return r->i64(0, 0);
  }

  Result<std::vector<EventCounts>> event_counts(std::string_view scope, std::int64_t since) override {
    Params p;
    p.add(scope).add(since);
    auto r = m_c.query("SELECT scope, lane, COUNT(DISTINCT CASE WHEN kind = 'bounce' AND hard THEN ref END), "
                       "COUNT(DISTINCT CASE WHEN kind = 'bounce' AND NOT hard THEN ref END), "
                       "COUNT(DISTINCT CASE WHEN kind = 'complaint' THEN ref END) FROM bounce_events "
                       "WHERE ($1 = '' OR scope = $1) AND at >= $2 GROUP BY scope, lane ORDER BY scope, lane",
                       p, "counting bounces");
    if (!r) return std::unexpected(r.error());
    std::vector<EventCounts> out;
    for (int i = 0; i < r->size(); ++i) {
      out.push_back({std::string(r->text(i, 0)), std::string(r->text(i, 1)), r->i64(i, 2), r->i64(i, 3), r->i64(i, 4)});
    }
    return out;
  }

  Result<std::vector<std::pair<std::string, std::string>>> event_refs(std::string_view scope,
                                                                      std::int64_t since) override {
    Params p;
    p.add(scope).add(since);
    auto r = m_c.query("SELECT DISTINCT kind, ref FROM bounce_events WHERE scope = $1 AND at >= $2 AND "
                       "(kind = 'complaint' OR hard)",
                       p, "reading bounces");
    if (!r) return std::unexpected(r.error());
    std::vector<std::pair<std::string, std::string>> out;
    for (int i = 0; i < r->size(); ++i) out.emplace_back(std::string(r->text(i, 0)), std::string(r->text(i, 1)));
    return out;
  }

  Result<void> register_campaign(const CampaignRecord& rec) override {
    Params p;
    p.add(rec.tag).add(rec.id).add(rec.store_path).add(rec.secret_file);
    auto r = m_c.query("INSERT INTO org_campaigns (tag, id, store_path, secret_file) VALUES ($1, $2, $3, $4) "
                       "ON CONFLICT (tag) DO UPDATE SET id = excluded.id, store_path = excluded.store_path, "
                       "secret_file = excluded.secret_file",
                       p, "registering the campaign's bounce tag");
    if (!r) return std::unexpected(r.error());
    return {};
  }

  Result<std::optional<CampaignRecord>> campaign_of_tag(std::string_view tag) override {
    Params p;
    p.add(tag);
    auto r = m_c.query("SELECT tag, id, store_path, secret_file FROM org_campaigns WHERE tag = $1", p,
                       "reading the campaigns' bounce tags");
    if (!r) return std::unexpected(r.error());
    if (r->empty()) return std::optional<CampaignRecord>();
    return std::optional<CampaignRecord>(CampaignRecord{std::string(r->text(0, 0)), std::string(r->text(0, 1)),
                                                        std::string(r->text(0, 2)), std::string(r->text(0, 3))});
  }

 private:
  std::unique_ptr<Connection> m_owned;  // declared first: m_c may refer to it
  Connection& m_c;
};

}  // namespace

std::unique_ptr<OrgList> make_org_list(Connection& c) { return std::make_unique<PgOrgList>(c); }

std::unique_ptr<OrgList> make_owning_org_list(std::unique_ptr<Connection> c) {
  return std::make_unique<PgOrgList>(std::move(c));
}

}  // namespace blindcast::store::pg
