#include "util/mask.hpp"

namespace blindcast::util {

namespace {
bool is_addr_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '+' || c == '%' ||
         c == '!' || c == '#' || c == '$' || c == '&' || c == '\'' || c == '*' || c == '/' ||
         c == '=' || c == '?' || c == '^' || c == '`' || c == '{' || c == '|' || c == '}' ||
         c == '~';
}
}  // namespace

std::string mask_address(std::string_view address) {
  const auto at = address.rfind('@');
  if (at == std::string_view::npos || at == 0) return "***";
  const std::string_view local = address.substr(0, at);
  const std::string_view domain = address.substr(at + 1);
  std::string out;
  out += local.front();
  out += "***@";
  const auto dot = domain.rfind('.');
  if (domain.empty()) return out + "***";
  out += domain.front();
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
    while (b > i && is_addr_char(text[b - 1])) --b;
    std::size_t e = at + 1;
    while (e < text.size() && is_addr_char(text[e])) ++e;
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
