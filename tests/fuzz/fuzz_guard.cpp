// libFuzzer target for the privacy guard's reader (markup, references,
// Unicode folding, overrides), its address scanner and the whole check: any
// bytes, read as HTML or plain text and inside a message, must never crash,
// hang or break the reader's invariants.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "guard/address_scan.hpp"
#include "guard/privacy_guard.hpp"
#include "guard/reader_view.hpp"

namespace {

const blindcast::guard::PrivacyGuard& the_guard() {
  static const auto guard = [] {
    auto index = std::make_shared<blindcast::guard::AddressIndex>();
    for (const char* a : {"alice@example.com", "bob@example.org", "kai@xn--bcher-kva.example", "smith@gmail.com",
                          "john.smith@gmail.com", "maria@yahoo.com", "maria@yahoo.com.br"}) {
      index->add(a);
    }
    blindcast::guard::GuardPolicy p;
    p.from_address = "noreply@example.com";
    p.reply_to_address = "support@example.com";
    p.reviewed_addresses = {"help@example.com", "unsubscribe+*@example.com"};
    p.allow = {"*@example.net"};
    return std::make_unique<blindcast::guard::PrivacyGuard>(index, p);
  }();
  return *guard;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace blindcast::guard;
  if (size == 0) return 0;
  const bool html = (data[0] & 1) != 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  ReaderView v;
  read_as_person(in, html, v);
  // NFKC expands one character into at most 18 (U+FDFA), 3 bytes into 33.
  if (v.text.size() > 16 * in.size() + 16 || v.hidden.size() > 16 * in.size() + 16) std::abort();
  // Each line is displayed at most two ways (reordered whole, and stretch by
  // stretch); dropping marks never lengthens what was read.
  if (v.visual.size() > 2 * (v.text.size() + 4 * 64) || v.unmarked.size() > v.text.size()) std::abort();
  if (v.hidden_visual.size() > 2 * (v.hidden.size() + 4 * 64)) std::abort();
  for (const std::string_view t : {std::string_view(v.text), std::string_view(v.hidden), std::string_view(v.visual),
                                   std::string_view(v.hidden_visual), std::string_view(v.unmarked), in}) {
    scan_addresses(t, [&](std::span<const Reading> rs, bool /*overflow*/) {
      for (const auto& r : rs) {
        if (r.address.find('@') == std::string_view::npos || r.address.find(k_break) != std::string_view::npos) {
          std::abort();
        }
        (void)reading_shaped(r);
      }
      return true;
    });
  }
  if (could_hold_address(in) == false && in.find('@') != std::string_view::npos) std::abort();

  // Inside a message: as the HTML body, and as the whole message.
  std::string subject(in.substr(0, 200));
  for (char& c : subject) {
    if (c == '\r' || c == '\n' || c == '\0') c = ' ';
  }
  const std::string message = "From: Example <noreply@example.com>\r\nTo: alice@example.com\r\nSubject: " + subject +
                              "\r\nMIME-Version: 1.0\r\nContent-Type: " + (html ? "text/html" : "text/plain") +
                              "; charset=utf-8\r\n\r\n" + std::string(in);
  const std::string rcpt[] = {"alice@example.com"};
  const Envelope envelope{"noreply@example.com", rcpt};
  (void)the_guard().check(message, envelope);
  (void)the_guard().check(in, envelope);
  return 0;
}
