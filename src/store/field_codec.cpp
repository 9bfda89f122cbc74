#include "store/field_codec.hpp"

#include "util/strings.hpp"

#include <cstdint>

namespace blindcast::store {

std::string pack_fields(const std::vector<std::string>& fields) {
  std::string out;
  std::size_t total = 0;
  for (const auto& f : fields) total += f.size() + 3;
  out.reserve(total);
  for (const auto& f : fields) {
    std::uint64_t n = f.size();
    do {
      unsigned char b = n & 0x7F;
      n >>= 7;
      if (n != 0) b |= 0x80;
      out += static_cast<char>(b);
    } while (n != 0);
    out += f;
  }
  return out;
}

std::optional<std::vector<std::string>> unpack_fields(std::string_view blob) {
  std::vector<std::string> fields;
  std::size_t i = 0;
  while (i < blob.size()) {
    std::uint64_t n = 0;
    int shift = 0;
    while (true) {
      if (i >= blob.size() || shift > 56) return std::nullopt;
      const auto b = static_cast<unsigned char>(blob[i++]);
      n |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) break;
      shift += 7;
    }
    if (n > blob.size() - i) return std::nullopt;
    fields.emplace_back(blob.substr(i, n));
    i += n;
  }
  return fields;
}

std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> out;
  for (const auto w : util::split(text, ' ')) {
    if (!w.empty()) out.emplace_back(w);
  }
  return out;
}

}  // namespace blindcast::store
