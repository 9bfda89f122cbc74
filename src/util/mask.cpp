#include "util/mask.hpp"

#include <algorithm>

namespace blindcast::util {

namespace {

bool is_addr_ascii(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-' || c == '+' || c == '%' || c == '!' || c == '#' || c == '$' || c == '&' || c == '\'' ||
         c == '*' || c == '/' || c == '=' || c == '?' || c == '^' || c == '`' || c == '{' || c == '|' ||
         c == '}' || c == '~';
}

// The length of the UTF-8 sequence that starts with `lead` (1 for a stray byte).
std::size_t sequence_length(unsigned char lead) {
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  if (lead >= 0xE0) return lead <= 0xEF ? 3 : 1;
  if (lead >= 0xC2) return 2;
  return 1;
}

// Non-ASCII characters that are never part of an address: spaces, dashes,
// quotes and the invisible bidi and format controls (U+2000-U+206F, e.g. the
// isolates a right-to-left template puts around an address), no-break
// space, soft hyphen, ideographic space and punctuation, byte order mark.
bool is_separator(std::string_view seq) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(seq[i]); };
  if (seq.size() == 2) return b(0) == 0xC2 && (b(1) == 0xA0 || b(1) == 0xAD || b(1) == 0xAB || b(1) == 0xBB);
  if (seq.size() == 3) {
    if (b(0) == 0xE2 && (b(1) == 0x80 || b(1) == 0x81)) return true;    // U+2000-U+207F
    if (b(0) == 0xE3 && b(1) == 0x80 && b(2) <= 0x82) return true;      // U+3000-U+3002
    if (b(0) == 0xEF && b(1) == 0xBB && b(2) == 0xBF) return true;      // U+FEFF
    if (b(0) == 0xEF && b(1) == 0xBC && (b(2) == 0x8C || b(2) == 0x9A || b(2) == 0x9B)) return true;  // ，：；
  }
  return false;
}

// The length of the address character that starts at `i`, or 0.
std::size_t addr_char_at(std::string_view text, std::size_t i) {
  const auto u = static_cast<unsigned char>(text[i]);
  if (u < 0x80) return is_addr_ascii(text[i]) ? 1 : 0;
  const std::size_t n = std::min(sequence_length(u), text.size() - i);
  return is_separator(text.substr(i, n)) ? 0 : n;
}

// The length of the address character that ends just before `end`, or 0.
std::size_t addr_char_before(std::string_view text, std::size_t begin, std::size_t end) {
  std::size_t start = end - 1;
  // Back over continuation bytes to the sequence's lead byte (at most 3).
  while (start > begin && end - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  const std::size_t n = addr_char_at(text, start);
  return n == end - start ? n : (static_cast<unsigned char>(text[end - 1]) >= 0x80 ? 0 : n);
}

}  // namespace

std::string mask_address(std::string_view address) {
  const auto at = address.rfind('@');
  if (at == std::string_view::npos || at == 0) return "***";
  const std::string_view local = address.substr(0, at);
  const std::string_view domain = address.substr(at + 1);
  // The first character whole: an internationalized local part stays valid UTF-8.
  std::string out(local.substr(0, std::min(sequence_length(static_cast<unsigned char>(local.front())), local.size())));
  out += "***@";
  const auto dot = domain.rfind('.');
  if (domain.empty()) return out + "***";
  out += domain.substr(0, std::min(sequence_length(static_cast<unsigned char>(domain.front())), domain.size()));
  out += "***";
  if (dot != std::string_view::npos && dot > 0) out += domain.substr(dot);
  return out;
}

std::string mask_addresses_in(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto at = text.find('@', i);
    if (at == std::string_view::npos) break;
    std::size_t b = at;
    while (b > i) {
      const std::size_t n = addr_char_before(text, i, b);
      if (n == 0) break;
      b -= n;
    }
    std::size_t e = at + 1;
    while (e < text.size()) {
      const std::size_t n = addr_char_at(text, e);
      if (n == 0) break;
      e += n;
    }
    while (e > at + 1 && text[e - 1] == '.') --e;  // a sentence's full stop
    out.append(text.substr(i, b - i));
    if (b < at && e > at + 1) {
      out += mask_address(text.substr(b, e - b));
    } else {
      out.append(text.substr(b, e - b));
    }
    i = e;
  }
  out.append(text.substr(i));
  return out;
}

}  // namespace blindcast::util
