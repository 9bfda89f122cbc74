// Decoders the privacy guard uses to see what a reader would see.
//
// Written for the guard alone and sharing no code with mail/ (composition):
// a bug in an encoder must not be mirrored by the check that is meant to
// catch it. All decoders are lenient — malformed input is decoded as far as
// possible rather than rejected — because the guard looks for addresses in
// whatever a mail client might show.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace blindcast::guard {

// Base64 (RFC 2045 §6.8); characters outside the alphabet are skipped.
std::string decode_base64(std::string_view in);
// Appends `cp` to `out` as UTF-8 (nothing for a value past U+10FFFF).
void append_utf8(std::string& out, std::uint32_t cp);
// Quoted-printable (RFC 2045 §6.7); soft line breaks joined, bad escapes kept.
std::string decode_quoted_printable(std::string_view in);
// RFC 2047 encoded-words ("=?cs?B?...?=" and "=?cs?Q?...?=") decoded in
// place and converted from their charset (ICU converters) to UTF-8; a
// charset ICU does not know is taken as UTF-8.
std::string decode_encoded_words(std::string_view in);
// Percent-encoding (RFC 3986 §2.1); '+' is left as is; a markup break
// (k_break) inside an escape is read through: `%4<b class=x>0`.
std::string decode_percent(std::string_view in);
// True when `in` holds a percent-escape ('%' and two hex digits).
bool has_percent_escape(std::string_view in);
// Calls `payload(decoded)` for every data: URI in `in` (RFC 2397: the data
// percent-decoded, then base64-decoded when marked ";base64", white space
// skipped). With `by_line` (one attribute value per line) a URI ends at the
// line's end; in running text at white space, a quote, '<', '>' or ')'.
void for_each_data_uri(std::string_view in, bool by_line, const std::function<void(std::string_view)>& payload);

}  // namespace blindcast::guard
