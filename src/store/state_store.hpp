// The state store: every recipient's delivery state, campaign metadata, the
// halt flag and the append-only audit log (SPEC §4, §7), as roles (Journal,
// AuditLog, Gates, Suppressions, Ownership) that one implementation provides.
//
// Policy:
// - a recipient is `in_flight` (durably) before the end of its DATA is sent
//   and `sent` only after the server's 2xx reply. A group of messages goes
//   in flight as one "flight" record (one write, not one per recipient); each
//   outcome records the flight it belongs to, and the flight lands once
//   every member's outcome is recorded. After a crash, recover_in_flight()
//   counts the members of open flights without a recorded outcome as
//   possible duplicates, and they are sent again;
// - writes are batched by the caller (group commit); every write either
//   commits or returns an Error with ExitCode::k_runtime — the sender stops on
//   it, so nothing is sent that is not recorded;
// - the audit log cannot be updated or deleted through this interface.
// Implementations: SQLite (sqlite_store.hpp, the default); PostgreSQL
// (pg_store.hpp: one database for many campaigns and nodes).
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
#include <variant>
#include <vector>

#include "store/org_list.hpp"
#include "util/error.hpp"

namespace blindcast::store {

class OutcomeLog;

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
  std::string lane;
};

struct ImportRow {
  std::int64_t line = 0;
  std::string key;      // duplicate key (case-folded address)
  std::string email;
  std::string domain;
  std::string lane;     // provider lane of the domain
  std::string locale;
  std::vector<std::string> fields;
};

struct Outcome {
  std::int64_t id = 0;
  RecipientState state = RecipientState::k_sent;
  std::string reply;                // last server reply or error, addresses masked
  std::int64_t next_attempt_at = 0; // for deferred (and pending held back)
  bool maybe_delivered = false;     // a retry may duplicate it (lost after end of DATA)
  bool attempted = false;           // handed to the server: counts as an attempt
  std::int64_t flight = 0;          // the flight the attempt went out in (0: none)
  bool suppress = false;            // with k_bounced: the address joins the suppression list
};

struct StateCounts {
  std::array<std::int64_t, k_state_count> by_state{};
  std::int64_t total = 0;
  std::int64_t possible_duplicates = 0;             // extra deliveries that may have happened
  std::int64_t possible_duplicate_recipients = 0;   // recipients who may have more than one
  // Per lane and state, as committed to the rows (the outcome log's
  // pending records are in by_state only): what counts_by_lane() returns.
  std::vector<std::tuple<std::string, RecipientState, std::int64_t>> by_lane;
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
  // Reported after the relay accepted (DSNs, ARF), counted by the gate from
  // the organisation's list: hard bounces of canary members the relay did
  // not refuse, and complaints.
  std::int64_t late_bounces = 0;
  std::int64_t complaints = 0;
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

// One recipient as the dashboard's lookup shows it.
struct RecipientRecord {
  std::int64_t line = 0;
  std::string email;
  std::string lane;
  RecipientState state = RecipientState::k_pending;
  int attempts = 0;
  std::string reply;                // the last reply
  std::int64_t updated_at = 0;      // unix seconds; 0 before the first attempt
  std::int64_t duplicate_risk = 0;  // times it may have been delivered more than once
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
  // Whether this session drops rows whose key an earlier row of the import
  // had (the first kept) itself: the loader then keeps no table of keys.
  [[nodiscard]] virtual bool drops_duplicates() const { return false; }
  // After commit(): how many rows it dropped so.
  [[nodiscard]] virtual std::int64_t duplicates() const { return 0; }
};

// Recipients waiting in one lane: how many are due now.
struct LaneBacklog {
  std::string lane;
  std::int64_t due = 0;
};

// Role: the journal of every recipient's delivery state (SPEC §7).
// The reply recorded for a recipient whose message could not be built.
inline constexpr std::string_view k_render_failure = "cannot render: ";

class Journal {
 public:
  virtual ~Journal() = default;
  // Starts replacing the audience (one transaction). `digest`: the audience
  // file's, or empty. A store that several nodes share records it with the
  // import, and gives no session (nullptr) when that file's import was
  // committed while this one waited for its turn: nodes that start
  // together import it once.
  virtual Result<std::unique_ptr<ImportSession>> begin_import(std::string_view digest) = 0;
  Result<std::unique_ptr<ImportSession>> begin_import() { return begin_import({}); }
  // Gives every recipient the lane `lane_of(domain)` says (after the lanes
  // changed); one transaction.
  virtual Result<void> assign_lanes(const std::function<std::string(std::string_view domain)>& lane_of) = 0;
  // First applies the outcomes a crash left in the outcome log; then counts every recipient of an open flight
  // whose outcome was not recorded (and any row left in state in_flight) as a
  // possible duplicate, due again; lands those flights; returns how many.
  // Members the outcome log shows never reached the end of DATA are due
  // again without that. Their ids go to `not_delivered` when given, with
  // those of outcomes applied from the log that say the message was not
  // delivered (for the guard's ledger, which the last run never told).
  // Only the owner of the campaign's sending calls it.
  virtual Result<std::int64_t> recover_in_flight(std::vector<std::int64_t>* not_delivered = nullptr) = 0;
  // Makes failed recipients due again (one transaction): those whose message
  // could not be built (last reply starting with k_render_failure), or, with
  // `all`, every failed one (its retry schedule and age start again). Never a
  // bounced or suppressed one. Returns how many.
  virtual Result<std::int64_t> requeue_failed(bool all) = 0;
  // Recipients due at `now` per lane; with `canary_only`, of the canary sample.
  virtual Result<std::vector<LaneBacklog>> due_by_lane(std::int64_t now, bool canary_only) = 0;
  // Returns up to `limit` recipients of `lane` due at `now` with id >
  // `after_id`, by id; with `canary_only`, only those in the canary sample.
  virtual Result<std::vector<StoredRecipient>> next_for_lane(std::string_view lane, std::int64_t now,
                                                             std::size_t limit, std::int64_t after_id,
                                                             bool canary_only) = 0;
  // Calls `fn(id, email)` for every recipient not removed from the audience;
  // with `unsent_only`, only those still pending or deferred.
  virtual Result<void> for_each_recipient(const std::function<void(std::int64_t, std::string_view)>& fn,
                                          bool unsent_only = false) = 0;
  // Makes `ids` the canary sample (replacing any earlier one).
  virtual Result<void> set_canary(std::span<const std::int64_t> ids) = 0;
  // Delivery counts over the canary sample.
  virtual Result<CanaryStats> canary_stats() = 0;
  // Of `ids`, the canary members; with `not_bounced`, only those whose
  // delivery the relay did not refuse.
  virtual Result<std::vector<std::int64_t>> canary_among(std::span<const std::int64_t> ids, bool not_bounced) = 0;
  // Returns the earliest next_attempt_at of recipients waiting for a retry, if any.
  virtual Result<std::optional<std::int64_t>> next_retry_at(bool canary_only = false) = 0;
  // Returns recipients with ids in `ids`.
  virtual Result<std::vector<StoredRecipient>> load(std::span<const std::int64_t> ids) = 0;
  // In one transaction: records `outcomes`, lands the flights `landed`
  // (every member has its outcome among these or earlier ones) and puts
  // `ids` in flight as one new flight; returns its id (0 when `ids` is
  // empty). With `sync` the commit is synced to disk, and so is every
  // earlier one: it survives a power loss. Without, it is written (it
  // survives the process being killed) and becomes durable with the next
  // synced commit; a power loss in between loses it. An outcome applies
  // only to a row whose last recorded flight is older than its own (or
  // with flight 0), so recording one twice changes nothing.
  virtual Result<std::int64_t> record_and_mark(std::span<const Outcome> outcomes,
                                               std::span<const std::int64_t> landed,
                                               std::span<const std::int64_t> ids, bool sync = true) = 0;
  // The log where a send records outcomes between this store's transactions
  // (outcome_log.hpp); record_and_mark() then records the same outcomes.
  // What an earlier process left in it is applied first.
  virtual Result<OutcomeLog*> outcome_log() = 0;
  // Counts by state, including outcomes recorded but not yet applied (a
  // running send's, or those a crash left in the log).
  virtual Result<StateCounts> counts() = 0;
  // Recipients per (lane, state), as recorded in the store (a running send's
  // latest outcomes may still be in its outcome log).
  virtual Result<std::vector<std::tuple<std::string, RecipientState, std::int64_t>>> counts_by_lane() = 0;
  virtual Result<std::vector<RecentError>> recent_errors(std::size_t limit) = 0;
  // The recipient whose deduplication key (mail::dedup_key_of) is `key`, as
  // last committed (a running send's latest outcomes may not be in yet).
  virtual Result<std::optional<RecipientRecord>> find_recipient(std::string_view key) = 0;
  virtual Result<std::vector<std::pair<std::int64_t, std::string>>> rejected_rows(std::size_t limit) = 0;
  // Calls `fn` with every audience address (for the guard's index).
  virtual Result<void> for_each_address(const std::function<void(std::string_view)>& fn) = 0;
  // Cluster-wide pacing (SPEC §10): reserves up to `want` sends of `lane`
  // at `rate` messages a second for every node sharing the store; returns
  // how many may start now (0: the lane's budget is taken for the moment).
  // A store that one node uses alone grants them all (its shaper paces).
  // `slowed_to` > 0: this node's shaper slowed the lane to that rate after
  // throttling replies; every node then goes at most that fast until
  // k_slow_hold passes without such a report (one node's throttling
  // slows the lane for the cluster).
  virtual Result<std::int64_t> reserve_sends(std::string_view lane, double rate, std::int64_t want,
                                             double slowed_to = 0) {
    (void)lane;
    (void)rate;
    (void)slowed_to;
    return want;
  }
  // Whether reserve_sends() paces several nodes (the engine asks it only then).
  [[nodiscard]] virtual bool paces_cluster() const { return false; }
  // Cluster-wide connection caps (SPEC §10): how many messages of `lane`
  // this node may have on connections now, out of the lane's `cap` for
  // every node sharing the store. `wanted`: the node has work of the lane;
  // `in_use`: its messages of the lane under way (their slots stay held).
  // Nodes wanting a lane share its slots evenly (a node above its share
  // gives slots back as its messages end); a slot of a node that dies
  // frees itself. A store that one node uses alone gives the whole cap.
  virtual Result<int> share_connections(std::string_view lane, int cap, bool wanted, int in_use) {
    (void)lane;
    (void)wanted;
    (void)in_use;
    return cap;
  }
  // Renews this process's claim on its work when the store shares the
  // campaign with other nodes (called by the halt watcher every poll): a
  // node waiting on a slow server, or sending a slow lane, keeps its work.
  // Never makes the process a sender it is not.
  virtual Result<void> keep_alive() { return {}; }
};

// Role: the append-only audit log (SPEC §4).
class AuditLog {
 public:
  virtual ~AuditLog() = default;
  virtual Result<void> append_event(std::string_view kind, std::string_view actor, std::string_view detail) = 0;
  virtual Result<std::vector<AuditEvent>> events(std::size_t limit) = 0;
};

// Role: gates and flags: approvals, and small named values (halt, lint
// results, the audience digest, the progress of a running send).
class Gates {
 public:
  virtual ~Gates() = default;
  virtual Result<std::optional<std::string>> get_meta(std::string_view key) = 0;
  virtual Result<void> set_meta(std::string_view key, std::string_view value) = 0;
  virtual Result<void> delete_meta(std::string_view key) = 0;
  // Records an approval of `content_hash` by `by`.
  virtual Result<void> add_approval(std::string_view by, std::string_view content_hash) = 0;
  // Every approval, oldest first.
  virtual Result<std::vector<Approval>> approvals() = 0;
  // Waits up to `timeout_ms` for a sign that a halt was set or lifted
  // (PostgreSQL: a NOTIFY from another node); true when one came. A store
  // that has no such sign returns false at once, and the caller polls.
  virtual Result<bool> wait_for_halt_signal(int timeout_ms) {
    (void)timeout_ms;
    return false;
  }
  // Whether wait_for_halt_signal() waits (then the caller need not sleep).
  [[nodiscard]] virtual bool signals_halts() const { return false; }
};

// Role: the suppression list.
class Suppressions {
 public:
  virtual ~Suppressions() = default;
  // Adds `addresses` (normalised, any case) with `reason`; returns how many were new.
  virtual Result<std::int64_t> add_suppressions(std::span<const std::string> addresses, std::string_view reason) = 0;
  // Removes `address`; its unsent recipient becomes pending again.
  virtual Result<bool> remove_suppression(std::string_view address) = 0;
  // The suppression list: address, reason, time.
  virtual Result<std::vector<std::tuple<std::string, std::string, std::int64_t>>> suppressions(std::size_t limit) = 0;
  // Marks unsent recipients on the suppression list as suppressed; returns how many changed.
  virtual Result<std::int64_t> apply_suppressions() = 0;
  // The organisation's list this campaign's suppressions are part of (SPEC
  // §9): the store's own tables, or those of the store it was opened with.
  virtual OrgList& org_list() = 0;
};

// Held while a process owns the campaign's sending (one `send` at a time
// per store): the kernel releases it when the process dies, however it dies.
class OwnerLease {
 public:
  virtual ~OwnerLease() = default;
};

// Who holds the lease: "pid 4242 on host mail1 since 2026-11-29T05:12:44Z".
struct Owner {
  std::string host;
  std::int64_t pid = 0;
  std::int64_t since = 0;  // unix seconds
};

// Role: ownership of sending.
class Ownership {
 public:
  virtual ~Ownership() = default;
  // Takes the lease, or returns the current owner (no lease) when another
  // process holds it. An Error when the lock itself fails.
  virtual Result<std::variant<std::unique_ptr<OwnerLease>, Owner>> acquire_owner() = 0;
  // The process holding the lease now, if any (without taking it).
  virtual Result<std::optional<Owner>> current_owner() = 0;
};

// Every role of one store. Commands take the store; components take the
// narrowest role they need, so a second implementation (PostgreSQL) can
// provide them one by one.
class StateStore : public Journal, public AuditLog, public Gates, public Suppressions, public Ownership {};

// Opens (creating if needed) the SQLite store at `path`. The store is used by
// one thread at a time (it takes no lock around its calls); another thread
// opens a store of its own.
Result<std::unique_ptr<StateStore>> open_sqlite_store(const std::string& path);
// What an existing SQLite file holds, read without changing it: the
// campaign whose recipients are in it ("" when none), and whether it is a
// service store (server.toml's state). Several campaigns share one --state
// through it (cli/context.cpp).
struct StoreProbe {
  std::string campaign_id;
  bool service = false;
};
Result<StoreProbe> probe_sqlite_store(const std::string& path);

// The same, with the organisation's list in the SQLite database at
// `org_path` (attached; created when missing) instead of the store's own
// file: a campaign run by `serve` shares the service's list.
Result<std::unique_ptr<StateStore>> open_sqlite_store(const std::string& path, const std::string& org_path);

}  // namespace blindcast::store
