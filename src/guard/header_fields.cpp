#include "guard/header_fields.hpp"

#include <cstring>

namespace blindcast::guard {

namespace {

constexpr std::size_t k_max_line = 998;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Characters that end an addr-spec outside a quoted string.
struct Stops {
  bool stop[256] = {};
  Stops() {
    for (int c = 0; c < 32; ++c) stop[c] = true;
    for (const char c : std::string_view(" \t,;<>():[]\\")) stop[static_cast<unsigned char>(c)] = true;
  }
};
const Stops k_stops;

bool is_addr_spec(std::string_view s) {
  if (s.empty()) return false;
  bool in_quote = false;
  std::size_t ats = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_quote) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_quote = false;
      }
      continue;
    }
    if (c == '"') {
      in_quote = true;
      continue;
    }
    if (c == '@') ++ats;
    if (k_stops.stop[static_cast<unsigned char>(c)]) return false;
  }
  return !in_quote && ats == 1 && s.back() != '@' && s.front() != '@';
}

}  // namespace

HeaderSection split_header_fields(std::string_view m) {
  HeaderSection hs;
  hs.fields.reserve(16);
  std::size_t pos = 0;
  while (true) {
    if (pos >= m.size()) {
      hs.error = "message has no blank line ending the header section";
      return hs;
    }
    const std::size_t lf = m.find('\n', pos);
    if (lf == std::string_view::npos) {
      hs.error = "message has no blank line ending the header section";
      return hs;
    }
    if (lf == pos || m[lf - 1] != '\r') {
      hs.error = "bare LF in the header section";
      return hs;
    }
    const std::string_view line = m.substr(pos, lf - 1 - pos);
    if (line.size() > k_max_line) {
      hs.error = "a header line is " + std::to_string(line.size()) + " octets (limit 998)";
      return hs;
    }
    if (std::memchr(line.data(), '\r', line.size()) != nullptr) {
      hs.error = "bare CR in the header section";
      return hs;
    }
    if (std::memchr(line.data(), '\0', line.size()) != nullptr) {
      hs.error = "NUL in the header section";
      return hs;
    }
    pos = lf + 1;
    if (line.empty()) {
      hs.body_offset = pos;
      return hs;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      if (hs.fields.empty()) {
        hs.error = "the header section starts with a continuation line";
        return hs;
      }
      hs.fields.back().value += line;
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      hs.error = "a header line is neither a field nor a continuation";
      return hs;
    }
    for (char c : line.substr(0, colon)) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 33 || u > 126) {
        hs.error = "a header field name holds a character outside 33-126";
        return hs;
      }
    }
    hs.fields.push_back({lower(line.substr(0, colon)), std::string(line.substr(colon + 1))});
  }
}

std::optional<std::string> parse_single_mailbox(std::string_view value) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (value.back() != '>') {
    if (!is_addr_spec(value)) return std::nullopt;
    return std::string(value);
  }
  // phrase "<" addr-spec ">": find the one '<' outside quoted strings.
  bool in_quote = false;
  std::size_t angle = std::string_view::npos;
  for (std::size_t i = 0; i + 1 < value.size(); ++i) {
    const char c = value[i];
    if (in_quote) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_quote = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_quote = true; break;
      case '<':
        if (angle != std::string_view::npos) return std::nullopt;
        angle = i;
        break;
      case '>': case ',': case ';': case ':': case '(': case ')': case '@': case '[': case ']':
        if (angle == std::string_view::npos) return std::nullopt;  // outside the angle: not a phrase
        break;
      default:
        break;
    }
  }
  if (in_quote || angle == std::string_view::npos) return std::nullopt;
  const std::string_view addr = value.substr(angle + 1, value.size() - angle - 2);
  if (!is_addr_spec(addr)) return std::nullopt;
  return std::string(addr);
}

}  // namespace blindcast::guard
