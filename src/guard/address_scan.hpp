// Finds every audience address in a text, the way a reader would see it.
//
// At each '@' the scanner takes the run of local-part characters to its left
// and of domain characters to its right, and tries each plausible address:
// local parts starting at the run's start or after any punctuation inside it
// ("u=bob" -> "bob"), domains ending at each dot, at the end of the run, and
// where ASCII meets non-ASCII text ("bob@x.com是"). Candidates are hashed
// case-folded in place (no allocation); only a candidate with a non-ASCII
// domain is converted to its A-label form first.
#pragma once

#include <cstdint>
#include <string_view>

#include "guard/address_index.hpp"

namespace blindcast::guard {

// Calls `found(candidate, hash)` for each candidate in `text` that is in
// `index`; stops early and returns false when `found` returns false.
template <class Found>
bool scan_for_addresses(std::string_view text, const AddressIndex& index, Found&& found);

namespace detail {
// Character classes for the scanner, indexed by byte.
struct ScanTables {
  bool local[256];
  bool alnum[256];
  bool domain[256];
  ScanTables();
};
extern const ScanTables k_scan_tables;
}  // namespace detail

template <class Found>
bool scan_for_addresses(std::string_view text, const AddressIndex& index, Found&& found) {
  constexpr std::size_t k_max_local = 64;
  constexpr std::size_t k_max_domain = 255;
  const auto& t = detail::k_scan_tables;
  auto u = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  if (index.size() == 0) return true;
  std::size_t from = 0;
  while (from < text.size()) {
    const std::size_t at = text.find('@', from);
    if (at == std::string_view::npos) return true;
    from = at + 1;
    std::size_t left = at;
    while (left > 0 && at - left < k_max_local && t.local[u(left - 1)]) --left;
    std::size_t right = at + 1;
    while (right < text.size() && right - at - 1 < k_max_domain && t.domain[u(right)]) ++right;
    if (left == at || right == at + 1) continue;

    // Domain end positions: each dot after the first, the end of the run, the ASCII/non-ASCII edge.
    std::size_t ends[16];
    std::size_t n_ends = 0;
    bool seen_dot = false;
    bool high = false;
    for (std::size_t i = at + 1; i <= right && n_ends < 15; ++i) {
      const bool at_end = i == right;
      const bool dot = !at_end && text[i] == '.';
      const bool edge = !at_end && i > at + 1 && u(i) >= 0x80 && u(i - 1) < 0x80;
      if ((dot && seen_dot) || at_end || (edge && seen_dot)) {
        std::size_t end = i;  // trim trailing dots and hyphens ("write to a@b.com.")
        while (end > at + 1 && (text[end - 1] == '.' || text[end - 1] == '-')) --end;
        if (end > at + 1 && (n_ends == 0 || ends[n_ends - 1] != end)) ends[n_ends++] = end;
      }
      if (dot) seen_dot = true;
      if (!at_end && u(i) >= 0x80) high = true;
    }
    for (std::size_t s = left; s < at; ++s) {
      if (s != left && t.alnum[u(s - 1)]) continue;  // start at the run's edge or after punctuation
      if (text[s] == '.') continue;
      for (std::size_t e = 0; e < n_ends; ++e) {
        const std::string_view candidate = text.substr(s, ends[e] - s);
        const std::uint64_t h = high ? address_hash(candidate) : guard_hash(candidate);
        if (index.contains_hash(h) && !found(candidate, h)) return false;
      }
    }
  }
  return true;
}

}  // namespace blindcast::guard
