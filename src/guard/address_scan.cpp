#include "guard/address_scan.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include "guard/address_index.hpp"
#include "guard/reader_view.hpp"

namespace blindcast::guard {

namespace {

constexpr std::size_t k_max_local = 64;    // RFC 5321 §4.5.3.1.1
constexpr std::size_t k_max_domain = 255;  // RFC 5321 §4.5.3.1.2
constexpr std::size_t k_max_quoted = 130;  // a quoted local part with every character escaped

struct Classes {
  std::array<bool, 256> local{};      // atext, '.' and markup breaks
  std::array<bool, 256> separator{};  // atext that separates words in URLs and prose
  std::array<bool, 256> domain{};     // letters, digits, '-', '.', non-ASCII and markup breaks
  std::array<bool, 256> hex{};
  Classes() {
    for (int c = 0; c < 256; ++c) {
      const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      separator[c] = c != 0 && c < 128 && std::strchr("!#$%&'*/=?^`{|}~", c) != nullptr;
      local[c] = alnum || separator[c] || c == '.' || c == '+' || c == '-' || c == '_' || c == k_break;
      domain[c] = alnum || c == '.' || c == '-' || c >= 0x80 || c == k_break;
      hex[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    }
  }
};
const Classes k_classes;

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool ascii_domain_shaped(std::string_view d) {
  if (d.empty() || d.size() > 253) return false;
  std::size_t labels = 0;
  std::size_t start = 0;
  while (start <= d.size()) {
    std::size_t end = d.find('.', start);
    if (end == std::string_view::npos) end = d.size();
    const std::string_view label = d.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      const bool ok = is_letter(c) || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return false;
    }
    ++labels;
    if (end == d.size()) {
      const bool a_label = label.size() > 4 && (label[0] == 'x' || label[0] == 'X') &&
                           (label[1] == 'n' || label[1] == 'N') && label[2] == '-' && label[3] == '-';
      const bool letters = label.size() >= 2 && std::all_of(label.begin(), label.end(), is_letter);
      return labels >= 2 && (letters || a_label);
    }
    start = end + 1;
  }
  return false;
}

}  // namespace

bool address_shaped(std::string_view address) {
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at > k_max_local) return false;
  const std::string_view local = address.substr(0, at);
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) return false;
  for (char c : local) {  // atext, '.', and UTF-8 (RFC 6531 local parts)
    if (static_cast<unsigned char>(c) < 0x80 && !k_classes.local[static_cast<unsigned char>(c)]) return false;
  }
  const std::string_view domain = address.substr(at + 1);
  for (char c : domain) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      const std::string ascii = normalize_for_guard(address);
      const std::size_t a = ascii.rfind('@');
      const std::string_view d = std::string_view(ascii).substr(a + 1);
      return std::all_of(d.begin(), d.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x80; }) &&
             ascii_domain_shaped(d);
    }
  }
  return ascii_domain_shaped(domain);
}

bool reading_shaped(const Reading& r) {
  if (!r.quoted) return address_shaped(r.address);
  const std::size_t at = r.address.rfind('@');
  return address_shaped("q" + std::string(r.address.substr(at)));
}

namespace {

// The length of the domain character at text[i] (a letter, digit, mark, '-',
// '.', the ideographic full stop or a markup break), or 0 when it ends the run.
std::size_t domain_char(std::string_view text, std::size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) return k_classes.domain[c] ? 1 : 0;
  UChar32 cp = 0;
  std::int32_t next = static_cast<std::int32_t>(i);
  U8_NEXT(reinterpret_cast<const std::uint8_t*>(text.data()), next, static_cast<std::int32_t>(text.size()), cp);
  if (cp < 0) return 0;
  const auto type = u_charType(cp);
  const bool ok = u_isalnum(cp) || type == U_NON_SPACING_MARK || type == U_COMBINING_SPACING_MARK ||
                  type == U_ENCLOSING_MARK || cp == 0x3002;
  return ok ? static_cast<std::size_t>(next) - i : 0;
}

bool ideographic_stop_before(std::string_view text, std::size_t e) {
  return e >= 3 && text.substr(e - 3, 3) == "\xE3\x80\x82";
}

}  // namespace

std::size_t readings_at(std::string_view text, std::size_t at, std::span<Reading, k_max_readings> out,
                        ScanScratch& scratch) {
  const auto u = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const std::size_t n = text.size();
  std::size_t right = at + 1;
  while (right < n && right - at - 1 < k_max_domain) {
    const std::size_t len = domain_char(text, right);
    if (len == 0) break;
    right += len;
  }
  // The local part's run: atext and '.', and letters outside ASCII (which no
  // audience local part holds, but a look-alike of one may: "smitһ@").
  std::size_t left = at;
  while (left > 0 && at - left < 4 * k_max_local) {
    if (u(left - 1) < 0x80) {
      if (!k_classes.local[u(left - 1)]) break;
      --left;
      continue;
    }
    std::size_t lead = left - 1;
    while (lead > 0 && (u(lead) & 0xC0) == 0x80 && left - lead < 4) --lead;
    UChar32 cp = 0;
    std::int32_t next = static_cast<std::int32_t>(lead);
    U8_NEXT(reinterpret_cast<const std::uint8_t*>(text.data()), next, static_cast<std::int32_t>(n), cp);
    if (cp < 0 || static_cast<std::size_t>(next) != left) break;
    const auto type = u_charType(cp);
    if (!u_isalnum(cp) && type != U_NON_SPACING_MARK && type != U_COMBINING_SPACING_MARK) break;
    left = lead;
  }
  const bool marked = std::memchr(text.data() + left, k_break, right - left) != nullptr;

  // The domain: where it may end.
  struct End {
    std::size_t pos;
    bool high;  // non-ASCII before it: hashed after IDNA conversion
  };
  End ends[16];
  std::size_t n_ends = 0;
  auto add_end = [&](std::size_t e) {
    while (e > at + 1) {  // trailing punctuation is the sentence's
      if (text[e - 1] == '.' || text[e - 1] == '-' || text[e - 1] == k_break) {
        --e;
      } else if (ideographic_stop_before(text, e)) {
        e -= 3;
      } else {
        break;
      }
    }
    if (e <= at + 1) return;
    for (std::size_t k = 0; k < n_ends; ++k) {
      if (ends[k].pos == e) return;
    }
    if (n_ends == std::size(ends)) {
      scratch.overflow = true;
      return;
    }
    const std::string_view domain = text.substr(at + 1, e - at - 1);
    const bool high = std::any_of(domain.begin(), domain.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
    ends[n_ends++] = End{e, high};
  };
  add_end(right);
  bool seen_dot = false;
  for (std::size_t i = at + 1; i < right; ++i) {
    if (text[i] == '.') seen_dot = true;
    const bool edge = i > at + 1 && u(i) >= 0x80 && (u(i) & 0xC0) != 0x80 && u(i - 1) < 0x80 && seen_dot;
    if (edge || text[i] == k_break) add_end(i);
  }
  if (n_ends == 0) return 0;

  std::size_t count = 0;
  // Adds the reading text[from, `e`) (or `own` + text[at, `e`) when given),
  // with markup breaks taken out.
  auto emit = [&](std::size_t from, std::size_t e_index, bool quoted, const std::string* own = nullptr) {
    if (count == out.size()) {
      scratch.overflow = true;
      return;
    }
    const End& e = ends[e_index];
    std::string_view address = text.substr(from, e.pos - from);
    if (own != nullptr || (marked && address.find(k_break) != std::string_view::npos)) {
      std::string& s = scratch.owned[count];
      if (own != nullptr) {
        s = *own;
        address = text.substr(at, e.pos - at);
      } else {
        s.clear();
      }
      for (char c : address) {
        if (c != k_break) s += c;
      }
      address = s;
    }
    Reading& r = out[count++];
    r.address = address;
    r.hash = e.high ? address_hash(address) : guard_hash(address);
    r.quoted = quoted;
    r.end = static_cast<std::uint8_t>(e_index);
  };

  // A quoted local part: `"bob"@x.org`, `"b\ob"@x.org`, `"john smith"@x.org`
  // (markup may stand between the quote and the '@').
  std::size_t close = at;
  while (close > 0 && text[close - 1] == k_break) --close;
  if (close > 0 && text[close - 1] == '"') {
    std::size_t open = std::string_view::npos;
    for (std::size_t i = close - 1; i > 0 && close - i <= k_max_quoted;) {
      --i;
      if (text[i] == '"' && (i == 0 || text[i - 1] != '\\')) {
        open = i;
        break;
      }
    }
    if (open != std::string_view::npos && close - open > 2) {
      std::string unquoted;
      bool dot_atom = true;
      for (std::size_t i = open + 1; i + 1 < close; ++i) {
        char c = text[i];
        if (c == k_break) continue;
        if (c == '\\' && i + 2 < close) c = text[++i];
        if (c == k_break) continue;  // "\<b>x": the markup is no character of the address
        unquoted += c;
        if (!k_classes.local[static_cast<unsigned char>(c)]) dot_atom = false;
      }
      dot_atom = dot_atom && !unquoted.empty() && unquoted.front() != '.' && unquoted.back() != '.' &&
                 unquoted.find("..") == std::string::npos;  // else read with its quotes
      if (!dot_atom) {
        unquoted.clear();
        for (const char c : text.substr(open, close - open)) {
          if (c != k_break) unquoted += c;
        }
      }
      for (std::size_t e = 0; e < n_ends; ++e) emit(at, e, !dot_atom, &unquoted);
    }
  }

  // The local part: where it may start, leftmost (longest) first.
  for (std::size_t s = left; s < at; ++s) {
    if (at - s > k_max_local || text[s] == '.' || text[s] == k_break || (u(s) & 0xC0) == 0x80) continue;
    // Also where the script changes: "联系bob@" reads bob@, "bobһ@" whole.
    bool starts = s == left || text[s - 1] == k_break || (u(s) < 0x80 && u(s - 1) >= 0x80);
    if (!starts && text[s - 1] == '.') {
      // After a dot that no local part can hold before it: "...bob", " .bob".
      starts = s - 1 == left || text[s - 2] == '.';
    }
    if (!starts && text[s - 1] == '-') {
      // A prefix joined by a hyphen where the script changes: Hebrew "ל-dana@"
      // reads dana@ (as well as -dana@).
      std::size_t p = s - 1;
      while (p > left && text[p - 1] == '-') --p;
      starts = p > 0 && u(p - 1) >= 0x80;
    }
    if (!starts && k_classes.separator[u(s - 1)]) {
      // Not inside a percent-escape: "o%27brien" is read decoded, elsewhere.
      starts = !(text[s - 1] == '%' && s + 1 < at && k_classes.hex[u(s)] && k_classes.hex[u(s + 1)]);
    }
    if (!starts) continue;
    for (std::size_t e = 0; e < n_ends; ++e) emit(s, e, false);
  }
  return count;
}

}  // namespace blindcast::guard
