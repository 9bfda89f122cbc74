// SQLite implementation of the state store (WAL, synchronous=FULL).
//
// One connection per process; the sender is the only writer during a send,
// and `halt`/`approve` from another process write through SQLite's own
// locking (busy timeout 5 s). Every write is inside an explicit transaction
// that rolls back unless committed.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>
#include <fmt/format.h>

#include "store/field_codec.hpp"
#include "store/outcome_log.hpp"
#include "store/sqlite_db.hpp"
#include "store/sqlite_org_list.hpp"
#include "store/state_store.hpp"

namespace blindcast::store {

const char* state_name(RecipientState state) {
  switch (state) {
    case RecipientState::k_pending: return "pending";
    case RecipientState::k_in_flight: return "in_flight";
    case RecipientState::k_sent: return "sent";
    case RecipientState::k_deferred: return "deferred";
    case RecipientState::k_bounced: return "bounced";
    case RecipientState::k_suppressed: return "suppressed";
    case RecipientState::k_failed: return "failed";
    case RecipientState::k_removed: return "removed";
  }
  return "unknown";
}

namespace {

using namespace sqlite;

constexpr const char* k_schema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recipients (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  line INTEGER NOT NULL,
  email TEXT NOT NULL,
  domain TEXT NOT NULL,
  locale TEXT NOT NULL,
  fields BLOB NOT NULL,
  generation INTEGER NOT NULL DEFAULT 0,
  state INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  duplicate_risk INTEGER NOT NULL DEFAULT 0,
  last_reply TEXT,
  updated_at INTEGER,
  first_attempt_at INTEGER,
  sent_at INTEGER,
  canary INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS recipients_canary ON recipients(id) WHERE canary = 1;
CREATE TABLE IF NOT EXISTS approvals (
  id INTEGER PRIMARY KEY, at INTEGER NOT NULL, by TEXT NOT NULL, content_hash TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS approvals_no_update BEFORE UPDATE ON approvals
  BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;
CREATE TRIGGER IF NOT EXISTS approvals_no_delete BEFORE DELETE ON approvals
  BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;
CREATE INDEX IF NOT EXISTS recipients_todo ON recipients(id) WHERE state IN (0, 3);
DROP INDEX IF EXISTS recipients_inflight;
-- A batch handed to the transport. Its recipients (8-byte little-endian ids)
-- are in flight until the transaction that records the batch's outcomes
-- deletes the row: one write per batch instead of one per recipient. Rows
-- left by a crash are what recover_in_flight() counts as possible duplicates.
-- (Stores written before flights existed may still hold state 1 rows.)
CREATE TABLE IF NOT EXISTS flights (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, recipients BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS rejected_rows (line INTEGER PRIMARY KEY, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL,
  actor TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql";

// Columns added since the first schema, with their definitions; added to
// older stores when they are opened.
constexpr std::tuple<const char*, const char*, const char*> k_added_columns[] = {
    // The provider lane of the recipient's domain (send/engine draws per lane).
    {"recipients", "lane", "TEXT NOT NULL DEFAULT ''"},
    // The flight of the last recorded attempt: an open flight's member whose
    // row names that flight has its outcome recorded (not a possible duplicate).
    {"recipients", "flight", "INTEGER NOT NULL DEFAULT 0"},
    // The boot (kernel boot id) of the machine that sent a flight whose
    // members reach the end of DATA only after the outcome log says so
    // (NULL: not known). After a crash on that same boot the log is whole,
    // and a member without that record never reached the end of DATA.
    {"flights", "boot", "TEXT"},
};

// Moves the store's own suppressions into the attached organisation's list.
constexpr const char* k_share_list =
    "BEGIN IMMEDIATE; INSERT OR IGNORE INTO org.org_suppressions SELECT * FROM main.org_suppressions; "
    "DELETE FROM main.org_suppressions; COMMIT";

// recipients_errors holds only the rows with a reply to show, newest first.
constexpr const char* k_lane_index =
    "DROP INDEX IF EXISTS recipients_summary; DROP TRIGGER IF EXISTS lane_counts_insert;"
    "CREATE INDEX IF NOT EXISTS recipients_lane_todo ON recipients(lane, id) WHERE state IN (0, 3);"
    "CREATE INDEX IF NOT EXISTS recipients_errors ON recipients(updated_at, id) "
    "WHERE state IN (3, 4, 6) OR (state = 0 AND next_attempt_at > 0)";

// The recipients counted per lane and state (and their duplicate risk), kept
// in the transaction of every write to `recipients`: `status` and the
// dashboard read a few rows instead of counting every recipient (1,000,000
// recipients: ~150 ms -> well under 1 ms). Updates and deletes keep it by
// trigger (~1.3 us more per row written); an import, the only writer of new
// rows, counts them all again before it commits (a trigger per inserted row
// would double the import's time). A store without the table gets it,
// filled from the rows, in one transaction.
constexpr const char* k_lane_counts_table =
    "CREATE TABLE lane_counts (lane TEXT NOT NULL, state INTEGER NOT NULL, n INTEGER NOT NULL, "
    "risk INTEGER NOT NULL, risky INTEGER NOT NULL, PRIMARY KEY (lane, state)) WITHOUT ROWID;"
    "INSERT INTO lane_counts SELECT lane, state, COUNT(*), SUM(duplicate_risk), SUM(duplicate_risk > 0) "
    "FROM recipients GROUP BY lane, state;";
constexpr const char* k_recount =
    "DELETE FROM lane_counts; INSERT INTO lane_counts SELECT lane, state, COUNT(*), SUM(duplicate_risk), "
    "SUM(duplicate_risk > 0) FROM recipients GROUP BY lane, state;";
constexpr const char* k_lane_counts_triggers = R"sql(
CREATE TRIGGER IF NOT EXISTS lane_counts_delete AFTER DELETE ON recipients BEGIN
  UPDATE lane_counts SET n = n - 1, risk = risk - OLD.duplicate_risk, risky = risky - (OLD.duplicate_risk > 0)
    WHERE lane = OLD.lane AND state = OLD.state;
END;
CREATE TRIGGER IF NOT EXISTS lane_counts_update AFTER UPDATE OF lane, state, duplicate_risk ON recipients
  WHEN OLD.lane IS NOT NEW.lane OR OLD.state IS NOT NEW.state OR OLD.duplicate_risk IS NOT NEW.duplicate_risk BEGIN
  UPDATE lane_counts SET n = n - 1, risk = risk - OLD.duplicate_risk, risky = risky - (OLD.duplicate_risk > 0)
    WHERE lane = OLD.lane AND state = OLD.state;
  INSERT INTO lane_counts VALUES (NEW.lane, NEW.state, 1, NEW.duplicate_risk, NEW.duplicate_risk > 0)
    ON CONFLICT (lane, state) DO UPDATE SET n = n + 1, risk = risk + excluded.risk, risky = risky + excluded.risky;
END;
)sql";

// The import this store's counts were made at: an import by a build without
// lane_counts (older, or a downgrade and back) leaves it behind
// audience_generation, and the counts are made again.
constexpr const char* k_counted_at =
    "INSERT OR REPLACE INTO meta (key, value) SELECT 'counted_generation', "
    "COALESCE((SELECT value FROM meta WHERE key = 'audience_generation'), '0');";

Result<void> ensure_lane_counts(sqlite3* db) {
  const auto current = [&] {
    Stmt has(db,
             "SELECT (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lane_counts') IS NOT NULL AND "
             "COALESCE((SELECT value FROM meta WHERE key = 'counted_generation'), '0') = "
             "COALESCE((SELECT value FROM meta WHERE key = 'audience_generation'), '0')");
    return has.step() == SQLITE_ROW && has.i64(0) == 1;
  };
  if (current()) return {};
  Txn txn(db);
  if (!txn.ok()) return db_error(db, "counting the recipients by lane");
  if (!current()) {  // another process may have made them while this one waited
    Stmt table(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lane_counts'");
    if (table.step() != SQLITE_ROW) {
      if (auto r = exec(db, k_lane_counts_table); !r) return r;
    } else if (auto r = exec(db, k_recount); !r) {
      return r;
    }
    if (auto r = exec(db, k_lane_counts_triggers); !r) return r;
    if (auto r = exec(db, k_counted_at); !r) return r;
  }
  return txn.commit();
}

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string encode_ids(std::span<const std::int64_t> ids) {
  std::string out(ids.size() * 8, '\0');
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto v = static_cast<std::uint64_t>(ids[i]);
    for (int b = 0; b < 8; ++b, v >>= 8) out[i * 8 + static_cast<std::size_t>(b)] = static_cast<char>(v & 0xFF);
  }
  return out;
}

// Returns false when `blob` is not a whole number of ids.
bool decode_ids(std::string_view blob, std::vector<std::int64_t>& out) {
  if (blob.size() % 8 != 0) return false;
  for (std::size_t i = 0; i < blob.size(); i += 8) {
    std::uint64_t v = 0;
    for (int b = 7; b >= 0; --b) v = (v << 8) | static_cast<unsigned char>(blob[i + static_cast<std::size_t>(b)]);
    out.push_back(static_cast<std::int64_t>(v));
  }
  return true;
}

class SqliteImport final : public ImportSession {
 public:
  // The import holds the write lock from here to commit(): it drops the
  // lane_counts triggers inside its transaction (an upsert is ~2.5x slower
  // per row on a table with update triggers), counts every row again and
  // puts the triggers back before it commits. A rollback restores them.
  SqliteImport(sqlite3* db, std::int64_t generation)
      : m_db(db),
        m_txn(db),
        m_generation(generation),
        m_uncounted(m_txn.ok() && exec(db, "DROP TRIGGER IF EXISTS lane_counts_update; "
                                           "DROP TRIGGER IF EXISTS lane_counts_delete;").has_value()),
        m_upsert(db,
                 "INSERT INTO recipients (key, line, email, domain, locale, fields, generation, lane) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(key) DO UPDATE SET "
                 "line = excluded.line, email = excluded.email, domain = excluded.domain, "
                 "locale = excluded.locale, fields = excluded.fields, generation = excluded.generation, "
                 "lane = excluded.lane, state = CASE WHEN state = 7 THEN 0 ELSE state END"),
        m_reject(db, "INSERT OR REPLACE INTO rejected_rows (line, reason) VALUES (?1, ?2)") {}

  [[nodiscard]] bool ok() const { return m_txn.ok() && m_uncounted && m_upsert.ok() && m_reject.ok(); }

  Result<void> add(const ImportRow& row) override {
    m_upsert.bind(1, row.key).bind(2, row.line).bind(3, row.email).bind(4, row.domain)
        .bind(5, row.locale).bind_blob(6, pack_fields(row.fields)).bind(7, m_generation).bind(8, row.lane);
    if (!m_upsert.run()) return db_error(m_db, "storing an audience row");
    return {};
  }

  Result<void> reject(std::int64_t line, std::string_view reason) override {
    m_reject.bind(1, line).bind(2, reason);
    if (!m_reject.run()) return db_error(m_db, "storing a rejected row");
    return {};
  }

  Result<std::int64_t> commit() override {
    Stmt removed(m_db, "UPDATE recipients SET state = 7 WHERE generation != ?1 AND state IN (0, 3)");
    removed.bind(1, m_generation);
    if (removed.step() != SQLITE_DONE) return db_error(m_db, "marking removed rows");
    const std::int64_t n = sqlite3_changes(m_db);
    Stmt gen(m_db, "INSERT OR REPLACE INTO meta (key, value) VALUES ('audience_generation', ?1)");
    gen.bind(1, std::to_string(m_generation));
    if (gen.step() != SQLITE_DONE) return db_error(m_db, "recording the import");
    if (auto r = exec(m_db, k_recount); !r) return std::unexpected(r.error());
    if (auto r = exec(m_db, k_lane_counts_triggers); !r) return std::unexpected(r.error());
    if (auto r = exec(m_db, k_counted_at); !r) return std::unexpected(r.error());
    if (auto c = m_txn.commit(); !c) return std::unexpected(c.error());
    return n;
  }

 private:
  sqlite3* m_db;
  Txn m_txn;
  std::int64_t m_generation;
  bool m_uncounted;  // the lane_counts triggers are dropped (until commit)
  Stmt m_upsert;
  Stmt m_reject;
};

class SqliteLease final : public OwnerLease {
 public:
  explicit SqliteLease(int fd) : m_fd(fd) {}
  ~SqliteLease() override { ::close(m_fd); }  // closing releases the flock
  SqliteLease(const SqliteLease&) = delete;
  SqliteLease& operator=(const SqliteLease&) = delete;

 private:
  int m_fd;
};

class SqliteStore final : public StateStore {
 public:
  SqliteStore(sqlite3* db, std::string path, std::string org_schema)
      : m_db(db),
        m_path(std::move(path)),
        m_org_schema(std::move(org_schema)),
        m_org(make_sqlite_org_list(db, m_org_schema)),
        m_suppress_sql(fmt::format("INSERT OR IGNORE INTO \"{}\".org_suppressions (address, category, reason, "
                                   "scope, at) SELECT key, 'all', ?2, COALESCE((SELECT value FROM meta WHERE "
                                   "key = 'campaign_id'), ''), ?3 FROM recipients WHERE id = ?1",
                                   m_org_schema)) {}
  ~SqliteStore() override {
    for (auto& s : m_cached) s.reset();  // finalized before the connection closes
    m_org.reset();
    sqlite3_close(m_db);
  }
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Result<std::optional<std::string>> get_meta(std::string_view key) override {
    Stmt s(m_db, "SELECT value FROM meta WHERE key = ?1");
    s.bind(1, key);
    const int rc = s.step();
    if (rc == SQLITE_ROW) return std::optional<std::string>(std::string(s.text(0)));
    if (rc == SQLITE_DONE) return std::optional<std::string>();
    return db_error(m_db, "reading metadata");
  }

  Result<void> set_meta(std::string_view key, std::string_view value) override {
    Stmt s(m_db, "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)");
    s.bind(1, key).bind(2, value);
    if (s.step() != SQLITE_DONE) return db_error(m_db, "writing metadata");
    return {};
  }

  Result<void> delete_meta(std::string_view key) override {
    Stmt s(m_db, "DELETE FROM meta WHERE key = ?1");
    s.bind(1, key);
    if (s.step() != SQLITE_DONE) return db_error(m_db, "writing metadata");
    return {};
  }

  Result<std::unique_ptr<ImportSession>> begin_import(std::string_view /*digest: one node*/) override {
    auto gen = get_meta("audience_generation");
    if (!gen) return std::unexpected(gen.error());
    const std::int64_t next = (*gen ? std::stoll(**gen) : 0) + 1;
    auto session = std::make_unique<SqliteImport>(m_db, next);
    if (!session->ok()) return db_error(m_db, "starting the audience import");
    return std::unique_ptr<ImportSession>(std::move(session));
  }

  Result<std::int64_t> requeue_failed(bool all) override {
    Stmt s(m_db, all ? "UPDATE recipients SET state = 0, next_attempt_at = 0, first_attempt_at = NULL, attempts = 0, "
                       "updated_at = ?1 WHERE state = 6"
                     : "UPDATE recipients SET state = 0, next_attempt_at = 0, updated_at = ?1 "
                       "WHERE state = 6 AND substr(last_reply, 1, ?2) = ?3");
    s.bind(1, now_seconds());
    if (!all) s.bind(2, static_cast<std::int64_t>(k_render_failure.size())).bind(3, k_render_failure);
    if (s.step() != SQLITE_DONE) return db_error(m_db, "making failed recipients due again");
    return static_cast<std::int64_t>(sqlite3_changes(m_db));
  }

  Result<std::int64_t> recover_in_flight(std::vector<std::int64_t>* not_delivered) override {
    // What the outcome log holds is applied in the same transaction, and
    // the log emptied only once it has committed.
    auto logged = OutcomeLog::read(m_path == ":memory:" ? std::string() : m_path);
    if (!logged) return std::unexpected(logged.error());
    if (!m_synced) {
      if (auto r = exec(m_db, "PRAGMA synchronous=FULL"); !r) return std::unexpected(r.error());
      m_synced = true;
    }
    Txn txn(m_db);
    if (!txn.ok()) return db_error(m_db, "starting recovery");
    const auto now = now_seconds();
    std::set<std::pair<std::int64_t, std::int64_t>> data_ends;  // (flight, recipient)
    for (const auto& e : logged->records) {
      if (e.kind == LogRecord::Kind::k_data_end) {
        data_ends.emplace(e.outcome.flight, e.outcome.id);
      } else {
        auto applied = apply(e.outcome, e.at);
        if (!applied) return std::unexpected(applied.error());
        // Not delivered, and the last run never got to tell the guard's
        // ledger (it does so after its commit).
        if (*applied && not_delivered != nullptr && e.outcome.state != RecipientState::k_sent &&
            !e.outcome.maybe_delivered) {
          not_delivered->push_back(e.outcome.id);
        }
      }
    }
    Stmt s(m_db,
           "UPDATE recipients SET state = 0, duplicate_risk = duplicate_risk + 1, updated_at = ?1 "
           "WHERE state = 1");
    s.bind(1, now);
    if (s.step() != SQLITE_DONE) return db_error(m_db, "recovering in-flight recipients");
    std::int64_t n = sqlite3_changes(m_db);
    // Every member of a flight left open whose outcome was not recorded may
    // have been delivered, whatever another command did to its row since —
    // unless the flight's end-of-DATA records are whole (sent on this boot
    // by a transport that writes none before its record) and it has none.
    auto members = open_flight_members(logged->id);
    if (!members) return std::unexpected(members.error());
    Stmt u(m_db,
           "UPDATE recipients SET duplicate_risk = duplicate_risk + 1, attempts = attempts + 1, "
           "first_attempt_at = COALESCE(first_attempt_at, ?2), updated_at = ?2, flight = ?3 "
           "WHERE id = ?1 AND flight != ?3");
    for (const auto& m : *members) {
      if (m.whole_log && !data_ends.contains({m.flight, m.id})) {  // never reached the end of DATA
        if (not_delivered != nullptr) not_delivered->push_back(m.id);
        continue;
      }
      u.bind(1, m.id).bind(2, now).bind(3, m.flight);
      if (!u.run()) return db_error(m_db, "recovering in-flight recipients");
      n += sqlite3_changes(m_db);
    }
    if (auto r = exec(m_db, "DELETE FROM flights"); !r) return db_error(m_db, "recovering in-flight recipients");
    if (auto c = txn.commit(); !c) return std::unexpected(c.error());
    if (auto r = OutcomeLog::remove(m_path == ":memory:" ? std::string() : m_path); !r) {
      return std::unexpected(r.error());
    }
    return n;
  }

  Result<void> assign_lanes(const std::function<std::string(std::string_view)>& lane_of) override {
    Txn txn(m_db);
    if (!txn.ok()) return db_error(m_db, "assigning lanes");
    if (auto r = exec(m_db, "CREATE TEMP TABLE IF NOT EXISTS domain_lanes (domain TEXT PRIMARY KEY, lane TEXT NOT NULL);"
                            "DELETE FROM temp.domain_lanes");
        !r) {
      return r;
    }
    {
      Stmt domains(m_db, "SELECT DISTINCT domain FROM recipients");
      Stmt add(m_db, "INSERT INTO temp.domain_lanes (domain, lane) VALUES (?1, ?2)");
      std::vector<std::string> all;
      while (domains.step() == SQLITE_ROW) all.emplace_back(domains.text(0));
      for (const auto& d : all) {
        add.bind(1, d).bind(2, lane_of(d));
        if (!add.run()) return db_error(m_db, "assigning lanes");
      }
    }
    if (auto r = exec(m_db, "UPDATE recipients SET lane = (SELECT lane FROM temp.domain_lanes d "
                            "WHERE d.domain = recipients.domain)");
        !r) {
      return r;
    }
    return txn.commit();
  }

  Result<std::vector<LaneBacklog>> due_by_lane(std::int64_t now, bool canary_only) override {
    Stmt s(m_db, canary_only ? "SELECT lane, COUNT(*) FROM recipients WHERE state IN (0, 3) AND canary = 1 "
                               "AND next_attempt_at <= ?1 GROUP BY lane ORDER BY lane"
                             : "SELECT lane, COUNT(*) FROM recipients WHERE state IN (0, 3) "
                               "AND next_attempt_at <= ?1 GROUP BY lane ORDER BY lane");
    s.bind(1, now);
    std::vector<LaneBacklog> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back({std::string(s.text(0)), s.i64(1)});
    if (rc != SQLITE_DONE) return db_error(m_db, "reading the lanes");
    return out;
  }

  std::vector<StoredRecipient> read_rows(Stmt& s, bool& corrupt) {
    std::vector<StoredRecipient> out;
    while (s.step() == SQLITE_ROW) {
      StoredRecipient r;
      r.id = s.i64(0);
      r.line = s.i64(1);
      r.email = s.text(2);
      r.locale = s.text(3);
      auto fields = unpack_fields(s.blob(4));
      if (!fields) {
        corrupt = true;
        break;
      }
      r.fields = std::move(*fields);
      r.attempts = static_cast<int>(s.i64(5));
      r.first_attempt_at = s.i64(6);
      r.lane = s.text(7);
      out.push_back(std::move(r));
    }
    return out;
  }

  Result<std::vector<StoredRecipient>> next_for_lane(std::string_view lane, std::int64_t now, std::size_t limit,
                                                     std::int64_t after_id, bool canary_only) override {
    Stmt& s = cached(k_next_for_lane,
                     "SELECT id, line, email, locale, fields, attempts, COALESCE(first_attempt_at, 0), lane FROM recipients "
                     "WHERE lane = ?1 AND state IN (0, 3) AND id > ?2 AND next_attempt_at <= ?3 AND canary >= ?5 "
                     "ORDER BY id LIMIT ?4");
    s.bind(1, lane).bind(2, after_id).bind(3, now).bind(4, static_cast<std::int64_t>(limit))
        .bind(5, std::int64_t{canary_only ? 1 : 0});
    bool corrupt = false;
    auto rows = read_rows(s, corrupt);
    s.reset();
    if (corrupt) return fail("state store: a stored row is corrupt", ExitCode::k_runtime);
    return rows;
  }

  Result<void> for_each_recipient(const std::function<void(std::int64_t, std::string_view)>& fn,
                                  bool unsent_only) override {
    Stmt s(m_db, unsent_only ? "SELECT id, email FROM recipients WHERE state IN (0, 3) ORDER BY id"
                             : "SELECT id, email FROM recipients WHERE state != 7 ORDER BY id");
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) fn(s.i64(0), s.text(1));
    if (rc != SQLITE_DONE) return db_error(m_db, "reading the audience");
    return {};
  }

  Result<void> set_canary(std::span<const std::int64_t> ids) override {
    Txn txn(m_db);
    if (!txn.ok()) return db_error(m_db, "choosing the canary");
    if (auto r = exec(m_db, "UPDATE recipients SET canary = 0 WHERE canary = 1"); !r) return r;
    Stmt s(m_db, "UPDATE recipients SET canary = 1 WHERE id = ?1");
    for (const auto id : ids) {
      s.bind(1, id);
      if (!s.run()) return db_error(m_db, "choosing the canary");
    }
    return txn.commit();
  }

  Result<CanaryStats> canary_stats() override {
    Stmt s(m_db,
           "SELECT COUNT(*), SUM(state = 2), SUM(state = 4), SUM(state = 6), SUM(state = 3), "
           "SUM(state IN (0, 1, 3)), SUM(state = 3 OR attempts > 1) FROM recipients WHERE canary = 1");
    if (s.step() != SQLITE_ROW) return db_error(m_db, "reading the canary");
    return CanaryStats{s.i64(0), s.i64(1), s.i64(2), s.i64(3), s.i64(4), s.i64(5), s.i64(6)};
  }

  Result<std::vector<std::int64_t>> canary_among(std::span<const std::int64_t> ids, bool not_bounced) override {
    Stmt s(m_db, "SELECT 1 FROM recipients WHERE id = ?1 AND canary = 1 AND (?2 = 0 OR state != 4)");
    std::vector<std::int64_t> out;
    for (const auto id : ids) {
      s.bind(1, id).bind(2, std::int64_t{not_bounced ? 1 : 0});
      const int rc = s.step();
      s.reset();
      if (rc == SQLITE_ROW) out.push_back(id);
      else if (rc != SQLITE_DONE) return db_error(m_db, "reading the canary");
    }
    return out;
  }

  Result<std::int64_t> add_suppressions(std::span<const std::string> addresses, std::string_view reason) override {
    return m_org->suppress_many(addresses, reason, "all", "");
  }

  Result<bool> remove_suppression(std::string_view address) override {
    Txn txn(m_db);
    if (!txn.ok()) return db_error(m_db, "changing the suppression list");
    auto removed = m_org->unsuppress(address);
    if (!removed) return std::unexpected(removed.error());
    Stmt back(m_db, "UPDATE recipients SET state = 0, next_attempt_at = 0 WHERE state = 5 AND key = ?1");
    back.bind(1, address);
    if (back.step() != SQLITE_DONE) return db_error(m_db, "changing the suppression list");
    if (auto c = txn.commit(); !c) return std::unexpected(c.error());
    return *removed;
  }

  Result<std::vector<std::tuple<std::string, std::string, std::int64_t>>> suppressions(std::size_t limit) override {
    auto list = m_org->suppression_list(limit);
    if (!list) return std::unexpected(list.error());
    std::vector<std::tuple<std::string, std::string, std::int64_t>> out;
    out.reserve(list->size());
    for (auto& e : *list) out.emplace_back(std::move(e.address), std::move(e.reason), e.at);
    return out;
  }

  Result<std::int64_t> apply_suppressions() override {
    if (m_org_schema != "main") {
      // What the journal's own connection (no list attached) added since.
      if (auto r = exec(m_db, k_share_list); !r) {
        (void)exec(m_db, "ROLLBACK");
        return std::unexpected(r.error());
      }
    }
    const std::string sql = fmt::format(
        "UPDATE recipients SET state = 5, last_reply = 'on the suppression list' "
        "WHERE state IN (0, 3) AND key IN (SELECT address FROM \"{}\".org_suppressions)",
        m_org_schema);
    Stmt s(m_db, sql.c_str());
    if (s.step() != SQLITE_DONE) return db_error(m_db, "applying the suppression list");
    return static_cast<std::int64_t>(sqlite3_changes(m_db));
  }

  OrgList& org_list() override { return *m_org; }

  Result<void> add_approval(std::string_view by, std::string_view content_hash) override {
    Stmt s(m_db, "INSERT INTO approvals (at, by, content_hash) VALUES (?1, ?2, ?3)");
    s.bind(1, now_seconds()).bind(2, by).bind(3, content_hash);
    if (s.step() != SQLITE_DONE) return db_error(m_db, "recording the approval");
    return {};
  }

  Result<std::vector<Approval>> approvals() override {
    Stmt s(m_db, "SELECT at, by, content_hash FROM approvals ORDER BY id");
    std::vector<Approval> out;
    while (s.step() == SQLITE_ROW) out.push_back({s.i64(0), std::string(s.text(1)), std::string(s.text(2))});
    return out;
  }

  Result<std::optional<std::int64_t>> next_retry_at(bool canary_only) override {
    // Deferred recipients, and pending ones held back.
    Stmt s(m_db, canary_only ? "SELECT MIN(next_attempt_at) FROM recipients WHERE state IN (0, 3) AND canary = 1 "
                               "AND next_attempt_at > 0"
                             : "SELECT MIN(next_attempt_at) FROM recipients WHERE state IN (0, 3) AND next_attempt_at > 0");
    const int rc = s.step();
    if (rc != SQLITE_ROW) return db_error(m_db, "reading the retry schedule");
    if (s.is_null(0)) return std::optional<std::int64_t>();
    return std::optional<std::int64_t>(s.i64(0));
  }

  Result<std::vector<StoredRecipient>> load(std::span<const std::int64_t> ids) override {
    Stmt s(m_db,
           "SELECT id, line, email, locale, fields, attempts, COALESCE(first_attempt_at, 0), lane FROM recipients "
           "WHERE id = ?1");
    std::vector<StoredRecipient> out;
    for (const auto id : ids) {
      s.bind(1, id);
      bool corrupt = false;
      auto rows = read_rows(s, corrupt);
      s.reset();
      if (corrupt) return fail("state store: a stored row is corrupt", ExitCode::k_runtime);
      for (auto& r : rows) out.push_back(std::move(r));
    }
    return out;
  }

  Result<std::int64_t> record_and_mark(std::span<const Outcome> outcomes, std::span<const std::int64_t> landed,
                                       std::span<const std::int64_t> ids, bool sync) override {
    // Run for every group the send engine commits (hundreds a second): the
    // statements are prepared once. In WAL mode, synchronous=NORMAL writes
    // the commit to the log without syncing it; FULL syncs the log, which
    // makes every earlier commit durable too.
    if (sync != m_synced) {
      if (auto r = exec(m_db, sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"); !r) {
        return std::unexpected(r.error());
      }
      m_synced = sync;
    }
    Txn txn(m_db);
    if (!txn.ok()) return db_error(m_db, "recording delivery state");
    const auto now = now_seconds();
    for (const auto& o : outcomes) {
      if (auto r = apply(o, now); !r) return std::unexpected(r.error());
    }
    if (!landed.empty()) {
      Stmt& s = cached(k_land_flight, "DELETE FROM flights WHERE id = ?1");
      for (const auto flight : landed) {
        s.bind(1, flight);
        if (!s.run()) return db_error(m_db, "closing a batch in flight");
      }
    }
    std::int64_t flight = 0;
    if (!ids.empty()) {
      if (m_next_flight >= m_flight_end) {
        if (auto r = reserve_flights(); !r) return std::unexpected(r.error());
      }
      flight = m_next_flight++;
      Stmt& s = cached(k_open_flight, "INSERT INTO flights (id, at, recipients, boot) VALUES (?1, ?2, ?3, ?4)");
      s.bind(1, flight).bind(2, now).bind_blob(3, encode_ids(ids));
      if (m_log && m_log->records_data_ends() && !boot_id().empty()) s.bind(4, boot_id() + ":" + m_log->id());
      if (!s.run()) return db_error(m_db, "recording messages in flight");
    }
    if (sync && outcomes.empty() && landed.empty() && ids.empty()) {
      // Nothing to write, but earlier commits to make durable: a commit
      // that writes nothing syncs nothing.
      Stmt& s = cached(k_note_sync, "INSERT OR REPLACE INTO meta (key, value) VALUES ('synced_at', ?1)");
      s.bind(1, std::to_string(now));
      if (!s.run()) return db_error(m_db, "syncing the delivery state");
    }
    if (auto c = txn.commit(); !c) return std::unexpected(c.error());
    return flight;
  }

  Result<OutcomeLog*> outcome_log() override {
    if (!m_log) {
      // What an earlier process left is recovered before anything is
      // appended behind it (a send has normally done so already).
      auto left = OutcomeLog::read(m_path == ":memory:" ? std::string() : m_path);
      if (!left) return std::unexpected(left.error());
      if (!left->records.empty()) {
        if (auto r = recover_in_flight(nullptr); !r) return std::unexpected(r.error());
      }
      auto log = std::make_unique<OutcomeLog>(m_path == ":memory:" ? std::string() : m_path);
      if (auto r = log->open(); !r) return std::unexpected(r.error());
      m_log = std::move(log);
    }
    return m_log.get();
  }

  // The owner line of the lock file: "HOST PID SINCE".
  static Owner read_owner(int fd) {
    Owner o;
    char buf[512] = {0};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n > 0) {
      char host[256] = {0};
      long long pid = 0, since = 0;
      if (std::sscanf(buf, "%255s %lld %lld", host, &pid, &since) == 3) o = Owner{host, pid, since};
    }
    return o;
  }

  // Records one outcome, within the caller's transaction. It changes its
  // row only when the row's last recorded attempt is older than the
  // outcome's flight (flight numbers are never reused), so an outcome
  // recorded twice (the outcome log applied again after a crash) changes
  // nothing the second time.
  // True when the row changed.
  Result<bool> apply(const Outcome& o, std::int64_t at) {
    Stmt& s = cached(k_record_outcome,
                     "UPDATE recipients SET state = ?2, last_reply = ?3, next_attempt_at = ?4, updated_at = ?5, "
                     "sent_at = CASE WHEN ?2 = 2 THEN ?5 ELSE sent_at END, duplicate_risk = duplicate_risk + ?6, "
                     "attempts = attempts + ?7, "
                     "first_attempt_at = CASE WHEN ?7 = 1 THEN COALESCE(first_attempt_at, ?5) ELSE first_attempt_at END, "
                     "flight = CASE WHEN ?8 != 0 THEN ?8 ELSE flight END "
                     "WHERE id = ?1 AND (?8 = 0 OR flight < ?8)");
    s.bind(1, o.id).bind(2, static_cast<std::int64_t>(o.state)).bind(3, o.reply)
        .bind(4, o.next_attempt_at).bind(5, at).bind(6, std::int64_t{o.maybe_delivered ? 1 : 0})
        .bind(7, std::int64_t{o.attempted ? 1 : 0}).bind(8, o.flight);
    if (!s.run()) return db_error(m_db, "recording delivery results");
    const bool changed = sqlite3_changes(m_db) > 0;
    if (o.suppress) {  // a mailbox that does not exist is never tried again
      Stmt& suppress = cached(k_suppress_recipient, m_suppress_sql.c_str());
      suppress.bind(1, o.id).bind(2, "bounced: " + o.reply).bind(3, at);
      if (!suppress.run()) return db_error(m_db, "adding to the suppression list");
    }
    return changed;
  }

  // Reserves the next block of flight numbers, within the caller's
  // transaction. A row names the flight of its last recorded attempt, so a
  // number given twice would pass an attempt still on the wire for one
  // recorded. The table of open flights cannot say which numbers were given
  // (it is emptied whenever every flight has landed, and by recovery), so
  // the highest number reserved is kept in meta, a block at a time (one
  // write per block, not per flight); a store without it starts above every
  // number its rows and flights name.
  Result<void> reserve_flights() {
    std::int64_t last = 0;
    Stmt q(m_db, "SELECT value FROM meta WHERE key = 'flight_seq'");
    if (q.step() == SQLITE_ROW) {
      const auto text = q.text(0);
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), last);
      if (ec != std::errc() || end != text.data() + text.size() || last < 0) {
        return fail("state store: meta 'flight_seq' is corrupt; restore the store from a backup", ExitCode::k_runtime);
      }
    } else {
      Stmt m(m_db, "SELECT MAX(COALESCE((SELECT MAX(id) FROM flights), 0), "
                   "COALESCE((SELECT MAX(flight) FROM recipients), 0))");
      if (m.step() != SQLITE_ROW) return db_error(m_db, "numbering the batches in flight");
      last = m.i64(0);
    }
    last = std::max(last, m_flight_end - 1);
    m_next_flight = last + 1;
    m_flight_end = m_next_flight + k_flight_block;
    Stmt w(m_db, "INSERT OR REPLACE INTO meta (key, value) VALUES ('flight_seq', ?1)");
    w.bind(1, std::to_string(m_flight_end - 1));
    if (!w.run()) return db_error(m_db, "numbering the batches in flight");
    return {};
  }

  // A member of an open flight; `whole_log`: the flight was sent on this
  // boot with end-of-DATA records in the outcome log that is still there
  // (`log_id`), so that log says exactly which members may have arrived.
  struct Member {
    std::int64_t flight = 0;
    std::int64_t id = 0;
    bool whole_log = false;
  };

  // The members of every open flight.
  Result<std::vector<Member>> open_flight_members(const std::string& log_id) {
    const std::string whole_mark = boot_id().empty() || log_id.empty() ? std::string() : boot_id() + ":" + log_id;
    Stmt s(m_db, "SELECT id, recipients, boot FROM flights ORDER BY id");
    std::vector<Member> out;
    std::vector<std::int64_t> ids;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      ids.clear();
      if (!decode_ids(s.blob(1), ids)) return fail("state store: a batch in flight is corrupt", ExitCode::k_runtime);
      const bool whole = !whole_mark.empty() && !s.is_null(2) && s.text(2) == whole_mark;
      for (const auto id : ids) out.push_back({s.i64(0), id, whole});
    }
    if (rc != SQLITE_DONE) return db_error(m_db, "reading the batches in flight");
    return out;
  }

  Result<std::vector<std::tuple<std::string, RecipientState, std::int64_t>>> counts_by_lane() override {
    Stmt s(m_db, "SELECT lane, state, n FROM lane_counts WHERE n != 0 ORDER BY lane, state");
    std::vector<std::tuple<std::string, RecipientState, std::int64_t>> out;
    int rc = 0;
    while ((rc = s.step()) == SQLITE_ROW) {
      out.emplace_back(std::string(s.text(0)), static_cast<RecipientState>(s.i64(1)), s.i64(2));
    }
    if (rc != SQLITE_DONE) return db_error(m_db, "counting recipients by lane");
    return out;
  }

  Result<StateCounts> counts() override {
    // One snapshot of the rows and flights; the outcome log is read inside
    // it, and a record the snapshot already shows applied is skipped, so a
    // running send's commit in between changes nothing. (A record emptied
    // from the log after the snapshot began is missed: `status` during a
    // send is a moment's view.)
    ReadTxn snapshot(m_db);
    StateCounts c;
    Stmt s(m_db,
           "SELECT state, n, risk, risky, lane FROM lane_counts WHERE n != 0 ORDER BY lane, state");
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      const auto st = s.i64(0);
      if (st >= 0 && st < k_state_count) c.by_state[static_cast<std::size_t>(st)] += s.i64(1);
      c.by_lane.emplace_back(std::string(s.text(4)), static_cast<RecipientState>(st), s.i64(1));
      c.total += s.i64(1);
      c.possible_duplicates += s.i64(2);
      c.possible_duplicate_recipients += s.i64(3);
    }
    if (rc != SQLITE_DONE) return db_error(m_db, "counting recipients");
    // Outcomes in the outcome log (a running send's, or those a crash left)
    // are not in the rows yet: count each row as the log will leave it.
    std::set<std::pair<std::int64_t, std::int64_t>> data_ends;
    std::string log_id;
    auto logged = logged_rows(data_ends, log_id);
    if (!logged) return std::unexpected(logged.error());
    for (const auto& [id, row] : *logged) {
      if (!row.changed) continue;
      --c.by_state[static_cast<std::size_t>(row.stored_state)];
      ++c.by_state[static_cast<std::size_t>(row.state)];
      c.possible_duplicates += row.duplicate_risk - row.stored_duplicate_risk;
      if (row.stored_duplicate_risk == 0 && row.duplicate_risk > 0) ++c.possible_duplicate_recipients;
    }
    // Members of open flights without a recorded outcome still show their
    // state from before: count those that may have arrived as in flight
    // (every one, unless the flight's end-of-DATA records are whole).
    auto members = open_flight_members(log_id);
    if (!members) return std::unexpected(members.error());
    Stmt st(m_db, "SELECT state, flight FROM recipients WHERE id = ?1");
    for (const auto& [flight, id, whole_log] : *members) {
      if (whole_log && !data_ends.contains({flight, id})) continue;
      st.bind(1, id);
      if (st.step() == SQLITE_ROW) {
        auto state = st.i64(0);
        auto last_flight = st.i64(1);
        if (const auto l = logged->find(id); l != logged->end()) {
          state = static_cast<std::int64_t>(l->second.state);
          last_flight = l->second.flight;
        }
        if (last_flight != flight && (state == static_cast<std::int64_t>(RecipientState::k_pending) ||
                                      state == static_cast<std::int64_t>(RecipientState::k_deferred))) {
          --c.by_state[static_cast<std::size_t>(state)];
          ++c.by_state[static_cast<std::size_t>(RecipientState::k_in_flight)];
        }
      }
      st.reset();
    }
    return c;
  }

  // A row as the outcome log would leave it.
  struct LoggedRow {
    RecipientState stored_state{};
    std::int64_t stored_duplicate_risk = 0;
    RecipientState state{};
    std::int64_t duplicate_risk = 0;
    std::int64_t flight = 0;
    bool changed = false;
  };

  // Every row the outcome log names, with the log applied as apply() would;
  // adds the (flight, recipient) of its end-of-DATA records to `data_ends`.
  Result<std::unordered_map<std::int64_t, LoggedRow>> logged_rows(
      std::set<std::pair<std::int64_t, std::int64_t>>& data_ends, std::string& log_id) {
    std::unordered_map<std::int64_t, LoggedRow> rows;
    if (m_path == ":memory:") return rows;
    auto logged = OutcomeLog::read(m_path);
    if (!logged) return std::unexpected(logged.error());
    log_id = logged->id;
    Stmt s(m_db, "SELECT state, duplicate_risk, flight FROM recipients WHERE id = ?1");
    for (const auto& e : logged->records) {
      const Outcome& o = e.outcome;
      if (e.kind == LogRecord::Kind::k_data_end) {
        data_ends.emplace(o.flight, o.id);
        continue;
      }
      auto it = rows.find(o.id);
      if (it == rows.end()) {
        s.bind(1, o.id);
        const int rc = s.step();
        if (rc != SQLITE_ROW) {
          s.reset();
          if (rc == SQLITE_DONE) continue;  // a row the audience no longer has
          return db_error(m_db, "reading the outcome log's rows");
        }
        LoggedRow r;
        r.stored_state = r.state = static_cast<RecipientState>(std::clamp<std::int64_t>(s.i64(0), 0, k_state_count - 1));
        r.stored_duplicate_risk = r.duplicate_risk = s.i64(1);
        r.flight = s.i64(2);
        s.reset();
        it = rows.emplace(o.id, r).first;
      }
      LoggedRow& r = it->second;
      if (o.flight != 0 && r.flight >= o.flight) continue;  // applied already
      r.state = o.state;
      r.duplicate_risk += o.maybe_delivered ? 1 : 0;
      if (o.flight != 0) r.flight = o.flight;
      r.changed = r.state != r.stored_state || r.duplicate_risk != r.stored_duplicate_risk;
    }
    return rows;
  }

  Result<std::vector<RecentError>> recent_errors(std::size_t limit) override {
    Stmt s(m_db,
           "SELECT line, state, last_reply, updated_at FROM recipients "
           "WHERE state IN (3, 4, 6) OR (state = 0 AND next_attempt_at > 0) "
           "ORDER BY updated_at DESC, id DESC LIMIT ?1");
    s.bind(1, static_cast<std::int64_t>(limit));
    std::vector<RecentError> out;
    while (s.step() == SQLITE_ROW) {
      out.push_back({s.i64(0), state_name(static_cast<RecipientState>(s.i64(1))),
                     std::string(s.text(2)), s.i64(3)});
    }
    return out;
  }

  Result<std::optional<RecipientRecord>> find_recipient(std::string_view key) override {
    Stmt s(m_db,
           "SELECT line, email, lane, state, attempts, COALESCE(last_reply, ''), COALESCE(updated_at, 0), "
           "duplicate_risk FROM recipients WHERE key = ?1");
    s.bind(1, key);
    const int rc = s.step();
    if (rc == SQLITE_DONE) return std::optional<RecipientRecord>();
    if (rc != SQLITE_ROW) return db_error(m_db, "looking up a recipient");
    return std::optional<RecipientRecord>(RecipientRecord{s.i64(0), std::string(s.text(1)), std::string(s.text(2)),
                                                          static_cast<RecipientState>(s.i64(3)),
                                                          static_cast<int>(s.i64(4)), std::string(s.text(5)),
                                                          s.i64(6), s.i64(7)});
  }

  Result<std::vector<std::pair<std::int64_t, std::string>>> rejected_rows(std::size_t limit) override {
    Stmt s(m_db, "SELECT line, reason FROM rejected_rows ORDER BY line LIMIT ?1");
    s.bind(1, static_cast<std::int64_t>(limit));
    std::vector<std::pair<std::int64_t, std::string>> out;
    while (s.step() == SQLITE_ROW) out.emplace_back(s.i64(0), std::string(s.text(1)));
    return out;
  }

  Result<void> for_each_address(const std::function<void(std::string_view)>& fn) override {
    Stmt s(m_db, "SELECT email FROM recipients");
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) fn(s.text(0));
    if (rc != SQLITE_DONE) return db_error(m_db, "reading the audience");
    return {};
  }

  Result<void> append_event(std::string_view kind, std::string_view actor,
                            std::string_view detail) override {
    Stmt s(m_db, "INSERT INTO audit (at, kind, actor, detail) VALUES (?1, ?2, ?3, ?4)");
    s.bind(1, now_seconds()).bind(2, kind).bind(3, actor).bind(4, detail);
    if (s.step() != SQLITE_DONE) return db_error(m_db, "writing the audit log");
    return {};
  }

  Result<std::vector<AuditEvent>> events(std::size_t limit) override {
    Stmt s(m_db,
           "SELECT at, kind, actor, detail FROM (SELECT * FROM audit ORDER BY id DESC LIMIT ?1) "
           "ORDER BY id");
    s.bind(1, static_cast<std::int64_t>(limit));
    std::vector<AuditEvent> out;
    while (s.step() == SQLITE_ROW) {
      out.push_back({s.i64(0), std::string(s.text(1)), std::string(s.text(2)), std::string(s.text(3))});
    }
    return out;
  }

 Result<std::variant<std::unique_ptr<OwnerLease>, Owner>> acquire_owner() override {
    // A lock file beside the store: flock(2) is released by the kernel when
    // the process ends, however it ends (kill -9 included); the file holds
    // the owner's host, pid and start time for the one that is refused.
    const std::string lock_path = m_path + ".owner";
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return fail(fmt::format("{}: cannot open the owner lock: {}", lock_path, std::strerror(errno)),
                  ExitCode::k_runtime);
    }
    // current_owner() (status, halt) holds a shared lock for an instant: a
    // lease refused because of it is tried again.
    int locked = -1;
    for (int attempt = 0; attempt < 5 && (locked = ::flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EWOULDBLOCK;
         ++attempt) {
      ::usleep(10000);
    }
    if (locked != 0) {
      const int err = errno;
      auto o = read_owner(fd);
      ::close(fd);
      if (err != EWOULDBLOCK) {
        return fail(fmt::format("{}: cannot lock: {}", lock_path, std::strerror(err)), ExitCode::k_runtime);
      }
      return std::variant<std::unique_ptr<OwnerLease>, Owner>(o);
    }
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    const std::string line = fmt::format("{} {} {}\n", host[0] != 0 ? host : "localhost", ::getpid(), now_seconds());
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size())) {
      ::close(fd);
      return fail(fmt::format("{}: cannot write the owner lock: {}", lock_path, std::strerror(errno)),
                  ExitCode::k_runtime);
    }
    return std::variant<std::unique_ptr<OwnerLease>, Owner>(std::make_unique<SqliteLease>(fd));
  }

  Result<std::optional<Owner>> current_owner() override {
    const std::string lock_path = m_path + ".owner";
    const int fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return std::optional<Owner>();
      return fail(fmt::format("{}: cannot open the owner lock: {}", lock_path, std::strerror(errno)),
                  ExitCode::k_runtime);
    }
    std::optional<Owner> out;
    if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
      const int err = errno;
      if (err != EWOULDBLOCK) {
        ::close(fd);
        return fail(fmt::format("{}: cannot lock: {}", lock_path, std::strerror(err)), ExitCode::k_runtime);
      }
      out = read_owner(fd);
    }
    ::close(fd);  // drops the shared lock, if taken
    return out;
  }

 private:
  // Statements the send engine runs for every group, prepared once.
  enum Cached {
    k_next_for_lane, k_record_outcome, k_suppress_recipient, k_land_flight, k_open_flight, k_note_sync, k_cached_count
  };
  Stmt& cached(Cached which, const char* sql) {
    auto& slot = m_cached[which];
    if (!slot) slot = std::make_unique<Stmt>(m_db, sql);
    return *slot;
  }

  sqlite3* m_db;
  std::string m_path;
  std::string m_org_schema;  // "main", or "org" (attached)
  std::unique_ptr<OrgList> m_org;
  std::string m_suppress_sql;
  std::unique_ptr<Stmt> m_cached[k_cached_count];
  bool m_synced = true;  // PRAGMA synchronous is FULL (opened so)
  static constexpr std::int64_t k_flight_block = 1 << 20;
  std::int64_t m_next_flight = 0;  // flight numbers reserved for this connection: [m_next_flight, m_flight_end)
  std::int64_t m_flight_end = 0;
  std::unique_ptr<OutcomeLog> m_log;  // created by outcome_log()
};

}  // namespace

Result<std::unique_ptr<StateStore>> open_sqlite_store(const std::string& path) { return open_sqlite_store(path, {}); }

Result<StoreProbe> probe_sqlite_store(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    const std::string why = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return fail(fmt::format("{}: cannot read the state store: {}", path, why), ExitCode::k_runtime);
  }
  sqlite3_busy_timeout(db, 5000);
  StoreProbe p;
  int rc = SQLITE_OK;
  {
    Stmt tables(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('meta', 'api_keys', 'recipients')");
    bool meta = false;
    while ((rc = tables.step()) == SQLITE_ROW) {
      const auto name = tables.text(0);
      if (name == "api_keys") p.service = true;
      if (name == "meta") meta = true;
    }
    if (rc == SQLITE_DONE && meta && !p.service) {
      Stmt id(db, "SELECT value FROM meta WHERE key = 'campaign_id'");
      if (id.step() == SQLITE_ROW) p.campaign_id = std::string(id.text(0));
    }
  }
  const std::string why = sqlite3_errmsg(db);
  sqlite3_close(db);
  if (rc != SQLITE_DONE) {
    return fail(fmt::format("{}: not a blindcast state store ({})", path, why), ExitCode::k_usage);
  }
  return p;
}

Result<std::unique_ptr<StateStore>> open_sqlite_store(const std::string& path, const std::string& org_path) {
  auto opened = open_database(path, "the state store");
  if (!opened) return std::unexpected(opened.error());
  sqlite3* db = *opened;
  std::error_code ec;
  const bool attach = !org_path.empty() && org_path != path &&
                      !(std::filesystem::exists(org_path, ec) && std::filesystem::equivalent(org_path, path, ec));
  if (attach) {
    if (!std::filesystem::exists(org_path, ec)) {
      // Created 0600 before SQLite opens it: it holds addresses.
      const int fd = ::open(org_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd >= 0) ::close(fd);
    }
    Stmt a(db, "ATTACH DATABASE ?1 AS org");
    a.bind(1, org_path);
    if (a.step() != SQLITE_DONE) {
      const std::string why = sqlite3_errmsg(db);
      sqlite3_close(db);
      return fail(fmt::format("{}: cannot open the organisation's list: {}", org_path, why), ExitCode::k_runtime);
    }
    (void)exec(db, "PRAGMA org.journal_mode=WAL");
  }
  auto store = std::make_unique<SqliteStore>(db, path, attach ? "org" : "main");
  if (auto r = exec(db, k_schema); !r) {
    return fail(fmt::format("{}: cannot create the schema: {}", path, r.error().message),
                ExitCode::k_runtime);
  }
  for (const auto& [table, column, definition] : k_added_columns) {
    Stmt has(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2");
    has.bind(1, std::string_view(table)).bind(2, std::string_view(column));
    if (has.step() == SQLITE_ROW) continue;
    const std::string sql = fmt::format("ALTER TABLE {} ADD COLUMN {} {}", table, column, definition);
    if (auto r = exec(db, sql.c_str()); !r) {
      return fail(fmt::format("{}: cannot upgrade the schema: {}", path, r.error().message), ExitCode::k_runtime);
    }
  }
  if (auto r = exec(db, k_lane_index); !r) {
    return fail(fmt::format("{}: cannot create the schema: {}", path, r.error().message), ExitCode::k_runtime);
  }
  if (auto r = ensure_lane_counts(db); !r) {
    return fail(fmt::format("{}: cannot create the schema: {}", path, r.error().message), ExitCode::k_runtime);
  }
  if (auto r = ensure_org_schema(db, "main"); !r) {  // moves a list written before the organisation's
    return fail(fmt::format("{}: cannot create the schema: {}", path, r.error().message), ExitCode::k_runtime);
  }
  if (attach) {
    if (auto r = ensure_org_schema(db, "org"); !r) {
      return fail(fmt::format("{}: cannot create the organisation's tables: {}", org_path, r.error().message),
                  ExitCode::k_runtime);
    }
    // A list this store kept before it shared the organisation's joins it
    // (and is kept there alone: a removal from the shared list stays removed).
    if (auto r = exec(db, k_share_list); !r) {
      (void)exec(db, "ROLLBACK");
      return fail(fmt::format("{}: cannot share the suppression list: {}", org_path, r.error().message),
                  ExitCode::k_runtime);
    }
  }
  return std::unique_ptr<StateStore>(std::move(store));
}

}  // namespace blindcast::store
