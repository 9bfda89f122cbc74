// Content and header encodings for outgoing messages.
//
// - quoted-printable (RFC 2045 §6.7) and base64 (RFC 2045 §6.8) bodies, with
//   CRLF line ends and lines of at most 76 characters;
// - RFC 2047 "B" encoded-words for non-ASCII header text, each word at most 75
//   characters and never splitting a UTF-8 sequence;
// - display names as atoms, quoted strings or encoded-words (RFC 5322 §3.2).
// Every function appends to `out` so a message is built in one buffer.
#pragma once

#include <string>
#include <string_view>

namespace blindcast::mail {

enum class TransferEncoding { k_7bit, k_quoted_printable, k_base64 };

// Returns `text` with every line end (LF, CRLF or lone CR) turned into CRLF.
std::string normalize_crlf(std::string_view text);

// Picks the transfer encoding for CRLF `text`: 7bit when ASCII with short
// lines, base64 when mostly non-ASCII (CJK), quoted-printable otherwise.
TransferEncoding choose_encoding(std::string_view text);

// Appends the RFC 2045 name of `encoding`.
const char* encoding_name(TransferEncoding encoding);

// Appends CRLF `text` encoded as quoted-printable to `out`.
void append_quoted_printable(std::string& out, std::string_view text);

// Appends `data` as base64 in 76-character CRLF lines to `out`.
void append_base64_lines(std::string& out, std::string_view data);

// Appends header text `value` for a field whose name is `name_len` long:
// folded plain text when ASCII, RFC 2047 encoded-words otherwise.
void append_unstructured(std::string& out, std::string_view value, std::size_t name_len);

// Appends `name` as an RFC 5322 display-name (atom, quoted or encoded-word).
void append_display_name(std::string& out, std::string_view name);

}  // namespace blindcast::mail
