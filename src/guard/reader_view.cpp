#include "guard/reader_view.hpp"

#include <unicode/normalizer2.h>
#include <unicode/ubidi.h>
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

#include "guard/decoders.hpp"

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

constexpr char32_t k_lre = 0x202A, k_rle = 0x202B, k_pdf = 0x202C, k_lro = 0x202D, k_rlo = 0x202E;
constexpr char32_t k_replacement = 0xFFFD;

// Numeric references to 0x80-0x9F mean windows-1252 characters (WHATWG).
constexpr char32_t k_c1[32] = {0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
                               0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
                               0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};

// What reading does to a character: keep it, drop it (format and other
// default-ignorable characters), or replace it by its NFKC mapping; and
// whether it matters for the order a reader sees (bidi: controls and
// right-to-left letters) or is a combining mark.
enum CharClass : std::uint8_t { k_keep = 0, k_drop = 1, k_map = 2 };
enum CharFlag : std::uint8_t { k_class_mask = 3, k_bidi = 4, k_mark = 8 };

const icu::Normalizer2* nfkc() {
  static const icu::Normalizer2* n = [] {
    UErrorCode err = U_ZERO_ERROR;
    const icu::Normalizer2* p = icu::Normalizer2::getNFKCInstance(err);
    return U_SUCCESS(err) ? p : nullptr;
  }();
  return n;
}

std::uint8_t classify(char32_t cp) {
  const auto c = static_cast<UChar32>(cp);
  std::uint8_t flags = 0;
  const auto dir = u_charDirection(c);
  if (dir == U_RIGHT_TO_LEFT || dir == U_RIGHT_TO_LEFT_ARABIC || dir == U_RIGHT_TO_LEFT_EMBEDDING ||
      dir == U_RIGHT_TO_LEFT_OVERRIDE || dir == U_LEFT_TO_RIGHT_EMBEDDING || dir == U_LEFT_TO_RIGHT_OVERRIDE ||
      dir == U_POP_DIRECTIONAL_FORMAT || dir == U_LEFT_TO_RIGHT_ISOLATE || dir == U_RIGHT_TO_LEFT_ISOLATE ||
      dir == U_FIRST_STRONG_ISOLATE || dir == U_POP_DIRECTIONAL_ISOLATE || cp == 0x200E || cp == 0x200F ||
      cp == 0x061C) {
    flags |= k_bidi;
  }
  const auto type = u_charType(c);
  if (type == U_NON_SPACING_MARK || type == U_ENCLOSING_MARK) flags |= k_mark;
  if (type == U_FORMAT_CHAR || u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT)) return flags | k_drop;
  if (u_getIntPropertyValue(c, UCHAR_NFKC_QUICK_CHECK) != UNORM_YES && nfkc() != nullptr) {
    UErrorCode err = U_ZERO_ERROR;
    const icu::UnicodeString one(c);
    if (nfkc()->normalize(one, err) != one && U_SUCCESS(err)) return flags | k_map;
  }
  return flags | k_keep;
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

std::uint8_t flags_of(char32_t cp) {
  if (cp < 0x80) return k_keep;
  if (cp < 0x10000) return bmp_classes()[cp];
  return classify(cp);
}

// The NFKC mapping of `cp`, remembered per thread: text repeats its
// characters, and ICU's call costs a conversion.
const std::string& mapping_of(char32_t cp) {
  thread_local std::unordered_map<char32_t, std::string> cache;
  auto it = cache.find(cp);
  if (it == cache.end()) {
    if (cache.size() > 4096) cache.clear();
    std::string mapped;
    UErrorCode err = U_ZERO_ERROR;
    if (nfkc() != nullptr) {
      const icu::UnicodeString n = nfkc()->normalize(icu::UnicodeString(static_cast<UChar32>(cp)), err);
      if (U_SUCCESS(err)) n.toUTF8String(mapped);
    }
    if (mapped.empty() && U_FAILURE(err)) append_utf8(mapped, cp);
    it = cache.emplace(cp, std::move(mapped)).first;
  }
  return it->second;
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

bool ascii_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// Where read text is written. Besides the text itself it keeps, from the
// first character that needs them on, a copy that keeps the bidi controls
// (for the reordered view) and one without combining marks on ASCII.
class Sink {
 public:
  explicit Sink(std::string& out) : m_out(out) {}

  // Writes `run`, which reads as it is written (ASCII, or characters NFKC keeps).
  void run(std::string_view run) {
    if (run.empty()) return;
    if (m_last_mapped && ascii_alnum(run.front()) && !m_out.empty() && ascii_alnum(m_out.back())) mark_break();
    m_last_mapped = false;
    write(run);
  }

  // Writes the character `cp`, read from `raw` (its UTF-8 bytes, or empty
  // when it came from a reference).
  void code_point(char32_t cp, std::string_view raw = {}) {
    if (cp == k_replacement) raw = {};  // a malformed byte reads as U+FFFD, never as itself
    if (cp < 0x80) {
      const char c = static_cast<char>(cp);
      run(std::string_view(&c, 1));
      return;
    }
    const std::uint8_t f = flags_of(cp);
    if ((f & k_bidi) != 0) start_bidi();
    if ((f & k_mark) != 0 && !m_out.empty() && static_cast<unsigned char>(m_out.back()) < 0x80 &&
        m_out.back() != '\n') {
      start_unmarked();
      m_mark_dropped = true;  // the next write skips it in `unmarked`
    }
    switch (f & k_class_mask) {
      case k_keep: {
        std::string tmp;
        if (raw.empty()) append_utf8(tmp, cp);
        m_last_mapped = false;
        write(raw.empty() ? std::string_view(tmp) : raw);
        break;
      }
      case k_drop:
        if (m_bidi != nullptr && (f & k_bidi) != 0) {
          std::string tmp;
          append_utf8(tmp, cp);
          m_bidi->append(tmp);  // controls stay in the copy that is reordered
        }
        m_mark_dropped = false;
        break;
      case k_map: {
        const std::string& m = mapping_of(cp);
        if (!m_last_mapped && !m_out.empty() && !m.empty() && ascii_alnum(m.front()) && ascii_alnum(m_out.back())) {
          mark_break();  // a letter or digit next to one that became ASCII ("org²")
        }
        m_last_mapped = true;
        write(m);
        break;
      }
    }
  }

  // A bidi control that markup stands for (<bdo dir=rtl> is U+202E).
  void control(char32_t cp) {
    start_bidi();
    std::string tmp;
    append_utf8(tmp, cp);
    m_bidi->append(tmp);
  }

  // An optional boundary (markup was here).
  // With `block` (a block element began or ended) the break also ends a
  // paragraph for display: the copy that is reordered holds a line break
  // there, so bidi text is not reordered across it.
  void mark_break(bool block = false) {
    if (m_out.empty()) return;
    if (m_out.back() != k_break) write(std::string_view(&k_break, 1));
    if (!block) return;
    m_blocks.push_back(m_out.size() - 1);
    if (m_bidi && !m_bidi->empty() && m_bidi->back() == k_break) m_bidi->back() = '\n';
  }

  // Ends a line (a value of the hidden view).
  void line() {
    m_last_mapped = false;
    const bool was = m_url;
    m_url = false;
    write("\n");
    m_url = was;
  }

  // While on, tabs and line breaks are not written (an attribute value: URL
  // parsers strip them, so `bob&#9;@x.org` in an href is bob@x.org).
  void url_mode(bool on) { m_url = on; }

  [[nodiscard]] bool has_bidi() const { return m_bidi != nullptr; }
  [[nodiscard]] const std::string* bidi() const { return m_bidi.get(); }
  [[nodiscard]] const std::string* unmarked() const { return m_unmarked.get(); }

 private:
  void write(std::string_view s) {
    if (m_url && s.find_first_of("\t\r\n") != std::string_view::npos) {
      std::string clean;
      for (char c : s) {
        if (c != '\t' && c != '\r' && c != '\n') clean += c;
      }
      m_url = false;
      write(clean);
      m_url = true;
      return;
    }
    m_out.append(s);
    if (m_bidi) m_bidi->append(s);
    if (m_unmarked) {
      if (!m_mark_dropped) m_unmarked->append(s);
      m_mark_dropped = false;
    }
  }
  void start_bidi() {
    if (m_bidi) return;
    m_bidi = std::make_unique<std::string>(m_out);
    for (const std::size_t at : m_blocks) (*m_bidi)[at] = '\n';
  }
  void start_unmarked() {
    if (!m_unmarked) m_unmarked = std::make_unique<std::string>(m_out);
  }

  std::string& m_out;
  std::unique_ptr<std::string> m_bidi;
  std::vector<std::size_t> m_blocks;  // positions in m_out of breaks that end a paragraph
  std::unique_ptr<std::string> m_unmarked;
  bool m_last_mapped = false;
  bool m_mark_dropped = false;
  bool m_url = false;
};

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'; }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

// ASCII case-insensitive equality; `lower_b` is lower case.
bool iequals(std::string_view a, std::string_view lower_b) {
  if (a.size() != lower_b.size()) return false;
  for (std::size_t k = 0; k < a.size(); ++k) {
    if (lower(a[k]) != lower_b[k]) return false;
  }
  return true;
}

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
std::size_t decode_reference(std::string_view in, std::size_t i, Sink& sink) {
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
      sink.run("&");
      return i + 1;
    }
    if (j < n && in[j] == ';') ++j;
    const bool invalid = v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF);
    char32_t cp = invalid ? k_replacement : static_cast<char32_t>(v);
    if (cp >= 0x80 && cp <= 0x9F) cp = k_c1[cp - 0x80];
    sink.code_point(cp);
    return j;
  }
  std::size_t k = j;
  while (k < n && k - j < k_longest_entity && ascii_alnum(in[k])) ++k;
  if (k == j) {
    sink.run("&");
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
  sink.run("&");
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

// Like next_special(), but characters outside ASCII that read as they are
// stay in the run (most non-Latin text); a bidi character stops it until
// the sink keeps a bidi copy, a combining mark right after ASCII always.
std::size_t next_change(std::string_view in, std::size_t i, bool html, const Sink& sink) {
  const std::size_t n = in.size();
  while (true) {
    i = next_special(in, i, html);
    if (i >= n || static_cast<unsigned char>(in[i]) < 0x80) return i;
    char32_t cp = 0;
    const std::size_t len = decode_utf8(in.data() + i, in.data() + n, cp);
    const std::uint8_t f = flags_of(cp);
    if (cp == k_replacement || (f & k_class_mask) != k_keep) return i;
    if ((f & k_bidi) != 0 && !sink.has_bidi()) return i;
    if ((f & k_mark) != 0 && i > 0 && static_cast<unsigned char>(in[i - 1]) < 0x80) return i;
    i += len;
  }
}

// Reads `in` (no markup) into `sink`: references decoded, characters folded.
void read_text(std::string_view in, Sink& sink) {
  std::size_t i = 0;
  const std::size_t n = in.size();
  while (i < n) {
    const std::size_t j = next_change(in, i, false, sink);
    if (j > i) sink.run(in.substr(i, j - i));
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

// Adds the strings of a style sheet (or a style attribute) to `hidden`,
// CSS escapes decoded and strings that follow one another joined:
// `content: "bob" "@" "x.org"` reads "bob@x.org".
void read_css_strings(std::string_view css, Sink& hidden) {
  std::string joined;
  bool open = false;  // a group of adjacent strings is being joined
  std::size_t i = 0;
  auto flush = [&] {
    if (open) {
      read_text(joined, hidden);
      hidden.line();
    }
    joined.clear();
    open = false;
  };
  while (i < css.size()) {
    const char q = css[i];
    if (q != '"' && q != '\'') {
      if (!is_space(q)) flush();
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    while (j < css.size() && css[j] != q) {
      if (css[j] == '\\' && j + 1 < css.size()) {
        std::size_t k = j + 1;
        char32_t cp = 0;
        std::size_t digits = 0;
        while (k < css.size() && digits < 6 && hex_digit(css[k]) >= 0) {
          cp = cp * 16 + static_cast<char32_t>(hex_digit(css[k]));
          ++k;
          ++digits;
        }
        if (digits > 0) {
          if (k < css.size() && is_space(css[k])) ++k;  // one white space ends the escape
          append_utf8(joined, cp == 0 || cp > 0x10FFFF ? k_replacement : cp);
          j = k;
          continue;
        }
        if (css[k] != '\n') joined += css[k];
        j = k + 1;
        continue;
      }
      joined += css[j++];
    }
    open = true;
    i = j + 1;
  }
  flush();
}

// Elements whose content a reader never sees (raw text or not rendered).
bool hides_content(std::string_view name) {
  return name == "script" || name == "style" || name == "title" || name == "template" || name == "iframe" ||
         name == "noembed" || name == "noframes" || name == "head";
}
// Raw-text elements: their content holds no markup, up to the end tag.
bool raw_text(std::string_view name) {
  return name == "script" || name == "style" || name == "title" || name == "iframe" || name == "noembed" ||
         name == "noframes" || name == "xmp" || name == "textarea";
}
bool void_element(std::string_view name) {
  static constexpr std::string_view k_void[] = {"area", "base", "br",   "col",   "embed", "hr",    "img",
                                               "input", "link", "meta", "param", "source", "track", "wbr"};
  return std::find(std::begin(k_void), std::end(k_void), name) != std::end(k_void);
}
// Inline formatting elements: without attributes they cannot separate text.
bool joins_text(std::string_view name) {
  static constexpr std::string_view k_inline[] = {
      "a",   "abbr", "b",   "bdi", "bdo",  "big",  "cite", "code", "data", "del",    "dfn",    "em",  "font",
      "i",   "ins",  "kbd", "mark", "nobr", "q",   "s",    "samp", "small", "span", "strike", "strong", "sub",
      "sup", "time", "tt",  "u",    "var",  "wbr"};
  return std::find(std::begin(k_inline), std::end(k_inline), name) != std::end(k_inline);
}

// True when an inline style hides what it applies to.
bool style_hides(std::string_view style) {
  std::string s;
  for (char c : style) {
    if (!is_space(c)) s += lower(c);
  }
  auto has = [&](std::string_view what) { return s.find(what) != std::string::npos; };
  auto zero = [&](std::string_view prop) {  // "prop:0" followed by a unit, ';', '!' or the end
    for (std::size_t at = s.find(prop); at != std::string::npos; at = s.find(prop, at + 1)) {
      const std::size_t v = at + prop.size();
      if (v < s.size() && s[v] == '0' &&
          (v + 1 == s.size() || (!(s[v + 1] >= '1' && s[v + 1] <= '9') && s[v + 1] != '.'))) {
        return true;
      }
    }
    return false;
  };
  return has("display:none") || has("visibility:hidden") || zero("font-size:") || zero("opacity:") ||
         ((zero("max-height:") || zero("height:") || zero("max-width:") || zero("width:")) && has("overflow:hidden"));
}

// The HTML reader: a tokenizer after the WHATWG one, enough to know what a
// reader sees.
class HtmlReader {
 public:
  HtmlReader(std::string_view in, Sink& text, Sink& hidden) : m_in(in), m_text(text), m_hidden(hidden) {}

  void read() {
    const std::size_t n = m_in.size();
    std::size_t i = 0;
    while (i < n) {
      Sink& out = hiding() ? m_hidden : m_text;
      const std::size_t j = next_change(m_in, i, true, out);
      if (j > i) out.run(m_in.substr(i, j - i));
      if (j >= n) break;
      const char c = m_in[j];
      if (c == '&') {
        i = decode_reference(m_in, j, out);
      } else if (c == '<') {
        i = markup(j);
      } else {
        char32_t cp = 0;
        const std::size_t len = decode_utf8(m_in.data() + j, m_in.data() + n, cp);
        out.code_point(cp, m_in.substr(j, len));
        i = j + len;
      }
    }
  }

 private:
  struct Effect {
    std::string name;
    int depth = 1;
    bool hide = false;
    char32_t bidi = 0;  // the override or embedding it opened, 0: none
  };

  [[nodiscard]] bool hiding() const { return m_hiding > 0; }

  void to_hidden(std::string_view text) {
    m_hidden.url_mode(true);
    read_text(text, m_hidden);
    m_hidden.url_mode(false);
    m_hidden.line();
  }

  // Reads the markup at m_in[i] == '<'; returns the index after it.
  std::size_t markup(std::size_t i) {
    const std::size_t n = m_in.size();
    const auto rest = m_in.substr(i);
    if (rest.starts_with("<!--")) {
      std::size_t body = i + 4;
      std::size_t end;
      std::size_t after;
      if (m_in.substr(body).starts_with(">")) {
        end = body, after = body + 1;  // <!-->
      } else if (m_in.substr(body).starts_with("->")) {
        end = body, after = body + 2;  // <!--->
      } else {
        const std::size_t a = m_in.find("-->", body);
        const std::size_t b = m_in.find("--!>", body);
        end = std::min(a, b);
        after = end == std::string_view::npos ? n : end + (end == a ? 3 : 4);
      }
      to_hidden(m_in.substr(body, end == std::string_view::npos ? std::string_view::npos : end - body));
      return after;  // a comment joins what is around it
    }
    if (rest.starts_with("<![CDATA[")) {
      // Text in SVG and MathML (a comment elsewhere): read as text.
      const std::size_t end = m_in.find("]]>", i + 9);
      read_text(m_in.substr(i + 9, end == std::string_view::npos ? std::string_view::npos : end - i - 9),
                hiding() ? m_hidden : m_text);
      return end == std::string_view::npos ? n : end + 3;
    }
    if (i + 1 >= n) return plain_lt(i);
    const char c = m_in[i + 1];
    if (c == '!' || c == '?' || (c == '/' && i + 2 < n && !is_alpha(m_in[i + 2]) && m_in[i + 2] != '>')) {
      const std::size_t from = i + 2;  // a bogus comment, up to '>'
      const std::size_t end = m_in.find('>', from);
      to_hidden(m_in.substr(from, end == std::string_view::npos ? std::string_view::npos : end - from));
      (hiding() ? m_hidden : m_text).mark_break();
      return end == std::string_view::npos ? n : end + 1;
    }
    if (c == '/' && i + 2 < n && m_in[i + 2] == '>') return i + 3;  // </> is nothing
    const bool closing = c == '/';
    if (closing ? i + 2 >= n || !is_alpha(m_in[i + 2]) : !is_alpha(c)) return plain_lt(i);
    // A tag: its name runs to white space, '/' or '>'.
    const std::size_t name_start = closing ? i + 2 : i + 1;
    std::size_t j = name_start;
    while (j < n && !is_space(m_in[j]) && m_in[j] != '/' && m_in[j] != '>') ++j;
    const std::string_view raw_name = m_in.substr(name_start, j - name_start);
    m_name.assign(raw_name);
    for (char& ch : m_name) ch = lower(ch);
    const std::string_view name = m_name;  // valid until the next tag
    if (closing) {
      end_tag(name);
      to_hidden(raw_name);  // `</bob@example.org>` too: a name is a value the guard reads
      j = attributes(j);
    } else {
      to_hidden(raw_name);  // `<bob@example.org>` is an element named so
      j = attributes(j);
      start_tag(name);
      if (raw_text(name)) j = raw_content(name, j);
    }
    return j;
  }

  std::size_t plain_lt(std::size_t i) {
    (hiding() ? m_hidden : m_text).run("<");
    return i + 1;
  }

  // Reads the attributes from `j` to the end of the tag into m_attrs;
  // returns the index after it.
  std::size_t attributes(std::size_t j) {
    m_attrs.clear();
    const std::size_t n = m_in.size();
    while (j < n) {
      while (j < n && (is_space(m_in[j]) || m_in[j] == '/')) ++j;
      if (j >= n) break;
      if (m_in[j] == '>') return j + 1;
      const std::size_t attr_start = j;
      ++j;  // a '=' may start a name
      while (j < n && !is_space(m_in[j]) && m_in[j] != '/' && m_in[j] != '>' && m_in[j] != '=') ++j;
      const std::string_view attr = m_in.substr(attr_start, j - attr_start);
      to_hidden(attr);
      while (j < n && is_space(m_in[j])) ++j;
      std::string_view value;
      if (j < n && m_in[j] == '=') {
        ++j;
        while (j < n && is_space(m_in[j])) ++j;
        if (j >= n) break;
        if (m_in[j] == '"' || m_in[j] == '\'') {
          const std::size_t close = m_in.find(m_in[j], j + 1);
          value = m_in.substr(j + 1, close == std::string_view::npos ? std::string_view::npos : close - j - 1);
          j = close == std::string_view::npos ? n : close + 1;
        } else {
          const std::size_t start = j;
          while (j < n && !is_space(m_in[j]) && m_in[j] != '>') ++j;
          value = m_in.substr(start, j - start);
        }
        to_hidden(value);
      }
      m_attrs.emplace_back(attr, value);
    }
    return n;
  }

  void start_tag(std::string_view name) {
    Sink& out = hiding() ? m_hidden : m_text;
    auto attr = [&](std::string_view key) -> const std::string_view* {
      for (const auto& [k, v] : m_attrs) {
        if (iequals(k, key)) return &v;
      }
      return nullptr;
    };
    const std::string_view* style = attr("style");
    if (style != nullptr) read_css_strings(*style, m_hidden);
    if (!joins_text(name) || !m_attrs.empty()) out.mark_break(!joins_text(name));
    // An image's alt text stands where the image is (clients show it when
    // they block images): optional boundaries around it.
    if (const std::string_view* alt = attr("alt"); alt != nullptr && (name == "img" || name == "area" || name == "input")) {
      read_text(*alt, out);
      out.mark_break();
    }
    if (void_element(name)) return;
    for (auto& e : m_effects) {
      if (e.name == name) ++e.depth;
    }
    Effect e{std::string(name), 1, false, 0};
    e.hide = hides_content(name) || attr("hidden") != nullptr || (style != nullptr && style_hides(*style));
    const std::string_view* dir = attr("dir");
    const std::string lstyle = style != nullptr ? lowered(*style) : std::string();
    const bool css_override = lstyle.find("bidi-override") != std::string::npos;
    const bool rtl = (dir != nullptr && iequals(*dir, "rtl")) ||
                     (style != nullptr && lstyle.find("direction:rtl") != std::string::npos) ||
                     (style != nullptr && lstyle.find("direction: rtl") != std::string::npos);
    if (name == "bdo" || css_override) {
      e.bidi = rtl ? k_rlo : k_lro;
    } else if (dir != nullptr) {
      e.bidi = rtl ? k_rle : k_lre;
    }
    if (e.bidi != 0) out.control(e.bidi);
    if (e.hide) ++m_hiding;
    if (e.hide || e.bidi != 0) m_effects.push_back(std::move(e));
  }

  void end_tag(std::string_view name) {
    for (auto it = m_effects.rbegin(); it != m_effects.rend(); ++it) {
      if (it->name != name) continue;
      if (--it->depth == 0) {
        if (it->bidi != 0) (hiding() ? m_hidden : m_text).control(k_pdf);
        const bool ends_hiding = it->hide;
        if (ends_hiding) --m_hiding;
        m_effects.erase(std::next(it).base());
        if (ends_hiding) m_hidden.line();  // hidden content is a value of its own
      }
      break;
    }
    if (!joins_text(name)) (hiding() ? m_hidden : m_text).mark_break(/*block=*/true);
  }

  // The content of a raw-text element up to its end tag, which it consumes.
  std::size_t raw_content(std::string_view name, std::size_t j) {
    const std::size_t n = m_in.size();
    std::size_t end = j;
    while (true) {
      end = m_in.find("</", end);
      if (end == std::string_view::npos) break;
      if (iequals(m_in.substr(end + 2, name.size()), name)) break;
      end += 2;
    }
    const std::string_view content = m_in.substr(j, end == std::string_view::npos ? std::string_view::npos : end - j);
    if (name == "style") read_css_strings(content, m_hidden);
    if (name == "textarea" || name == "xmp") {
      read_text(content, hiding() ? m_hidden : m_text);  // shown as text
    } else {
      to_hidden(content);
    }
    if (end == std::string_view::npos) return n;
    const std::size_t close = m_in.find('>', end);
    end_tag(name);
    return close == std::string_view::npos ? n : close + 1;
  }

  std::string_view m_in;
  Sink& m_text;
  Sink& m_hidden;
  std::vector<Effect> m_effects;
  int m_hiding = 0;  // effects in m_effects that hide
  std::string m_name;  // the current tag's name, lower case
  std::vector<std::pair<std::string_view, std::string_view>> m_attrs;  // the current tag's attributes
};

// The bidi control encoded at `p` (UTF-8), or 0: the embeddings,
// overrides, isolates and their ends, and the marks (LRM, RLM, ALM).
char32_t bidi_control_at(const char* p, const char* end, std::size_t& len) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(p[k]); };
  if (end - p >= 2 && b(0) == 0xD8 && b(1) == 0x9C) {
    len = 2;
    return 0x061C;
  }
  if (end - p < 3 || b(0) != 0xE2) return 0;
  const char32_t cp = (static_cast<char32_t>(b(1) & 0x3F) << 6 | (b(2) & 0x3F)) | 0x2000;
  if (b(1) < 0x80 || b(1) > 0x81 || (b(2) & 0xC0) != 0x80) return 0;
  if ((cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200E || cp == 0x200F) {
    len = 3;
    return cp;
  }
  return 0;
}

// True when a stretch could hold an address as displayed: an '@' (or a
// full-width or small one), or a percent-escape that may decode to one.
// Reordering cannot make one where there is none, so only such stretches
// go through the bidi algorithm (it costs more than the rest of reading).
bool reorder_matters(std::string_view stretch) {
  if (stretch.find('@') != std::string_view::npos || stretch.find('%') != std::string_view::npos) return true;
  for (std::size_t i = stretch.find('\xEF'); i != std::string_view::npos; i = stretch.find('\xEF', i + 1)) {
    if (i + 2 >= stretch.size()) break;
    const auto b1 = static_cast<unsigned char>(stretch[i + 1]);
    const auto b2 = static_cast<unsigned char>(stretch[i + 2]);
    if ((b1 == 0xBC && b2 == 0xA0) || (b1 == 0xB9 && b2 == 0xAB)) return true;  // U+FF20, U+FE6B
  }
  return false;
}

// The bidi controls in `text`, in order: (position, code point, length).
struct ControlAt {
  std::size_t pos;
  char32_t cp;
  std::size_t len;
};
std::vector<ControlAt> bidi_controls(std::string_view text) {
  std::vector<ControlAt> out;
  const char* const begin = text.data();
  const char* const end = begin + text.size();
  // U+2000-U+2FFF start with 0xE2, rare in most scripts: found with memchr.
  for (const char* p = begin; (p = static_cast<const char*>(std::memchr(p, '\xE2', static_cast<std::size_t>(end - p)))) != nullptr;) {
    std::size_t len = 0;
    if (const char32_t cp = bidi_control_at(p, end, len); cp != 0) {
      out.push_back({static_cast<std::size_t>(p - begin), cp, len});
      p += len;
    } else {
      ++p;
    }
  }
  // U+061C (ALM) opens and closes nothing; reorder() drops it where it compares.
  return out;
}

// `piece` (UTF-8, controls kept, `carried` embeddings open before it) as
// displayed, controls removed; empty when it is displayed as it is written
// (left to right throughout) or ICU fails.
std::string displayed(UBiDi* para, const std::u16string& carried, std::string_view piece) {
  icu::UnicodeString u(carried.data(), static_cast<int32_t>(carried.size()));
  u.append(icu::UnicodeString::fromUTF8(piece));
  UErrorCode err = U_ZERO_ERROR;
  ubidi_setPara(para, u.getBuffer(), u.length(), UBIDI_DEFAULT_LTR, nullptr, &err);
  if (U_FAILURE(err) || ubidi_getDirection(para) == UBIDI_LTR) return {};
  std::u16string visual(static_cast<std::size_t>(u.length()) + 16, u'\0');
  const int32_t len = ubidi_writeReordered(para, reinterpret_cast<UChar*>(visual.data()),
                                           static_cast<int32_t>(visual.size()), UBIDI_REMOVE_BIDI_CONTROLS, &err);
  std::string shown;
  if (U_SUCCESS(err)) icu::UnicodeString(reinterpret_cast<const UChar*>(visual.data()), len).toUTF8String(shown);
  return shown;
}

// `text` in the order a reader sees it, as far as an address could change:
// ICU's bidi algorithm, bidi controls removed, on each line that could hold
// one (reorder_matters); only readings that reordering changes are kept, one
// per line. A line is read two ways, as a markup break may or may not end a
// paragraph (a block element does, an inline one does not): reordered whole,
// breaks kept in place (`job@<bdo dir=rtl>gro.x</bdo>`, `job@` RLO `gr`
// full-width `o` `.x` PDF both show `job@x.org`), and each stretch between
// breaks reordered on its own, joined again by the breaks (explicit
// embeddings and overrides still open carry into the next stretch). `bidi`
// is `text` with its controls kept. Empty when nothing that could be part of
// an address is displayed otherwise.
std::string reorder(const std::string& bidi) {
  if (!reorder_matters(bidi)) return {};  // no line could change what the scanner finds
  const std::vector<ControlAt> controls = bidi_controls(bidi);
  std::string out;
  UBiDi* para = nullptr;
  std::size_t next_control = 0;
  const std::size_t n = bidi.size();
  std::size_t line_start = 0;
  while (line_start <= n) {
    const std::size_t line_end = std::min(n, bidi.find('\n', line_start));
    const std::string_view line(bidi.data() + line_start, line_end - line_start);
    if (!reorder_matters(line)) {
      while (next_control < controls.size() && controls[next_control].pos < line_end) ++next_control;
      line_start = line_end + 1;
      continue;
    }
    if (para == nullptr && (para = ubidi_open()) == nullptr) break;
    const std::size_t line_first_control = next_control;
    std::u16string open;  // a line (a paragraph) starts with none open
    std::string shown_line;
    std::string plain_line;
    bool changed = false;
    std::size_t start = line_start;
    while (start <= line_end) {
      const std::size_t stop = std::min(line_end, bidi.find(k_break, start));
      const std::string_view stretch(bidi.data() + start, stop - start);
      const std::u16string carried = open;
      const std::size_t first_control = next_control;
      for (; next_control < controls.size() && controls[next_control].pos < stop; ++next_control) {
        const char32_t c = controls[next_control].cp;
        if ((c >= 0x202A && c <= 0x202E && c != 0x202C) || (c >= 0x2066 && c <= 0x2068)) {
          open.push_back(static_cast<char16_t>(c));
        } else if ((c == 0x202C || c == 0x2069) && !open.empty()) {
          open.pop_back();
        }
      }
      // The stretch as read: controls (and ALM) removed.
      std::string plain;
      std::size_t from = start;
      for (std::size_t k = first_control; k < next_control; ++k) {
        plain.append(bidi, from, controls[k].pos - from);
        from = controls[k].pos + controls[k].len;
      }
      plain.append(bidi, from, stop - from);
      for (std::size_t at = plain.find("\xD8\x9C"); at != std::string::npos; at = plain.find("\xD8\x9C", at)) {
        plain.erase(at, 2);
      }
      const std::string shown = stretch.empty() ? std::string() : displayed(para, carried, stretch);
      plain_line += plain;
      if (stop < line_end) plain_line += k_break;
      if (!shown.empty() && shown != plain) {
        changed = true;
        shown_line += shown;
      } else {
        shown_line += plain;
      }
      if (stop < line_end) shown_line += k_break;
      start = stop + 1;
    }
    // The whole line as one paragraph, breaks in place.
    std::string whole;
    if (line_first_control < next_control || changed) {
      whole = displayed(para, {}, line);
      for (std::size_t at = whole.find("\xD8\x9C"); at != std::string::npos; at = whole.find("\xD8\x9C", at)) {
        whole.erase(at, 2);
      }
    }
    if (!whole.empty() && whole != plain_line) {
      out += whole;
      out += '\n';
    }
    if (changed && shown_line != whole) {
      out += shown_line;
      out += '\n';
    }
    line_start = line_end + 1;
  }
  if (para != nullptr) ubidi_close(para);
  return out;
}

}  // namespace

void ReaderView::clear() {
  text.clear();
  hidden.clear();
  visual.clear();
  hidden_visual.clear();
  unmarked.clear();
}

bool reads_as_written(std::string_view text, bool html) { return next_special(text, 0, html) == text.size(); }

bool could_hold_address(std::string_view text) {
  // Looks only at the bytes that can start one: '@', '&', '%', '\\' (a CSS
  // escape), ':' and 0xEF.
  auto hit = [&](std::size_t i) {
    const char c = text[i];
    if (c == '@' || c == '&' || c == '%' || c == '\\') return true;
    if (static_cast<unsigned char>(c) == 0xEF) {
      if (i + 2 >= text.size()) return false;
      const auto b1 = static_cast<unsigned char>(text[i + 1]);
      const auto b2 = static_cast<unsigned char>(text[i + 2]);
      return (b1 == 0xBC && b2 == 0xA0) || (b1 == 0xB9 && b2 == 0xAB);  // U+FF20, U+FE6B
    }
    // "data:", also with markup or a reference inside ("da<b></b>ta:",
    // "data<i></i>:"): any ':' after an 'a' or a tag's '>'.
    if (c != ':' || i == 0) return false;
    const char before = text[i - 1];
    return (before | 0x20) == 'a' || before == '>';
  };
  std::size_t i = 0;
  const std::size_t n = text.size();
#if defined(__SSE2__)
  const __m128i at = _mm_set1_epi8('@'), amp = _mm_set1_epi8('&'), pct = _mm_set1_epi8('%'),
                colon = _mm_set1_epi8(':'), ef = _mm_set1_epi8(static_cast<char>(0xEF)), bs = _mm_set1_epi8('\\');
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
    const __m128i any = _mm_or_si128(
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, at), _mm_cmpeq_epi8(v, amp)), _mm_cmpeq_epi8(v, bs)),
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, pct), _mm_cmpeq_epi8(v, colon)), _mm_cmpeq_epi8(v, ef)));
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

bool markup_removed_could_hold_address(std::string_view text) {
  // What reading `text` as HTML shows is its text outside markup, plus the
  // alt text of images and inputs and the content of CDATA sections. A tag,
  // comment or bogus comment ends at its first '>' or later, never sooner:
  // removing each '<'-to-first-'>' span leaves at least what a reader sees.
  std::string outside;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t lt = text.find('<', i);
    if (lt == std::string_view::npos || lt + 1 >= text.size()) {
      outside.append(text.substr(i));
      break;
    }
    const char c = text[lt + 1];
    const bool markup = is_alpha(c) || c == '/' || c == '!' || c == '?';
    const std::size_t gt = markup ? text.find('>', lt) : std::string_view::npos;
    if (gt == std::string_view::npos) {
      outside.append(text.substr(i, lt + 1 - i));
      i = lt + 1;
      continue;
    }
    const std::string_view tag = text.substr(lt + 1, gt - lt - 1);
    if (tag.starts_with("![") || iequals(tag.substr(0, 3), "img") || iequals(tag.substr(0, 4), "area") ||
        iequals(tag.substr(0, 5), "input") || iequals(tag.substr(0, 3), "xmp") || iequals(tag.substr(0, 8), "textarea")) {
      return true;  // CDATA, an element whose alt text is shown, or one whose content is shown as text
    }
    outside.append(text.substr(i, lt - i));
    i = gt + 1;
  }
  return could_hold_address(outside);
}

void read_as_person(std::string_view in, bool html, ReaderView& out) {
  out.clear();
  out.text.reserve(in.size());
  Sink text(out.text);
  Sink hidden(out.hidden);
  if (html) {
    HtmlReader(in, text, hidden).read();
  } else {
    read_text(in, text);
  }
  if (const std::string* b = text.bidi()) out.visual = reorder(*b);
  if (const std::string* b = hidden.bidi()) out.hidden_visual = reorder(*b);
  if (const std::string* u = text.unmarked()) out.unmarked = *u;
}

}  // namespace blindcast::guard
