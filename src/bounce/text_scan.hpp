// Text helpers of the bounce layer: the pieces every format needs (lines,
// addresses, SMTP codes, header blocks, diagnostics fit for JSON). No MIME
// here and no policy: these find things, the callers decide what they mean.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/strings.hpp"

namespace blindcast::bounce::text {

inline constexpr std::size_t k_max_diagnostic = 1000;

// `bytes` with every invalid UTF-8 sequence replaced by U+FFFD.
std::string sanitize_utf8(std::string_view bytes);

// `value` trimmed and lower-cased when it has the shape of a VERP token
// (1 to 64 of a-z and 2-7, any case), else "". Not verified.
std::string valid_token(std::string_view value);

// A remote server's text as reported: folded lines joined, runs of white
// space made one space, trimmed, invalid UTF-8 replaced, cut to at most
// k_max_diagnostic bytes on a character boundary.
std::string clean_diagnostic(std::string_view text);

// True when `haystack` contains `lower_needle` (which must be lower-case),
// ignoring ASCII case.
bool icontains(std::string_view haystack, std::string_view lower_needle);

// True when `text` contains one of `lower_needles` (lower-case), ignoring
// ASCII case: `text` is lower-cased once, then each needle is a plain find.
template <typename Needles>
bool contains_any(std::string_view text, const Needles& lower_needles) {
  const std::string low = util::to_lower_ascii(text);
  for (const std::string_view n : lower_needles) {
    if (low.find(n) != std::string::npos) return true;
  }
  return false;
}

// A fixed list of lower-case phrases, searched for all at once in one pass
// over a lower-cased text: a table of the phrases' first two bytes skips
// almost every position with a single lookup (one find per phrase costs a
// pass over the text per phrase). Built once, then read-only (thread-safe).
class PhraseSet {
 public:
  explicit PhraseSet(std::span<const std::string_view> phrases);

  // The position in `low` of the earliest occurrence of any phrase, or npos.
  [[nodiscard]] std::size_t earliest(std::string_view low) const;
  // The index in the list of the first phrase (in list order) occurring in
  // `low`, or npos.
  [[nodiscard]] std::size_t first_listed(std::string_view low) const;
  [[nodiscard]] bool any_in(std::string_view low) const { return earliest(low) != std::string_view::npos; }
  // True when any phrase occurs in `text` ignoring ASCII case (no lower-cased
  // copy of the text needed).
  [[nodiscard]] bool any_in_ignoring_case(std::string_view text) const;

 private:
  void mark(unsigned c0, unsigned c1) { m_pairs[(c0 << 8 | c1) / 64] |= std::uint64_t{1} << ((c0 << 8 | c1) % 64); }
  [[nodiscard]] bool marked(unsigned c0, unsigned c1) const {
    return ((m_pairs[(c0 << 8 | c1) / 64] >> ((c0 << 8 | c1) % 64)) & 1U) != 0;
  }

  std::span<const std::string_view> m_phrases;
  std::array<std::uint64_t, 65536 / 64> m_pairs{};         // bit (first byte << 8 | second byte) of some phrase,
                                                           // in either case
  // A phrase filed under its first byte: its first (up to) four bytes as one
  // word, so that most candidates are turned down by one comparison made
  // here, without reading the phrase.
  struct Entry {
    std::uint32_t word;   // load4 of the phrase
    std::uint32_t mask;   // the bytes of `word` that are the phrase's
    std::uint16_t index;  // in m_phrases
  };
  [[nodiscard]] bool matches(const Entry& e, std::string_view low, std::size_t i, std::uint32_t word) const;

  std::array<std::vector<Entry>, 256> m_by_first;  // by first byte, ascending index
};

// The first enhanced status code (RFC 3463: "5.1.1", class 2, 4 or 5) in
// `text` standing on its own (not part of an IP address or version), or "".
std::string_view find_enhanced_status(std::string_view text);
// The first SMTP reply code (2xx, 4xx, 5xx) in `text` standing on its own, or "".
std::string_view find_reply_code(std::string_view text);
// The enhanced status at the very start of `text` ("4.4.1 (transient...)"), or "".
std::string_view leading_status(std::string_view text);

struct FoundAddress {
  std::string address;
  std::size_t begin = 0;  // offset in the text searched
};

// Addresses (local@domain.tld) in free text, in order. `allow_utf8`:
// bytes above 0x7F may be part of them (RFC 6531 addresses in a
// message/global-delivery-status). A domain needs a dot unless `allow_dotless`.
std::vector<FoundAddress> find_addresses(std::string_view text, bool allow_utf8 = false, bool allow_dotless = false);

// The lines of `text` (LF or CRLF), without their line ends.
std::vector<std::string_view> split_lines(std::string_view text);

// The header fields at the start of `text` (RFC 5322 syntax, folded lines
// unfolded), up to the first empty line; `*rest` (when given) is what follows it.
std::vector<std::pair<std::string, std::string>> parse_header_block(std::string_view text,
                                                                    std::string_view* rest = nullptr);

// `html` as text: tags removed (a <br>, <p>, <div> or <tr> ends a line), the
// common entities decoded.
std::string strip_html(std::string_view html);

}  // namespace blindcast::bounce::text
