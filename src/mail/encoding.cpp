#include "mail/encoding.hpp"

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
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  return out;
}

TransferEncoding choose_encoding(std::string_view text) {
  std::size_t high = 0;
  std::size_t line = 0;
  bool long_line = false;
  bool bare_ctl = false;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80) ++high;
    if (c == '\n') {
      line = 0;
    } else if (++line > 998) {
      long_line = true;
    }
    if (c == 0) bare_ctl = true;
  }
  if (high == 0 && !long_line && !bare_ctl) return TransferEncoding::k_7bit;
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
  std::size_t col = 0;
  auto emit = [&](const char* s, std::size_t n) {
    if (col + n > k_qp_line - 1) {  // leave room for the soft break '='
      out += "=\r\n";
      col = 0;
    }
    out.append(s, n);
    col += n;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      out += "\r\n";
      col = 0;
      ++i;
      continue;
    }
    const bool at_line_end = i + 1 == text.size() || text[i + 1] == '\r';
    const bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_line_end);
    if (literal) {
      const char ch = static_cast<char>(c);
      emit(&ch, 1);
    } else {
      const char enc[3] = {'=', k_hex[c >> 4], k_hex[c & 0xF]};
      emit(enc, 3);
    }
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
