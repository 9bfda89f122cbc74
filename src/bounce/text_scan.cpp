#include "bounce/text_scan.hpp"

#include <algorithm>
#include <cstring>

#include "util/strings.hpp"
#include "util/utf8.hpp"

namespace blindcast::bounce::text {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
bool is_alnum(char c) { return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'z'); }

// Characters of a local part found in running text (RFC 5322 atext and the
// dot). The quote is allowed inside (o'brien@) and trimmed at the start.
bool is_local_char(char c, bool allow_utf8) {
  if (is_alnum(c)) return true;
  if (allow_utf8 && static_cast<unsigned char>(c) >= 0x80) return true;
  switch (c) {
    case '.': case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '/': case '=': case '?': case '^': case '_': case '`': case '{': case '|': case '}': case '~':
      return true;
    default:
      return false;
  }
}

bool is_domain_char(char c, bool allow_utf8) {
  return is_alnum(c) || c == '.' || c == '-' || (allow_utf8 && static_cast<unsigned char>(c) >= 0x80);
}

// Length of the UTF-8 sequence at `s` when it is well formed, else 0.
std::size_t utf8_sequence(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) n = 2;
  else if (b0 >= 0xE0 && b0 <= 0xEF) n = 3;
  else if (b0 >= 0xF0 && b0 <= 0xF4) n = 4;
  else return 0;
  if (s.size() < n) return 0;
  return util::is_valid_utf8(s.substr(0, n)) ? n : 0;
}

}  // namespace

std::string sanitize_utf8(std::string_view bytes) {
  if (util::is_valid_utf8(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size() + 16);
  std::size_t i = 0;
  while (i < bytes.size()) {
    const std::size_t n = utf8_sequence(bytes.substr(i));
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(bytes.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string clean_diagnostic(std::string_view text) {
  std::string joined;
  joined.reserve(text.size() < 4 * k_max_diagnostic ? text.size() : 4 * k_max_diagnostic);
  bool space = false;
  for (const char c : text) {
    if (joined.size() >= 4 * k_max_diagnostic) break;
    if (is_space(c) || c == '\0') {
      space = true;
      continue;
    }
    if (space && !joined.empty()) joined += ' ';
    space = false;
    joined += c;
  }
  std::string out = sanitize_utf8(joined);
  if (out.size() > k_max_diagnostic) out.resize(util::utf8_prefix_length(out, k_max_diagnostic));
  return out;
}

std::string valid_token(std::string_view value) {
  constexpr std::size_t k_max_token = 64;
  const std::string t = util::to_lower_ascii(util::trim(value));
  if (t.empty() || t.size() > k_max_token) return {};
  for (const char c : t) {
    if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) return {};
  }
  return t;
}

bool icontains(std::string_view haystack, std::string_view lower_needle) {
  if (lower_needle.empty()) return true;
  if (haystack.size() < lower_needle.size()) return false;
  const char first = lower_needle[0];
  const std::size_t last = haystack.size() - lower_needle.size();
  for (std::size_t i = 0; i <= last; ++i) {
    if (lower(haystack[i]) != first) continue;
    std::size_t j = 1;
    while (j < lower_needle.size() && lower(haystack[i + j]) == lower_needle[j]) ++j;
    if (j == lower_needle.size()) return true;
  }
  return false;
}

namespace {

// Four bytes of `text` from `i` as one word (fewer at its end: the rest
// zero, which no phrase's masked word has where the text has ended).
inline std::uint32_t load4(std::string_view text, std::size_t i) {
  std::uint32_t w = 0;
  if (text.size() - i >= 4) {
    std::memcpy(&w, text.data() + i, 4);
    return w;
  }
  for (std::size_t j = 0; i + j < text.size(); ++j) {
    w |= std::uint32_t{static_cast<unsigned char>(text[i + j])} << (8 * j);
  }
  return w;
}

}  // namespace

PhraseSet::PhraseSet(std::span<const std::string_view> phrases) : m_phrases(phrases) {
  for (std::size_t k = 0; k < phrases.size(); ++k) {
    const std::string_view p = phrases[k];
    if (p.empty()) continue;
    const auto c0 = static_cast<unsigned char>(p[0]);
    const std::size_t n = std::min<std::size_t>(4, p.size());
    m_by_first[c0].push_back(Entry{load4(p.substr(0, n), 0), n == 4 ? 0xFFFFFFFFU : (std::uint32_t{1} << (8 * n)) - 1,
                                   static_cast<std::uint16_t>(k)});
    // A one-byte phrase starts wherever its byte is, whatever follows it.
    // Upper-case pairs too, for any_in_ignoring_case (a lower-cased text
    // never has them).
    const auto upper = [](unsigned c) { return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c; };
    for (unsigned c1 = 0; c1 < 256; ++c1) {
      if (p.size() == 1 || c1 == static_cast<unsigned char>(p[1]) || c1 == upper(static_cast<unsigned char>(p[1]))) {
        mark(c0, c1);
        mark(upper(c0), c1);
      }
    }
  }
}

bool PhraseSet::matches(const Entry& e, std::string_view low, std::size_t i, std::uint32_t word) const {
  if ((word & e.mask) != e.word) return false;
  const std::string_view p = m_phrases[e.index];
  return p.size() <= 4 ||
         (low.size() - i >= p.size() && std::memcmp(low.data() + i + 4, p.data() + 4, p.size() - 4) == 0);
}

bool PhraseSet::any_in_ignoring_case(std::string_view text) const {
  const auto* b = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (!marked(b[i], i + 1 < n ? b[i + 1] : 0)) continue;
    for (const auto& e : m_by_first[static_cast<unsigned char>(lower(static_cast<char>(b[i])))]) {
      const std::string_view p = m_phrases[e.index];
      if (n - i >= p.size() && util::iequals(text.substr(i, p.size()), p)) return true;
    }
  }
  return false;
}

std::size_t PhraseSet::earliest(std::string_view low) const {
  const auto* b = reinterpret_cast<const unsigned char*>(low.data());
  const std::size_t n = low.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (!marked(b[i], i + 1 < n ? b[i + 1] : 0)) continue;
    const std::uint32_t word = load4(low, i);
    for (const auto& e : m_by_first[b[i]]) {
      if (matches(e, low, i, word)) return i;
    }
  }
  return std::string_view::npos;
}

std::size_t PhraseSet::first_listed(std::string_view low) const {
  const auto* b = reinterpret_cast<const unsigned char*>(low.data());
  const std::size_t n = low.size();
  std::size_t best = std::string_view::npos;
  for (std::size_t i = 0; i < n && best != 0; ++i) {
    if (!marked(b[i], i + 1 < n ? b[i + 1] : 0)) continue;
    const std::uint32_t word = load4(low, i);
    for (const auto& e : m_by_first[b[i]]) {
      if (e.index >= best) break;
      if (matches(e, low, i, word)) {
        best = e.index;
        break;
      }
    }
  }
  return best;
}

std::string_view leading_status(std::string_view text) {
  text = util::trim(text);
  if (text.empty() || (text[0] != '2' && text[0] != '4' && text[0] != '5')) return {};
  std::size_t i = 1;
  for (int part = 0; part < 2; ++part) {
    if (i >= text.size() || text[i] != '.') return {};
    const std::size_t start = ++i;
    while (i < text.size() && is_digit(text[i]) && i - start < 3) ++i;
    if (i == start) return {};
  }
  if (i < text.size() && (is_digit(text[i]) || text[i] == '.')) return {};
  return text.substr(0, i);
}

std::string_view find_enhanced_status(std::string_view text) {
  for (std::size_t i = 0; i + 5 <= text.size(); ++i) {
    const char c = text[i];
    if (c != '2' && c != '4' && c != '5') continue;
    if (text[i + 1] != '.') continue;
    if (i > 0 && (is_digit(text[i - 1]) || text[i - 1] == '.')) continue;
    const auto s = leading_status(text.substr(i));
    if (!s.empty()) return s;
  }
  return {};
}

std::string_view find_reply_code(std::string_view text) {
  for (std::size_t i = 0; i + 3 <= text.size(); ++i) {
    const char c = text[i];
    if (c != '2' && c != '4' && c != '5') continue;
    if (!is_digit(text[i + 1]) || !is_digit(text[i + 2])) continue;
    if (i > 0) {
      const char p = text[i - 1];
      if (!(is_space(p) || p == '(' || p == '[' || p == '<' || p == '\'' || p == '"' || p == ':' || p == '=' ||
            p == ';' || p == '#')) {
        continue;
      }
    }
    if (i + 3 < text.size()) {
      const char n = text[i + 3];
      const bool ok = is_space(n) || n == '-' || n == ':' || n == ']' || n == ')' || n == '\'' || n == ',' ||
                      (n == '.' && (i + 4 >= text.size() || !is_digit(text[i + 4])));
      if (!ok) continue;
    }
    return text.substr(i, 3);
  }
  return {};
}

std::vector<FoundAddress> find_addresses(std::string_view text, bool allow_utf8, bool allow_dotless) {
  std::vector<FoundAddress> out;
  std::size_t from = 0;
  while (true) {
    const auto at = text.find('@', from);
    if (at == std::string_view::npos) break;
    from = at + 1;
    std::size_t b = at;
    while (b > 0 && is_local_char(text[b - 1], allow_utf8) && at - b < 128) --b;
    while (b < at && (text[b] == '\'' || text[b] == '.' || text[b] == '`')) ++b;
    std::size_t e = at + 1;
    while (e < text.size() && is_domain_char(text[e], allow_utf8) && e - at < 256) ++e;
    // A cap may fall inside a UTF-8 sequence: never start or end in one.
    const auto continuation = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; };
    while (b < at && continuation(text[b])) ++b;
    while (e < text.size() && e > at + 1 && continuation(text[e])) --e;
    while (e > at + 1 && (text[e - 1] == '.' || text[e - 1] == '-')) --e;
    if (b == at || e == at + 1) continue;
    std::string_view local = text.substr(b, at - b);
    const std::string_view domain = text.substr(at + 1, e - at - 1);
    if (!allow_dotless && domain.find('.') == std::string_view::npos) continue;
    if (domain.front() == '.' || domain.find("..") != std::string_view::npos) continue;
    // Exchange writes "dda:SMTP=user@example.com": the prefix is not the address.
    if (const auto eq = local.find('='); eq != std::string_view::npos && util::iequals(local.substr(0, eq), "smtp")) {
      local = local.substr(eq + 1);
      b += eq + 1;
      if (local.empty()) continue;
    }
    std::string address(local);
    address += '@';
    address += domain;
    out.push_back({std::move(address), b});
    from = e;
  }
  return out;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto lf = text.find('\n', start);
    if (lf == std::string_view::npos) lf = text.size();
    std::string_view line = text.substr(start, lf - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (lf == text.size()) break;
    start = lf + 1;
  }
  return lines;
}

std::vector<std::pair<std::string, std::string>> parse_header_block(std::string_view text, std::string_view* rest) {
  std::vector<std::pair<std::string, std::string>> fields;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto lf = text.find('\n', pos);
    const std::size_t next = lf == std::string_view::npos ? text.size() : lf + 1;
    std::string_view line = text.substr(pos, (lf == std::string_view::npos ? text.size() : lf) - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (util::trim(line).empty()) {
      pos = next;
      break;
    }
    if ((line[0] == ' ' || line[0] == '\t') && !fields.empty()) {
      fields.back().second += ' ';
      fields.back().second += util::trim(line);
    } else if (const auto colon = line.find(':'); colon != std::string_view::npos && colon > 0) {
      fields.emplace_back(std::string(util::trim(line.substr(0, colon))), std::string(util::trim(line.substr(colon + 1))));
    }
    pos = next;
  }
  if (rest != nullptr) *rest = text.substr(pos < text.size() ? pos : text.size());
  return fields;
}

std::string strip_html(std::string_view html) {
  std::string out;
  out.reserve(html.size());
  std::size_t i = 0;
  while (i < html.size()) {
    const char c = html[i];
    if (c == '<') {
      const auto close = html.find('>', i);
      if (close == std::string_view::npos) break;
      std::string_view tag = html.substr(i + 1, close - i - 1);
      if (!tag.empty() && tag[0] == '/') tag.remove_prefix(1);
      std::size_t n = 0;
      while (n < tag.size() && is_alnum(tag[n])) ++n;
      const std::string name = util::to_lower_ascii(tag.substr(0, n));
      i = close + 1;
      // A line-ending tag ends a line, unless the source line ends there too.
      const bool line_end = i < html.size() && (html[i] == '\n' || html[i] == '\r');
      if (!line_end && (name == "br" || name == "p" || name == "div" || name == "tr" || name == "li")) out += '\n';
      continue;
    }
    if (c == '&') {
      static constexpr std::pair<std::string_view, std::string_view> k_entities[] = {
          {"&nbsp;", " "}, {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}, {"&quot;", "\""}, {"&#39;", "'"}};
      bool done = false;
      for (const auto& [entity, replacement] : k_entities) {
        if (html.size() - i >= entity.size() && util::iequals(html.substr(i, entity.size()), entity)) {
          out += replacement;
          i += entity.size();
          done = true;
          break;
        }
      }
      if (done) continue;
    }
    out += c;
    ++i;
  }
  return out;
}

}  // namespace blindcast::bounce::text
