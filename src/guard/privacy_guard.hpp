// The privacy guard (SPEC §3): the last check on the exact bytes that go on
// the wire, after composition and signing and before the first byte is sent.
//
// Invariants:
//  1. the envelope has exactly one recipient;
//  2. the header section has exactly one To with exactly one mailbox, equal to
//     the envelope recipient; no Cc, Bcc, Resent-* or other recipient-bearing
//     field; From, Sender and Reply-To hold the campaign's constants;
//  3. no audience address other than the recipient's own appears anywhere a
//     reader could see it (below); compared ASCII case-insensitively, with
//     U-label domains converted to A-labels, whole addresses only;
//  4. header lines are well-formed: CRLF only (no bare CR or LF), no NUL, no
//     line over 998 octets, every line a field or a continuation.
// Strict mode (on by default) adds a second, simpler rule beside 3: every
// address a reader can see is the recipient's own (or one of its
// `own_addresses`), a campaign constant (From, Reply-To), written in the
// reviewed content, or matched by `[guard] allow`; this catches data that is
// not in this audience (another campaign's list, a join gone wrong).
// Message-ID, In-Reply-To and References hold message ids, not addresses.
//
// What "appears" means: the guard reads every header field (RFC 2047 words
// decoded) and every MIME leaf (base64 / quoted-printable decoded) the way a
// person would see it (guard/reader_view.hpp: HTML markup removed and its
// attributes read, character references decoded, NFKC, format and bidi
// characters removed, right-to-left overrides applied), and again with
// percent-encoding decoded (once and twice) and data: URIs decoded; the raw
// bytes are read too. Addresses are matched whole (guard/address_scan.hpp).
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
#include <vector>

#include "guard/address_index.hpp"

namespace blindcast::guard {

struct GuardPolicy {
  std::string from_address;      // the campaign's From address
  std::string reply_to_address;  // the campaign's Reply-To address, or empty
  // Strict mode: every address in the message must be the recipient's own, a
  // campaign constant, written in the reviewed content, or allowed.
  bool strict = true;
  // Addresses written in the reviewed content (templates, catalogs,
  // settings), as collect_addresses() finds them; '*' in one matches any run
  // of address characters (a built-in token rendered into an address).
  std::vector<std::string> reviewed_addresses;
  // [guard] allow: patterns of addresses that may appear ("*@example.com").
  std::vector<std::string> allow;
};

struct Envelope {
  std::string_view mail_from;
  std::span<const std::string> recipients;
  // The recipient's other addresses ([guard] own_columns): strict mode takes
  // them as the recipient's own; the audience rule still applies to them.
  std::span<const std::string> own_addresses = {};
};

struct Violation {
  int invariant = 0;       // 1-4 as above; 0 for strict mode and the limits
  std::string rule;        // when invariant is 0: "strict mode" or the limit's name
  std::string where;       // "header To", "part 2 (text/html, base64)", ...
  std::string detail;      // what is wrong
  std::string address;     // the offending address as found, if any (unmasked)

  // One line for people; addresses masked unless `show_addresses`.
  [[nodiscard]] std::string describe(bool show_addresses = false) const;
};

// Adds to `out` every address a reader would see in `text` (reviewed
// content: a template, a catalog, the settings), normalised; `*` stands for
// whatever the caller put there for a built-in token.
void collect_addresses(std::string_view text, std::vector<std::string>& out);

class PrivacyGuard {
 public:
  PrivacyGuard(std::shared_ptr<const AddressIndex> index, GuardPolicy policy);
  ~PrivacyGuard();
  PrivacyGuard(const PrivacyGuard&) = delete;
  PrivacyGuard& operator=(const PrivacyGuard&) = delete;

  // Checks `message` sent with `envelope`; nullopt when it may be sent.
  [[nodiscard]] std::optional<Violation> check(std::string_view message,
                                               const Envelope& envelope) const;

  [[nodiscard]] const GuardPolicy& policy() const { return m_policy; }

  struct Permitted;  // the campaign's constants, reviewed addresses and patterns

 private:
  std::shared_ptr<const AddressIndex> m_index;
  GuardPolicy m_policy;
  std::string m_from_norm;
  std::string m_reply_to_norm;
  std::unique_ptr<const Permitted> m_permitted;
};

}  // namespace blindcast::guard
