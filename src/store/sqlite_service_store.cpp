// SQLite implementation of the service store (WAL, synchronous=FULL but for
// claims). One connection per thread that uses it (intake, delivery, key
// cache, readers).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "store/service_store.hpp"
#include "store/sqlite_db.hpp"
#include "store/sqlite_org_list.hpp"
#include "store/field_codec.hpp"
#include "util/strings.hpp"
#include "util/log.hpp"

namespace blindcast::store {

const char* message_state_name(MessageState state) {
  switch (state) {
    case MessageState::k_queued: return "queued";
    case MessageState::k_sending: return "sending";
    case MessageState::k_sent: return "sent";
    case MessageState::k_deferred: return "deferred";
    case MessageState::k_bounced: return "bounced";
    case MessageState::k_failed: return "failed";
    case MessageState::k_suppressed: return "suppressed";
  }
  return "unknown";
}

namespace {

using namespace sqlite;

constexpr const char* k_schema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
  name TEXT PRIMARY KEY, key_id TEXT NOT NULL UNIQUE, secret_hash BLOB NOT NULL,
  scopes TEXT NOT NULL, cidrs TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY,
  public_id TEXT NOT NULL UNIQUE,
  stream TEXT NOT NULL,
  recipient TEXT NOT NULL,
  locale TEXT NOT NULL,
  lane TEXT NOT NULL,
  key_name TEXT NOT NULL,
  envelope_from TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  data BLOB NOT NULL,
  state INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  first_attempt_at INTEGER NOT NULL DEFAULT 0,
  maybe_delivered INTEGER NOT NULL DEFAULT 0,
  last_reply TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS messages_due ON messages(next_attempt_at, id) WHERE state IN (0, 3);
CREATE INDEX IF NOT EXISTS messages_sending ON messages(id) WHERE state = 1;
CREATE INDEX IF NOT EXISTS messages_recipient ON messages(recipient COLLATE NOCASE, id);
CREATE INDEX IF NOT EXISTS messages_created ON messages(created_at, stream, state);
CREATE INDEX IF NOT EXISTS messages_failures ON messages(updated_at, id) WHERE state IN (3, 4, 5);
CREATE TABLE IF NOT EXISTS attempts (message INTEGER NOT NULL, at INTEGER NOT NULL, reply TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS attempts_message ON attempts(message);
CREATE TABLE IF NOT EXISTS idempotency (
  key_name TEXT NOT NULL, idem_key TEXT NOT NULL, body_hash TEXT NOT NULL, status INTEGER NOT NULL,
  response TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (key_name, idem_key));
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, address TEXT NOT NULL,
  action TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql";

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t now_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class SqliteServiceStore final : public ServiceStore {
 public:
  explicit SqliteServiceStore(sqlite3* db) : m_db(db) {}
  ~SqliteServiceStore() override {
    m_batch.reset();
    finalize_cached();  // before the connection closes
    sqlite3_close(m_db);
  }
  SqliteServiceStore(const SqliteServiceStore&) = delete;
  SqliteServiceStore& operator=(const SqliteServiceStore&) = delete;

  Result<void> add_key(const ApiKeyRecord& key) override {
    Stmt s(m_db,
           "INSERT INTO api_keys (name, key_id, secret_hash, scopes, cidrs, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
           "ON CONFLICT(name) DO UPDATE SET key_id = excluded.key_id, secret_hash = excluded.secret_hash, "
           "scopes = excluded.scopes, cidrs = excluded.cidrs, created_at = excluded.created_at, revoked_at = 0 "
           "WHERE api_keys.revoked_at != 0");
    s.bind(1, key.name).bind(2, key.key_id).bind_blob(3, key.secret_hash).bind(4, join_words(key.scopes));
    s.bind(5, join_words(key.cidrs)).bind(6, key.created_at);
    if (s.step() != SQLITE_DONE) return db_error(m_db, "storing an API key");
    if (sqlite3_changes(m_db) == 0) {
      return fail(fmt::format("a key named '{}' is in force already; revoke it first ('blindcast keys revoke {}') or "
                              "choose another name",
                              key.name, key.name));
    }
    return {};
  }

  Result<bool> revoke_key(std::string_view name) override {
    Stmt s(m_db, "UPDATE api_keys SET revoked_at = ?2 WHERE name = ?1 AND revoked_at = 0");
    s.bind(1, name).bind(2, now_seconds());
    if (s.step() != SQLITE_DONE) return db_error(m_db, "revoking an API key");
    return sqlite3_changes(m_db) > 0;
  }

  Result<std::vector<ApiKeyRecord>> keys() override {
    Stmt s(m_db, "SELECT name, key_id, secret_hash, scopes, cidrs, created_at, revoked_at FROM api_keys ORDER BY name");
    std::vector<ApiKeyRecord> out;
    int rc = 0;
    while ((rc = s.step()) == SQLITE_ROW) {
      out.push_back({std::string(s.text(0)), std::string(s.text(1)), std::string(s.blob(2)), split_words(s.text(3)),
                     split_words(s.text(4)), s.i64(5), s.i64(6)});
    }
    if (rc != SQLITE_DONE) return db_error(m_db, "reading API keys");
    return out;
  }

  Result<std::int64_t> change_counter() override {
    Stmt s(m_db, "PRAGMA data_version");
    if (s.step() != SQLITE_ROW) return db_error(m_db, "reading the data version");
    return s.i64(0);
  }

  Result<void> begin_batch() override {
    if (auto r = resync(); !r) return r;
    m_batch = std::make_unique<Txn>(m_db);
    if (!m_batch->ok()) {
      m_batch.reset();
      return db_error(m_db, "beginning a transaction");
    }
    return {};
  }

  Result<std::optional<IdempotencyRecord>> find_idempotency(std::string_view key_name,
                                                            std::string_view idem_key) override {
    Stmt& s = cached(m_find_idem, "SELECT body_hash, status, response FROM idempotency WHERE key_name = ?1 AND idem_key = ?2");
    s.bind(1, key_name).bind(2, idem_key);
    const int rc = s.step();
    std::optional<IdempotencyRecord> out;
    if (rc == SQLITE_ROW) out = IdempotencyRecord{std::string(s.text(0)), static_cast<int>(s.i64(1)), std::string(s.text(2))};
    s.reset();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_error(m_db, "reading an idempotency key");
    return out;
  }

  Result<void> put_idempotency(std::string_view key_name, std::string_view idem_key,
                               const IdempotencyRecord& r) override {
    Stmt& s = cached(m_put_idem,
                     "INSERT OR REPLACE INTO idempotency (key_name, idem_key, body_hash, status, response, created_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    s.bind(1, key_name).bind(2, idem_key).bind(3, r.body_hash).bind(4, std::int64_t{r.status}).bind(5, r.response);
    s.bind(6, now_seconds());
    if (!s.run()) return db_error(m_db, "storing an idempotency key");
    return {};
  }

  Result<std::int64_t> add_message(const NewMessage& m) override {
    Stmt& s = cached(m_add_message,
                     "INSERT INTO messages (public_id, stream, recipient, locale, lane, key_name, content_hash, data, "
                     "state, last_reply, created_at, updated_at, envelope_from) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)");
    s.bind(1, m.public_id).bind(2, m.stream).bind(3, m.recipient).bind(4, m.locale).bind(5, m.lane);
    s.bind(6, m.key_name).bind(7, m.content_hash).bind_blob(8, m.data).bind(9, static_cast<std::int64_t>(m.state));
    s.bind(10, m.reply).bind(11, now_millis()).bind(12, m.envelope_from);
    if (!s.run()) return db_error(m_db, "storing a message");
    return sqlite3_last_insert_rowid(m_db);
  }

  Result<void> append_audit(std::span<const ServiceAuditEvent> events) override {
    Stmt& s = cached(m_audit, "INSERT INTO audit (at, actor, address, action, detail) VALUES (?1, ?2, ?3, ?4, ?5)");
    for (const auto& e : events) {
      s.bind(1, e.at).bind(2, e.actor).bind(3, e.address).bind(4, e.action).bind(5, e.detail);
      if (!s.run()) return db_error(m_db, "writing the audit log");
    }
    return {};
  }

  Result<void> commit_batch() override {
    if (!m_batch) return {};
    auto r = m_batch->commit();
    m_batch.reset();
    return r;
  }

  void rollback_batch() override { m_batch.reset(); }

  Result<std::int64_t> expire_idempotency(std::int64_t before) override {
    Stmt s(m_db, "DELETE FROM idempotency WHERE created_at < ?1");
    s.bind(1, before);
    if (s.step() != SQLITE_DONE) return db_error(m_db, "expiring idempotency keys");
    return static_cast<std::int64_t>(sqlite3_changes(m_db));
  }

  Result<std::int64_t> recover_sending() override {
    Txn txn(m_db);
    if (!txn.ok()) return db_error(m_db, "beginning recovery");
    Stmt a(m_db,
           "INSERT INTO attempts (message, at, reply) SELECT id, ?1, 'in flight when the service stopped: possibly "
           "delivered' FROM messages WHERE state = 1");
    a.bind(1, now_seconds());
    if (a.step() != SQLITE_DONE) return db_error(m_db, "recording attempts in flight");
    Stmt s(m_db,
           "UPDATE messages SET state = 0, maybe_delivered = 1, attempts = attempts + 1, next_attempt_at = 0, "
           "last_reply = 'in flight when the service stopped: possibly delivered, sent again', updated_at = ?1 "
           "WHERE state = 1");
    s.bind(1, now_millis());
    if (s.step() != SQLITE_DONE) return db_error(m_db, "recovering messages in flight");
    const std::int64_t n = sqlite3_changes(m_db);
    if (auto c = txn.commit(); !c) return std::unexpected(c.error());
    return n;
  }

  Result<void> checkpoint_after(int pages) override {
    return exec(m_db, fmt::format("PRAGMA wal_autocheckpoint={}", pages).c_str());
  }

  Result<void> checkpoint() override {
    // PASSIVE: copies what no reader still needs, blocks nobody; "busy" is
    // no error (the next round goes on).
    if (sqlite3_wal_checkpoint_v2(m_db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) != SQLITE_OK &&
        sqlite3_errcode(m_db) != SQLITE_BUSY) {
      return fail(fmt::format("the service's state store: copying its WAL into the database failed: {} (the WAL "
                              "grows meanwhile; check the disk's space and the file's permissions)",
                              sqlite3_errmsg(m_db)),
                  ExitCode::k_runtime);
    }
    return {};
  }

  Result<std::vector<DueMessage>> claim_due(std::int64_t now, std::size_t limit) override {
    // A claim is written, not synced (synchronous=NORMAL for this one
    // transaction): a killed process keeps it, the message itself was synced
    // at intake, and the next synced commit (the outcome's) makes it
    // durable. What a power loss can forget is only the mark of a message
    // on the wire: it goes out again then without `possible_duplicate`.
    // The sync it saves was a whole disk flush on every transactional
    // message's way to the relay, behind a running campaign's writes.
    if (auto r = exec(m_db, "PRAGMA synchronous=NORMAL"); !r) return std::unexpected(r.error());
    m_relaxed = true;
    struct Resync {
      SqliteServiceStore& store;
      ~Resync() { (void)store.resync(); }  // after the transaction (declared before it)
    } resync{*this};
    Txn txn(m_db);
    if (!txn.ok()) return db_error(m_db, "beginning a claim");
    Stmt& s = cached(m_due,
                     "SELECT id, envelope_from, recipient, lane, data, attempts, first_attempt_at, created_at, stream FROM messages "
                     "WHERE state IN (0, 3) AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2");
    s.bind(1, now).bind(2, static_cast<std::int64_t>(limit));
    std::vector<DueMessage> out;
    int rc = 0;
    while ((rc = s.step()) == SQLITE_ROW) {
      out.push_back({s.i64(0), std::string(s.text(1)), std::string(s.text(2)), std::string(s.text(3)),
                     std::string(s.blob(4)), static_cast<int>(s.i64(5)), s.i64(6), s.i64(7), std::string(s.text(8))});
    }
    s.reset();
    if (rc != SQLITE_DONE) return db_error(m_db, "reading due messages");
    Stmt& mark = cached(m_mark, "UPDATE messages SET state = 1, updated_at = ?2 WHERE id = ?1");
    for (const auto& m : out) {
      mark.bind(1, m.id).bind(2, now_millis());
      if (!mark.run()) return db_error(m_db, "marking messages in flight");
    }
    if (auto c = txn.commit(); !c) return std::unexpected(c.error());
    return out;
  }

  // Back to synchronous=FULL after a claim; an outcome or an intake never
  // commits on a connection that could not be put back (it fails instead).
  Result<void> resync() {
    if (!m_relaxed) return {};
    if (auto r = exec(m_db, "PRAGMA synchronous=FULL"); !r) {
      util::log_error(fmt::format("the service's state store: cannot sync its commits again: {}", r.error().message));
      return std::unexpected(r.error());
    }
    m_relaxed = false;
    return {};
  }

  Result<void> record_outcomes(std::span<const MessageOutcome> outcomes) override {
    if (outcomes.empty()) return {};
    if (auto r = resync(); !r) return r;
    Txn txn(m_db);
    if (!txn.ok()) return db_error(m_db, "beginning to record outcomes");
    Stmt& up = cached(m_outcome,
                      "UPDATE messages SET state = ?2, last_reply = ?3, next_attempt_at = ?4, "
                      "attempts = attempts + ?5, maybe_delivered = maybe_delivered | ?6, "
                      "first_attempt_at = CASE WHEN first_attempt_at = 0 AND ?5 = 1 THEN ?7 ELSE first_attempt_at END, "
                      "updated_at = ?8 WHERE id = ?1");
    Stmt& at = cached(m_attempt, "INSERT INTO attempts (message, at, reply) VALUES (?1, ?2, ?3)");
    const std::int64_t now = now_seconds();
    for (const auto& o : outcomes) {
      up.bind(1, o.id).bind(2, static_cast<std::int64_t>(o.state)).bind(3, o.reply).bind(4, o.next_attempt_at);
      up.bind(5, std::int64_t{o.attempted ? 1 : 0}).bind(6, std::int64_t{o.maybe_delivered ? 1 : 0}).bind(7, now);
      up.bind(8, now_millis());
      if (!up.run()) return db_error(m_db, "recording an outcome");
      if (o.attempted) {
        at.bind(1, o.id).bind(2, now).bind(3, o.reply);
        if (!at.run()) return db_error(m_db, "recording an attempt");
      }
    }
    return txn.commit();
  }

  Result<std::optional<std::int64_t>> next_retry_at() override {
    Stmt s(m_db, "SELECT MIN(next_attempt_at) FROM messages WHERE state IN (0, 3)");
    if (s.step() != SQLITE_ROW) return db_error(m_db, "reading the next retry");
    if (s.is_null(0)) return std::optional<std::int64_t>();
    return std::optional<std::int64_t>(s.i64(0));
  }

  static constexpr const char* k_message_columns =
      "SELECT id, public_id, stream, recipient, lane, key_name, state, attempts, created_at, first_attempt_at, "
      "maybe_delivered, last_reply, updated_at FROM messages ";

  static MessageRecord message_row(Stmt& s) {
    MessageRecord m{s.i64(0),           std::string(s.text(1)), std::string(s.text(2)), std::string(s.text(3)),
                    std::string(s.text(4)), std::string(s.text(5)), static_cast<MessageState>(s.i64(6)),
                    static_cast<int>(s.i64(7)), s.i64(8), s.i64(9), s.i64(10) != 0, {},
                    std::string(s.text(11)), s.i64(12)};
    return m;
  }

  Result<void> read_history(MessageRecord& m) {
    Stmt a(m_db, "SELECT at, reply FROM attempts WHERE message = ?1 ORDER BY rowid");
    a.bind(1, m.id);
    int arc = 0;
    while ((arc = a.step()) == SQLITE_ROW) m.history.push_back({a.i64(0), std::string(a.text(1))});
    if (arc != SQLITE_DONE) return db_error(m_db, "reading attempts");
    return {};
  }

  Result<std::optional<MessageRecord>> message(std::string_view public_id) override {
    Stmt s(m_db, fmt::format("{}WHERE public_id = ?1", k_message_columns).c_str());
    s.bind(1, public_id);
    const int rc = s.step();
    if (rc == SQLITE_DONE) return std::optional<MessageRecord>();
    if (rc != SQLITE_ROW) return db_error(m_db, "reading a message");
    MessageRecord m = message_row(s);
    if (auto h = read_history(m); !h) return std::unexpected(h.error());
    return std::optional<MessageRecord>(std::move(m));
  }

  Result<std::vector<StreamCount>> stream_counts(std::int64_t since_ms) override {
    Stmt s(m_db, "SELECT stream, state, COUNT(*) FROM messages WHERE created_at >= ?1 GROUP BY stream, state");
    s.bind(1, since_ms);
    std::vector<StreamCount> out;
    int rc = 0;
    while ((rc = s.step()) == SQLITE_ROW) {
      out.push_back({std::string(s.text(0)), static_cast<MessageState>(s.i64(1)), s.i64(2)});
    }
    if (rc != SQLITE_DONE) return db_error(m_db, "counting messages by stream");
    return out;
  }

  Result<std::vector<MessageRecord>> recent_failures(std::size_t limit) override {
    Stmt s(m_db, fmt::format("{}WHERE state IN (3, 4, 5) ORDER BY updated_at DESC, id DESC LIMIT ?1",
                             k_message_columns).c_str());
    s.bind(1, static_cast<std::int64_t>(limit));
    std::vector<MessageRecord> out;
    int rc = 0;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back(message_row(s));
    if (rc != SQLITE_DONE) return db_error(m_db, "reading failed messages");
    return out;
  }

  Result<std::vector<MessageRecord>> messages_to(std::string_view recipient, std::size_t limit) override {
    Stmt s(m_db, fmt::format("{}WHERE recipient = ?1 COLLATE NOCASE ORDER BY id DESC LIMIT ?2", k_message_columns).c_str());
    s.bind(1, recipient).bind(2, static_cast<std::int64_t>(limit));
    std::vector<MessageRecord> out;
    int rc = 0;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back(message_row(s));
    if (rc != SQLITE_DONE) return db_error(m_db, "reading messages to an address");
    for (auto& m : out) {
      if (auto h = read_history(m); !h) return std::unexpected(h.error());
    }
    return out;
  }

  Result<std::vector<std::pair<std::string, std::int64_t>>> queue_depth() override {
    Stmt s(m_db, "SELECT lane, COUNT(*) FROM messages WHERE state IN (0, 1, 3) GROUP BY lane ORDER BY lane");
    std::vector<std::pair<std::string, std::int64_t>> out;
    int rc = 0;
    while ((rc = s.step()) == SQLITE_ROW) out.emplace_back(std::string(s.text(0)), s.i64(1));
    if (rc != SQLITE_DONE) return db_error(m_db, "reading queue depths");
    return out;
  }

  Result<std::int64_t> unfinished() override {
    Stmt s(m_db, "SELECT COUNT(*) FROM messages WHERE state IN (0, 1, 3)");
    if (s.step() != SQLITE_ROW) return db_error(m_db, "counting unfinished messages");
    return s.i64(0);
  }

  OrgList& org_list() override { return *m_org; }

  Result<std::vector<ServiceAuditEvent>> audit(std::size_t limit) override {
    Stmt s(m_db,
           "SELECT at, actor, address, action, detail FROM (SELECT * FROM audit ORDER BY id DESC LIMIT ?1) ORDER BY id");
    s.bind(1, static_cast<std::int64_t>(limit));
    std::vector<ServiceAuditEvent> out;
    int rc = 0;
    while ((rc = s.step()) == SQLITE_ROW) {
      out.push_back({s.i64(0), std::string(s.text(1)), std::string(s.text(2)), std::string(s.text(3)),
                     std::string(s.text(4))});
    }
    if (rc != SQLITE_DONE) return db_error(m_db, "reading the audit log");
    return out;
  }

 private:
  Stmt& cached(std::unique_ptr<Stmt>& slot, const char* sql) {
    if (!slot) slot = std::make_unique<Stmt>(m_db, sql);
    return *slot;
  }

  sqlite3* m_db;
  bool m_relaxed = false;  // synchronous=NORMAL is on (a claim's)
  std::unique_ptr<Txn> m_batch;
  std::unique_ptr<Stmt> m_find_idem, m_put_idem, m_add_message, m_audit, m_due, m_mark, m_outcome, m_attempt;
  std::unique_ptr<OrgList> m_org = make_sqlite_org_list(m_db, "main");

  void finalize_cached() {
    for (auto* slot : {&m_find_idem, &m_put_idem, &m_add_message, &m_audit, &m_due, &m_mark, &m_outcome, &m_attempt}) {
      slot->reset();
    }
    m_org.reset();
  }
};

}  // namespace

Result<std::unique_ptr<ServiceStore>> open_sqlite_service_store(const std::string& path) {
  std::error_code ec;
  if (path != ":memory:" && !std::filesystem::exists(path, ec)) {
    // Created 0600 before SQLite opens it: it holds key hashes and addresses.
    // Only when it does not exist: closing a descriptor of a database this
    // process has open would drop SQLite's POSIX locks on it (another
    // process could then take the WAL for unused and delete it).
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
      return fail(fmt::format("{}: cannot create the service's state store: {}; create its directory or fix its "
                              "permissions",
                              path, std::strerror(errno)),
                  ExitCode::k_runtime);
    }
    if (fd >= 0) ::close(fd);
  }
  auto opened = open_database(path, "the service's state store");
  if (!opened) return std::unexpected(opened.error());
  sqlite3* db = *opened;
  auto store = std::make_unique<SqliteServiceStore>(db);
  if (auto r = exec(db, k_schema); !r) {
    return fail(fmt::format("{}: cannot create the schema: {}", path, r.error().message), ExitCode::k_runtime);
  }
  if (auto r = ensure_org_schema(db, "main"); !r) {
    return fail(fmt::format("{}: cannot create the schema: {}", path, r.error().message), ExitCode::k_runtime);
  }
  return std::unique_ptr<ServiceStore>(std::move(store));
}

}  // namespace blindcast::store
