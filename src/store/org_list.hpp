// The organisation's list (SPEC §9): one suppression list shared by every
// campaign and stream that uses the same state store, and the bounces and
// complaints that arrived for them. A role of the state store (a campaign's
// store, the service's, or a store opened for `bounces ingest` alone); the
// SQLite implementation keeps it in tables of whichever database file is the
// organisation's (the store's own file, or one attached to it).
//
// Policy:
// - addresses are keys: the dedup key (ASCII case folded), the same key a
//   campaign's recipients have;
// - category "all" (hard bounce, complaint, operator) stops every message;
//   "unsubscribe" stops all but a transactional stream's security notices;
// - a bounce or complaint is recorded once (its fingerprint: the report's
//   token and the address, with the report's own identity) however often a
//   report is ingested;
// - soft bounces turn hard by k_soft_bounce_limit rule below.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace blindcast::store {

struct SuppressionEntry {
  std::string address;
  std::string reason;
  std::string category;  // "all" (hard bounce, complaint, operator) or "unsubscribe"
  std::string scope;     // the campaign or stream it came from ("" when imported)
  std::int64_t at = 0;
};

// A bounce or complaint that was applied (its token verified).
struct BounceEvent {
  std::int64_t at = 0;
  std::string kind;         // "bounce" or "complaint"
  bool hard = false;
  std::string address;      // the key of the address the token names
  std::string scope;        // the campaign id, or the stream
  std::string ref;          // the recipient's id in the campaign, or the message id
  std::string lane;         // the provider lane of the address
  std::string status;       // "5.1.1"
  std::string reason;       // the report's reason ("user-unknown")
  std::string diagnostic;   // masked
  std::string fingerprint;  // one per report and address
};

// Bounces and complaints of one scope (campaign or stream) and lane: the
// messages they were about (several reports of one message count once).
struct EventCounts {
  std::string scope;
  std::string lane;
  std::int64_t hard = 0;
  std::int64_t soft = 0;
  std::int64_t complaints = 0;
};

// Soft bounces about the address (mailbox-full, expired, other, and a
// temporary user-unknown or host-unknown) turn into a hard one at the
// k_soft_bounce_limit-th on a distinct message within k_soft_bounce_window
// seconds (3 in 30 days: a mailbox full for a month is abandoned). Policy
// and reputation soft bounces (blocked, spam-detected, policy, auth-failure,
// rate-limited, too-large) never do: they say nothing about the address.
inline constexpr std::int64_t k_soft_bounce_limit = 3;
inline constexpr std::int64_t k_soft_bounce_window = 30 * 24 * 3600;

// Where a campaign's tokens lead: its id, the file of its state store and
// the file of its tokens' key (recorded by every send).
struct CampaignRecord {
  std::string tag;
  std::string id;
  std::string store_path;
  std::string secret_file;  // the key of its tokens (absolute)
};

class OrgList {
 public:
  virtual ~OrgList() = default;

  // ---- the suppression list
  // Adds `entry` (its address a key); false when it was there already.
  virtual Result<bool> suppress(const SuppressionEntry& entry) = 0;
  // Adds many under one reason, category and scope; how many were new.
  virtual Result<std::int64_t> suppress_many(std::span<const std::string> addresses, std::string_view reason,
                                             std::string_view category, std::string_view scope) = 0;
  // The entry for `address`, if any: a category "all" one first.
  virtual Result<std::optional<SuppressionEntry>> suppression(std::string_view address) = 0;
  // Takes `address` off the list (every category); whether it was there.
  virtual Result<bool> unsuppress(std::string_view address) = 0;
  // The list, oldest first, at most `limit`.
  virtual Result<std::vector<SuppressionEntry>> suppression_list(std::size_t limit) = 0;

  // ---- bounces and complaints
  // Records `event`; false when its fingerprint was recorded before (the
  // same report ingested again), and then nothing changes.
  virtual Result<bool> record_event(const BounceEvent& event) = 0;
  // Soft bounces (of the kinds that count) of `address` on distinct messages since `since`.
  virtual Result<std::int64_t> soft_bounces(std::string_view address, std::int64_t since) = 0;
  // Counts per scope and lane (every scope when `scope` is empty), of events since `since`.
  virtual Result<std::vector<EventCounts>> event_counts(std::string_view scope, std::int64_t since) = 0;
  // The kind and ref of every hard bounce and complaint of `scope` since
  // `since` (the canary gate keeps those of its members).
  virtual Result<std::vector<std::pair<std::string, std::string>>> event_refs(std::string_view scope,
                                                                              std::int64_t since) = 0;

  // ---- where tokens lead
  virtual Result<void> register_campaign(const CampaignRecord& record) = 0;
  virtual Result<std::optional<CampaignRecord>> campaign_of_tag(std::string_view tag) = 0;
};

// Whether a soft bounce of `reason` counts toward turning hard.
bool soft_reason_counts(std::string_view reason);

}  // namespace blindcast::store
