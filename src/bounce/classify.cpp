// classify(): what a failure means for the address (SPEC §9).
//
// A failure is hard (never try this address again) only when the address
// itself is bad: reason user-unknown or host-unknown, and the failure is not
// a temporary (4xx) one. Everything else is soft: a blocked sender, a full
// mailbox, an authentication failure or an expired message say nothing bad
// about the address. So a 5.x.x is not automatically hard (5.7.1 policy,
// 5.2.2 mailbox full, 5.3.4 too large, 5.7.26 DMARC are all soft), and a
// 4.x.x status is not automatically soft when the remote server's own code
// in the diagnostic is a 5.x.x ("550 5.1.1 ..." under a DSN Status 4.0.0).
//
// The effective status: the enhanced status given, unless it is missing,
// generic (x.0.0) or of another class than the one the diagnostic carries;
// then the diagnostic's own ("smtp; 550 5.1.1 ..." beats Status: 5.0.0).
// The effective class: that status's first digit, else the reply code's.
//
// The rule table, first match wins:
//  1. Decisive statuses:  x.1.7, x.1.8 (our envelope sender refused) -> policy;
//     x.1.1, 5.1.3, 5.1.6 -> user-unknown;  x.1.2, 5.1.10
//     (null MX), 5.4.4 (unrouteable) -> host-unknown;  x.2.2 -> mailbox-full;
//     x.2.3, x.3.4 -> too-large;  x.4.7 -> expired;  x.7.20 .. x.7.26 (DKIM,
//     SPF, reverse DNS, DMARC: RFC 7372) -> auth-failure.
//  2. Diagnostic texts (ASCII case-insensitive substrings), in this order:
//     policy        our envelope sender refused: "sender address rejected",
//                   "sender verify", "sender verification", "sender domain",
//                   "unverified sender" (a mistake on the bounce domain must
//                   not read as "user unknown" for the whole audience)
//     user-unknown  "recipient address rejected: access denied" (Exchange
//                   Online's directory-based blocking), "mailbox is disabled",
//                   "mailbox disabled" (Yahoo)
//     other         mail loops ("too many hops", "message looping", "mail loop",
//                   "loop detected"), and a temporary DNS answer ("host not
//                   found, try again", "connection refused")
//     auth-failure  "dmarc", "dkim", "spf", "sender policy framework",
//                   "unauthenticated", "not authenticated", "authentication fail"
//     rate-limited  "sending quota", "daily sending", "too many", "rate limit",
//                   "ratelimit", "rate-limit", "try again later", "try later",
//                   "throttl", "temporarily deferred", "greylist", "graylist"
//     mailbox-full  "quota", "mailbox full", "mailbox is full", "mailbox is over",
//                   "mailfolder is full", "inbox is full", "mail box space",
//                   "storage limit", "too much mail", "insufficient storage",
//                   "out of storage", "account is full", "full mailbox"
//     too-large     "too large", "too big", "message size", "size limit",
//                   "maximum inbound message size", "maximum incoming message size"
//     host-unknown  "domain does not exist", "domain not found", "no such domain",
//                   "unknown domain", "host not found", "host unknown", "unknown host",
//                   "name service error", "unrouteable", "unroutable", "null mx",
//                   "no mx", "mx record", "dns lookup fail"
//     user-unknown  "user unknown", "unknown user", "no such user", "no such recipient",
//                   "no such mailbox", "no mailbox", "mailbox not found",
//                   "mailbox unknown", "mailbox does not exist", "does not exist",
//                   "doesn't exist", "not exist", "recipient not found",
//                   "recipient unknown", "unknown recipient", "user not found",
//                   "user not known", "addressee unknown", "illegal user",
//                   "not a valid user", "not a valid mailbox", "no longer valid",
//                   "no longer available", "disabled or discontinued",
//                   "account has been disabled", "account is disabled",
//                   "account disabled", "inactive", "not listed in", "not recognized",
//                   "did not exactly match", "final email delivery point",
//                   "invalid final delivery", "bad destination mailbox",
//                   "doesn't have a", "has not been collected", "recipnotfound",
//                   "couldn't be found", "could not be found", "n'existe pas", "unbekannt"
//     relay         "unable to relay", "relay access denied", "relaying denied",
//                   "not permitted to relay", "relay not permitted" -> policy
//     blocked       block lists: "spamhaus", "spamcop", "barracuda", "blacklist",
//                   "blocklist", "block list", "rbl", "dnsbl", "listed"
//     spam-detected "spam", "unsolicited", "content rejected", "junk", "phish",
//                   "virus", "malware"
//     blocked       "blocked", "access denied", "not accepting mail from",
//                   "refused to accept", "reputation", "banned", "denied"
//     user-unknown  "recipient rejected", "recipient address rejected",
//                   "address rejected", "mailbox unavailable", "invalid recipient",
//                   "invalid mailbox", "invalid address", "bad address"
//     expired       "expired", "delivery time", "retry timeout", "retry time",
//                   "queue too long", "too long in the queue", "not delivered within",
//                   "timed out", "maximum delivery attempts", "aborted after"
//     policy        "policy", "not permitted", "prohibited", "not allowed"
//  3. Status and reply code by class: 5.2.1 -> user-unknown (disabled account);
//     4.7.x and reply 421 -> rate-limited; 5.7.x -> policy; else other.
#include <array>
#include <optional>
#include <string>

#include "bounce/report.hpp"
#include "bounce/text_scan.hpp"
#include "util/strings.hpp"

namespace blindcast::bounce {

namespace {

struct TextRule {
  std::string_view needle;  // lower-case
  Reason reason;
};

constexpr Reason k_user = Reason::k_user_unknown;
constexpr Reason k_host = Reason::k_host_unknown;

constexpr std::array k_text_rules = {
    // Rejections of OUR envelope sender (the bounce domain's own DNS or MX
    // trouble, a sender verification): nothing about the recipient. First,
    // or "User unknown" / "Domain not found" in them would suppress the
    // whole audience after one mistake on the bounce domain.
    TextRule{"sender address rejected", Reason::k_policy},
    TextRule{"sender verify", Reason::k_policy},
    TextRule{"sender verification", Reason::k_policy},
    TextRule{"sender domain", Reason::k_policy},
    TextRule{"unverified sender", Reason::k_policy},
    // Exchange Online's directory-based edge blocking: the recipient does not exist.
    TextRule{"recipient address rejected: access denied", k_user},
    // Yahoo's "554 30 Sorry, your message to ... cannot be delivered. This mailbox is disabled".
    TextRule{"mailbox is disabled", k_user},
    TextRule{"mailbox disabled", k_user},
    TextRule{"too many hops", Reason::k_other},
    TextRule{"message looping", Reason::k_other},
    TextRule{"mail loop", Reason::k_other},
    TextRule{"loop detected", Reason::k_other},
    TextRule{"host not found, try again", Reason::k_other},
    TextRule{"connection refused", Reason::k_other},
    TextRule{"dmarc", Reason::k_auth_failure},
    TextRule{"dkim", Reason::k_auth_failure},
    TextRule{"spf", Reason::k_auth_failure},
    TextRule{"sender policy framework", Reason::k_auth_failure},
    TextRule{"unauthenticated", Reason::k_auth_failure},
    TextRule{"not authenticated", Reason::k_auth_failure},
    TextRule{"authentication fail", Reason::k_auth_failure},
    TextRule{"sending quota", Reason::k_rate_limited},
    TextRule{"daily sending", Reason::k_rate_limited},
    TextRule{"too many", Reason::k_rate_limited},
    TextRule{"rate limit", Reason::k_rate_limited},
    TextRule{"ratelimit", Reason::k_rate_limited},
    TextRule{"rate-limit", Reason::k_rate_limited},
    TextRule{"try again later", Reason::k_rate_limited},
    TextRule{"try later", Reason::k_rate_limited},
    TextRule{"throttl", Reason::k_rate_limited},
    TextRule{"temporarily deferred", Reason::k_rate_limited},
    TextRule{"greylist", Reason::k_rate_limited},
    TextRule{"graylist", Reason::k_rate_limited},
    TextRule{"quota", Reason::k_mailbox_full},
    TextRule{"mailbox full", Reason::k_mailbox_full},
    TextRule{"mailbox is full", Reason::k_mailbox_full},
    TextRule{"mailbox is over", Reason::k_mailbox_full},
    TextRule{"mailfolder is full", Reason::k_mailbox_full},
    TextRule{"inbox is full", Reason::k_mailbox_full},
    TextRule{"mail box space", Reason::k_mailbox_full},
    TextRule{"storage limit", Reason::k_mailbox_full},
    TextRule{"too much mail", Reason::k_mailbox_full},
    TextRule{"insufficient storage", Reason::k_mailbox_full},
    TextRule{"out of storage", Reason::k_mailbox_full},
    TextRule{"account is full", Reason::k_mailbox_full},
    TextRule{"full mailbox", Reason::k_mailbox_full},
    TextRule{"too large", Reason::k_too_large},
    TextRule{"too big", Reason::k_too_large},
    TextRule{"message size", Reason::k_too_large},
    TextRule{"size limit", Reason::k_too_large},
    TextRule{"maximum inbound message size", Reason::k_too_large},
    TextRule{"maximum incoming message size", Reason::k_too_large},
    TextRule{"domain does not exist", k_host},
    TextRule{"domain not found", k_host},
    TextRule{"no such domain", k_host},
    TextRule{"unknown domain", k_host},
    TextRule{"host not found", k_host},
    TextRule{"host unknown", k_host},
    TextRule{"unknown host", k_host},
    TextRule{"name service error", k_host},
    TextRule{"unrouteable", k_host},
    TextRule{"unroutable", k_host},
    TextRule{"null mx", k_host},
    TextRule{"no mx", k_host},
    TextRule{"mx record", k_host},
    TextRule{"dns lookup fail", k_host},
    TextRule{"user unknown", k_user},
    TextRule{"unknown user", k_user},
    TextRule{"no such user", k_user},
    TextRule{"no such recipient", k_user},
    TextRule{"no such mailbox", k_user},
    TextRule{"no mailbox", k_user},
    TextRule{"mailbox not found", k_user},
    TextRule{"mailbox unknown", k_user},
    TextRule{"mailbox does not exist", k_user},
    TextRule{"does not exist", k_user},
    TextRule{"doesn't exist", k_user},
    TextRule{"not exist", k_user},
    TextRule{"recipient not found", k_user},
    TextRule{"recipient unknown", k_user},
    TextRule{"unknown recipient", k_user},
    TextRule{"user not found", k_user},
    TextRule{"user not known", k_user},
    TextRule{"addressee unknown", k_user},
    TextRule{"illegal user", k_user},
    TextRule{"not a valid user", k_user},
    TextRule{"not a valid mailbox", k_user},
    TextRule{"no longer valid", k_user},
    TextRule{"no longer available", k_user},
    TextRule{"disabled or discontinued", k_user},
    TextRule{"account has been disabled", k_user},
    TextRule{"account is disabled", k_user},
    TextRule{"account disabled", k_user},
    TextRule{"inactive", k_user},
    TextRule{"not listed in", k_user},
    TextRule{"not recognized", k_user},
    TextRule{"did not exactly match", k_user},
    TextRule{"final email delivery point", k_user},
    TextRule{"invalid final delivery", k_user},
    TextRule{"bad destination mailbox", k_user},
    TextRule{"doesn't have a", k_user},
    TextRule{"has not been collected", k_user},
    TextRule{"recipnotfound", k_user},
    TextRule{"couldn't be found", k_user},
    TextRule{"could not be found", k_user},
    TextRule{"n'existe pas", k_user},
    TextRule{"unbekannt", k_user},
    TextRule{"unable to relay", Reason::k_policy},
    TextRule{"relay access denied", Reason::k_policy},
    TextRule{"relaying denied", Reason::k_policy},
    TextRule{"not permitted to relay", Reason::k_policy},
    TextRule{"relay not permitted", Reason::k_policy},
    TextRule{"spamhaus", Reason::k_blocked},
    TextRule{"spamcop", Reason::k_blocked},
    TextRule{"barracuda", Reason::k_blocked},
    TextRule{"blacklist", Reason::k_blocked},
    TextRule{"blocklist", Reason::k_blocked},
    TextRule{"block list", Reason::k_blocked},
    TextRule{"rbl", Reason::k_blocked},
    TextRule{"dnsbl", Reason::k_blocked},
    TextRule{"listed", Reason::k_blocked},
    TextRule{"spam", Reason::k_spam_detected},
    TextRule{"unsolicited", Reason::k_spam_detected},
    TextRule{"content rejected", Reason::k_spam_detected},
    TextRule{"junk", Reason::k_spam_detected},
    TextRule{"phish", Reason::k_spam_detected},
    TextRule{"virus", Reason::k_spam_detected},
    TextRule{"malware", Reason::k_spam_detected},
    TextRule{"blocked", Reason::k_blocked},
    TextRule{"access denied", Reason::k_blocked},
    TextRule{"not accepting mail from", Reason::k_blocked},
    TextRule{"refused to accept", Reason::k_blocked},
    TextRule{"reputation", Reason::k_blocked},
    TextRule{"banned", Reason::k_blocked},
    TextRule{"denied", Reason::k_blocked},
    TextRule{"recipient rejected", k_user},
    TextRule{"recipient address rejected", k_user},
    TextRule{"address rejected", k_user},
    TextRule{"mailbox unavailable", k_user},
    TextRule{"invalid recipient", k_user},
    TextRule{"invalid mailbox", k_user},
    TextRule{"invalid address", k_user},
    TextRule{"bad address", k_user},
    TextRule{"expired", Reason::k_expired},
    TextRule{"delivery time", Reason::k_expired},
    TextRule{"retry timeout", Reason::k_expired},
    TextRule{"retry time", Reason::k_expired},
    TextRule{"queue too long", Reason::k_expired},
    TextRule{"too long in the queue", Reason::k_expired},
    TextRule{"not delivered within", Reason::k_expired},
    TextRule{"timed out", Reason::k_expired},
    TextRule{"maximum delivery attempts", Reason::k_expired},
    TextRule{"aborted after", Reason::k_expired},
    TextRule{"policy", Reason::k_policy},
    TextRule{"not permitted", Reason::k_policy},
    TextRule{"prohibited", Reason::k_policy},
    TextRule{"not allowed", Reason::k_policy},
};

constexpr auto k_rule_needles = [] {
  std::array<std::string_view, k_text_rules.size()> out{};
  for (std::size_t i = 0; i < k_text_rules.size(); ++i) out[i] = k_text_rules[i].needle;
  return out;
}();

// Subject and detail of a status "C.S.D" (-1 when absent).
struct StatusParts {
  int cls = 0;
  int subject = -1;
  int detail = -1;
};

StatusParts split_status(std::string_view s) {
  StatusParts p;
  if (s.empty()) return p;
  p.cls = s[0] - '0';
  std::size_t i = 2;
  auto number = [&](int& out) {
    out = 0;
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') out = out * 10 + (s[i++] - '0');
    if (i == start) out = -1;
    ++i;
  };
  number(p.subject);
  number(p.detail);
  return p;
}

std::optional<Reason> decisive_status(const StatusParts& s) {
  if (s.cls != 4 && s.cls != 5) return std::nullopt;
  const int sd = s.subject * 100 + s.detail;
  // x.1.7 bad sender's mailbox, x.1.8 bad sender's system: about us, not the recipient.
  if (sd == 107 || sd == 108) return Reason::k_policy;
  switch (sd) {
    case 101: return k_user;
    case 102: return k_host;
    case 202: return Reason::k_mailbox_full;
    case 203: case 304: return Reason::k_too_large;
    case 407: return Reason::k_expired;
    default: break;
  }
  if (s.cls == 5 && (sd == 103 || sd == 106)) return k_user;
  if (s.cls == 5 && (sd == 110 || sd == 404)) return k_host;
  if (s.subject == 7 && s.detail >= 20 && s.detail <= 26) return Reason::k_auth_failure;
  return std::nullopt;
}

std::optional<Reason> text_rule(std::string_view diagnostic) {
  if (diagnostic.empty()) return std::nullopt;
  // First match in table order wins, wherever in the text it is.
  static const text::PhraseSet k_rules(k_rule_needles);
  const auto k = k_rules.first_listed(util::to_lower_ascii(diagnostic));
  if (k == std::string_view::npos) return std::nullopt;
  return k_text_rules[k].reason;
}

Reason by_class(const StatusParts& s, std::string_view reply_code) {
  if (s.cls == 5 && s.subject == 2 && s.detail == 1) return k_user;
  if (s.cls == 4 && s.subject == 7) return Reason::k_rate_limited;
  if (reply_code == "421") return Reason::k_rate_limited;
  if (s.cls == 5 && s.subject == 7) return Reason::k_policy;
  return Reason::k_other;
}

bool generic(std::string_view status) { return status.size() == 5 && status.substr(1) == ".0.0"; }

}  // namespace

std::string effective_status(std::string_view status, std::string_view diagnostic) {
  const std::string_view given = text::leading_status(status);
  const std::string_view own = text::find_enhanced_status(diagnostic);
  if (!own.empty() && (given.empty() || generic(given) || own[0] != given[0])) return std::string(own);
  return std::string(given);
}

Classification classify(std::string_view status, std::string_view reply_code, std::string_view diagnostic) {
  const std::string effective = effective_status(status, diagnostic);
  std::string_view reply = reply_code;
  if (reply.empty()) reply = text::find_reply_code(diagnostic);
  const StatusParts parts = split_status(effective);
  int cls = parts.cls;
  if (cls == 0 && !reply.empty()) cls = reply[0] - '0';
  Reason reason = Reason::k_other;
  if (auto r = decisive_status(parts)) {
    reason = *r;
  } else if (auto t = text_rule(diagnostic)) {
    reason = *t;
  } else {
    reason = by_class(parts, reply);
  }
  const bool bad_address = reason == k_user || reason == k_host;
  return Classification{bad_address && cls != 4 && cls != 2, reason};
}

std::string_view to_string(Type type) {
  switch (type) {
    case Type::k_bounce: return "bounce";
    case Type::k_complaint: return "complaint";
    case Type::k_auto_reply: return "auto-reply";
    case Type::k_delivered: return "delivered";
    case Type::k_unknown: return "unknown";
  }
  return "unknown";
}

std::string_view to_string(Reason reason) {
  switch (reason) {
    case Reason::k_user_unknown: return "user-unknown";
    case Reason::k_mailbox_full: return "mailbox-full";
    case Reason::k_host_unknown: return "host-unknown";
    case Reason::k_blocked: return "blocked";
    case Reason::k_spam_detected: return "spam-detected";
    case Reason::k_policy: return "policy";
    case Reason::k_expired: return "expired";
    case Reason::k_too_large: return "too-large";
    case Reason::k_rate_limited: return "rate-limited";
    case Reason::k_auth_failure: return "auth-failure";
    case Reason::k_other: return "other";
  }
  return "other";
}

}  // namespace blindcast::bounce
