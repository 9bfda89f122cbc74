#include "guard/address_scan.hpp"

#include <cstring>
#include <string>

namespace blindcast::guard {

namespace {

constexpr std::size_t k_max_local = 64;
constexpr std::size_t k_max_domain = 255;

bool is_local_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-/=?^_`{|}~.", c) != nullptr && c != '\0';
}

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_domain_char(char c) {
  return is_alnum(c) || c == '.' || c == '-' || static_cast<unsigned char>(c) >= 0x80;
}

}  // namespace

bool scan_for_addresses(std::string_view text, const AddressIndex& index,
                        const std::function<bool(std::string_view)>& found) {
  if (index.size() == 0) return true;
  std::string candidate;
  std::size_t from = 0;
  while (true) {
    const void* hit = std::memchr(text.data() + from, '@', text.size() - from);
    if (hit == nullptr) return true;
    const std::size_t at = static_cast<std::size_t>(static_cast<const char*>(hit) - text.data());
    from = at + 1;

    std::size_t left = at;
    while (left > 0 && at - left < k_max_local && is_local_char(text[left - 1])) --left;
    std::size_t right = at + 1;
    while (right < text.size() && right - at - 1 < k_max_domain && is_domain_char(text[right])) ++right;
    if (left == at || right == at + 1) continue;

    // Domain end positions: each dot, the end of the run, the ASCII/non-ASCII edge.
    std::size_t ends[16];
    std::size_t n_ends = 0;
    bool seen_dot = false;
    for (std::size_t i = at + 1; i <= right && n_ends < 15; ++i) {
      const bool at_end = i == right;
      const bool dot = !at_end && text[i] == '.';
      const bool edge = !at_end && i > at + 1 && static_cast<unsigned char>(text[i]) >= 0x80 &&
                        static_cast<unsigned char>(text[i - 1]) < 0x80;
      if ((dot && seen_dot) || at_end || (edge && seen_dot)) ends[n_ends++] = i;
      if (dot) seen_dot = true;
    }
    for (std::size_t s = left; s < at; ++s) {
      if (s != left && is_alnum(text[s - 1])) continue;  // start only at a run edge or after punctuation
      if (text[s] == '.') continue;
      for (std::size_t e = 0; e < n_ends; ++e) {
        std::size_t end = ends[e];
        while (end > at + 1 && (text[end - 1] == '.' || text[end - 1] == '-')) --end;
        if (end <= at + 1) continue;
        candidate.assign(text.data() + s, end - s);
        const std::string normalized = normalize_for_guard(candidate);
        if (index.contains_normalized(normalized) && !found(normalized)) return false;
      }
    }
  }
}

}  // namespace blindcast::guard
