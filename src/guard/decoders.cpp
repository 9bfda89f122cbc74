#include "guard/decoders.hpp"

#include <cstdint>
#include <cstring>

namespace blindcast::guard {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x110000) {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

struct Named {
  std::string_view name;
  std::uint32_t cp;
};
// Entities that can spell or separate an address, plus the common ones.
constexpr Named k_named[] = {
    {"amp", '&'},     {"lt", '<'},      {"gt", '>'},        {"quot", '"'},    {"apos", '\''},
    {"commat", '@'},  {"period", '.'},  {"nbsp", 0xA0},     {"hyphen", '-'},  {"dash", 0x2010},
    {"lowbar", '_'},  {"UnderBar", '_'}, {"plus", '+'},     {"equals", '='},  {"colon", ':'},
    {"sol", '/'},     {"excl", '!'},    {"num", '#'},       {"dollar", '$'},  {"percnt", '%'},
    {"ast", '*'},     {"quest", '?'},   {"Hat", '^'},       {"grave", '`'},   {"lcub", '{'},
    {"rcub", '}'},    {"verbar", '|'},  {"tilde", '~'},     {"lbrace", '{'},  {"rbrace", '}'},
    {"lsqb", '['},    {"rsqb", ']'},    {"lpar", '('},      {"rpar", ')'},    {"comma", ','},
    {"semi", ';'},    {"bsol", '\\'},   {"shy", 0xAD},      {"ZeroWidthSpace", 0x200B},
};

}  // namespace

std::string decode_base64(std::string_view in) {
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const int v = b64_value(c);
    if (v < 0) continue;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

std::string decode_quoted_printable(std::string_view in) {
  // Decoding never lengthens: write through a pointer into room for `in`.
  std::string out;
  out.resize_and_overwrite(in.size(), [&](char* buf, std::size_t) {
    char* o = buf;
    const char* p = in.data();
    const char* const end = p + in.size();
    while (p < end) {
      if (*p != '=') {
        const auto* eq = static_cast<const char*>(std::memchr(p, '=', static_cast<std::size_t>(end - p)));
        const char* const stop = eq != nullptr ? eq : end;
        std::memcpy(o, p, static_cast<std::size_t>(stop - p));
        o += stop - p;
        p = stop;
        if (p == end) break;
      }
      // At '=': an escape (=XX), a soft line break ('=', optional white
      // space, CRLF or LF) or a literal '='.
      if (end - p >= 3) {
        const int hi = hex_value(p[1]);
        const int lo = hex_value(p[2]);
        if (hi >= 0 && lo >= 0) {
          *o++ = static_cast<char>(hi * 16 + lo);
          p += 3;
          continue;
        }
      }
      const char* j = p + 1;
      while (j < end && (*j == ' ' || *j == '\t')) ++j;
      if (j < end && (*j == '\r' || *j == '\n')) {
        if (*j == '\r' && j + 1 < end && j[1] == '\n') ++j;
        p = j + 1;
        continue;
      }
      if (j == end) break;  // '=' and white space at the very end: dropped
      *o++ = '=';
      ++p;
    }
    return static_cast<std::size_t>(o - buf);
  });
  return out;
}

std::string decode_encoded_words(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  bool last_was_word = false;
  std::size_t pending_ws_start = std::string::npos;
  while (i < in.size()) {
    if (in[i] == '=' && i + 1 < in.size() && in[i + 1] == '?') {
      const auto q1 = in.find('?', i + 2);
      const auto q2 = q1 == std::string_view::npos ? q1 : in.find('?', q1 + 1);
      const auto end = q2 == std::string_view::npos ? q2 : in.find("?=", q2 + 1);
      if (end != std::string_view::npos && q2 == q1 + 2) {
        const char enc = in[q1 + 1];
        const std::string_view text = in.substr(q2 + 1, end - q2 - 1);
        // White space between two adjacent encoded-words is dropped (RFC 2047 §6.2).
        if (last_was_word && pending_ws_start != std::string::npos) out.resize(pending_ws_start);
        if (enc == 'B' || enc == 'b') {
          out += decode_base64(text);
        } else if (enc == 'Q' || enc == 'q') {
          std::string t(text);
          for (char& ch : t) {
            if (ch == '_') ch = ' ';
          }
          out += decode_quoted_printable(t);
        } else {
          out.append(in.substr(i, end + 2 - i));
        }
        i = end + 2;
        last_was_word = true;
        pending_ws_start = std::string::npos;
        continue;
      }
    }
    // Plain text up to the next "=?" (or one byte, when this "=?" starts no
    // encoded-word), copied whole. Afterwards `pending_ws_start` marks its
    // trailing white space, which goes if an encoded-word follows directly.
    std::size_t stop = in.find("=?", i + 1);
    if (stop == std::string_view::npos) stop = in.size();
    const std::string_view run = in.substr(i, stop - i);
    const std::size_t before = out.size();
    out.append(run);
    const std::size_t last_text = run.find_last_not_of(" \t\r\n");
    if (last_text != std::string_view::npos) {
      last_was_word = false;
      pending_ws_start = last_text + 1 < run.size() ? before + last_text + 1 : std::string::npos;
    } else if (pending_ws_start == std::string::npos) {
      pending_ws_start = before;
    }
    i = stop;
  }
  return out;
}

std::string decode_html_entities(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '&') {
      const std::size_t amp = in.find('&', i);
      const std::size_t stop = amp == std::string_view::npos ? in.size() : amp;
      out.append(in.substr(i, stop - i));
      i = stop - 1;
      continue;
    }
    std::size_t j = i + 1;
    if (j < in.size() && in[j] == '#') {
      ++j;
      const bool hex = j < in.size() && (in[j] == 'x' || in[j] == 'X');
      if (hex) ++j;
      std::uint32_t cp = 0;
      std::size_t digits = 0;
      while (j < in.size() && digits < 8) {
        const int v = hex ? hex_value(in[j]) : (in[j] >= '0' && in[j] <= '9' ? in[j] - '0' : -1);
        if (v < 0) break;
        cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(v);
        ++j;
        ++digits;
      }
      if (digits > 0) {
        append_utf8(out, cp);
        i = (j < in.size() && in[j] == ';') ? j : j - 1;
        continue;
      }
      out += '&';
      continue;
    }
    std::size_t k = j;
    while (k < in.size() && k - j < 32 &&
           ((in[k] >= 'a' && in[k] <= 'z') || (in[k] >= 'A' && in[k] <= 'Z'))) {
      ++k;
    }
    const std::string_view name = in.substr(j, k - j);
    bool done = false;
    for (const auto& n : k_named) {
      if (n.name == name) {
        append_utf8(out, n.cp);
        i = (k < in.size() && in[k] == ';') ? k : k - 1;
        done = true;
        break;
      }
    }
    if (!done) out += '&';
  }
  return out;
}

std::string decode_percent(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

}  // namespace blindcast::guard
