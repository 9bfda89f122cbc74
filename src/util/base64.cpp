#include "util/base64.hpp"

namespace blindcast::util {

namespace {

constexpr const char* k_standard = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr const char* k_url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void encode(std::string& out, std::string_view in, const char* alphabet, bool pad) {
  out.reserve(out.size() + (in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    const bool two = i + 1 < in.size();
    if (two) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (two) out += alphabet[(v >> 6) & 63];
    if (pad) out += two ? "=" : "==";
  }
}

}  // namespace

void append_base64(std::string& out, std::string_view data) { encode(out, data, k_standard, true); }

std::string base64(std::string_view data) {
  std::string out;
  encode(out, data, k_standard, true);
  return out;
}

std::string base64url(std::string_view data) {
  std::string out;
  encode(out, data, k_url, false);
  return out;
}

}  // namespace blindcast::util
