#include "store/sqlite_org_list.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "store/sqlite_db.hpp"

namespace blindcast::store {

bool soft_reason_counts(std::string_view reason) {
  return reason == "mailbox-full" || reason == "expired" || reason == "other" || reason == "user-unknown" ||
         reason == "host-unknown";
}

namespace {

using namespace sqlite;

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool table_exists(sqlite3* db, const std::string& schema, std::string_view table) {
  const std::string sql = fmt::format("SELECT 1 FROM \"{}\".sqlite_master WHERE type = 'table' AND name = ?1", schema);
  Stmt s(db, sql.c_str());
  s.bind(1, table);
  return s.step() == SQLITE_ROW;
}

std::int64_t column_count(sqlite3* db, const std::string& schema, std::string_view table) {
  Stmt s(db, "SELECT COUNT(*) FROM pragma_table_info(?1, ?2)");
  s.bind(1, table).bind(2, schema);
  return s.step() == SQLITE_ROW ? s.i64(0) : 0;
}

class SqliteOrgList final : public OrgList {
 public:
  SqliteOrgList(sqlite3* db, std::string schema, bool owns) : m_db(db), m_schema(std::move(schema)), m_owns(owns) {}
  ~SqliteOrgList() override {
    if (m_owns) sqlite3_close(m_db);
  }
  SqliteOrgList(const SqliteOrgList&) = delete;
  SqliteOrgList& operator=(const SqliteOrgList&) = delete;

  Result<bool> suppress(const SuppressionEntry& e) override {
    Stmt s(m_db, sql("INSERT OR IGNORE INTO {}.org_suppressions (address, category, reason, scope, at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)").c_str());
    s.bind(1, e.address).bind(2, e.category.empty() ? "all" : e.category).bind(3, e.reason).bind(4, e.scope)
        .bind(5, e.at != 0 ? e.at : now_seconds());
    if (s.step() != SQLITE_DONE) return db_error(m_db, "adding to the suppression list");
    return sqlite3_changes(m_db) > 0;
  }

  Result<std::int64_t> suppress_many(std::span<const std::string> addresses, std::string_view reason,
                                     std::string_view category, std::string_view scope) override {
    const bool outer = sqlite3_get_autocommit(m_db) != 0;
    std::optional<Txn> txn;
    if (outer) {
      txn.emplace(m_db);
      if (!txn->ok()) return db_error(m_db, "adding to the suppression list");
    }
    Stmt s(m_db, sql("INSERT OR IGNORE INTO {}.org_suppressions (address, category, reason, scope, at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)").c_str());
    std::int64_t added = 0;
    const auto now = now_seconds();
    for (const auto& a : addresses) {
      s.bind(1, a).bind(2, category).bind(3, reason).bind(4, scope).bind(5, now);
      if (!s.run()) return db_error(m_db, "adding to the suppression list");
      added += sqlite3_changes(m_db);
    }
    if (txn) {
      if (auto c = txn->commit(); !c) return std::unexpected(c.error());
    }
    return added;
  }

  Result<std::optional<SuppressionEntry>> suppression(std::string_view address) override {
    if (!m_lookup) {
      m_lookup = std::make_unique<Stmt>(
          m_db, sql("SELECT address, reason, category, scope, at FROM {}.org_suppressions WHERE address = ?1 "
                    "ORDER BY category = 'all' DESC LIMIT 1").c_str());
    }
    Stmt& s = *m_lookup;
    s.bind(1, address);
    std::optional<SuppressionEntry> out;
    const int rc = s.step();
    if (rc == SQLITE_ROW) {
      out = SuppressionEntry{std::string(s.text(0)), std::string(s.text(1)), std::string(s.text(2)),
                             std::string(s.text(3)), s.i64(4)};
    }
    s.reset();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_error(m_db, "reading the suppression list");
    return out;
  }

  Result<bool> unsuppress(std::string_view address) override {
    Stmt s(m_db, sql("DELETE FROM {}.org_suppressions WHERE address = ?1").c_str());
    s.bind(1, address);
    if (s.step() != SQLITE_DONE) return db_error(m_db, "changing the suppression list");
    return sqlite3_changes(m_db) > 0;
  }

  Result<std::vector<SuppressionEntry>> suppression_list(std::size_t limit) override {
    Stmt s(m_db, sql("SELECT address, reason, category, scope, at FROM {}.org_suppressions "
                     "ORDER BY at, address, category LIMIT ?1").c_str());
    s.bind(1, static_cast<std::int64_t>(limit));
    std::vector<SuppressionEntry> out;
    int rc = 0;
    while ((rc = s.step()) == SQLITE_ROW) {
      out.push_back({std::string(s.text(0)), std::string(s.text(1)), std::string(s.text(2)), std::string(s.text(3)),
                     s.i64(4)});
    }
    if (rc != SQLITE_DONE) return db_error(m_db, "reading the suppression list");
    return out;
  }

  Result<bool> record_event(const BounceEvent& e) override {
    Stmt s(m_db, sql("INSERT OR IGNORE INTO {}.bounce_events (at, kind, hard, address, scope, ref, lane, status, "
                     "reason, diagnostic, fingerprint) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)").c_str());
    s.bind(1, e.at != 0 ? e.at : now_seconds()).bind(2, e.kind).bind(3, std::int64_t{e.hard ? 1 : 0})
        .bind(4, e.address).bind(5, e.scope).bind(6, e.ref).bind(7, e.lane).bind(8, e.status).bind(9, e.reason)
        .bind(10, e.diagnostic).bind(11, e.fingerprint);
    if (s.step() != SQLITE_DONE) return db_error(m_db, "recording a bounce");
    return sqlite3_changes(m_db) > 0;
  }

  Result<std::int64_t> soft_bounces(std::string_view address, std::int64_t since) override {
    Stmt s(m_db, sql("SELECT COUNT(DISTINCT scope || ' ' || ref) FROM {}.bounce_events WHERE address = ?1 AND "
                     "kind = 'bounce' AND hard = 0 AND at >= ?2 AND reason IN ('mailbox-full', 'expired', "
                     "'other', 'user-unknown', 'host-unknown')").c_str());
    s.bind(1, address).bind(2, since);
    if (s.step() != SQLITE_ROW) return db_error(m_db, "counting soft bounces");
    return s.i64(0);
  }

  Result<std::vector<EventCounts>> event_counts(std::string_view scope, std::int64_t since) override {
    // Messages, not reports: a recipient who sends the same complaint five
    // times (or a DSN that comes back twice, altered) counts once.
    Stmt s(m_db, sql("SELECT scope, lane, COUNT(DISTINCT CASE WHEN kind = 'bounce' AND hard = 1 THEN ref END), "
                     "COUNT(DISTINCT CASE WHEN kind = 'bounce' AND hard = 0 THEN ref END), "
                     "COUNT(DISTINCT CASE WHEN kind = 'complaint' THEN ref END) FROM {}.bounce_events "
                     "WHERE (?1 = '' OR scope = ?1) AND at >= ?2 GROUP BY scope, lane ORDER BY scope, lane").c_str());
    s.bind(1, scope).bind(2, since);
    std::vector<EventCounts> out;
    int rc = 0;
    while ((rc = s.step()) == SQLITE_ROW) {
      out.push_back({std::string(s.text(0)), std::string(s.text(1)), s.i64(2), s.i64(3), s.i64(4)});
    }
    if (rc != SQLITE_DONE) return db_error(m_db, "counting bounces");
    return out;
  }

  Result<std::vector<std::pair<std::string, std::string>>> event_refs(std::string_view scope,
                                                                      std::int64_t since) override {
    Stmt s(m_db, sql("SELECT DISTINCT kind, ref FROM {}.bounce_events WHERE scope = ?1 AND at >= ?2 AND "
                     "(kind = 'complaint' OR hard = 1)").c_str());
    s.bind(1, scope).bind(2, since);
    std::vector<std::pair<std::string, std::string>> out;
    int rc = 0;
    while ((rc = s.step()) == SQLITE_ROW) out.emplace_back(std::string(s.text(0)), std::string(s.text(1)));
    if (rc != SQLITE_DONE) return db_error(m_db, "reading bounces");
    return out;
  }

  Result<void> register_campaign(const CampaignRecord& r) override {
    Stmt s(m_db, sql("INSERT INTO {}.org_campaigns (tag, id, store_path, secret_file) VALUES (?1, ?2, ?3, ?4) "
                     "ON CONFLICT(tag) DO UPDATE SET id = excluded.id, store_path = excluded.store_path, "
                     "secret_file = excluded.secret_file").c_str());
    s.bind(1, r.tag).bind(2, r.id).bind(3, r.store_path).bind(4, r.secret_file);
    if (s.step() != SQLITE_DONE) return db_error(m_db, "registering the campaign's bounce tag");
    return {};
  }

  Result<std::optional<CampaignRecord>> campaign_of_tag(std::string_view tag) override {
    Stmt s(m_db, sql("SELECT tag, id, store_path, secret_file FROM {}.org_campaigns WHERE tag = ?1").c_str());
    s.bind(1, tag);
    const int rc = s.step();
    if (rc == SQLITE_ROW) {
      return std::optional<CampaignRecord>(
          CampaignRecord{std::string(s.text(0)), std::string(s.text(1)), std::string(s.text(2)), std::string(s.text(3))});
    }
    if (rc != SQLITE_DONE) return db_error(m_db, "reading the campaigns' bounce tags");
    return std::optional<CampaignRecord>();
  }

 private:
  [[nodiscard]] std::string sql(std::string_view pattern) const {
    return fmt::format(fmt::runtime(pattern), "\"" + m_schema + "\"");
  }

  sqlite3* m_db;
  std::string m_schema;
  bool m_owns;
  std::unique_ptr<Stmt> m_lookup;
};

}  // namespace

Result<void> ensure_org_schema(sqlite3* db, const std::string& schema) {
  const std::string q = "\"" + schema + "\"";
  const std::string ddl = fmt::format(
      "CREATE TABLE IF NOT EXISTS {0}.org_suppressions (address TEXT NOT NULL, category TEXT NOT NULL, "
      "reason TEXT NOT NULL, scope TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (address, category));"
      "CREATE TABLE IF NOT EXISTS {0}.bounce_events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, "
      "hard INTEGER NOT NULL, address TEXT NOT NULL, scope TEXT NOT NULL, ref TEXT NOT NULL, lane TEXT NOT NULL, "
      "status TEXT NOT NULL, reason TEXT NOT NULL, diagnostic TEXT NOT NULL, fingerprint TEXT NOT NULL UNIQUE);"
      "CREATE INDEX IF NOT EXISTS {0}.bounce_events_address ON bounce_events(address, at);"
      "CREATE INDEX IF NOT EXISTS {0}.bounce_events_scope ON bounce_events(scope, at);"
      "CREATE TABLE IF NOT EXISTS {0}.org_campaigns (tag TEXT PRIMARY KEY, id TEXT NOT NULL, "
      "store_path TEXT NOT NULL, secret_file TEXT NOT NULL);",
      q);
  if (auto r = exec(db, ddl.c_str()); !r) return r;
  // A store written before the organisation's tables: a campaign's own list
  // (address, reason, at) or the service's (address, category, reason, scope, at).
  if (table_exists(db, schema, "suppressions")) {
    const auto columns = column_count(db, schema, "suppressions");
    const std::string move =
        columns == 3 ? fmt::format("INSERT OR IGNORE INTO {0}.org_suppressions (address, category, reason, scope, at) "
                                   "SELECT address, 'all', reason, '', at FROM {0}.suppressions;"
                                   "DROP TABLE {0}.suppressions;",
                                   q)
                     : fmt::format("INSERT OR IGNORE INTO {0}.org_suppressions (address, category, reason, scope, at) "
                                   "SELECT address, category, reason, scope, at FROM {0}.suppressions;"
                                   "DROP TABLE {0}.suppressions;",
                                   q);
    Txn txn(db);
    if (!txn.ok()) return db_error(db, "moving the suppression list");
    if (auto r = exec(db, move.c_str()); !r) return r;
    if (auto c = txn.commit(); !c) return c;
  }
  return {};
}

std::unique_ptr<OrgList> make_sqlite_org_list(sqlite3* db, std::string schema) {
  return std::make_unique<SqliteOrgList>(db, std::move(schema), false);
}

Result<std::unique_ptr<OrgList>> open_sqlite_org_list(const std::string& path) {
  std::error_code ec;
  if (path != ":memory:" && !std::filesystem::exists(path, ec)) {
    // Created 0600 before SQLite opens it: it holds addresses.
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
      return fail(fmt::format("{}: cannot create the state store: {}", path, std::strerror(errno)),
                  ExitCode::k_runtime);
    }
    if (fd >= 0) ::close(fd);
  }
  auto opened = open_database(path, "the state store");
  if (!opened) return std::unexpected(opened.error());
  auto list = std::make_unique<SqliteOrgList>(*opened, "main", true);
  if (auto r = ensure_org_schema(*opened, "main"); !r) {
    return fail(fmt::format("{}: cannot create the organisation's tables: {}", path, r.error().message),
                ExitCode::k_runtime);
  }
  return std::unique_ptr<OrgList>(std::move(list));
}

}  // namespace blindcast::store
