// UTF-8 validation (RFC 3629): rejects overlongs, surrogates and code points
// above U+10FFFF, so every string that passes is safe to hand to ICU, libidn2
// and to RFC 2047 / RFC 6532 encoders.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace blindcast::util {

// Returns true when `text` is well-formed UTF-8.
bool is_valid_utf8(std::string_view text);

// Returns true when every byte of `text` is below 0x80 (64 bytes per step with
// SSE2, else eight).
bool is_ascii(std::string_view text);

// Returns the length of the longest prefix of `text` no longer than `max_bytes`
// that does not split a UTF-8 sequence.
std::size_t utf8_prefix_length(std::string_view text, std::size_t max_bytes);

// Appends code point `cp` (a scalar value: at most U+10FFFF, no surrogate)
// as UTF-8.
void append_utf8(std::string& out, char32_t cp);

}  // namespace blindcast::util
