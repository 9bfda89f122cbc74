// libFuzzer target for the bounce parser: any bytes arriving at the bounce
// address must parse without crashing, leaking or hanging, and what comes out
// must be fit for JSON (valid UTF-8, capped diagnostics, a well-formed token).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "bounce/report.hpp"
#include "util/utf8.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  const blindcast::bounce::Report r = blindcast::bounce::parse(raw);
  if (r.token.size() > 64) std::abort();
  for (const char c : r.token) {
    if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) std::abort();
  }
  if (r.type == blindcast::bounce::Type::k_unknown && !r.recipients.empty()) std::abort();
  for (const auto& x : r.recipients) {
    if (x.diagnostic.size() > 1000) std::abort();
    if (!blindcast::util::is_valid_utf8(x.diagnostic) || !blindcast::util::is_valid_utf8(x.address)) std::abort();
    if (x.hard && x.reason != blindcast::bounce::Reason::k_user_unknown &&
        x.reason != blindcast::bounce::Reason::k_host_unknown &&
        r.type != blindcast::bounce::Type::k_complaint) {
      std::abort();
    }
  }
  return 0;
}
