#include "mail/encoding.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "util/base64.hpp"
#include "util/utf8.hpp"

namespace blindcast::mail {

namespace {
constexpr char k_hex[] = "0123456789ABCDEF";
constexpr std::size_t k_qp_line = 76;
constexpr std::size_t k_b64_line = 76;
constexpr std::size_t k_fold_at = 78;
constexpr std::size_t k_word_payload = 45;  // bytes per encoded-word: 60 base64 chars + 12

bool is_atom_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
    case '|': case '}': case '~': case ' ':
      return true;
    default:
      return false;
  }
}
}  // namespace

std::string normalize_crlf(std::string_view text) {
  std::string out;
  if (text.empty()) return out;
  const char* p = text.data();
  const char* const end = p + text.size();
  if (std::memchr(p, '\r', text.size()) == nullptr) {
    // Rendered templates have bare LF line ends: copy line by line, through
    // a pointer into room for a CR before every byte at most.
    out.resize_and_overwrite(2 * text.size(), [&](char* buf, std::size_t) {
      char* o = buf;
      while (const void* hit = std::memchr(p, '\n', static_cast<std::size_t>(end - p))) {
        const char* nl = static_cast<const char*>(hit);
        std::memcpy(o, p, static_cast<std::size_t>(nl - p));
        o += nl - p;
        o[0] = '\r';
        o[1] = '\n';
        o += 2;
        p = nl + 1;
      }
      std::memcpy(o, p, static_cast<std::size_t>(end - p));
      o += end - p;
      return static_cast<std::size_t>(o - buf);
    });
    return out;
  }
  out.reserve(text.size() + text.size() / 32 + 2);
  const char* chunk = p;
  while (p < end) {
    const char c = *p;
    if (c != '\r' && c != '\n') {
      ++p;
      continue;
    }
    out.append(chunk, static_cast<std::size_t>(p - chunk));
    out += "\r\n";
    ++p;
    if (c == '\r' && p < end && *p == '\n') ++p;
    chunk = p;
  }
  out.append(chunk, static_cast<std::size_t>(end - chunk));
  return out;
}

namespace {
constexpr std::uint64_t k_ones = 0x0101010101010101ULL;
constexpr std::uint64_t k_highs = 0x8080808080808080ULL;

// What quoted-printable writes unchanged inside a line: printable ASCII other
// than '=', and space (RFC 2045 §6.7 rules 2 and 3).
inline bool qp_literal_byte(unsigned char c) { return c >= 0x20 && c <= 0x7E && c != '='; }

// Position of the first byte at or after `from` that is not qp_literal_byte
// (CR and LF among them), or text.size(). Sixteen bytes per step: this runs
// over every byte of every message body.
std::size_t next_qp_special(std::string_view text, std::size_t from) {
  const char* const p = text.data();
  const std::size_t n = text.size();
#if defined(__SSE2__)
  const __m128i below = _mm_set1_epi8(0x20);
  const __m128i del = _mm_set1_epi8(0x7F);
  const __m128i equals = _mm_set1_epi8('=');
  for (; from + 16 <= n; from += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + from));
    // Signed compares: bytes from 0x80 up are negative, so they fail "> 0x1F".
    const __m128i printable = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_sub_epi8(below, _mm_set1_epi8(1))),
                                            _mm_cmplt_epi8(v, del));
    const __m128i literal = _mm_andnot_si128(_mm_cmpeq_epi8(v, equals), printable);
    const unsigned special = ~static_cast<unsigned>(_mm_movemask_epi8(literal)) & 0xFFFFU;
    if (special != 0) return from + static_cast<std::size_t>(__builtin_ctz(special));
  }
#endif
  for (; from < n; ++from) {
    if (!qp_literal_byte(static_cast<unsigned char>(p[from]))) return from;
  }
  return n;
}

// Encodes one line (no CRLF inside) that needs more than copying: runs of
// literal characters are appended whole, broken with soft line breaks so no
// encoded line exceeds 76 characters including the '='; white space at the
// end is encoded (rule 3).
void append_qp_line(std::string& out, std::string_view line) {
  const std::size_t n = line.size();
  const char* const in = line.data();
  auto literal_at = [&](std::size_t k) {
    const auto c = static_cast<unsigned char>(in[k]);
    return (qp_literal_byte(c) && !(c == ' ' && k + 1 == n)) || (c == '\t' && k + 1 < n);
  };
  // Written through a pointer into room for the worst case: every byte as
  // =XX, and a soft break after every 73 characters at the least.
  const std::size_t most = 3 * n + 3 * (3 * n / (k_qp_line - 3) + 1);
  const std::size_t start = out.size();
  // (GCC 12 may pass a size larger than asked for, so start from `start`.)
  out.resize_and_overwrite(start + most, [&](char* buf, std::size_t) {
    char* o = buf + start;
    std::size_t col = 0;
    auto soft_break = [&] {
      o[0] = '=';
      o[1] = '\r';
      o[2] = '\n';
      o += 3;
      col = 0;
    };
    std::size_t k = 0;
    while (k < n) {
      // The last byte decides alone (white space there is encoded).
      std::size_t run = literal_at(k) ? std::min(next_qp_special(line, k), n - 1) : k;
      while (run < n && literal_at(run)) ++run;
      while (k < run) {
        if (col == k_qp_line - 1) soft_break();
        const std::size_t take = std::min(k_qp_line - 1 - col, run - k);
        std::memcpy(o, in + k, take);
        o += take;
        k += take;
        col += take;
      }
      if (k < n) {
        if (col + 3 > k_qp_line - 1) soft_break();
        const auto c = static_cast<unsigned char>(in[k]);
        o[0] = '=';
        o[1] = k_hex[c >> 4];
        o[2] = k_hex[c & 0xF];
        o += 3;
        col += 3;
        ++k;
      }
    }
    return static_cast<std::size_t>(o - buf);
  });
}
}  // namespace

TransferEncoding choose_encoding(std::string_view text) {
  std::size_t high = 0;
  if (!util::is_ascii(text)) {
    std::size_t i = 0;
#if defined(__SSE2__)
    // Per byte lane: subtract the compare's -1 for each byte from 0x80 up;
    // fold the lanes into `high` before any of them can pass 255.
    const __m128i zero = _mm_setzero_si128();
    while (i + 16 <= text.size()) {
      __m128i lanes = zero;
      for (int step = 0; step < 255 && i + 16 <= text.size(); ++step, i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
        lanes = _mm_sub_epi8(lanes, _mm_cmplt_epi8(v, zero));
      }
      const __m128i sums = _mm_sad_epu8(lanes, zero);
      high += static_cast<std::size_t>(_mm_cvtsi128_si32(sums)) +
              static_cast<std::size_t>(_mm_cvtsi128_si32(_mm_unpackhi_epi64(sums, sums)));
    }
#endif
    for (; i + 8 <= text.size(); i += 8) {
      std::uint64_t w;
      std::memcpy(&w, text.data() + i, 8);
      high += static_cast<std::size_t>((((w & k_highs) >> 7) * k_ones) >> 56);  // bytes with the high bit
    }
    for (; i < text.size(); ++i) high += static_cast<unsigned char>(text[i]) >= 0x80 ? 1 : 0;
  }
  bool long_line = false;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t lf = text.find('\n', start);
    if (lf == std::string_view::npos) lf = text.size();
    if (lf - start > 999) long_line = true;  // 998 octets plus the CR
    start = lf + 1;
  }
  const bool nul = text.find('\0') != std::string_view::npos;
  if (high == 0 && !long_line && !nul) return TransferEncoding::k_7bit;
  // QP triples every non-ASCII byte; base64 costs 4/3 of everything.
  if (high * 3 > text.size()) return TransferEncoding::k_base64;
  return TransferEncoding::k_quoted_printable;
}

const char* encoding_name(TransferEncoding encoding) {
  switch (encoding) {
    case TransferEncoding::k_7bit: return "7bit";
    case TransferEncoding::k_quoted_printable: return "quoted-printable";
    case TransferEncoding::k_base64: return "base64";
  }
  return "7bit";
}

void append_quoted_printable(std::string& out, std::string_view text) {
  // One pass: jump from one byte that is not copied as is to the next. In
  // most text those are only the CRLFs, and a line of at most 76 literal
  // characters not ending in a space is copied whole.
  std::size_t line_start = 0;
  std::size_t pos = 0;
  while (true) {
    const std::size_t special = next_qp_special(text, pos);
    const bool at_end = special == text.size();
    const bool at_crlf = !at_end && text[special] == '\r' && special + 1 < text.size() && text[special + 1] == '\n';
    if (!at_end && !at_crlf) {
      // Something to encode inside this line: the slow path for the whole line.
      std::size_t eol = text.find("\r\n", special);
      if (eol == std::string_view::npos) eol = text.size();
      append_qp_line(out, text.substr(line_start, eol - line_start));
      if (eol == text.size()) return;
      out += "\r\n";
      line_start = pos = eol + 2;
      continue;
    }
    const std::string_view line = text.substr(line_start, special - line_start);
    if (line.size() <= k_qp_line && (line.empty() || line.back() != ' ')) {
      out.append(line);
    } else {
      append_qp_line(out, line);
    }
    if (at_end) return;
    out += "\r\n";
    line_start = pos = special + 2;
  }
}

void append_base64_lines(std::string& out, std::string_view data) {
  constexpr std::size_t k_chunk = k_b64_line / 4 * 3;  // 57 input bytes per line
  for (std::size_t i = 0; i < data.size(); i += k_chunk) {
    util::append_base64(out, data.substr(i, k_chunk));
    out += "\r\n";
  }
}

void append_unstructured(std::string& out, std::string_view value, std::size_t name_len) {
  bool plain = util::is_ascii(value) && value.size() < 900;
  for (char c : value) plain = plain && c >= 32 && c != 127;
  if (plain && value.find("=?") != std::string_view::npos) plain = false;  // would read as a word
  if (plain) {
    // Fold at spaces so lines stay near 78 characters (RFC 5322 §2.2.3).
    std::size_t col = name_len + 2;
    std::size_t i = 0;
    while (i < value.size()) {
      auto sp = value.find(' ', i + 1);
      if (sp == std::string_view::npos) sp = value.size();
      const std::string_view word = value.substr(i, sp - i);
      if (col + word.size() > k_fold_at && i > 0 && word.front() == ' ') {
        out += "\r\n";
        col = 0;
      }
      out.append(word);
      col += word.size();
      i = sp;
    }
    return;
  }
  // RFC 2047 §5(1) encoded-words, folded one per line.
  bool first = true;
  while (!value.empty()) {
    const std::size_t n = util::utf8_prefix_length(value, k_word_payload);
    if (!first) out += "\r\n ";
    out += "=?UTF-8?B?";
    util::append_base64(out, value.substr(0, n == 0 ? value.size() : n));
    out += "?=";
    value.remove_prefix(n == 0 ? value.size() : n);
    first = false;
  }
}

void append_display_name(std::string& out, std::string_view name) {
  bool atoms = !name.empty() && name.front() != ' ' && name.back() != ' ';
  bool ascii_printable = true;
  for (char c : name) {
    atoms = atoms && is_atom_char(c);
    const auto u = static_cast<unsigned char>(c);
    ascii_printable = ascii_printable && u >= 32 && u < 127;
  }
  if (atoms && name.find("=?") == std::string_view::npos) {
    out.append(name);
  } else if (ascii_printable && name.size() < 200) {
    out += '"';
    for (char c : name) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  } else {
    append_unstructured(out, name, 78);  // forces encoded-words for non-ASCII
  }
}

}  // namespace blindcast::mail
