// libFuzzer target for the bounce parser: any bytes arriving at the bounce
// address must parse without crashing, leaking or hanging, and what comes out
// must be fit for JSON (valid UTF-8, capped diagnostics, a well-formed token).
// And read_mime, which reads a message's header fields itself and hands GMime
// only its MIME fields (or nothing, for a message with none), must read what
// GMime reads when it is given everything (read_mime(raw, true)): the same
// parts with the same bodies, the same values of the fields the layer uses.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "bounce/mime_tree.hpp"
#include "bounce/report.hpp"
#include "util/utf8.hpp"

namespace {

using blindcast::bounce::MimeNode;

// `value` with every run of blanks one space: a fold is a line end and
// blanks to GMime, one space to blindcast's own reading.
std::string squeezed(std::string_view value) {
  std::string out;
  for (const char c : value) {
    const bool blank = c == ' ' || c == '\t';
    if (blank && (out.empty() || out.back() == ' ')) continue;
    out += blank ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// The leaf parts and the fields the layer uses, in tree order. `shape` is
// blindcast's own tree: a returned message it read for its header section
// only (no children) is left out of both (that reading is its own rule).
void collect(const MimeNode& node, const MimeNode& shape, bool top, std::vector<std::string>& out) {
  if (!top && node.is_message && shape.children.empty()) return;
  if (node.children.empty() && !node.is_message) out.push_back(node.type + "|" + node.body);
  for (const auto& [name, value] : node.headers) {
    const bool used = name == "To" || name == "X-Blindcast-Token" ||
                      (top && (name == "From" || name == "Subject" || name == "Auto-Submitted" ||
                               name == "X-Failed-Recipients"));
    if (used) out.push_back(name + ": " + squeezed(value));
  }
  out.push_back("children: " + std::to_string(node.children.size()));
  for (std::size_t i = 0; i < node.children.size() && i < shape.children.size(); ++i) {
    collect(node.children[i], shape.children[i], false, out);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  const blindcast::bounce::Report r = blindcast::bounce::parse(raw);
  if (r.token.size() > 64) std::abort();
  for (const char c : r.token) {
    if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) std::abort();
  }
  if (r.type == blindcast::bounce::Type::k_unknown && !r.recipients.empty()) std::abort();
  for (const auto& x : r.recipients) {
    if (x.diagnostic.size() > 1000) std::abort();
    if (!blindcast::util::is_valid_utf8(x.diagnostic) || !blindcast::util::is_valid_utf8(x.address)) std::abort();
    if (x.hard && x.reason != blindcast::bounce::Reason::k_user_unknown &&
        x.reason != blindcast::bounce::Reason::k_host_unknown &&
        r.type != blindcast::bounce::Type::k_complaint) {
      std::abort();
    }
  }

  const MimeNode ours = blindcast::bounce::read_mime(raw);
  const MimeNode gmime = blindcast::bounce::read_mime(raw, true);
  std::vector<std::string> a;
  std::vector<std::string> b;
  collect(ours, ours, true, a);
  collect(gmime, ours, true, b);
  if (a != b) {
    for (const auto& x : a) std::fprintf(stderr, "blindcast: %.200s\n", x.c_str());
    for (const auto& x : b) std::fprintf(stderr, "GMime:     %.200s\n", x.c_str());
    std::abort();
  }
  return 0;
}
