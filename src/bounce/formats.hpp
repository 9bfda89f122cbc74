// The readers behind parse(), one per kind of report, and what they share.
// Internal to the bounce layer: the API is report.hpp.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bounce/mime_tree.hpp"
#include "bounce/report.hpp"

namespace blindcast::bounce {

// The enhanced status a report shows for `status` (a DSN's Status field, or
// "") and `diagnostic`: the diagnostic's own code beats a missing, generic
// (x.0.0) or other-class status (classify.cpp).
std::string effective_status(std::string_view status, std::string_view diagnostic);

// One failed (or delayed, or delivered) recipient before classification.
struct Failure {
  std::string address;
  std::string status;      // as reported ("" when none)
  std::string reply_code;  // as reported ("" when none)
  std::string diagnostic;  // raw; cleaned by finish()
  bool delayed = false;    // a warning: the message is still queued
  bool delivered = false;  // DSN action delivered, relayed or expanded
};

// A Failure classified, its diagnostic cleaned. `context` (the report's
// human-readable text, may be "") decides between expired and other when
// the diagnostic alone does not: a report that says it gave up after
// retrying is an expired message.
RecipientResult finish(const Failure& failure, std::string_view context);

// The recipients of an RFC 3464 / RFC 6533 delivery-status body; `human`:
// the report's human-readable part, where a diagnostic the fields lack may
// be found. Empty when the body names no recipient.
std::vector<Failure> read_dsn(std::string_view body, std::string_view human);

// What the report's human-readable text is (before any returned message).
struct PlainText {
  std::string text;                     // the explanation, cut before the returned message
  std::vector<std::string> own;         // the report's own addresses (From, To, ...): never a recipient
  std::vector<std::string> failed;      // X-Failed-Recipients
  std::string from;                     // From header
  std::string subject;                  // Subject header
};

// The failed recipients a non-standard report names (Postfix, qmail, Exim,
// Sendmail, Exchange, Yahoo, AOL, ... in their plain-text forms).
std::vector<Failure> read_plain(const PlainText& report);

// True when the report's text says it is only a warning (delivery goes on).
bool says_delayed(std::string_view text, std::string_view subject);

// Returns `text` up to the line where a copy of the returned message starts.
std::string_view cut_returned(std::string_view text);

}  // namespace blindcast::bounce
