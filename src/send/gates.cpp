#include "send/gates.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/strings.hpp"

namespace blindcast::send {

Result<void> check_force_request(std::string_view stage, bool force, std::string_view reason) {
  if (force && stage != "full") return fail("--force applies to the full stage only");
  if (force && util::trim(reason).empty()) {
    return fail("--force needs --reason TEXT: the reason is recorded in the audit log");
  }
  return {};
}

Result<void> check_approver(std::string_view by) {
  if (util::trim(by).empty()) return fail("--by NAME is required: approvals are counted per person");
  return {};
}

Result<FullStageDecision> decide_full_stage(const campaign::LoadedCampaign& campaign, store::StateStore& store,
                                            const std::string& dir, bool force, const std::string& reason,
                                            const std::string& actor) {
  if (auto ok = check_force_request("full", force, reason); !ok) return std::unexpected(ok.error());
  // A forced send does not need lint to run: its result would only be listed.
  auto gates = evaluate_gates(campaign, store, !force);
  if (!gates) return std::unexpected(gates.error());
  FullStageDecision d;
  d.content_hash = gates->content_hash;
  d.closed = gates->closed_gates(dir);
  if (d.closed.empty()) {
    d.open = true;
    return d;
  }
  if (!force) {
    (void)store.append_event("gate_refused", "blindcast", fmt::format("full refused: {}", fmt::join(d.closed, "; ")));
    return d;
  }
  if (auto w = store.append_event("force", actor,
                                  fmt::format("forced full stage: {} (closed: {})", reason, fmt::join(d.closed, "; ")));
      !w) {
    return std::unexpected(w.error());
  }
  d.open = true;
  d.forced = true;
  return d;
}

Result<std::vector<std::string>> decide_canary_stage(const campaign::LoadedCampaign& campaign,
                                                     store::StateStore& store, const std::string& dir) {
  auto gates = evaluate_gates(campaign, store, true);
  if (!gates) return std::unexpected(gates.error());
  std::vector<std::string> closed;
  if (!gates->lint_clean) {
    closed.push_back(fmt::format("lint: {} — fix them, then run 'blindcast lint {}'", gates->lint_detail, dir));
    (void)store.append_event("gate_refused", "blindcast", fmt::format("canary refused: {}", closed.back()));
  }
  return closed;
}

Result<ApprovalResult> approve_content(const campaign::LoadedCampaign& campaign, store::StateStore& store,
                                       const std::string& by, const std::string& expected_hash) {
  if (auto ok = check_approver(by); !ok) return std::unexpected(ok.error());
  auto gates = evaluate_gates(campaign, store, false);
  if (!gates) return std::unexpected(gates.error());
  if (!expected_hash.empty() && expected_hash != gates->content_hash) {
    return fail(fmt::format("the content changed since it was shown (shown {}, now {}); nothing was approved: look "
                            "at the preview again",
                            expected_hash.substr(0, 12), gates->content_hash.substr(0, 12)),
                ExitCode::k_gate);
  }
  if (auto w = store.add_approval(by, gates->content_hash); !w) return std::unexpected(w.error());
  if (auto w = store.append_event("approve", by, fmt::format("approved content {}", gates->content_hash)); !w) {
    return std::unexpected(w.error());
  }
  auto after = evaluate_gates(campaign, store, false);
  if (!after) return std::unexpected(after.error());
  return ApprovalResult{gates->content_hash, std::move(*after)};
}

}  // namespace blindcast::send
