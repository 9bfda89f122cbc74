#include "guard/confusables.hpp"

#include <unicode/uspoof.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <cstdint>
#include <unordered_map>

namespace blindcast::guard {

namespace {

const USpoofChecker* checker() {
  static const USpoofChecker* c = [] {
    UErrorCode err = U_ZERO_ERROR;
    USpoofChecker* sc = uspoof_open(&err);
    return U_SUCCESS(err) ? sc : nullptr;  // kept for the process's life
  }();
  return c;
}

// The ASCII character `cp` imitates, or 0. Remembered per thread.
char look_alike(UChar32 cp) {
  thread_local std::unordered_map<UChar32, char> cache;
  if (const auto it = cache.find(cp); it != cache.end()) return it->second;
  char out = 0;
  if (const USpoofChecker* sc = checker()) {
    char in[5] = {0};
    std::int32_t len = 0;
    UBool error = false;
    U8_APPEND(reinterpret_cast<std::uint8_t*>(in), len, 4, cp, error);
    if (error) return 0;
    char skeleton[32];
    UErrorCode err = U_ZERO_ERROR;
    const std::int32_t n = uspoof_getSkeletonUTF8(sc, 0, in, len, skeleton, sizeof skeleton, &err);
    if (U_SUCCESS(err) && n == 1 && static_cast<unsigned char>(skeleton[0]) < 0x80) out = skeleton[0];
  }
  if (cache.size() > 4096) cache.clear();
  cache.emplace(cp, out);
  return out;
}

}  // namespace

std::optional<std::string> ascii_look_alike(std::string_view text) {
  // ASCII imitates nothing (the common case: no call into ICU, no copy).
  if (std::none_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(text.size());
  bool changed = false;
  std::int32_t i = 0;
  const auto n = static_cast<std::int32_t>(text.size());
  while (i < n) {
    UChar32 cp = 0;
    U8_NEXT(reinterpret_cast<const std::uint8_t*>(text.data()), i, n, cp);
    if (cp >= 0 && cp < 0x80) {
      out += static_cast<char>(cp);
      continue;
    }
    const char a = cp < 0 ? 0 : look_alike(cp);
    if (a == 0) return std::nullopt;
    out += a;
    changed = true;
  }
  if (!changed) return std::nullopt;
  return out;
}

}  // namespace blindcast::guard
