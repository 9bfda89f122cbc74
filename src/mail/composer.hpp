// Builds the exact bytes of one outgoing message (RFC 5322, RFC 2045-2047).
//
// Policy: one recipient per message, always: the message has one To mailbox
// and no other recipient field. Output uses CRLF line ends, no header line
// over 998 octets, UTF-8 text parts in 7bit, quoted-printable or base64 as
// fits, and multipart/alternative (text first, HTML second; RFC 2046 §5.1.4)
// when there is an HTML part. Header fields appear in a fixed order so golden
// files are stable. The composer never checks privacy: that is the guard's job
// and the guard shares no code with this file.
//
// Why not GMime for composition: building a GMimeMessage per recipient costs
// GObject allocations and a serialisation pass; this composer appends into one
// buffer and reaches the throughput target (see bench/). GMime is used as the
// independent parser on the guard side instead.
#pragma once

#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blindcast::mail {

struct MessageSpec {
  std::string from;          // formatted mailbox (format_mailbox)
  std::string reply_to;      // formatted mailbox, or empty
  std::string to_address;    // the one recipient, normalised addr-spec
  std::string to_name;       // optional display name
  std::string subject;       // UTF-8, one line
  std::string text;          // UTF-8 plain-text body
  std::string html;          // UTF-8 HTML body, or empty
  std::string message_id;    // "<id@domain>"
  std::time_t date = 0;      // seconds since the epoch
  std::string boundary;      // multipart boundary; empty = a fresh random one
  // Already-valid ASCII header fields appended after the fixed set
  // (List-Unsubscribe, List-Unsubscribe-Post, ...).
  std::vector<std::pair<std::string, std::string>> extra_headers;
};

// Returns the full message for `spec`: header section, blank line, body.
std::string compose(const MessageSpec& spec);

// Returns an RFC 5322 date-time for `t` in UTC: "Sun, 22 Nov 2026 12:19:51 +0000".
std::string format_date(std::time_t t);

// Returns a new unique Message-ID "<...@domain>" for `domain`.
std::string make_message_id(std::string_view domain);

}  // namespace blindcast::mail
