// The guard's own reader for a header section (RFC 5322 §2.2, §3.4).
//
// split_header_fields() checks invariant 4 while splitting: CRLF line ends
// only, no NUL, no line over 998 octets, every line a field ("name:") or a
// continuation (leading white space). parse_single_mailbox() is deliberately
// strict: it accepts `addr-spec` or `phrase <addr-spec>` and nothing else
// (no lists, groups or comments), so anything ambiguous fails closed.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace blindcast::guard {

struct HeaderField {
  std::string name;   // lower-case
  std::string value;  // unfolded (CRLF before white space removed)
};

struct HeaderSection {
  std::vector<HeaderField> fields;
  std::size_t body_offset = 0;  // where the body starts in the message
  std::string error;            // non-empty: invariant 4 broken, with the reason
};

// Splits the header section of `message`.
HeaderSection split_header_fields(std::string_view message);

// Returns the address of `value` when it is exactly one mailbox, else nullopt.
std::optional<std::string> parse_single_mailbox(std::string_view value);

}  // namespace blindcast::guard
