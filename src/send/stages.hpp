// Stages and gates (SPEC §4): the safe path is the only easy path.
//
// - The canary is a reproducible random sample: the `size` recipients (count,
//   or percentage of the audience, at least `min`) with the smallest
//   SHA-256(campaign id, address), drawn from those not yet sent — so the
//   same audience gives the same sample on every machine, and a canary run
//   again after a content change reaches people who have not had a message.
// - It passes when it is complete, `wait` has elapsed since it completed, its
//   hard-bounce and deferral rates are at or under the limits, no guard
//   violation happened since it started, and the content has not changed
//   since it was sent.
// - `full` opens when lint is clean for the current content, the canary
//   passed and `approvals_required` distinct people approved the current
//   content hash. `--force --reason` opens closed gates (never a guard halt)
//   and is recorded in the audit log (send/gates.hpp decides and records).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "campaign/campaign.hpp"
#include "store/state_store.hpp"

namespace blindcast::send {

struct CanaryVerdict {
  bool chosen = false;
  bool passed = false;
  std::string why;               // a person's explanation of the verdict
  store::CanaryStats stats;
  std::string sample_digest;     // identifies the sample (same audience -> same digest)
};

struct GateReport {
  std::string content_hash;
  bool lint_clean = false;
  std::string lint_detail;
  CanaryVerdict canary;
  std::vector<std::string> approvers;  // distinct names that approved the current hash
  std::int64_t approvals_required = 1;
  std::int64_t voided_approvals = 0;   // approvals of earlier content
  std::string canary_started_by;       // who started the canary of the current content, if known

  // The one who started the canary is not enough on their own: a second person must approve.
  [[nodiscard]] bool only_canary_starter_approved() const {
    return approvals_required > 0 && approvers.size() == 1 && !canary_started_by.empty() &&
           approvers.front() == canary_started_by;
  }
  [[nodiscard]] bool approvals_ok() const {
    return static_cast<std::int64_t>(approvers.size()) >= approvals_required && !only_canary_starter_approved();
  }
  [[nodiscard]] bool open() const { return lint_clean && canary.passed && approvals_ok(); }
  // One line per closed gate, each saying how to open it.
  [[nodiscard]] std::vector<std::string> closed_gates(const std::string& dir) const;
};

// Chooses (or keeps) the canary sample for the current content; returns its size.
Result<std::int64_t> prepare_canary(const campaign::LoadedCampaign& campaign, store::StateStore& store);

// Records that the canary finished sending, when it has.
Result<void> note_canary_progress(store::StateStore& store);

// Judges the canary against the settings.
Result<CanaryVerdict> canary_verdict(const campaign::LoadedCampaign& campaign, store::StateStore& store,
                                     const std::string& content_hash);

// Evaluates every gate of `full`; runs lint when its result for this content
// is not known yet (`run_lint`), and records a clean result.
Result<GateReport> evaluate_gates(const campaign::LoadedCampaign& campaign, store::StateStore& store, bool run_lint);

// Records that lint found the current content clean (`clean`) or not.
Result<void> record_lint_result(store::StateStore& store, const std::string& content_hash, bool clean,
                                std::size_t errors);

}  // namespace blindcast::send
