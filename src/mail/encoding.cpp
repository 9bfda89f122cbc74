#include "mail/encoding.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include "util/utf8.hpp"

namespace blindcast::mail {

namespace {
constexpr char k_hex[] = "0123456789ABCDEF";
constexpr char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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
  out.reserve(text.size() + text.size() / 32 + 2);
  const char* p = text.data();
  const char* const end = p + text.size();
  if (std::memchr(p, '\r', text.size()) == nullptr) {
    // Rendered templates have bare LF line ends: copy line by line.
    while (const void* hit = std::memchr(p, '\n', static_cast<std::size_t>(end - p))) {
      const char* nl = static_cast<const char*>(hit);
      out.append(p, static_cast<std::size_t>(nl - p));
      out += "\r\n";
      p = nl + 1;
    }
    out.append(p, static_cast<std::size_t>(end - p));
    return out;
  }
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

// True when some byte of `w` is below `n` (n <= 128).
inline bool word_has_less(std::uint64_t w, std::uint64_t n) { return ((w - k_ones * n) & ~w & k_highs) != 0; }
// True when some byte of `w` equals `c`.
inline bool word_has_byte(std::uint64_t w, std::uint64_t c) {
  const std::uint64_t v = w ^ (k_ones * c);
  return ((v - k_ones) & ~v & k_highs) != 0;
}

// True when all 8 bytes at `p` are printable ASCII other than '=', or spaces.
inline bool qp_literal_word(const char* p) {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return (w & k_highs) == 0 && !word_has_less(w, 0x20) && !word_has_byte(w, 0x7F) && !word_has_byte(w, '=');
}

// True when every byte of [p, p+n) is printable ASCII other than '=', or a
// space: what quoted-printable writes unchanged inside a line.
bool qp_literal(const char* p, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (!qp_literal_word(p + i)) return false;
  }
  for (; i < n; ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    if (c < 0x20 || c > 0x7E || c == '=') return false;
  }
  return true;
}
}  // namespace

TransferEncoding choose_encoding(std::string_view text) {
  std::size_t high = 0;
  if (!util::is_ascii(text)) {
    std::size_t i = 0;
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
  // Printable ASCII except '=' goes through as is (RFC 2045 §6.7 rule 2).
  static const auto k_literal = [] {
    std::array<bool, 256> t{};
    for (int c = 33; c <= 126; ++c) t[static_cast<std::size_t>(c)] = c != '=';
    return t;
  }();
  std::size_t line_start = 0;
  while (line_start <= text.size()) {
    std::size_t crlf = text.find("\r\n", line_start);
    const bool last = crlf == std::string_view::npos;
    if (last) crlf = text.size();
    const std::string_view line = text.substr(line_start, crlf - line_start);
    // Fast path: a line of at most 76 literal characters (spaces inside, not at the end).
    const bool plain = line.size() <= k_qp_line &&
                       (line.empty() || (line.back() != ' ' && line.back() != '\t')) &&
                       qp_literal(line.data(), line.size());
    if (plain) {
      out.append(line);
    } else {
      // Runs of literal characters are appended whole, broken with soft line
      // breaks so no encoded line exceeds 76 characters including the '='.
      const std::size_t n = line.size();
      auto literal_at = [&](std::size_t k) {
        const auto c = static_cast<unsigned char>(line[k]);
        return k_literal[c] || ((c == ' ' || c == '\t') && k + 1 < n);
      };
      std::size_t col = 0;
      std::size_t k = 0;
      while (k < n) {
        std::size_t run = k;
        while (run + 8 < n && qp_literal_word(line.data() + run)) run += 8;  // the last byte decides alone
        while (run < n && literal_at(run)) ++run;
        while (k < run) {
          if (col == k_qp_line - 1) {
            out += "=\r\n";
            col = 0;
          }
          const std::size_t take = std::min(k_qp_line - 1 - col, run - k);
          out.append(line.data() + k, take);
          k += take;
          col += take;
        }
        if (k < n) {
          if (col + 3 > k_qp_line - 1) {
            out += "=\r\n";
            col = 0;
          }
          const auto c = static_cast<unsigned char>(line[k]);
          const char enc[3] = {'=', k_hex[c >> 4], k_hex[c & 0xF]};
          out.append(enc, 3);
          col += 3;
          ++k;
        }
      }
    }
    if (last) break;
    out += "\r\n";
    line_start = crlf + 2;
  }
}

void append_base64(std::string& out, std::string_view data) {
  const auto* s = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const unsigned v = (s[i] << 16) | (s[i + 1] << 8) | s[i + 2];
    out += k_b64[(v >> 18) & 63];
    out += k_b64[(v >> 12) & 63];
    out += k_b64[(v >> 6) & 63];
    out += k_b64[v & 63];
  }
  const std::size_t rest = data.size() - i;
  if (rest == 1) {
    const unsigned v = s[i] << 16;
    out += k_b64[(v >> 18) & 63];
    out += k_b64[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const unsigned v = (s[i] << 16) | (s[i + 1] << 8);
    out += k_b64[(v >> 18) & 63];
    out += k_b64[(v >> 12) & 63];
    out += k_b64[(v >> 6) & 63];
    out += '=';
  }
}

void append_base64_lines(std::string& out, std::string_view data) {
  constexpr std::size_t k_chunk = k_b64_line / 4 * 3;  // 57 input bytes per line
  for (std::size_t i = 0; i < data.size(); i += k_chunk) {
    append_base64(out, data.substr(i, k_chunk));
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
    append_base64(out, value.substr(0, n == 0 ? value.size() : n));
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
