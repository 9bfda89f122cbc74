// Opening the full stage (SPEC §4): the decisions a front end (the command
// line, or a service) asks for before the full stage sends, and what they
// record in the audit log.
//
// - The full stage sends when its gates are open (send/stages.hpp: lint clean
//   for the current content, the canary passed, enough approvals of it).
// - Closed gates refuse the send; the refusal is recorded ("gate_refused").
// - `force` with a reason opens closed gates; the forced send is recorded
//   ("force", by the person who forced it, with the reason and the gates it
//   forced) before anything is sent, and is not sent when that fails. A
//   forced send does not run lint: its result would only be listed.
// - An approval is recorded per person and content hash ("approve").
//
// Messages name the command line's options (--force, --reason, --by).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "campaign/campaign.hpp"
#include "send/stages.hpp"
#include "store/state_store.hpp"
#include "util/error.hpp"

namespace blindcast::send {

// Fails when `force` is asked of a stage other than full, or without a reason.
Result<void> check_force_request(std::string_view stage, bool force, std::string_view reason);

// Fails when no approver is named (approvals are counted per person).
Result<void> check_approver(std::string_view by);

struct FullStageDecision {
  bool open = false;                // the full stage may send: its gates are open, or were forced
  bool forced = false;              // closed gates were forced (and the force recorded)
  std::string content_hash;         // the content the gates were evaluated for
  std::vector<std::string> closed;  // the closed gates (refused or forced), each saying how to open it
};

// Evaluates the gates of the full stage and records the outcome in the audit
// log: a refusal (best effort) or a forced send by `actor` with `reason`
// (an error when it cannot be recorded: the send must not go ahead then).
// `dir` is the campaign directory as the person named it, for the lines that
// say how to open a gate.
Result<FullStageDecision> decide_full_stage(const campaign::LoadedCampaign& campaign, store::StateStore& store,
                                            const std::string& dir, bool force, const std::string& reason,
                                            const std::string& actor);

// The canary stage's one gate: lint clean for the current content (lint is
// run when it has not been for this content). The closed gate, saying how to
// open it, or nothing when the canary may send; a refusal is recorded.
// Only the test stage (seed addresses, synthetic rows) sends with lint errors.
Result<std::vector<std::string>> decide_canary_stage(const campaign::LoadedCampaign& campaign,
                                                     store::StateStore& store, const std::string& dir);

struct ApprovalResult {
  std::string content_hash;  // the content approved
  GateReport gates;          // the gates after the approval
};

// Records that `by` approves the campaign's current content; returns the
// gates after it. With `expected_hash`, only that content: when the files
// now hash otherwise (changed since the approver looked), nothing is
// recorded and the error is a gate refusal (exit 4).
Result<ApprovalResult> approve_content(const campaign::LoadedCampaign& campaign, store::StateStore& store,
                                       const std::string& by, const std::string& expected_hash = "");

}  // namespace blindcast::send
