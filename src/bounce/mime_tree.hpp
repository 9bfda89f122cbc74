// The MIME structure of a returned message, read with GMime 3 and copied into
// plain values, so that the rest of the layer (DSN fields, text heuristics,
// ARF) works on strings and never touches a GObject. A message's header
// fields are split here (RFC 5322 field syntax) and the ones the layer reads
// decoded with GMime's header decoder; GMime parses its MIME entity (see
// read_message in mime_tree.cpp, and ARCHITECTURE.md, "Speed.").
//
// Policy: the input is hostile. Only its first k_max_input bytes are read,
// the number of MIME entities is capped (GMime's parser recurses once per
// nested entity, so the input is cut before the k_max_entities-th
// Content-Type header), every body is capped at k_max_body bytes, and text
// bodies are converted to UTF-8 (invalid bytes replaced). A message GMime
// cannot read at all gives an empty tree, never an error.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blindcast::bounce {

inline constexpr std::size_t k_max_input = 4 * 1024 * 1024;
inline constexpr std::size_t k_max_entities = 200;
inline constexpr std::size_t k_max_body = 1024 * 1024;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// One MIME entity. A message (the top one, or one inside message/rfc822) is
// a node with is_message set: its headers are the message's, its one child
// is its body entity. A returned message (message/rfc822, transfer-decoded)
// has that child only when it may carry a report or a token beyond its
// header section (a forwarded bounce, an encoded quote; see
// returned_message in mime_tree.cpp) or all_headers is set: otherwise only
// its header fields are read.
struct MimeNode {
  bool is_message = false;
  std::string type;         // "multipart/report", lower-cased ("" for a message node)
  std::string report_type;  // the report-type parameter, lower-cased
  // Message nodes only, and (unless read_mime's all_headers) only the fields the layer reads: the top
  // message's envelope, sender and subject fields, a returned message's To
  // and X-Blindcast-Token. Names as written, values unfolded and RFC
  // 2047-decoded.
  HeaderList headers;
  std::string body;         // leaf entities: the content, transfer-decoded (text/*: UTF-8)
  std::vector<MimeNode> children;
};

// Reads `raw` (one message, CRLF or LF; a leading mbox "From " line is
// skipped). Thread-safe; initialises GMime once. `all_headers`: every
// message node keeps all its headers (a preview shows them), not only the
// fields the layer reads.
MimeNode read_mime(std::string_view raw, bool all_headers = false);

// The value of the first header called `name` (ASCII case-insensitive) in
// `headers`, or "".
std::string_view header_value(const HeaderList& headers, std::string_view name);

}  // namespace blindcast::bounce
