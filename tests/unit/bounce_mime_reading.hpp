// What the bounce layer uses of a message read by read_mime, as a list of
// strings, to compare blindcast's own reading (read_mime(raw): header fields
// split here, the MIME entity parsed by GMime) with GMime's reading of the
// whole message (read_mime(raw, true)). Used by the unit tests and the fuzz
// target.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bounce/mime_tree.hpp"

namespace blindcast::bounce::reading_check {

// `value` with every run of blanks one space: a fold is a line end and
// blanks to GMime, one space to blindcast's own reading.
inline std::string squeezed(std::string_view value) {
  std::string out;
  for (const char c : value) {
    const bool blank = c == ' ' || c == '\t';
    if (blank && (out.empty() || out.back() == ' ')) continue;
    out += blank ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// The leaf parts (type and body), the fields the layer uses of each message
// (a returned message's: To and the token) and each node's number of
// children, in tree order. `shape` is blindcast's own tree of the same
// message: of a returned message it read for its header section only (no
// children), only the fields (its body is not read, by rule).
inline void append_reading(const MimeNode& node, const MimeNode& shape, bool top, std::vector<std::string>& out) {
  const bool header_only = !top && node.is_message && shape.children.empty();
  if (node.children.empty() && !node.is_message) out.push_back(node.type + "|" + node.body);
  for (const auto& [name, value] : node.headers) {
    const bool used = name == "To" || name == "X-Blindcast-Token" ||
                      (top && (name == "From" || name == "Subject" || name == "Auto-Submitted" ||
                               name == "X-Failed-Recipients"));
    if (used) out.push_back(name + ": " + squeezed(value));
  }
  if (header_only) return;
  out.push_back("children: " + std::to_string(node.children.size()));
  for (std::size_t i = 0; i < node.children.size() && i < shape.children.size(); ++i) {
    append_reading(node.children[i], shape.children[i], false, out);
  }
}

// blindcast's reading and GMime's, as append_reading lists them.
struct Readings {
  std::vector<std::string> ours;
  std::vector<std::string> gmime;
};

inline Readings both_readings(std::string_view raw) {
  const MimeNode ours = read_mime(raw);
  const MimeNode gmime = read_mime(raw, true);
  Readings r;
  append_reading(ours, ours, true, r.ours);
  append_reading(gmime, ours, true, r.gmime);
  return r;
}

}  // namespace blindcast::bounce::reading_check
