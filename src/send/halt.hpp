// The campaign-wide halt flag, kept in the state store so every sender of the
// campaign (any process) sees it between batches. Two kinds: "operator"
// (`halt DIR --reason`) and "guard" (a privacy guard violation). A guard
// halt can only be released once the content hash has changed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

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

}  // namespace blindcast::send
