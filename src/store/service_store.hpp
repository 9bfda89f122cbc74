// The service's store (SPEC §8): API keys, transactional messages and their
// attempts, idempotency keys, the organisation's suppression list and the
// service's audit log, as roles one implementation provides (SQLite, or
// PostgreSQL: store/pg_service_store.cpp). A campaign keeps its own state
// store; this one is `server.toml`'s `state`.
//
// Policy:
// - an API key is stored as the SHA-256 of its secret part, never itself;
// - a message is durable (synced commit) before the intake answers 202;
//   `sending` is recorded (synced) before a message goes to the transport,
//   and a message found `sending` at start was possibly delivered: it is
//   counted and sent again (at least once, as campaigns);
// - the audit log cannot be changed or deleted through this interface (SQLite
//   triggers refuse UPDATE and DELETE);
// - every write commits or returns an Error (exit code 1).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/org_list.hpp"
#include "util/error.hpp"

namespace blindcast::store {

struct ApiKeyRecord {
  std::string name;
  std::string key_id;           // the public part of the key (it finds the record)
  std::string secret_hash;      // SHA-256 of the secret part, raw 32 bytes
  std::vector<std::string> scopes;
  std::vector<std::string> cidrs;
  std::int64_t created_at = 0;
  std::int64_t revoked_at = 0;  // 0: in force
};

enum class MessageState : int {
  k_queued = 0,
  k_sending = 1,
  k_sent = 2,
  k_deferred = 3,
  k_bounced = 4,
  k_failed = 5,
  k_suppressed = 6,
};
inline constexpr int k_message_state_count = 7;

// The API's name of `state` ("queued").
const char* message_state_name(MessageState state);

struct NewMessage {
  std::string public_id;    // what the API answers ("msg_...")
  std::string stream;
  std::string recipient;
  std::string locale;
  std::string lane;
  std::string key_name;     // the key that sent it
  std::string envelope_from;
  std::string data;         // the exact bytes to send (built and guarded at intake)
  std::string content_hash; // of the stream when it was built
  MessageState state = MessageState::k_queued;
  std::string reply;        // why, for a message that is not queued (suppressed)
};

// An intake request's idempotency: (key name, Idempotency-Key) -> the answer.
struct IdempotencyRecord {
  std::string body_hash;
  int status = 0;
  std::string response;
};

struct Attempt {
  std::int64_t at = 0;
  std::string reply;
};

struct MessageRecord {
  std::int64_t id = 0;
  std::string public_id;
  std::string stream;
  std::string recipient;
  std::string lane;
  std::string key_name;              // the key that sent it
  MessageState state = MessageState::k_queued;
  int attempts = 0;
  std::int64_t created_at = 0;       // unix milliseconds
  std::int64_t first_attempt_at = 0; // unix seconds
  bool maybe_delivered = false;
  std::vector<Attempt> history;
  std::string last_reply;
  std::int64_t updated_at = 0;       // unix milliseconds
};

// How many messages of `stream` are in `state` (created since a moment).
struct StreamCount {
  std::string stream;
  MessageState state = MessageState::k_queued;
  std::int64_t count = 0;
};

// A message to hand to the transport.
struct DueMessage {
  std::int64_t id = 0;
  std::string envelope_from;
  std::string recipient;
  std::string lane;
  std::string data;
  int attempts = 0;
  std::int64_t first_attempt_at = 0;
  std::int64_t created_at = 0;  // unix milliseconds
  std::string stream;
};

struct MessageOutcome {
  std::int64_t id = 0;
  MessageState state = MessageState::k_sent;
  std::string reply;
  std::int64_t next_attempt_at = 0;  // deferred
  bool attempted = false;
  bool maybe_delivered = false;
};


struct ServiceAuditEvent {
  std::int64_t at = 0;   // unix seconds
  std::string actor;     // key name, or "-" without a key
  std::string address;   // the client's address
  std::string action;    // "POST /v1/messages"
  std::string detail;    // masked
};

class ServiceStore {
 public:
  virtual ~ServiceStore() = default;

  // ---- keys
  virtual Result<void> add_key(const ApiKeyRecord& key) = 0;
  // Marks `name` revoked; false when no key in force has that name.
  virtual Result<bool> revoke_key(std::string_view name) = 0;
  virtual Result<std::vector<ApiKeyRecord>> keys() = 0;
  // A number that changes whenever another connection changed the store
  // (SQLite's data_version): the key cache reloads when it moves.
  virtual Result<std::int64_t> change_counter() = 0;

  // ---- intake (one transaction per batch; the caller syncs by committing)
  // Starts a batch: every call until commit_batch() is one transaction.
  virtual Result<void> begin_batch() = 0;
  virtual Result<std::optional<IdempotencyRecord>> find_idempotency(std::string_view key_name,
                                                                    std::string_view idem_key) = 0;
  virtual Result<void> put_idempotency(std::string_view key_name, std::string_view idem_key,
                                       const IdempotencyRecord& record) = 0;
  // Inserts `m`; returns its row id.
  virtual Result<std::int64_t> add_message(const NewMessage& m) = 0;
  virtual Result<void> append_audit(std::span<const ServiceAuditEvent> events) = 0;
  // Commits the batch (synced: durable once this returns).
  virtual Result<void> commit_batch() = 0;
  // Rolls the batch back (after an error).
  virtual void rollback_batch() = 0;
  // Forgets idempotency keys older than `before` (unix seconds).
  virtual Result<std::int64_t> expire_idempotency(std::int64_t before) = 0;

  // ---- checkpoints (SQLite's WAL; no-ops elsewhere)
  // This connection's commits copy the WAL into the database only once it
  // holds `pages` pages (a safety valve: checkpoint() below does it).
  virtual Result<void> checkpoint_after(int /*pages*/) { return {}; }
  // Copies what the WAL holds into the database without waiting for any
  // reader or writer (PASSIVE), on the caller's thread.
  virtual Result<void> checkpoint() { return {}; }

  // ---- delivery
  // Messages left `sending` by a crash: counted as possibly delivered and
  // queued again. Returns how many.
  virtual Result<std::int64_t> recover_sending() = 0;
  // Up to `limit` messages due at `now` (unix seconds), oldest first, marked
  // `sending` in one transaction (SQLite: written, not synced; the outcome's
  // commit syncs it).
  virtual Result<std::vector<DueMessage>> claim_due(std::int64_t now, std::size_t limit) = 0;
  // Records `outcomes` (and their attempts) in one transaction.
  virtual Result<void> record_outcomes(std::span<const MessageOutcome> outcomes) = 0;
  // The earliest retry time of a deferred message.
  virtual Result<std::optional<std::int64_t>> next_retry_at() = 0;
  virtual Result<std::optional<MessageRecord>> message(std::string_view public_id) = 0;
  // Messages created since `since_ms` (unix milliseconds), by stream and state.
  virtual Result<std::vector<StreamCount>> stream_counts(std::int64_t since_ms) = 0;
  // The last `limit` messages that bounced, failed or were deferred, newest first (no history).
  virtual Result<std::vector<MessageRecord>> recent_failures(std::size_t limit) = 0;
  // The last `limit` messages to `recipient` (normalised as at intake; ASCII case ignored), newest first, with history.
  virtual Result<std::vector<MessageRecord>> messages_to(std::string_view recipient, std::size_t limit) = 0;
  // Messages queued, sending or deferred, per lane.
  virtual Result<std::vector<std::pair<std::string, std::int64_t>>> queue_depth() = 0;
  // How many messages are queued, sending or deferred.
  virtual Result<std::int64_t> unfinished() = 0;

  // ---- the organisation's suppression list, bounces and complaints (the
  // service's own file is the organisation's list)
  virtual OrgList& org_list() = 0;

  // ---- audit
  virtual Result<std::vector<ServiceAuditEvent>> audit(std::size_t limit) = 0;
};

// Opens (creating, mode 0600) the SQLite service store at `path`.
Result<std::unique_ptr<ServiceStore>> open_sqlite_service_store(const std::string& path);

}  // namespace blindcast::store
