// Finds every audience address in a text, the way a reader would see it.
//
// At each '@' the scanner takes the run of local-part characters to its left
// and of domain characters to its right, and tries each plausible address:
// local parts starting at the run's start or after any punctuation inside it
// ("u=bob" -> "bob"), domains ending at each dot, at the end of the run, and
// where ASCII meets non-ASCII text ("bob@x.com是"). Candidates are
// lower-cased, U-label domains converted to A-labels, and looked up.
#pragma once

#include <functional>
#include <string_view>

#include "guard/address_index.hpp"

namespace blindcast::guard {

// Calls `found(candidate)` for each candidate in `text` present in `index`;
// stops early and returns false when `found` returns false.
bool scan_for_addresses(std::string_view text, const AddressIndex& index,
                        const std::function<bool(std::string_view)>& found);

}  // namespace blindcast::guard
