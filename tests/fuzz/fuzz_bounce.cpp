// libFuzzer target for the bounce parser: any bytes arriving at the bounce
// address must parse without crashing, leaking or hanging, and what comes out
// must be fit for JSON (valid UTF-8, capped diagnostics, a well-formed token).
// And read_mime, which reads a message's header fields itself and hands GMime
// only its MIME fields (or nothing, for a message with none), must read what
// GMime reads when it is given everything (read_mime(raw, true)): the same
// parts with the same bodies, the same values of the fields the layer uses
// (of a returned copy read for its header section only: its To and token).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "bounce/report.hpp"
#include "bounce_mime_reading.hpp"
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

  const auto [a, b] = blindcast::bounce::reading_check::both_readings(raw);
  if (a != b) {
    for (const auto& x : a) std::fprintf(stderr, "blindcast: %.200s\n", x.c_str());
    for (const auto& x : b) std::fprintf(stderr, "GMime:     %.200s\n", x.c_str());
    std::abort();
  }
  return 0;
}
