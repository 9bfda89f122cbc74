// What a returned message says (SPEC §9): a delivery status notification
// (RFC 3464, and the non-standard formats MTAs and providers send), a
// feedback report (RFC 5965 ARF), an auto-reply (RFC 3834), or a report
// that the message was delivered. parse() reads the MIME with GMime; the
// DSN fields and the classification rules are this layer's own.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace blindcast::bounce {

enum class Type { k_bounce, k_complaint, k_auto_reply, k_delivered, k_unknown };

// The fixed vocabulary of reasons (SPEC §9).
enum class Reason {
  k_user_unknown,
  k_mailbox_full,
  k_host_unknown,
  k_blocked,
  k_spam_detected,
  k_policy,
  k_expired,
  k_too_large,
  k_rate_limited,
  k_auth_failure,
  k_other,
};

struct RecipientResult {
  std::string address;     // the failed (or complaining) recipient, as reported
  std::string status;      // enhanced status "5.1.1" ("" when none could be found)
  std::string reply_code;  // "550" ("" when none could be found)
  bool hard = false;       // true: never try this address again
  Reason reason = Reason::k_other;
  std::string diagnostic;  // the remote server's text, unfolded, at most 1,000 bytes
};

struct Report {
  Type type = Type::k_unknown;
  std::vector<RecipientResult> recipients;
  // The VERP token (TOKEN of bounce+TOKEN@DOMAIN, lower-cased) found in the
  // report's envelope headers, or else the X-Blindcast-Token header of the
  // returned original message; "" when neither is there. Not verified here.
  std::string token;
  std::string feedback_type;  // complaints: ARF Feedback-Type ("abuse", ...)
};

// The classification of one failure: hard or soft, and why.
struct Classification {
  bool hard = false;
  Reason reason = Reason::k_other;
};

// Parses one message (its raw bytes, CRLF or LF). Never throws; a message
// that is none of the above is k_unknown with no recipients.
Report parse(std::string_view raw);

// Classifies a failure by its enhanced status and reply code first, then by
// the rule table of diagnostic texts (ARCHITECTURE.md lists it).
Classification classify(std::string_view status, std::string_view reply_code, std::string_view diagnostic);

std::string_view to_string(Type type);
std::string_view to_string(Reason reason);

// The header that carries the token in every message blindcast sends (a
// fallback for reports that lose the envelope).
inline constexpr std::string_view k_token_header = "X-Blindcast-Token";

}  // namespace blindcast::bounce
