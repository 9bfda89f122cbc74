// Recipient address validation and normalisation.
//
// Accepts an RFC 5321 / RFC 5322 addr-spec: a dot-atom or quoted-string local
// part (printable ASCII; RFC 5321 §4.1.2) and a domain name. Internationalised
// domains (U-labels) are converted to A-labels with libidn2 (UTS #46,
// non-transitional, RFC 5891); A-labels are checked by decoding them. The one
// stored form is local-part as given + "@" + lower-case A-label domain.
// Length limits: local part 64 octets, domain 255, whole address 254
// (RFC 5321 §4.5.3.1). Domain literals, single-label domains and non-ASCII
// local parts (which need SMTPUTF8 end to end) are refused for bulk sending.
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace blindcast::mail {

struct Address {
  std::string local;   // as given (quoted form kept)
  std::string domain;  // lower-case A-label form

  // Returns "local@domain".
  [[nodiscard]] std::string str() const { return local + "@" + domain; }
  // Returns the key used to detect duplicates: the address with ASCII case folded.
  [[nodiscard]] std::string dedup_key() const;
};

// The duplicate key of an already normalised address ("local@domain"): ASCII
// case folded in the whole address.
std::string dedup_key_of(std::string_view normalized_address);

// Parses and normalises `text` (surrounding white space ignored); the error is
// a short reason fit to show next to a row number.
std::expected<Address, std::string> parse_address(std::string_view text);

// Converts a domain (U-label or A-label form) to its lower-case A-label form.
std::expected<std::string, std::string> domain_to_ascii(std::string_view domain);

// Converts an A-label domain to its Unicode form (unchanged when all ASCII).
std::string domain_to_unicode(std::string_view ascii_domain);

}  // namespace blindcast::mail
