// A mailbox (display name + address) as used in From and Reply-To, parsed
// from settings like "Example Exchange <noreply@example.com>".
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "mail/address.hpp"

namespace blindcast::mail {

struct Mailbox {
  std::string name;  // may be empty
  Address address;
};

// Parses "Name <addr>", "<addr>" or "addr"; the error is a short reason.
std::expected<Mailbox, std::string> parse_mailbox(std::string_view text);

// Returns the header value for `mailbox` (display name encoded as needed).
std::string format_mailbox(const Mailbox& mailbox);

}  // namespace blindcast::mail
