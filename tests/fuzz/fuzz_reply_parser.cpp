// libFuzzer target for the SMTP reply parser: arbitrary server bytes, fed in
// arbitrary splits, must never crash, hang or break the parser's invariants.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "smtp/reply.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view all(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t split = size > 1 ? data[0] % size : 0;  // first byte chooses a split point
  blindcast::smtp::ReplyParser parser;
  std::vector<blindcast::smtp::Reply> replies;
  auto error = parser.feed(all.substr(0, split < all.size() ? split : all.size()), replies);
  if (!error && split < all.size()) error = parser.feed(all.substr(split), replies);
  for (const auto& r : replies) {
    if (r.code < 200 || r.code > 599 || r.lines.empty()) std::abort();
    if (!r.enhanced.empty() && r.enhanced[0] != static_cast<char>('0' + r.code / 100)) std::abort();
  }
  return 0;
}
