// What `status` shows of a campaign (SPEC §2), gathered once for every front
// end: the command line (text or --json) and `serve`'s GET /v1/campaigns/{id}.
//
// Addresses in replies and audit details are masked unless the caller asks
// for them (`show_addresses`: the command line's flag, an admin key).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "send/halt.hpp"
#include "send/stages.hpp"
#include "store/state_store.hpp"
#include "util/error.hpp"

namespace blindcast::send {

// Bounces and complaints of one lane (a provider) against what it was sent.
struct LaneFeedback {
  std::string lane;
  std::int64_t sent = 0;        // accepted or refused by the relay
  std::int64_t refused = 0;     // refused by the relay (5xx)
  std::int64_t reported = 0;    // hard bounces reported later (DSNs)
  std::int64_t soft = 0;        // soft bounces reported later
  std::int64_t complaints = 0;  // feedback reports
  [[nodiscard]] double bounce_rate() const { return sent == 0 ? 0 : double(refused + reported) / double(sent); }
  [[nodiscard]] double complaint_rate() const { return sent == 0 ? 0 : double(complaints) / double(sent); }
};

// How many recent replies share a reason (addresses masked, ids and
// numbers folded: "421 4.7.0 [TSS04] Messages from # temporarily deferred").
struct ReasonCount {
  std::string state;   // deferred, bounced, failed, pending (waiting to retry)
  std::string reason;
  std::int64_t count = 0;
};

// A reply with addresses masked and identifiers (queue ids, IPs, long
// numbers) folded to '#', so that replies of one cause group together.
std::string reason_of(std::string_view reply);

struct StatusReport {
  std::string dir;                     // the campaign directory as named
  std::string state_store;             // the store's path; empty when there is none yet
  std::string content_hash;
  std::optional<store::Owner> sender;  // the process sending now
  std::optional<HaltState> halt;
  std::optional<GateReport> gates;
  std::optional<nlohmann::json> running;  // the progress a running send writes (at most 30 s old)
  store::StateCounts counts;
  std::vector<store::RecentError> errors;
  std::vector<store::AuditEvent> events;
  std::vector<std::pair<std::int64_t, std::string>> rejected;
  std::vector<LaneFeedback> feedback;  // per lane, and "all" last
  std::vector<ReasonCount> reasons;    // of the last k_reason_sample replies, most frequent first
  double max_bounce_rate = 0;          // the canary's limits, shown beside the rates
  double max_complaint_rate = 0;
};

inline constexpr std::size_t k_reason_sample = 2000;
inline constexpr std::size_t k_top_reasons = 10;

// Per lane, from the per-lane counts of the campaign's recipients and the
// organisation's events of `campaign_id`; "all" last (nothing when none
// was sent or reported).
Result<std::vector<LaneFeedback>> lane_feedback(
    const std::vector<std::tuple<std::string, store::RecipientState, std::int64_t>>& counts_by_lane,
    store::OrgList& org, const std::string& campaign_id);

// Reads the status of the campaign in `dir` from `store` (`state_store` is its
// path, empty for a store that does not exist yet); `history` is how many audit
// events and rejected rows to read.
Result<StatusReport> read_status(const std::string& dir, store::StateStore& store, const std::string& state_store,
                                 std::size_t history);

// The report as `status --json` prints it.
nlohmann::json status_json(const StatusReport& report, bool show_addresses);

}  // namespace blindcast::send
