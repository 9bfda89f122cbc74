#include "guard/decoders.hpp"

#include <cstdint>
#include <bit>
#include <cstring>

#include <unicode/ucnv.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace blindcast::guard {

namespace {

// Byte -> value tables: -1 for bytes outside the alphabet.
struct Alphabets {
  signed char hex[256];
  signed char b64[256];  // standard and URL-safe alphabets
  Alphabets() : hex{}, b64{} {
    for (int c = 0; c < 256; ++c) {
      hex[c] = static_cast<signed char>(c >= '0' && c <= '9' ? c - '0'
                                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                               : -1);
      b64[c] = static_cast<signed char>(c >= 'A' && c <= 'Z' ? c - 'A'
                                        : c >= 'a' && c <= 'z' ? c - 'a' + 26
                                        : c >= '0' && c <= '9' ? c - '0' + 52
                                        : c == '+' || c == '-' ? 62
                                        : c == '/' || c == '_' ? 63
                                                               : -1);
    }
  }
};
const Alphabets k_alphabets;

int hex_value(char c) { return k_alphabets.hex[static_cast<unsigned char>(c)]; }
int b64_value(char c) { return k_alphabets.b64[static_cast<unsigned char>(c)]; }


// `bytes` in `charset`, as UTF-8 (ICU converters); as they are when the
// charset is UTF-8, US-ASCII or unknown to ICU.
std::string to_utf8(std::string_view charset, std::string bytes) {
  std::string name(charset);
  for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (name == "utf-8" || name == "utf8" || name == "us-ascii" || name.empty()) return bytes;
  UErrorCode err = U_ZERO_ERROR;
  const std::int32_t need = ucnv_convert("UTF-8", name.c_str(), nullptr, 0, bytes.data(),
                                         static_cast<std::int32_t>(bytes.size()), &err);
  if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err)) return bytes;
  std::string out(static_cast<std::size_t>(need) + 1, '\0');
  err = U_ZERO_ERROR;
  const std::int32_t len = ucnv_convert("UTF-8", name.c_str(), out.data(), static_cast<std::int32_t>(out.size()),
                                        bytes.data(), static_cast<std::int32_t>(bytes.size()), &err);
  if (U_FAILURE(err)) return bytes;
  out.resize(static_cast<std::size_t>(len));
  return out;
}

}  // namespace

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

std::string decode_base64(std::string_view in) {
  std::string out;
  out.resize_and_overwrite(in.size() * 3 / 4 + 3, [&](char* buf, std::size_t) {
    char* o = buf;
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
        *o++ = static_cast<char>((acc >> bits) & 0xFF);
      }
    }
    return static_cast<std::size_t>(o - buf);
  });
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
        // Copy up to the next '=': 16 bytes at a time (escapes come every few
        // characters in non-Latin text, too often for a call to memchr).
        const char* stop = p;
#if defined(__SSE2__)
        const __m128i eq = _mm_set1_epi8('=');
        while (end - stop >= 16) {
          const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(stop));
          const int hits = _mm_movemask_epi8(_mm_cmpeq_epi8(v, eq));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(o + (stop - p)), v);
          if (hits != 0) {
            stop += std::countr_zero(static_cast<unsigned>(hits));
            break;
          }
          stop += 16;
        }
#endif
        while (stop < end && *stop != '=') {
          o[stop - p] = *stop;
          ++stop;
        }
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
        // The charset, without an RFC 2231 language ("utf-8*en").
        std::string_view charset = in.substr(i + 2, q1 - i - 2);
        charset = charset.substr(0, charset.find('*'));
        if (enc == 'B' || enc == 'b') {
          out += to_utf8(charset, decode_base64(text));
        } else if (enc == 'Q' || enc == 'q') {
          std::string t(text);
          for (char& ch : t) {
            if (ch == '_') ch = ' ';
          }
          out += to_utf8(charset, decode_quoted_printable(t));
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

std::string decode_percent(std::string_view in) {
  constexpr char k_break = '\x01';  // guard/reader_view.hpp
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      // Two hex digits, markup breaks between them read through.
      std::size_t j = i + 1;
      while (j < in.size() && in[j] == k_break) ++j;
      const int hi = j < in.size() ? hex_value(in[j]) : -1;
      std::size_t k = j + 1;
      while (k < in.size() && in[k] == k_break) ++k;
      const int lo = k < in.size() ? hex_value(in[k]) : -1;
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i = k;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

bool has_percent_escape(std::string_view in) {
  constexpr char k_break = '\x01';  // guard/reader_view.hpp: read through, as decode_percent does
  for (std::size_t i = in.find('%'); i != std::string_view::npos; i = in.find('%', i + 1)) {
    std::size_t j = i + 1;
    while (j < in.size() && in[j] == k_break) ++j;
    if (j >= in.size() || hex_value(in[j]) < 0) continue;
    ++j;
    while (j < in.size() && in[j] == k_break) ++j;
    if (j < in.size() && hex_value(in[j]) >= 0) return true;
  }
  return false;
}

void for_each_data_uri(std::string_view in, bool by_line,
                       const std::function<void(std::string_view)>& payload) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  const char* const stops = by_line ? "\n" : " \t\r\n\"'<>)";
  for (std::size_t colon = in.find(':'); colon != std::string_view::npos; colon = in.find(':', colon + 1)) {
    if (colon < 4 || lower(in[colon - 4]) != 'd' || lower(in[colon - 3]) != 'a' || lower(in[colon - 2]) != 't' ||
        lower(in[colon - 1]) != 'a') {
      continue;
    }
    std::size_t end = colon + 1;
    while (end < in.size() && std::strchr(stops, in[end]) == nullptr) ++end;
    const std::string_view uri = in.substr(colon + 1, end - colon - 1);
    const std::size_t comma = uri.find(',');
    if (comma == std::string_view::npos) continue;
    std::string header;
    for (char c : uri.substr(0, comma)) {
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n') header += lower(c);
    }
    const std::string data = decode_percent(uri.substr(comma + 1));
    const bool base64 = header.size() >= 7 && header.compare(header.size() - 7, 7, ";base64") == 0;
    payload(base64 ? decode_base64(data) : data);
    colon = end;
  }
}

}  // namespace blindcast::guard
