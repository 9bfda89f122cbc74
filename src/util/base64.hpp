// Base64 (RFC 4648 §4) and base64url without padding (§5): SMTP AUTH
// exchanges, unsubscribe tokens, DKIM values, and the lines of base64 message
// bodies (mail::append_base64_lines wraps this).
#pragma once

#include <string>
#include <string_view>

namespace blindcast::util {

// Appends `data` to `out` in standard base64 with padding, unbroken.
void append_base64(std::string& out, std::string_view data);
// Returns `data` in standard base64 with padding.
std::string base64(std::string_view data);

// Returns `data` in base64url without padding.
std::string base64url(std::string_view data);

}  // namespace blindcast::util
