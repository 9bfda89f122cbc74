// The state store: every recipient's delivery state, campaign metadata, the
// halt flag and the append-only audit log (SPEC §4, §7).
//
// Policy:
// - a recipient is `in_flight` (durably) before the end of its DATA is sent
//   and `sent` only after the server's 2xx reply. A batch goes in flight as
//   one "flight" record (one write, not one per recipient) and lands when its
//   outcomes are recorded, in the same transaction; after a crash,
//   recover_in_flight() counts the recipients of open flights as possible
//   duplicates and they are sent again;
// - writes are batched by the caller (group commit); every write either
//   commits or returns an Error with ExitCode::k_runtime — the sender stops on
//   it, so nothing is sent that is not recorded;
// - the audit log cannot be updated or deleted through this interface.
// Implementations: SQLite (sqlite_store.hpp); PostgreSQL later.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "util/error.hpp"

namespace blindcast::store {

enum class RecipientState : int {
  k_pending = 0,
  k_in_flight = 1,
  k_sent = 2,
  k_deferred = 3,
  k_bounced = 4,
  k_suppressed = 5,
  k_failed = 6,
  k_removed = 7,  // no longer in the audience file; never sent
};
inline constexpr int k_state_count = 8;

// Returns the lower-case name of `state` ("in_flight").
const char* state_name(RecipientState state);

struct StoredRecipient {
  std::int64_t id = 0;
  std::int64_t line = 0;
  std::string email;
  std::string locale;
  std::vector<std::string> fields;
  int attempts = 0;
  std::int64_t first_attempt_at = 0;  // unix seconds; 0 before the first attempt
};

struct ImportRow {
  std::int64_t line = 0;
  std::string key;      // duplicate key (case-folded address)
  std::string email;
  std::string domain;
  std::string locale;
  std::vector<std::string> fields;
};

struct Outcome {
  std::int64_t id = 0;
  RecipientState state = RecipientState::k_sent;
  std::string reply;                // last server reply or error, addresses masked
  std::int64_t next_attempt_at = 0; // for deferred
  bool maybe_delivered = false;     // a retry may duplicate it (lost after end of DATA)
  bool attempted = false;           // handed to the server: counts as an attempt
};

struct StateCounts {
  std::array<std::int64_t, k_state_count> by_state{};
  std::int64_t total = 0;
  std::int64_t possible_duplicates = 0;             // extra deliveries that may have happened
  std::int64_t possible_duplicate_recipients = 0;   // recipients who may have more than one
  [[nodiscard]] std::int64_t of(RecipientState s) const { return by_state[static_cast<int>(s)]; }
};

struct AuditEvent {
  std::int64_t at = 0;  // unix seconds
  std::string kind;
  std::string actor;
  std::string detail;
};

struct CanaryStats {
  std::int64_t size = 0;
  std::int64_t sent = 0;
  std::int64_t bounced = 0;
  std::int64_t failed = 0;
  std::int64_t deferred = 0;        // currently deferred
  std::int64_t unfinished = 0;      // pending, in flight or deferred
  std::int64_t ever_deferred = 0;   // deferred at least once (attempts > 1, or deferred now)
};

struct Approval {
  std::int64_t at = 0;
  std::string by;
  std::string content_hash;
};

struct RecentError {
  std::int64_t line = 0;
  std::string state;
  std::string reply;
  std::int64_t at = 0;
};

// A bulk load of the audience; rolls back unless commit() is called.
class ImportSession {
 public:
  virtual ~ImportSession() = default;
  // Adds or updates `row` (keeps its delivery state if already known).
  virtual Result<void> add(const ImportRow& row) = 0;
  // Records a rejected audience line with its reason.
  virtual Result<void> reject(std::int64_t line, std::string_view reason) = 0;
  // Marks unsent recipients missing from this import as removed and commits.
  virtual Result<std::int64_t> commit() = 0;
};

class StateStore {
 public:
  virtual ~StateStore() = default;

  virtual Result<std::optional<std::string>> get_meta(std::string_view key) = 0;
  virtual Result<void> set_meta(std::string_view key, std::string_view value) = 0;
  virtual Result<void> delete_meta(std::string_view key) = 0;

  // Starts replacing the audience (one transaction).
  virtual Result<std::unique_ptr<ImportSession>> begin_import() = 0;

  // Counts every recipient of an open flight (and any row left in state
  // in_flight) as a possible duplicate, due again; returns how many.
  virtual Result<std::int64_t> recover_in_flight() = 0;
  // Returns up to `limit` recipients due at `now` with id > `after_id`, by
  // id; with `canary_only`, only those in the canary sample.
  virtual Result<std::vector<StoredRecipient>> next_batch(std::int64_t now, std::size_t limit,
                                                          std::int64_t after_id, bool canary_only = false) = 0;
  // Calls `fn(id, email)` for every recipient not removed from the audience;
  // with `unsent_only`, only those still pending or deferred.
  virtual Result<void> for_each_recipient(const std::function<void(std::int64_t, std::string_view)>& fn,
                                          bool unsent_only = false) = 0;
  // Makes `ids` the canary sample (replacing any earlier one).
  virtual Result<void> set_canary(std::span<const std::int64_t> ids) = 0;
  // Delivery counts over the canary sample.
  virtual Result<CanaryStats> canary_stats() = 0;
  // Adds `addresses` (normalised, any case) to the suppression list with `reason`.
  virtual Result<std::int64_t> add_suppressions(std::span<const std::string> addresses, std::string_view reason) = 0;
  // Removes `address` from the suppression list; its unsent recipient becomes pending again.
  virtual Result<bool> remove_suppression(std::string_view address) = 0;
  // The suppression list: address, reason, time.
  virtual Result<std::vector<std::tuple<std::string, std::string, std::int64_t>>> suppressions(std::size_t limit) = 0;
  // Marks unsent recipients on the suppression list as suppressed; returns how many changed.
  virtual Result<std::int64_t> apply_suppressions() = 0;
  // Records an approval of `content_hash` by `by`.
  virtual Result<void> add_approval(std::string_view by, std::string_view content_hash) = 0;
  // Every approval, oldest first.
  virtual Result<std::vector<Approval>> approvals() = 0;
  // Returns the earliest next_attempt_at of deferred recipients, if any.
  virtual Result<std::optional<std::int64_t>> next_retry_at() = 0;
  // Returns recipients with ids in `ids` (for staged subsets).
  virtual Result<std::vector<StoredRecipient>> load(std::span<const std::int64_t> ids) = 0;
  // Durably puts `ids` in flight as one flight (one transaction); returns its id.
  virtual Result<std::int64_t> mark_in_flight(std::span<const std::int64_t> ids) = 0;
  // Durably records `outcomes` and lands the flights `landed` (whose outcomes
  // are among them, or who were never handed over), in one transaction.
  virtual Result<void> record_outcomes(std::span<const Outcome> outcomes,
                                       std::span<const std::int64_t> landed = {}) = 0;
  // Both in a single transaction (one sync per batch instead of two): records
  // `outcomes`, lands `landed` and puts the next batch's `ids` in flight;
  // returns the new flight's id (0 when `ids` is empty).
  virtual Result<std::int64_t> record_and_mark(std::span<const Outcome> outcomes,
                                               std::span<const std::int64_t> landed,
                                               std::span<const std::int64_t> ids) = 0;

  virtual Result<StateCounts> counts() = 0;
  virtual Result<std::vector<RecentError>> recent_errors(std::size_t limit) = 0;
  virtual Result<std::vector<std::pair<std::int64_t, std::string>>> rejected_rows(std::size_t limit) = 0;
  // Calls `fn` with every audience address (for the guard's index).
  virtual Result<void> for_each_address(const std::function<void(std::string_view)>& fn) = 0;

  virtual Result<void> append_event(std::string_view kind, std::string_view actor,
                                    std::string_view detail) = 0;
  virtual Result<std::vector<AuditEvent>> events(std::size_t limit) = 0;
};

// Opens (creating if needed) the SQLite store at `path`. The store is used by
// one thread at a time (it takes no lock around its calls); another thread
// opens a store of its own.
Result<std::unique_ptr<StateStore>> open_sqlite_store(const std::string& path);

}  // namespace blindcast::store
