#include "guard/reader_view.hpp"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <memory>
#include <unordered_map>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace blindcast::guard {

namespace {

struct Entity {
  std::string_view name;
  char32_t first;
  char32_t second;
  bool legacy;  // may be written without ';'
};
constexpr Entity k_entities[] = {
#include "guard/html_entities.inc"
};
constexpr std::size_t k_longest_entity = 32;

constexpr char32_t k_rlo = 0x202E;  // right-to-left override
constexpr char32_t k_lro = 0x202D;  // left-to-right override
constexpr char32_t k_pdf = 0x202C;  // pop directional formatting
constexpr char32_t k_replacement = 0xFFFD;

// What reading does to a character: keep it, drop it (format and other
// default-ignorable characters), or replace it by its NFKC_Casefold mapping.
enum CharClass : std::uint8_t { k_keep = 0, k_drop = 1, k_map = 2 };

CharClass classify(char32_t cp) {
  const auto c = static_cast<UChar32>(cp);
  if (u_charType(c) == U_FORMAT_CHAR || u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT)) return k_drop;
  if (u_hasBinaryProperty(c, UCHAR_CHANGES_WHEN_NFKC_CASEFOLDED)) return k_map;
  return k_keep;
}

// The classes of the Basic Multilingual Plane, computed on first use (about
// 10 ms; commands that never read text outside ASCII skip it).
const std::array<std::uint8_t, 0x10000>& bmp_classes() {
  static const auto table = [] {
    auto t = std::make_unique<std::array<std::uint8_t, 0x10000>>();
    t->fill(k_keep);
    for (char32_t cp = 0x80; cp < 0x10000; ++cp) (*t)[cp] = classify(cp);
    return t;
  }();
  return *table;
}

CharClass class_of(char32_t cp) {
  if (cp < 0x80) return k_keep;
  if (cp < 0x10000) return static_cast<CharClass>(bmp_classes()[cp]);
  return classify(cp);
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Appends the NFKC_Casefold mapping of `cp`. Mappings are remembered per
// thread: text repeats its characters, and ICU's call costs a conversion.
void append_folded(std::string& out, char32_t cp) {
  thread_local std::unordered_map<char32_t, std::string> cache;
  auto it = cache.find(cp);
  if (it == cache.end()) {
    if (cache.size() > 4096) cache.clear();
    UErrorCode err = U_ZERO_ERROR;
    const icu::Normalizer2* nfkc_cf = icu::Normalizer2::getNFKCCasefoldInstance(err);
    std::string mapped;
    if (U_SUCCESS(err)) {
      const icu::UnicodeString folded = nfkc_cf->normalize(icu::UnicodeString(static_cast<UChar32>(cp)), err);
      if (U_SUCCESS(err)) folded.toUTF8String(mapped);
    }
    if (U_FAILURE(err)) {
      mapped.clear();
      append_utf8(mapped, cp);
    }
    it = cache.emplace(cp, std::move(mapped)).first;
  }
  out += it->second;
}

// Decodes one UTF-8 sequence at `p` (< `end`); returns its length, with
// `cp` = U+FFFD and length 1 for a malformed byte.
std::size_t decode_utf8(const char* p, const char* end, char32_t& cp) {
  const auto b0 = static_cast<unsigned char>(*p);
  if (b0 >= 0xC2 && b0 < 0xE0 && end - p >= 2 && (static_cast<unsigned char>(p[1]) & 0xC0) == 0x80) {
    cp = (static_cast<char32_t>(b0 & 0x1F) << 6) | (static_cast<unsigned char>(p[1]) & 0x3F);  // the common case
    return 2;
  }
  std::size_t len = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 0;
  if (len == 0 || b0 > 0xF4 || static_cast<std::size_t>(end - p) < len) {
    cp = k_replacement;
    return 1;
  }
  char32_t v = b0 & (0x7F >> len);
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(p[k]);
    if ((b & 0xC0) != 0x80) {
      cp = k_replacement;
      return 1;
    }
    v = (v << 6) | (b & 0x3F);
  }
  static constexpr char32_t k_min[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < k_min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
    cp = k_replacement;
    return 1;
  }
  cp = v;
  return len;
}

// Where text is written: the reader's text (which follows bidi overrides)
// or the hidden view (which drops them).
class Sink {
 public:
  Sink(std::string& out, bool track_overrides) : m_out(out), m_track(track_overrides) {}

  // Writes `run`, which reads as it is written.
  void ascii(std::string_view run) {
    if (m_track && !m_open.empty() && run.find('\n') != std::string_view::npos) {
      // An override ends with its paragraph.
      const auto nl = run.find('\n');
      m_out.append(run.substr(0, nl));
      close_all();
      m_out.append(run.substr(nl));
      return;
    }
    m_out.append(run);
  }

  // Writes `cp`, read from `raw` (its UTF-8 bytes, or empty when it was a reference).
  void code_point(char32_t cp, std::string_view raw = {}) {
    if (cp < 0x80) {
      if (cp == '\n' && m_track) close_all();
      m_out += static_cast<char>(cp);
      return;
    }
    if (m_track && (cp == k_rlo || cp == k_lro)) {
      if (m_open.size() < 16) m_open.push_back({static_cast<std::uint32_t>(m_out.size()), cp == k_rlo});
      return;
    }
    if (m_track && cp == k_pdf) {
      if (!m_open.empty()) close_one();
      return;
    }
    switch (class_of(cp)) {
      case k_keep:
        if (raw.empty()) {
          append_utf8(m_out, cp);
        } else {
          m_out.append(raw);
        }
        break;
      case k_drop: break;
      case k_map: append_folded(m_out, cp); break;
    }
  }

  // Closes overrides left open at the end of the text.
  void finish() { close_all(); }

  // Spans of the text shown reversed, innermost first.
  [[nodiscard]] const std::vector<std::pair<std::uint32_t, std::uint32_t>>& reversed() const { return m_reversed; }

 private:
  struct Open {
    std::uint32_t start;
    bool right_to_left;
  };
  void close_one() {
    const Open o = m_open.back();
    m_open.pop_back();
    if (o.right_to_left && o.start < m_out.size()) {
      m_reversed.emplace_back(o.start, static_cast<std::uint32_t>(m_out.size()));
    }
  }
  void close_all() {
    while (!m_open.empty()) close_one();
  }

  std::string& m_out;
  bool m_track;
  std::vector<Open> m_open;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> m_reversed;
};

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_alnum(char c) { return is_alpha(c) || (c >= '0' && c <= '9'); }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'; }

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

const Entity* find_entity(std::string_view name) {
  const auto* end = std::end(k_entities);
  const auto* it = std::lower_bound(std::begin(k_entities), end, name,
                                    [](const Entity& e, std::string_view n) { return e.name < n; });
  return it != end && it->name == name ? it : nullptr;
}

// Decodes the character reference at in[i] == '&' into `sink`; returns the
// index after it ('&' alone when it starts none).
template <class S>
std::size_t decode_reference(std::string_view in, std::size_t i, S& sink) {
  const std::size_t n = in.size();
  std::size_t j = i + 1;
  if (j < n && in[j] == '#') {
    ++j;
    const bool hex = j < n && (in[j] == 'x' || in[j] == 'X');
    if (hex) ++j;
    const std::size_t digits_start = j;
    std::uint64_t v = 0;
    while (j < n) {
      const int d = hex ? hex_digit(in[j]) : (in[j] >= '0' && in[j] <= '9' ? in[j] - '0' : -1);
      if (d < 0) break;
      v = std::min<std::uint64_t>(v * (hex ? 16 : 10) + static_cast<std::uint64_t>(d), 0x110000);
      ++j;
    }
    if (j == digits_start) {
      sink.ascii("&");
      return i + 1;
    }
    if (j < n && in[j] == ';') ++j;
    const bool invalid = v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF);
    sink.code_point(invalid ? k_replacement : static_cast<char32_t>(v));
    return j;
  }
  std::size_t k = j;
  while (k < n && k - j < k_longest_entity && is_alnum(in[k])) ++k;
  if (k == j) {
    sink.ascii("&");
    return i + 1;
  }
  if (k < n && in[k] == ';') {
    if (const Entity* e = find_entity(in.substr(j, k - j))) {
      sink.code_point(e->first);
      if (e->second != 0) sink.code_point(e->second);
      return k + 1;
    }
  }
  // A legacy name without ';' ("&amp", "&nbsp"): the longest one that fits.
  for (std::size_t len = std::min<std::size_t>(k - j, 6); len >= 2; --len) {
    const Entity* e = find_entity(in.substr(j, len));
    if (e != nullptr && e->legacy) {
      sink.code_point(e->first);
      if (e->second != 0) sink.code_point(e->second);
      return j + len;
    }
  }
  sink.ascii("&");
  return i + 1;
}

// The index of the first byte at or after `i` that reading may change:
// '&', '<' (when `html`), or a byte outside ASCII; in.size() when none.
std::size_t next_special(std::string_view in, std::size_t i, bool html) {
  const std::size_t n = in.size();
#if defined(__SSE2__)
  const __m128i amp = _mm_set1_epi8('&');
  const __m128i lt = _mm_set1_epi8(html ? '<' : '&');
  while (i + 16 <= n) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in.data() + i));
    const int hits = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, amp), _mm_cmpeq_epi8(v, lt))) |
                     _mm_movemask_epi8(v);
    if (hits != 0) return i + static_cast<std::size_t>(std::countr_zero(static_cast<unsigned>(hits)));
    i += 16;
  }
#endif
  for (; i < n; ++i) {
    const char c = in[i];
    if (c == '&' || (html && c == '<') || static_cast<unsigned char>(c) >= 0x80) return i;
  }
  return n;
}

// The index of the first byte at or after `i` that reading changes: like
// next_special(), but characters outside ASCII that read as they are stay in
// the run (most non-Latin text).
std::size_t next_change(std::string_view in, std::size_t i, bool html) {
  const std::size_t n = in.size();
  while (true) {
    i = next_special(in, i, html);
    if (i >= n || static_cast<unsigned char>(in[i]) < 0x80) return i;
    char32_t cp = 0;
    const std::size_t len = decode_utf8(in.data() + i, in.data() + n, cp);
    if (cp == k_replacement || class_of(cp) != k_keep) return i;
    i += len;
  }
}

// Reads `in` (no markup) into `sink`: references decoded, characters folded.
template <class S>
void read_text(std::string_view in, S& sink) {
  std::size_t i = 0;
  const std::size_t n = in.size();
  while (i < n) {
    const std::size_t j = next_change(in, i, false);
    if (j > i) sink.ascii(in.substr(i, j - i));
    if (j >= n) break;
    if (in[j] == '&') {
      i = decode_reference(in, j, sink);
    } else {
      char32_t cp = 0;
      const std::size_t len = decode_utf8(in.data() + j, in.data() + n, cp);
      sink.code_point(cp, in.substr(j, len));
      i = j + len;
    }
  }
}

// Inline formatting elements: without attributes they cannot separate text.
bool joins_text(std::string_view name) {
  static constexpr std::string_view k_inline[] = {
      "a",   "abbr", "b",   "bdi", "bdo",  "big",  "cite", "code", "data", "del",    "dfn",    "em",  "font",
      "i",   "ins",  "kbd", "mark", "nobr", "q",   "s",    "samp", "small", "span", "strike", "strong", "sub",
      "sup", "time", "tt",  "u",    "var",  "wbr"};
  std::string lower(name);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return std::find(std::begin(k_inline), std::end(k_inline), lower) != std::end(k_inline);
}

// Skips the markup at in[i] == '<' (its attribute names and values and its
// comment text go to `hidden`); returns the index after it, or `i` when '<'
// starts no markup. `joins` tells whether it vanishes without separating
// the text around it (a comment, an inline tag without attributes).
std::size_t skip_markup(std::string_view in, std::size_t i, Sink& hidden, bool& joins) {
  const std::size_t n = in.size();
  joins = false;
  if (i + 1 >= n) return i;
  const char c = in[i + 1];
  auto to_hidden = [&](std::string_view text) {
    read_text(text, hidden);
    hidden.ascii("\n");
  };
  if (in.substr(i, 4) == "<!--") {
    const std::size_t end = in.find("-->", i + 4);
    to_hidden(in.substr(i + 4, end == std::string_view::npos ? std::string_view::npos : end - i - 4));
    joins = true;
    return end == std::string_view::npos ? n : end + 3;
  }
  const bool closing = c == '/' && i + 2 < n && is_alpha(in[i + 2]);
  if (c == '!' || c == '?') {
    const std::size_t end = in.find('>', i + 2);
    to_hidden(in.substr(i + 2, end == std::string_view::npos ? std::string_view::npos : end - i - 2));
    return end == std::string_view::npos ? n : end + 1;
  }
  if (!is_alpha(c) && !closing) return i;
  const std::size_t name_start = closing ? i + 2 : i + 1;
  std::size_t j = name_start + 1;
  while (j < n && (is_alnum(in[j]) || in[j] == '-' || in[j] == ':' || in[j] == '_')) ++j;
  // "<bob@example.org>" is text: a tag name ends at space, '/' or '>'.
  if (j < n && !is_space(in[j]) && in[j] != '/' && in[j] != '>') return i;
  const bool inline_tag = joins_text(in.substr(name_start, j - name_start));
  bool attributes = false;
  while (j < n) {
    while (j < n && (is_space(in[j]) || in[j] == '/')) ++j;
    if (j >= n) break;
    if (in[j] == '>') {
      joins = inline_tag && !attributes;
      return j + 1;
    }
    attributes = true;
    const std::size_t attr_start = j;
    while (j < n && !is_space(in[j]) && in[j] != '/' && in[j] != '>' && in[j] != '=') ++j;
    if (j > attr_start) to_hidden(in.substr(attr_start, j - attr_start));
    while (j < n && is_space(in[j])) ++j;
    if (j >= n || in[j] != '=') continue;
    ++j;
    while (j < n && is_space(in[j])) ++j;
    if (j >= n) break;
    std::size_t value_start = j;
    std::size_t value_end = 0;
    if (in[j] == '"' || in[j] == '\'') {
      const std::size_t close = in.find(in[j], j + 1);
      value_start = j + 1;
      value_end = close == std::string_view::npos ? n : close;
      j = close == std::string_view::npos ? n : close + 1;
    } else {
      while (j < n && !is_space(in[j]) && in[j] != '>') ++j;
      value_end = j;
    }
    to_hidden(in.substr(value_start, value_end - value_start));
  }
  return n;
}

// Reverses the order of the code points of text[from, to), in place.
void reverse_span(std::string& text, std::uint32_t from, std::uint32_t to) {
  std::string part;
  part.reserve(to - from);
  std::size_t end = to;
  while (end > from) {
    std::size_t start = end - 1;
    while (start > from && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    part.append(text, start, end - start);
    end = start;
  }
  text.replace(from, to - from, part);
}

}  // namespace

void ReaderView::clear() {
  text.clear();
  hidden.clear();
  reversed.clear();
}

bool reads_as_written(std::string_view text) { return next_special(text, 0, true) == text.size(); }

bool could_hold_address(std::string_view text) {
  // Looks only at the bytes that can start one: '@', '&', '%', ':' and 0xEF.
  auto hit = [&](std::size_t i) {
    const char c = text[i];
    if (c == '@' || c == '&' || c == '%') return true;
    if (static_cast<unsigned char>(c) == 0xEF) {
      if (i + 2 >= text.size()) return false;
      const auto b1 = static_cast<unsigned char>(text[i + 1]);
      const auto b2 = static_cast<unsigned char>(text[i + 2]);
      return (b1 == 0xBC && b2 == 0xA0) || (b1 == 0xB9 && b2 == 0xAB);  // U+FF20, U+FE6B
    }
    if (c != ':' || i < 4) return false;
    const std::string_view d = text.substr(i - 4, 4);
    return (d[0] | 0x20) == 'd' && (d[1] | 0x20) == 'a' && (d[2] | 0x20) == 't' && (d[3] | 0x20) == 'a';
  };
  std::size_t i = 0;
  const std::size_t n = text.size();
#if defined(__SSE2__)
  const __m128i at = _mm_set1_epi8('@'), amp = _mm_set1_epi8('&'), pct = _mm_set1_epi8('%'),
                colon = _mm_set1_epi8(':'), ef = _mm_set1_epi8(static_cast<char>(0xEF));
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
    const __m128i any = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, at), _mm_cmpeq_epi8(v, amp)),
                                     _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, pct), _mm_cmpeq_epi8(v, colon)),
                                                  _mm_cmpeq_epi8(v, ef)));
    auto bits = static_cast<unsigned>(_mm_movemask_epi8(any));
    while (bits != 0) {
      if (hit(i + static_cast<std::size_t>(std::countr_zero(bits)))) return true;
      bits &= bits - 1;
    }
  }
#endif
  for (; i < n; ++i) {
    if (hit(i)) return true;
  }
  return false;
}

void read_as_person(std::string_view in, bool html, ReaderView& out) {
  out.clear();
  out.text.reserve(in.size());
  Sink text(out.text, true);
  Sink hidden(out.hidden, false);
  const std::size_t n = in.size();
  std::size_t i = 0;
  while (i < n) {
    const std::size_t j = next_change(in, i, html);
    if (j > i) text.ascii(in.substr(i, j - i));
    if (j >= n) break;
    const char c = in[j];
    if (c == '&') {
      i = decode_reference(in, j, text);
    } else if (c == '<') {
      bool joins = false;
      i = skip_markup(in, j, hidden, joins);
      if (i == j) {
        text.ascii("<");
        ++i;
      } else if (!joins && (out.text.empty() || out.text.back() != k_break)) {
        out.text += k_break;
      }
    } else {
      char32_t cp = 0;
      const std::size_t len = decode_utf8(in.data() + j, in.data() + n, cp);
      text.code_point(cp, in.substr(j, len));
      i = j + len;
    }
  }
  text.finish();
  if (!text.reversed().empty()) {
    out.reversed = out.text;
    for (const auto& [from, to] : text.reversed()) reverse_span(out.reversed, from, to);
  }
}

}  // namespace blindcast::guard
