// The privacy guard (SPEC §3): the last check on the exact bytes that go on
// the wire, after composition and signing and before the first byte is sent.
//
// Invariants:
//  1. the envelope has exactly one recipient;
//  2. the header section has exactly one To with exactly one mailbox, equal to
//     the envelope recipient; no Cc, Bcc, Resent-* or other recipient-bearing
//     field; From, Sender and Reply-To hold the campaign's constants;
//  3. no audience address other than the recipient's own appears anywhere:
//     raw bytes, headers with RFC 2047 words decoded, and every body part
//     decoded from base64 / quoted-printable, then with HTML character
//     references and percent-encoding decoded; compared ASCII
//     case-insensitively, with U-label domains converted to A-labels;
//  4. header lines are well-formed: CRLF only (no bare CR or LF), no NUL, no
//     line over 998 octets, every line a field or a continuation.
//
// Independence: this module shares no code with render/ or mail/; it parses
// the message with its own strict reader (anything it cannot read as exactly
// one mailbox fails closed) and its own decoders (guard/decoders.hpp).
// check() is const and thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "guard/address_index.hpp"

namespace blindcast::guard {

struct GuardPolicy {
  std::string from_address;      // the campaign's From address
  std::string reply_to_address;  // the campaign's Reply-To address, or empty
};

struct Envelope {
  std::string_view mail_from;
  std::span<const std::string> recipients;
};

struct Violation {
  int invariant = 0;       // 1-4 as above
  std::string where;       // "header To", "part 2 (text/html, base64)", ...
  std::string detail;      // what is wrong
  std::string address;     // the offending address as found, if any (unmasked)

  // One line for people; addresses masked unless `show_addresses`.
  [[nodiscard]] std::string describe(bool show_addresses = false) const;
};

class PrivacyGuard {
 public:
  PrivacyGuard(std::shared_ptr<const AddressIndex> index, GuardPolicy policy);

  // Checks `message` sent with `envelope`; nullopt when it may be sent.
  [[nodiscard]] std::optional<Violation> check(std::string_view message,
                                               const Envelope& envelope) const;

 private:
  std::shared_ptr<const AddressIndex> m_index;
  GuardPolicy m_policy;
  std::string m_from_norm;
  std::string m_reply_to_norm;
};

}  // namespace blindcast::guard
