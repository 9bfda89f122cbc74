// parse(): which kind of report a returned message is, and who it is about.
//
// In this order, the first that applies:
//  1. An ARF feedback report (RFC 5965: a message/feedback-report part):
//     a complaint about Original-Rcpt-To, else the returned message's To.
//  2. A DSN (RFC 3464 message/delivery-status, RFC 6533
//     message/global-delivery-status), also one forwarded inside a
//     message/rfc822: its recipient groups; without any, the text below.
//  3. An auto-reply (RFC 3834 Auto-Submitted: auto-replied, X-Autoreply,
//     X-Autorespond, Precedence: auto_reply, an "Out of office" subject) from
//     anyone but a mail system: never a bounce. (Mail systems mark some
//     bounces auto-replied too: those are read as bounces when their text
//     names a failed recipient.)
//  4. A plain-text bounce (plain.cpp), when the sender or the subject says it
//     is one: a bounce, with the recipients found (maybe none).
//  5. Anything else: unknown.
// The token comes from the envelope headers (bounce+TOKEN@...), else from
// the returned message's X-Blindcast-Token header.
#include <array>
#include <exception>
#include <functional>
#include <string>

#include "bounce/formats.hpp"
#include "bounce/mime_tree.hpp"
#include "bounce/text_scan.hpp"
#include "bounce/verp.hpp"
#include "util/strings.hpp"

namespace blindcast::bounce {

namespace {

constexpr std::size_t k_max_text = 256 * 1024;

constexpr std::array<std::string_view, 11> k_daemon_senders = {
    "mailer-daemon", "mailer_daemon", "postmaster",     "mdaemon",          "mail delivery",
    "delivery subsystem", "delivery system", "mail administrator", "system administrator",
    "mail.delivery",  "ndr@"};

constexpr std::array<std::string_view, 27> k_bounce_subjects = {
    "undeliver",         "delivery fail",      "failure notice",     "failure delivery",  "returned mail",
    "delivery status notification", "mail delivery", "could not be delivered", "non-delivery",
    "nondelivery",       "failed mail",        "mail error",         "delivery problem",  "delivery report",
    "not delivered",     "delivery notification", "returning message", "delayed mail",   "message delayed",
    "mail failed",       "delivery warning",   "non remis",          "delivery failure", "rejected mail",
    "mail system error", "processing error",   "delivery status"};

constexpr std::array<std::string_view, 14> k_auto_reply_subjects = {
    "out of office",  "out of the office", "auto:",        "automatic reply",    "autoreply",
    "auto-reply",     "auto reply",        "autoresponse", "auto response",      "abwesenheitsnotiz",
    "réponse automatique", "respuesta automática", "risposta automatica", "vacation"};

constexpr std::array<std::string_view, 12> k_gave_up = {
    "attempt(s)",       "attempts:",            "queue too long",   "too long in the queue",
    "aborted after",    "not delivered within", "maximum delivery attempts", "retry timeout",
    "retry time exceeded", "maximum-time-expired", "timed out",      "giving up after"};

using text::contains_any;

const MimeNode* body_of(const MimeNode& message) {
  return message.is_message && !message.children.empty() ? &message.children.front() : nullptr;
}

bool is_returned_headers(std::string_view type) {
  return type == "text/rfc822-headers" || type == "message/rfc822-headers" || type == "message/global-headers";
}

bool is_dsn(std::string_view type) {
  return type == "message/delivery-status" || type == "message/global-delivery-status";
}

// The first entity of `type`-predicate `match` in `node`, not looking into
// returned messages.
template <typename Match>
const MimeNode* find_part(const MimeNode& node, const Match& match) {
  if (match(node)) return &node;
  for (const auto& child : node.children) {
    if (child.is_message) continue;
    if (const MimeNode* hit = find_part(child, match)) return hit;
  }
  return nullptr;
}

// The message (this one, or one forwarded inside it) that carries a DSN.
const MimeNode* message_with_dsn(const MimeNode& message, int depth) {
  if (const MimeNode* body = body_of(message)) {
    if (find_part(*body, [](const MimeNode& n) { return is_dsn(n.type); }) != nullptr) return &message;
    if (depth >= 3) return nullptr;
    const MimeNode* inner = nullptr;
    find_part(*body, [&](const MimeNode& n) {
      for (const auto& c : n.children) {
        if (c.is_message && inner == nullptr) inner = message_with_dsn(c, depth + 1);
      }
      return inner != nullptr;
    });
    return inner;
  }
  return nullptr;
}

// The report's own words: its text/plain parts (text/html when it has
// none), each cut before a returned copy, outside returned messages.
std::string human_text(const MimeNode& message) {
  const MimeNode* body = body_of(message);
  if (body == nullptr) return {};
  std::string out;
  for (const std::string_view wanted : {"text/plain", "text/html"}) {
    find_part(*body, [&](const MimeNode& n) {
      if (n.type == wanted && out.size() < k_max_text) {
        const std::string plain = wanted == "text/html" ? text::strip_html(n.body) : std::string();
        const std::string_view t = wanted == "text/html" ? std::string_view(plain) : std::string_view(n.body);
        out.append(cut_returned(t.substr(0, k_max_text)));
        out += "\n\n";
      }
      return false;
    });
    if (!out.empty()) break;
  }
  return out;
}

using text::valid_token;

std::string token_in_headers(const HeaderList& headers) {
  return valid_token(header_value(headers, k_token_header));
}

// The token in a text that quotes the returned headers ("X-Blindcast-Token: ...").
std::string token_in_text(std::string_view body) {
  // Most texts quote no header at all: one scan instead of a split and a
  // comparison per line.
  if (!text::icontains(body, "x-blindcast-token")) return {};
  for (const auto line : text::split_lines(body)) {
    const std::string_view l = util::trim(line);
    if (l.size() > k_token_header.size() && util::iequals(l.substr(0, k_token_header.size()), k_token_header) &&
        l[k_token_header.size()] == ':') {
      if (auto t = valid_token(l.substr(k_token_header.size() + 1)); !t.empty()) return t;
    }
  }
  return {};
}

std::string find_token(const MimeNode& root) {
  for (const auto& [name, value] : root.headers) {
    for (const std::string_view env : {"To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To"}) {
      if (!util::iequals(name, env)) continue;
      for (const auto& a : text::find_addresses(value, false, true)) {
        if (auto t = valid_token(token_of_address(a.address)); !t.empty()) return t;
      }
    }
  }
  // The returned message: a message/rfc822 part, returned headers, or a
  // plain-text report quoting them.
  std::string found;
  std::function<void(const MimeNode&, int)> walk = [&](const MimeNode& n, int depth) {
    if (!found.empty() || depth > 8) return;
    if (n.is_message && &n != &root) found = token_in_headers(n.headers);
    if (found.empty() && is_returned_headers(n.type)) found = token_in_headers(text::parse_header_block(n.body));
    if (found.empty() && (n.type.starts_with("text/") || n.type == "message/global")) found = token_in_text(n.body);
    for (const auto& c : n.children) walk(c, depth + 1);
  };
  walk(root, 0);
  return found;
}

// The To of the returned message (ARF without Original-Rcpt-To).
std::vector<std::string> returned_to(const MimeNode& report_body) {
  std::vector<std::string> out;
  find_part(report_body, [&](const MimeNode& n) {
    std::string_view to;
    std::vector<std::pair<std::string, std::string>> parsed;
    for (const auto& c : n.children) {
      if (c.is_message) to = header_value(c.headers, "To");
    }
    if (to.empty() && is_returned_headers(n.type)) {
      parsed = text::parse_header_block(n.body);
      to = header_value(parsed, "To");
    }
    for (auto& a : text::find_addresses(to, true)) out.push_back(std::move(a.address));
    return !out.empty();
  });
  return out;
}

bool read_arf(const MimeNode& root, Report& report) {
  const MimeNode* body = body_of(root);
  if (body == nullptr) return false;
  const MimeNode* feedback = find_part(*body, [](const MimeNode& n) { return n.type == "message/feedback-report"; });
  if (feedback == nullptr) return false;
  // A report that also carries delivery status is a DSN (a complaint stops
  // even security notices: it must be one for sure).
  if (find_part(*body, [](const MimeNode& n) {
        return n.type == "message/delivery-status" || n.type == "message/global-delivery-status";
      }) != nullptr) {
    return false;
  }
  report.type = Type::k_complaint;
  std::vector<std::string> addresses;
  for (const auto& [name, value] : text::parse_header_block(feedback->body)) {
    if (util::iequals(name, "Feedback-Type")) report.feedback_type = util::to_lower_ascii(util::trim(value));
    if (util::iequals(name, "Original-Rcpt-To")) {
      for (auto& a : text::find_addresses(value, true, true)) addresses.push_back(std::move(a.address));
    }
  }
  // RFC 6650's "not-spam": the user took it out of the spam folder.
  if (report.feedback_type == "not-spam") {
    report.type = Type::k_unknown;
    return true;
  }
  if (addresses.empty()) addresses = returned_to(*body);
  for (auto& a : addresses) {
    RecipientResult r;
    r.address = text::sanitize_utf8(a);
    r.hard = true;
    r.reason = Reason::k_spam_detected;
    report.recipients.push_back(std::move(r));
  }
  return true;
}

bool is_auto_reply(const HeaderList& headers) {
  for (const auto& [name, value] : headers) {
    const std::string v = util::to_lower_ascii(util::trim(value));
    if (util::iequals(name, "Auto-Submitted") && v.starts_with("auto-replied")) return true;
    if ((util::iequals(name, "X-Autoreply") || util::iequals(name, "X-Autorespond") ||
         util::iequals(name, "X-Autoresponder")) && v != "no") {
      return true;
    }
    if ((util::iequals(name, "Precedence") || util::iequals(name, "X-Precedence")) &&
        (v == "auto_reply" || v == "auto-reply")) {
      return true;
    }
    if (util::iequals(name, "Subject") && contains_any(v.substr(0, 64), k_auto_reply_subjects)) return true;
  }
  return false;
}

std::vector<std::string> own_addresses(const HeaderList& headers) {
  std::vector<std::string> out;
  for (const auto& [name, value] : headers) {
    for (const std::string_view h : {"From", "To", "Sender", "Reply-To", "Return-Path", "Errors-To", "Cc"}) {
      if (!util::iequals(name, h)) continue;
      for (auto& a : text::find_addresses(value, false, true)) out.push_back(std::move(a.address));
    }
  }
  return out;
}

bool gave_up(std::string_view context) { return contains_any(context, k_gave_up); }

void add_results(Report& report, const std::vector<Failure>& failures, std::string_view context) {
  bool any_failed = false;
  for (const auto& f : failures) any_failed = any_failed || !f.delivered;
  report.type = any_failed ? Type::k_bounce : Type::k_delivered;
  for (const auto& f : failures) {
    if (any_failed && f.delivered) continue;
    report.recipients.push_back(finish(f, context));
  }
}

}  // namespace

RecipientResult finish(const Failure& failure, std::string_view context) {
  RecipientResult r;
  r.address = failure.address;
  r.diagnostic = text::clean_diagnostic(failure.diagnostic);
  r.status = effective_status(failure.status, r.diagnostic);
  r.reply_code = failure.reply_code.empty() ? std::string(text::find_reply_code(r.diagnostic)) : failure.reply_code;
  if (failure.delivered) {
    r.reason = Reason::k_other;
    return r;
  }
  const Classification c = classify(r.status, r.reply_code, r.diagnostic);
  r.hard = c.hard && !failure.delayed;
  r.reason = c.reason;
  // A message still queued has not expired (whatever its warning says).
  if (failure.delayed && r.reason == Reason::k_expired) r.reason = Reason::k_other;
  // A final report of a temporary trouble that says it retried and gave up
  // is about an expired message, whatever the last answer was.
  const char cls = !r.status.empty() ? r.status[0] : (!r.reply_code.empty() ? r.reply_code[0] : '0');
  if (!failure.delayed && cls != '5' && (r.reason == Reason::k_other || r.reason == Reason::k_rate_limited) &&
      gave_up(context)) {
    r.reason = Reason::k_expired;
  }
  return r;
}

Report parse(std::string_view raw) {
  Report report;
  try {
    const MimeNode root = read_mime(raw);
    report.token = find_token(root);
    if (read_arf(root, report)) return report;

    const std::string subject(header_value(root.headers, "Subject"));
    const std::string from(header_value(root.headers, "From"));
    bool forced = false;
    if (const MimeNode* dsn_message = message_with_dsn(root, 0)) {
      const std::string human = human_text(*dsn_message);
      const MimeNode* dsn = find_part(*body_of(*dsn_message), [](const MimeNode& n) { return is_dsn(n.type); });
      const auto failures = read_dsn(dsn->body, human);
      if (!failures.empty()) {
        add_results(report, failures, human);
        return report;
      }
      forced = true;  // a DSN without recipient fields: its text names them
    }

    const bool daemon = contains_any(from, k_daemon_senders);
    const bool auto_reply = is_auto_reply(root.headers);
    // "System Administrator" sends NDRs ("Undeliverable: ...") and its own
    // out-of-office replies ("Automatic reply: ..."): the subject tells them apart.
    const bool reply_subject = contains_any(std::string_view(subject).substr(0, 64), k_auto_reply_subjects) &&
                               !contains_any(subject, k_bounce_subjects);
    if (auto_reply && (!daemon || reply_subject) && !forced) {
      report.type = Type::k_auto_reply;
      return report;
    }
    PlainText plain;
    plain.text = human_text(root);
    plain.own = own_addresses(root.headers);
    plain.from = from;
    plain.subject = subject;
    for (auto& a : text::find_addresses(header_value(root.headers, "X-Failed-Recipients"), true, true)) {
      plain.failed.push_back(std::move(a.address));
    }
    const bool bounce_like = forced || daemon || !plain.failed.empty() || contains_any(subject, k_bounce_subjects);
    if (!bounce_like) {
      report.type = auto_reply ? Type::k_auto_reply : Type::k_unknown;
      return report;
    }
    auto failures = read_plain(plain);
    if (failures.empty() && auto_reply) {
      report.type = Type::k_auto_reply;
      return report;
    }
    const bool delayed = says_delayed(plain.text, subject);
    for (auto& f : failures) f.delayed = delayed;
    add_results(report, failures, plain.text);
    report.type = Type::k_bounce;
  } catch (const std::exception&) {
    // Never throws (report.hpp): what could not be read is unknown.
    report = Report{};
  }
  return report;
}

}  // namespace blindcast::bounce
