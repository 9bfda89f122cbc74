// Base64 (RFC 4648 §4) and base64url without padding (§5), for short values:
// SMTP AUTH exchanges and unsubscribe tokens. Message bodies use the
// line-wrapping encoder in mail/encoding.hpp.
#pragma once

#include <string>
#include <string_view>

namespace blindcast::util {

// Returns `data` in standard base64 with padding.
std::string base64(std::string_view data);

// Returns `data` in base64url without padding.
std::string base64url(std::string_view data);

}  // namespace blindcast::util
