// The service's store (service_store.hpp) in PostgreSQL: several `serve`
// nodes share API keys, idempotency keys, the queue of transactional
// messages and the organisation's list. A message being sent is leased to
// its node (as a campaign's recipients are, pg_store.hpp): claim_due()
// takes due messages with FOR UPDATE SKIP LOCKED, and what a dead node left
// `sending` is counted as possibly delivered and queued again once its
// lease expired.
#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "store/pg_conn.hpp"
#include "store/pg_org_list.hpp"
#include "store/pg_schema.hpp"
#include "store/pg_store.hpp"
#include "store/service_store.hpp"
#include "store/field_codec.hpp"
#include "util/strings.hpp"

namespace blindcast::store {

namespace {

using pg::Connection;
using pg::Params;
using pg::Txn;
using SteadyClock = std::chrono::steady_clock;

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t now_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

template <class T>
std::unexpected<Error> failed(const Result<T>& r) {
  return std::unexpected(r.error());
}

class PgServiceStore final : public ServiceStore {
 public:
  explicit PgServiceStore(std::unique_ptr<Connection> c) : m_c(std::move(c)), m_org(pg::make_org_list(*m_c)) {}

  Result<void> add_key(const ApiKeyRecord& key) override {
    Params p;
    p.add(key.name).add(key.key_id).add_bytes(key.secret_hash).add(join_words(key.scopes)).add(join_words(key.cidrs))
        .add(key.created_at);
    auto r = m_c->query("INSERT INTO api_keys (name, key_id, secret_hash, scopes, cidrs, created_at) "
                        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, "
                        "secret_hash = excluded.secret_hash, scopes = excluded.scopes, cidrs = excluded.cidrs, "
                        "created_at = excluded.created_at, revoked_at = 0 WHERE api_keys.revoked_at <> 0",
                        p, "storing an API key");
    if (!r) return failed(r);
    if (r->affected() == 0) {
      return fail(fmt::format("a key named '{}' is in force already; revoke it first ('blindcast keys revoke {}') or "
                              "choose another name",
                              key.name, key.name));
    }
    return {};
  }

  Result<bool> revoke_key(std::string_view name) override {
    Params p;
    p.add(name).add(now_seconds());
    auto r = m_c->query("UPDATE api_keys SET revoked_at = $2 WHERE name = $1 AND revoked_at = 0", p,
                        "revoking an API key");
    if (!r) return failed(r);
    return r->affected() > 0;
  }

  Result<std::vector<ApiKeyRecord>> keys() override {
    auto r = m_c->query("SELECT name, key_id, secret_hash, scopes, cidrs, created_at, revoked_at FROM api_keys "
                        "ORDER BY name",
                        "reading API keys");
    if (!r) return failed(r);
    std::vector<ApiKeyRecord> out;
    for (int i = 0; i < r->size(); ++i) {
      out.push_back({std::string(r->text(i, 0)), std::string(r->text(i, 1)), r->bytes(i, 2), split_words(r->text(i, 3)),
                     split_words(r->text(i, 4)), r->i64(i, 5), r->i64(i, 6)});
    }
    return out;
  }

  Result<std::int64_t> change_counter() override {
    auto r = m_c->query("SELECT last_value + CASE WHEN is_called THEN 1 ELSE 0 END FROM api_keys_changes",
                        "reading the keys' version");
    if (!r) return failed(r);
    return r->i64(0, 0);
  }

  Result<void> begin_batch() override {
    m_batch = std::make_unique<Txn>(*m_c);
    if (!m_batch->began()) {
      auto e = m_batch->began().error();
      m_batch.reset();
      return std::unexpected(e);
    }
    return {};
  }

  Result<std::optional<IdempotencyRecord>> find_idempotency(std::string_view key_name,
                                                            std::string_view idem_key) override {
    Params p;
    p.add(key_name).add(idem_key);
    // Two nodes given the same key at once: the second waits for the first's
    // batch and then finds its answer (the lock ends with the transaction).
    if (m_batch) {
      auto l = m_c->query("SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2))", p, "locking an idempotency key");
      if (!l) return failed(l);
    }
    auto r = m_c->query("SELECT body_hash, status, response FROM idempotency WHERE key_name = $1 AND idem_key = $2", p,
                        "reading an idempotency key");
    if (!r) return failed(r);
    if (r->empty()) return std::optional<IdempotencyRecord>();
    return std::optional<IdempotencyRecord>(
        IdempotencyRecord{std::string(r->text(0, 0)), static_cast<int>(r->i64(0, 1)), std::string(r->text(0, 2))});
  }

  Result<void> put_idempotency(std::string_view key_name, std::string_view idem_key,
                               const IdempotencyRecord& rec) override {
    Params p;
    p.add(key_name).add(idem_key).add(rec.body_hash).add(std::int64_t{rec.status}).add(rec.response).add(now_seconds());
    auto r = m_c->query("INSERT INTO idempotency (key_name, idem_key, body_hash, status, response, created_at) "
                        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key_name, idem_key) DO UPDATE SET "
                        "body_hash = excluded.body_hash, status = excluded.status, response = excluded.response, "
                        "created_at = excluded.created_at",
                        p, "storing an idempotency key");
    if (!r) return failed(r);
    return {};
  }

  Result<std::int64_t> add_message(const NewMessage& m) override {
    const auto now = now_millis();
    Params p;
    p.add(m.public_id).add(m.stream).add(m.recipient).add(m.locale).add(m.lane).add(m.key_name).add(m.content_hash)
        .add_bytes(m.data).add(static_cast<std::int64_t>(m.state)).add(m.reply).add(now).add(m.envelope_from);
    auto r = m_c->query("INSERT INTO messages (public_id, stream, recipient, locale, lane, key_name, content_hash, data, "
                        "state, last_reply, created_at, updated_at, envelope_from) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12) RETURNING id",
                        p, "storing a message");
    if (!r) return failed(r);
    return r->i64(0, 0);
  }

  Result<void> append_audit(std::span<const ServiceAuditEvent> events) override {
    if (events.empty()) return {};
    std::vector<std::int64_t> at;
    std::vector<std::string> actor, address, action, detail;
    for (const auto& e : events) {
      at.push_back(e.at);
      actor.push_back(e.actor);
      address.push_back(e.address);
      action.push_back(e.action);
      detail.push_back(e.detail);
    }
    Params p;
    p.add_array(at).add_array(actor).add_array(address).add_array(action).add_array(detail);
    auto r = m_c->query("INSERT INTO service_audit (at, actor, address, action, detail) "
                        "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])",
                        p, "writing the audit log");
    if (!r) return failed(r);
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
    Params p;
    p.add(before);
    auto r = m_c->query("DELETE FROM idempotency WHERE created_at < $1", p, "expiring idempotency keys");
    if (!r) return failed(r);
    return r->affected();
  }

  Result<std::int64_t> recover_sending() override {
    // Only what a node that stopped renewing left: a live node's messages are its own.
    Txn txn(*m_c);
    if (!txn.began()) return std::unexpected(txn.began().error());
    Params p;
    p.add(now_seconds()).add(now_millis());
    // SKIP LOCKED: what another node is recovering at this instant is its to count.
    auto r = m_c->query("WITH r AS (UPDATE messages SET state = 0, maybe_delivered = true, attempts = attempts + 1, "
                        "next_attempt_at = 0, last_reply = 'in flight when its node stopped: possibly delivered, "
                        "sent again', updated_at = $2, leased_by = NULL, lease_expires_at = NULL WHERE id IN "
                        "(SELECT id FROM messages WHERE state = 1 AND (lease_expires_at IS NULL OR "
                        "lease_expires_at < clock_timestamp()) FOR UPDATE SKIP LOCKED) RETURNING id) "
                        "INSERT INTO message_attempts (message, at, reply) SELECT id, $1, 'in flight when its node "
                        "stopped: possibly delivered' FROM r ORDER BY id",
                        p, "recovering messages in flight");
    if (!r) return failed(r);
    if (auto c = txn.commit(); !c) return std::unexpected(c.error());
    return r->affected();
  }

  Result<std::vector<DueMessage>> claim_due(std::int64_t now, std::size_t limit) override {
    if (auto r = maintain(); !r) return std::unexpected(r.error());
    Params p;
    p.add(now).add(static_cast<std::int64_t>(limit)).add(now_millis()).add(pg::node_id()).add(k_lease.count());
    auto r = m_c->query(
        "WITH c AS (SELECT id FROM messages WHERE state IN (0, 3) AND next_attempt_at <= $1 "
        "ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) "
        "UPDATE messages m SET state = 1, updated_at = $3, leased_by = $4, "
        "lease_expires_at = clock_timestamp() + make_interval(secs => $5) FROM c WHERE m.id = c.id "
        "RETURNING m.id, m.envelope_from, m.recipient, m.lane, m.data, m.attempts, m.first_attempt_at, m.created_at, "
        "m.stream, m.next_attempt_at",
        p, "claiming due messages");
    if (!r) return failed(r);
    std::vector<std::pair<std::pair<std::int64_t, std::int64_t>, DueMessage>> rows;
    for (int i = 0; i < r->size(); ++i) {
      rows.push_back({{r->i64(i, 9), r->i64(i, 0)},
                      DueMessage{r->i64(i, 0), std::string(r->text(i, 1)), std::string(r->text(i, 2)),
                                 std::string(r->text(i, 3)), r->bytes(i, 4), static_cast<int>(r->i64(i, 5)),
                                 r->i64(i, 6), r->i64(i, 7), std::string(r->text(i, 8))}});
    }
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<DueMessage> out;
    out.reserve(rows.size());
    for (auto& [order, m] : rows) out.push_back(std::move(m));
    return out;
  }

  Result<void> record_outcomes(std::span<const MessageOutcome> outcomes) override {
    if (outcomes.empty()) return {};
    std::vector<std::int64_t> ids, states, nexts, attempted, maybes;
    std::vector<std::string> replies;
    for (const auto& o : outcomes) {
      ids.push_back(o.id);
      states.push_back(static_cast<std::int64_t>(o.state));
      replies.push_back(o.reply);
      nexts.push_back(o.next_attempt_at);
      attempted.push_back(o.attempted ? 1 : 0);
      maybes.push_back(o.maybe_delivered ? 1 : 0);
    }
    Txn txn(*m_c);
    if (!txn.began()) return std::unexpected(txn.began().error());
    Params p;
    p.add_array(ids).add_array(states).add_array(replies).add_array(nexts).add_array(attempted).add_array(maybes)
        .add(now_seconds()).add(now_millis()).add(pg::node_id());
    auto r = m_c->query(
        "UPDATE messages m SET state = u.st, last_reply = u.reply, next_attempt_at = u.nx, attempts = m.attempts + u.att, "
        "maybe_delivered = m.maybe_delivered OR u.maybe = 1, "
        "first_attempt_at = CASE WHEN m.first_attempt_at = 0 AND u.att = 1 THEN $7 ELSE m.first_attempt_at END, "
        "updated_at = $8, leased_by = NULL, lease_expires_at = NULL "
        "FROM unnest($1::bigint[], $2::int[], $3::text[], $4::bigint[], $5::int[], $6::int[]) "
        "AS u(id, st, reply, nx, att, maybe) WHERE m.id = u.id AND m.leased_by = $9",
        p, "recording outcomes");
    if (!r) return failed(r);
    Params a;
    a.add_array(ids).add_array(replies).add_array(attempted).add(now_seconds());
    auto w = m_c->query("INSERT INTO message_attempts (message, at, reply) SELECT u.id, $4, u.reply FROM "
                        "unnest($1::bigint[], $2::text[], $3::int[]) WITH ORDINALITY AS u(id, reply, att, n) "
                        "WHERE u.att = 1 ORDER BY u.n",
                        a, "recording attempts");
    if (!w) return failed(w);
    return txn.commit();
  }

  Result<std::optional<std::int64_t>> next_retry_at() override {
    auto r = m_c->query("SELECT MIN(next_attempt_at) FROM messages WHERE state IN (0, 3)", "reading the next retry");
    if (!r) return failed(r);
    if (r->is_null(0, 0)) return std::optional<std::int64_t>();
    return std::optional<std::int64_t>(r->i64(0, 0));
  }

  static constexpr const char* k_message_columns =
      "SELECT id, public_id, stream, recipient, lane, key_name, state, attempts, created_at, first_attempt_at, "
      "maybe_delivered, last_reply, updated_at FROM messages ";

  static MessageRecord message_row(const pg::Rows& r, int i) {
    return MessageRecord{r.i64(i, 0),
                         std::string(r.text(i, 1)),
                         std::string(r.text(i, 2)),
                         std::string(r.text(i, 3)),
                         std::string(r.text(i, 4)),
                         std::string(r.text(i, 5)),
                         static_cast<MessageState>(r.i64(i, 6)),
                         static_cast<int>(r.i64(i, 7)),
                         r.i64(i, 8),
                         r.i64(i, 9),
                         r.text(i, 10) == "t",
                         {},
                         std::string(r.text(i, 11)),
                         r.i64(i, 12)};
  }

  Result<void> read_history(MessageRecord& m) {
    Params q;
    q.add(m.id);
    auto a = m_c->query("SELECT at, reply FROM message_attempts WHERE message = $1 ORDER BY id", q, "reading attempts");
    if (!a) return std::unexpected(a.error());
    for (int i = 0; i < a->size(); ++i) m.history.push_back({a->i64(i, 0), std::string(a->text(i, 1))});
    return {};
  }

  Result<std::optional<MessageRecord>> message(std::string_view public_id) override {
    Params p;
    p.add(public_id);
    const std::string sql = std::string(k_message_columns) + "WHERE public_id = $1";
    auto r = m_c->query(sql.c_str(), p, "reading a message");
    if (!r) return failed(r);
    if (r->empty()) return std::optional<MessageRecord>();
    MessageRecord m = message_row(*r, 0);
    if (auto h = read_history(m); !h) return std::unexpected(h.error());
    return std::optional<MessageRecord>(std::move(m));
  }

  Result<std::vector<StreamCount>> stream_counts(std::int64_t since_ms) override {
    Params p;
    p.add(since_ms);
    auto r = m_c->query("SELECT stream, state, COUNT(*) FROM messages WHERE created_at >= $1 GROUP BY stream, state",
                        p, "counting messages by stream");
    if (!r) return failed(r);
    std::vector<StreamCount> out;
    for (int i = 0; i < r->size(); ++i) {
      out.push_back({std::string(r->text(i, 0)), static_cast<MessageState>(r->i64(i, 1)), r->i64(i, 2)});
    }
    return out;
  }

  Result<std::vector<MessageRecord>> recent_failures(std::size_t limit) override {
    Params p;
    p.add(static_cast<std::int64_t>(limit));
    const std::string sql = std::string(k_message_columns) +
                            "WHERE state IN (3, 4, 5) ORDER BY updated_at DESC, id DESC LIMIT $1";
    auto r = m_c->query(sql.c_str(), p, "reading failed messages");
    if (!r) return failed(r);
    std::vector<MessageRecord> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(message_row(*r, i));
    return out;
  }

  Result<std::vector<MessageRecord>> messages_to(std::string_view recipient, std::size_t limit) override {
    Params p;
    p.add(recipient).add(static_cast<std::int64_t>(limit));
    const std::string sql = std::string(k_message_columns) +
                            "WHERE lower(recipient) = lower($1) ORDER BY id DESC LIMIT $2";
    auto r = m_c->query(sql.c_str(), p, "reading messages to an address");
    if (!r) return failed(r);
    std::vector<MessageRecord> out;
    for (int i = 0; i < r->size(); ++i) {
      out.push_back(message_row(*r, i));
      if (auto h = read_history(out.back()); !h) return std::unexpected(h.error());
    }
    return out;
  }

  Result<std::vector<std::pair<std::string, std::int64_t>>> queue_depth() override {
    auto r = m_c->query("SELECT lane, COUNT(*) FROM messages WHERE state IN (0, 1, 3) GROUP BY lane ORDER BY lane",
                        "reading queue depths");
    if (!r) return failed(r);
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (int i = 0; i < r->size(); ++i) out.emplace_back(std::string(r->text(i, 0)), r->i64(i, 1));
    return out;
  }

  Result<std::int64_t> unfinished() override {
    auto r = m_c->query("SELECT COUNT(*) FROM messages WHERE state IN (0, 1, 3)", "counting unfinished messages");
    if (!r) return failed(r);
    return r->i64(0, 0);
  }

  OrgList& org_list() override { return *m_org; }

  Result<std::vector<ServiceAuditEvent>> audit(std::size_t limit) override {
    Params p;
    p.add(static_cast<std::int64_t>(limit));
    auto r = m_c->query("SELECT at, actor, address, action, detail FROM (SELECT * FROM service_audit ORDER BY id DESC "
                        "LIMIT $1) AS last ORDER BY id",
                        p, "reading the audit log");
    if (!r) return failed(r);
    std::vector<ServiceAuditEvent> out;
    for (int i = 0; i < r->size(); ++i) {
      out.push_back({r->i64(i, 0), std::string(r->text(i, 1)), std::string(r->text(i, 2)), std::string(r->text(i, 3)),
                     std::string(r->text(i, 4))});
    }
    return out;
  }

 private:
  // Renews this node's leases every k_lease_renew and, about once a second,
  // queues again what nodes that stopped renewing left `sending`.
  Result<void> maintain() {
    const auto now = SteadyClock::now();
    if (now - m_last_renew >= k_lease_renew) {
      m_last_renew = now;
      Params p;
      p.add(pg::node_id()).add(k_lease.count());
      auto r = m_c->query("UPDATE messages SET lease_expires_at = clock_timestamp() + make_interval(secs => $2) "
                          "WHERE id IN (SELECT id FROM messages WHERE leased_by = $1 AND state = 1 "
                          "FOR UPDATE SKIP LOCKED)",
                          p, "renewing this node's leases");
      if (!r) return std::unexpected(r.error());
    }
    if (now - m_last_recover >= std::chrono::seconds(1)) {
      m_last_recover = now;
      if (auto r = recover_sending(); !r) return std::unexpected(r.error());
    }
    return {};
  }

  std::unique_ptr<Connection> m_c;
  std::unique_ptr<OrgList> m_org;
  std::unique_ptr<Txn> m_batch;
  SteadyClock::time_point m_last_renew = SteadyClock::now();
  SteadyClock::time_point m_last_recover = SteadyClock::now();
};

}  // namespace

Result<std::unique_ptr<ServiceStore>> open_postgres_service_store(const std::string& uri) {
  auto c = pg::connect_migrated(pg::parse_locator(uri).uri);
  if (!c) return std::unexpected(c.error());
  return std::unique_ptr<ServiceStore>(std::make_unique<PgServiceStore>(std::move(*c)));
}

Result<std::unique_ptr<ServiceStore>> open_service_store(const std::string& state) {
  if (pg::is_uri(state)) return open_postgres_service_store(state);
  return open_sqlite_service_store(state);
}

}  // namespace blindcast::store
