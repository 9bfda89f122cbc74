// Masking of recipient addresses for logs, errors and terminal output.
//
// Policy: anything blindcast prints about a recipient goes through
// mask_address() unless the operator asked for clear addresses
// (`--show-addresses`). "alice.smith@example.com" -> "a***@e***.com".
#pragma once

#include <string>
#include <string_view>

namespace blindcast::util {

// Returns `address` masked, keeping the first character of the local part, the
// first character of the domain and the top-level domain.
std::string mask_address(std::string_view address);

// Replaces every address-looking run in `text` with its masked form.
std::string mask_addresses_in(std::string_view text);

}  // namespace blindcast::util
