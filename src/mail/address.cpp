#include "mail/address.hpp"

#include <idn2.h>

#include <cstdlib>

#include "util/strings.hpp"
#include "util/utf8.hpp"

namespace blindcast::mail {

namespace {

constexpr std::size_t k_max_local = 64;
constexpr std::size_t k_max_domain = 255;
constexpr std::size_t k_max_address = 254;
constexpr std::size_t k_max_label = 63;

bool is_atext(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
    case '|': case '}': case '~':
      return true;
    default:
      return false;
  }
}

std::expected<void, std::string> check_local(std::string_view local) {
  if (local.empty()) return std::unexpected("empty local part");
  if (local.size() > k_max_local) return std::unexpected("local part longer than 64 octets");
  if (!util::is_ascii(local)) {
    return std::unexpected("non-ASCII local part (needs SMTPUTF8 end to end; not accepted)");
  }
  if (local.front() == '"') {
    if (local.size() < 2 || local.back() != '"') return std::unexpected("unterminated quoted local part");
    for (std::size_t i = 1; i + 1 < local.size(); ++i) {
      const char c = local[i];
      if (c == '\\') {
        if (i + 2 >= local.size()) return std::unexpected("dangling backslash in quoted local part");
        const char n = local[i + 1];
        if (n < 32 || n > 126) return std::unexpected("invalid quoted-pair in local part");
        ++i;
        continue;
      }
      if (c == '"') return std::unexpected("unescaped quote inside quoted local part");
      if (c < 32 || c > 126) return std::unexpected("control character in quoted local part");
    }
    return {};
  }
  if (local.front() == '.' || local.back() == '.') {
    return std::unexpected("local part starts or ends with a dot");
  }
  char prev = 0;
  for (char c : local) {
    if (c == '.') {
      if (prev == '.') return std::unexpected("two dots in a row in local part");
    } else if (!is_atext(c)) {
      return std::unexpected(std::string("character not allowed in local part: '") +
                             (c >= 32 && c < 127 ? std::string(1, c) : std::string("?")) + "'");
    }
    prev = c;
  }
  return {};
}

std::expected<void, std::string> check_ascii_domain(std::string_view domain) {
  if (domain.empty()) return std::unexpected("empty domain");
  if (domain.size() > k_max_domain) return std::unexpected("domain longer than 255 octets");
  if (domain.back() == '.') return std::unexpected("domain ends with a dot");
  const auto labels = util::split(domain, '.');
  if (labels.size() < 2) return std::unexpected("domain has a single label (no top-level domain)");
  for (const auto label : labels) {
    if (label.empty()) return std::unexpected("empty label in domain");
    if (label.size() > k_max_label) return std::unexpected("domain label longer than 63 octets");
    if (label.front() == '-' || label.back() == '-') {
      return std::unexpected("domain label starts or ends with a hyphen");
    }
    for (char c : label) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return std::unexpected(std::string("character not allowed in domain: '") +
                                      (c >= 32 && c < 127 ? std::string(1, c) : "?") + "'");
    }
    if (label.size() >= 4 && label.substr(0, 4) == "xn--") {
      char* out = nullptr;
      const std::string l(label);
      const int rc = idn2_to_unicode_8z8z(l.c_str(), &out, 0);
      std::free(out);
      if (rc != IDN2_OK) return std::unexpected("invalid IDN A-label '" + l + "'");
    } else if (label.size() >= 4 && label[2] == '-' && label[3] == '-') {
      return std::unexpected("reserved label form (xy--) in domain");
    }
  }
  const auto tld = labels.back();
  bool all_digits = true;
  for (char c : tld) all_digits = all_digits && (c >= '0' && c <= '9');
  if (all_digits) return std::unexpected("top-level domain is numeric");
  return {};
}

}  // namespace

std::string dedup_key_of(std::string_view normalized_address) { return util::to_lower_ascii(normalized_address); }

std::string Address::dedup_key() const { return dedup_key_of(str()); }

std::expected<std::string, std::string> domain_to_ascii(std::string_view domain) {
  if (domain.empty()) return std::unexpected("empty domain");
  if (!util::is_valid_utf8(domain)) return std::unexpected("domain is not valid UTF-8");
  std::string ascii;
  if (util::is_ascii(domain)) {
    ascii = util::to_lower_ascii(domain);
  } else {
    char* out = nullptr;
    const std::string in(domain);
    const int rc = idn2_to_ascii_8z(in.c_str(), &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) {
      std::free(out);
      return std::unexpected(std::string("invalid international domain: ") + idn2_strerror(rc));
    }
    ascii = util::to_lower_ascii(out);
    std::free(out);
  }
  if (auto ok = check_ascii_domain(ascii); !ok) return std::unexpected(ok.error());
  return ascii;
}

std::string domain_to_unicode(std::string_view ascii_domain) {
  if (ascii_domain.find("xn--") == std::string_view::npos) return std::string(ascii_domain);
  char* out = nullptr;
  const std::string in(ascii_domain);
  if (idn2_to_unicode_8z8z(in.c_str(), &out, 0) != IDN2_OK) {
    std::free(out);
    return in;
  }
  std::string result(out);
  std::free(out);
  return result;
}

std::expected<Address, std::string> parse_address(std::string_view text) {
  text = util::trim(text);
  if (text.empty()) return std::unexpected("empty address");
  for (char c : text) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return std::unexpected("address contains CR, LF or NUL (header injection)");
    }
  }
  if (text.size() > k_max_address + 200) return std::unexpected("address longer than 254 octets");
  if (text.find('<') != std::string_view::npos || text.find('>') != std::string_view::npos) {
    return std::unexpected("angle brackets: the email column must hold a bare address");
  }
  if (text.find(',') != std::string_view::npos && text.front() != '"') {
    return std::unexpected("comma: one address per row");
  }
  const auto at = text.rfind('@');
  if (at == std::string_view::npos) return std::unexpected("missing '@'");
  const std::string_view local = text.substr(0, at);
  const std::string_view domain = text.substr(at + 1);
  if (domain.starts_with('[')) return std::unexpected("domain literals are not accepted");
  if (auto ok = check_local(local); !ok) return std::unexpected(ok.error());
  auto ascii = domain_to_ascii(domain);
  if (!ascii) return std::unexpected(ascii.error());
  Address address{std::string(local), std::move(*ascii)};
  if (address.local.size() + 1 + address.domain.size() > k_max_address) {
    return std::unexpected("address longer than 254 octets");
  }
  return address;
}

}  // namespace blindcast::mail
