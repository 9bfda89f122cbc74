// The campaign-wide halt flag, kept in the state store so every sender of the
// campaign (any process) sees it between batches. Two kinds: "operator"
// (`halt DIR --reason`), "guard" (a privacy guard violation; released only
// once the content hash has changed) and "limit" (a limit of the guard's
// ledger tripped: two senders, a loop, a rate).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "campaign/campaign.hpp"
#include "guard/privacy_guard.hpp"
#include "store/state_store.hpp"

namespace blindcast::send {

struct HaltState {
  std::string kind;          // "operator" or "guard"
  std::string reason;        // masked, safe to print
  std::string by;
  std::int64_t at = 0;
  std::string content_hash;  // content at the time of the halt
};

// Returns the current halt, if any.
Result<std::optional<HaltState>> read_halt(store::StateStore& store);
// Sets `halt` (replacing any earlier one).
Result<void> write_halt(store::StateStore& store, const HaltState& halt);
// Lifts the halt.
Result<void> clear_halt(store::StateStore& store);

// Fails with exit code 3 or 5 when the campaign is halted.
Result<void> check_not_halted(store::StateStore& store, const campaign::LoadedCampaign& campaign);

// The error a send stopped by a halt ends with (exit code 3 or 5).
Error halted_error(store::StateStore& store, const campaign::LoadedCampaign& campaign);

// Quarantines `data` (mode 0600, with the reason beside it), halts the
// campaign for every sender, records the violation, and returns the error
// to stop with (exit code 3). `line` is the audience line of the message (0
// for the seed-list stage, whose rows are samples or placeholders). A limit
// of the guard's ledger halts with kind "limit" (released without a content
// change); a content violation with kind "guard".
Error guard_halt(const campaign::LoadedCampaign& campaign, store::StateStore& store, std::int64_t line,
                 const std::string& data, const guard::Violation& violation);

}  // namespace blindcast::send
