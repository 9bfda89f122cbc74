// The non-standard reports: the plain-text bounces of Postfix (before it sent
// DSNs), qmail and its descendants (Yahoo, Outblaze, GoDaddy, sbcglobal),
// Exim, Sendmail, Exchange 5.5 and GroupWise NDRs, MDaemon, IMail, Lotus
// Domino, InterScan, AOL, and the many one-off gateways.
//
// They share a shape: some boilerplate, the failed addresses, the remote
// server's words, then a copy of the returned message. So, in this order:
//  1. Cut the text where the returned copy starts (cut_returned()).
//  2. qmail's "<user@example.com>:" lines, each followed by its reason
//     (qmail, Postfix's old form, Yahoo, Outblaze, sbcglobal, GoDaddy).
//  3. Exim's X-Failed-Recipients header, else the addresses after a trigger
//     phrase ("did not reach the following recipient(s):", "The following
//     addresses failed:", ...): the first paragraph after it that holds an
//     address. Without a trigger, the first paragraph that holds one.
//     Sendmail's "(expanded from: X)" and Exim's "(generated from X)" name
//     the address that was sent to.
//  4. The reason for each address: the first line after it carrying an SMTP
//     reply code (with its continuation lines), else the address's own
//     paragraphs, else what follows a label ("Reason:", "because:", ...).
// The report's own addresses (From, To, ...) and role accounts (postmaster,
// mailer-daemon) are never taken for a recipient.
#include <array>
#include <string>

#include "bounce/formats.hpp"
#include "bounce/text_scan.hpp"
#include "util/strings.hpp"

namespace blindcast::bounce {

namespace {

constexpr std::size_t k_max_recipients = 100;

constexpr std::array<std::string_view, 31> k_copy_markers = {
    "below this line",
    "copy of the message",
    "this is a copy of your message",
    "original message follows",
    "original message attached",
    "----- original message",
    "message header follows",
    "header of the original message",
    "copy of the first part",
    "start of returned message",
    "your message reads",
    "original message as received",
    "unsent message below",
    "returned mail follows",
    "-------- returned mail",
    "header of the source mail",
    "copy of the original message",
    "included is a copy",
    "attachment is a copy",
    "the header and top",
    "message headers follow",
    "of your original message follow",
    "mensaje original adjunto",
    "summary of the undelivered message",
    "forwarded message",
    "below is a copy",
    "message text follows",
    "content-type: message/rfc822",
    "old message:",
    "message body suppressed",
    "non-delivered message is attached",
};

constexpr std::array<std::string_view, 34> k_triggers = {
    "following recipient",  "following address",     "following user",       "following destination",
    "did not reach",        "not delivered to",      "could not be delivered", "cannot be delivered",
    "could not deliver",    "unable to deliver",     "could not be reached", "did not receive",
    "failed permanently",   "has been delayed",      "not yet been delivered", "addressed to",
    "intended recipient",   "undeliverable address", "undeliverable to",     "failed recipient",
    "failed address",       "error-for:",            "recipient:",           "delivery to this address",
    "your message to",      "delivery failed",       "unknown user:",        "invalid final delivery",
    "delivery problems",    "wasn't able to deliver", "not able to deliver", "pas pu etre delivre",
    "local mailbox",        "was addressed",
};

constexpr std::array<std::string_view, 9> k_labels = {
    "reason:",           "because:",          "because ",           "technical details",
    "problem appears to be", "additional information", "error-text:", "error detail",
    "diagnostic",
};

constexpr std::array<std::string_view, 14> k_delay_phrases = {
    "this is a warning",     "warning message only",      "has been delayed",       "not yet been delivered",
    "will continue to try",  "will be retried",           "delivery attempts will continue",
    "has been postponed",    "no action is required on your part", "you do not need to resend",
    "still being retried",   "will continue trying",      "will continue to attempt", "is still awaiting delivery",
};

constexpr std::array<std::string_view, 6> k_role_accounts = {"postmaster", "mailer-daemon", "mailer_daemon",
                                                             "hostmaster", "abuse", "mdaemon"};

using text::contains_any;

bool blank(std::string_view line) { return util::trim(line).empty(); }

// The report's lines, and the same lines lower-cased once (for the phrase
// lists: a find in `low[i]` instead of lower-casing a line per phrase).
// Holds views into itself: neither copied nor moved.
struct Scan {
  explicit Scan(const PlainText& r)
      : report(r), lines(text::split_lines(r.text)), lowered(util::to_lower_ascii(r.text)), low(text::split_lines(lowered)) {}
  Scan(const Scan&) = delete;
  Scan& operator=(const Scan&) = delete;

  const PlainText& report;
  std::vector<std::string_view> lines;
  std::string lowered;
  std::vector<std::string_view> low;

  [[nodiscard]] bool has(std::size_t i, std::string_view lower_needle) const {
    return low[i].find(lower_needle) != std::string_view::npos;
  }

  [[nodiscard]] bool excluded(std::string_view address) const {
    for (const auto& own : report.own) {
      if (util::iequals(own, address)) return true;
    }
    const std::string local = util::to_lower_ascii(address.substr(0, address.find('@')));
    for (const auto role : k_role_accounts) {
      if (local == role) return true;
    }
    return local.starts_with("bounce+");
  }

  [[nodiscard]] std::vector<std::string> addresses(std::size_t i) const {
    std::vector<std::string> out;
    for (auto& f : text::find_addresses(lines[i])) {
      if (!excluded(f.address)) out.push_back(std::move(f.address));
    }
    return out;
  }

  // The addresses from trigger line `start` to the end of its paragraph,
  // else of the paragraph after it. Returns true when it found any.
  // At most k_max_paragraph_lines lines are read: a real report's paragraph
  // is a few lines; a hostile one of 100,000 trigger lines would cost
  // triggers x lines.
  static constexpr std::size_t k_max_paragraph_lines = 1000;

  bool collect_from(std::size_t start, std::vector<std::string>& out) const {
    std::size_t i = start;
    const std::size_t stop = std::min(lines.size(), start + k_max_paragraph_lines);
    for (int paragraph = 0; paragraph < 2 && i < stop; ++paragraph) {
      bool found = false;
      for (; i < stop && !blank(lines[i]); ++i) {
        auto here = addresses(i);
        const bool replaces = has(i, "expanded from") || has(i, "generated from");
        if (replaces && found && !here.empty() && !out.empty()) out.pop_back();
        for (auto& a : here) add(out, std::move(a));
        found = found || !here.empty();
      }
      if (found) return true;
      while (i < stop && blank(lines[i])) ++i;
    }
    return false;
  }

  // The addresses of the lines before `trigger` in its paragraph ("User's
  // mailbox is full: <a@b.c>\nUnable to deliver mail.").
  void collect_before(std::size_t trigger, std::vector<std::string>& out) const {
    std::size_t i = trigger;
    while (i > 0 && !blank(lines[i - 1])) --i;
    for (; i < trigger; ++i) {
      for (auto& a : addresses(i)) add(out, std::move(a));
    }
  }

  // The addresses of the first paragraph that has one.
  void collect_first(std::vector<std::string>& out) const {
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (addresses(i).empty()) continue;
      while (i > 0 && !blank(lines[i - 1])) --i;
      collect_from(i, out);
      return;
    }
  }

  // A report of one message lists a few recipients; a text that names
  // thousands is hostile, and comparing each with every other would cost
  // quadratic time before any token is checked.
  static constexpr std::size_t k_max_found = 64;

  static void add(std::vector<std::string>& out, std::string address) {
    if (out.size() >= k_max_found) return;
    for (const auto& o : out) {
      if (util::iequals(o, address)) return;
    }
    if (out.size() < k_max_recipients) out.push_back(std::move(address));
  }

  [[nodiscard]] std::size_t first_line_with(std::string_view address) const {
    const std::string needle = util::to_lower_ascii(address);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (has(i, needle)) return i;
    }
    return lines.size();
  }

  // The first line from `start` on carrying a 4xx/5xx reply code, from the
  // code on, with its continuation lines.
  [[nodiscard]] std::string reply_lines(std::size_t start) const {
    for (std::size_t i = start; i < lines.size(); ++i) {
      const std::string_view code = text::find_reply_code(lines[i]);
      if (code.empty() || code[0] == '2') continue;
      std::string out(lines[i].substr(static_cast<std::size_t>(code.data() - lines[i].data())));
      for (std::size_t j = i + 1; j < lines.size() && j <= i + 8; ++j) {
        const std::string_view l = lines[j];
        if (blank(l)) break;
        if (l[0] != ' ' && l[0] != '\t' && !l.starts_with(code)) break;
        out += ' ';
        out.append(util::trim(l));
      }
      return out;
    }
    return {};
  }

  // From each line naming `address` to the end of its paragraph, and the
  // short paragraph after the first ("(Originally addressed to a@b.c)\n\nUser
  // not known").
  [[nodiscard]] std::string own_paragraphs(std::string_view address) const {
    const std::string needle = util::to_lower_ascii(address);
    std::string out;
    std::size_t covered = 0;
    bool first = true;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (i < covered || !has(i, needle)) continue;
      std::size_t j = i;
      for (; j < lines.size() && !blank(lines[j]) && j < i + 8; ++j) {
        out += ' ';
        out.append(util::trim(lines[j]));
      }
      covered = j;
      if (!first) continue;
      first = false;
      while (j < lines.size() && blank(lines[j])) ++j;
      std::size_t k = j;
      while (k < lines.size() && !blank(lines[k]) && addresses(k).empty()) ++k;
      if (k > j && k - j <= 4 && (k == lines.size() || blank(lines[k]))) {
        for (; j < k; ++j) {
          out += ' ';
          out.append(util::trim(lines[j]));
        }
        covered = k;
      }
    }
    return out;
  }

  // What follows the labels ("Reason:", "because:", ...): the rest of the
  // label's paragraph, or the next paragraph when the label ends its line.
  [[nodiscard]] std::string labelled() const {
    std::string out;
    int taken = 0;
    for (std::size_t i = 0; i < lines.size() && taken < 3; ++i) {
      std::string_view label;
      for (const auto l : k_labels) {
        if (has(i, l)) label = l;
        if (!label.empty()) break;
      }
      if (label.empty()) continue;
      ++taken;
      std::string_view rest = util::trim(lines[i].substr(low[i].find(label) + label.size()));
      while (!rest.empty() && (rest.front() == ':' || rest.front() == ' ')) rest.remove_prefix(1);
      std::size_t j = i + 1;
      if (rest.empty()) {
        while (j < lines.size() && blank(lines[j])) ++j;
      }
      out += ' ';
      out.append(rest);
      for (std::size_t k = j; k < lines.size() && !blank(lines[k]) && k < j + 6; ++k) {
        out += ' ';
        out.append(util::trim(lines[k]));
      }
    }
    return out;
  }
};

// qmail's "<user@example.com>: reason" entries (and the older Postfix
// "<user@example.com>: host ... said: ..."), each with its following lines.
std::vector<Failure> qmail_entries(const Scan& scan) {
  std::vector<Failure> out;
  const auto& lines = scan.lines;
  auto entry_address = [&](std::string_view line) -> std::string {
    line = util::trim(line);
    if (!line.starts_with('<')) return {};
    const auto close = line.find('>');
    if (close == std::string_view::npos) return {};
    const std::string_view inside = line.substr(1, close - 1);
    if (inside.find('@') == std::string_view::npos || inside.find(' ') != std::string_view::npos) return {};
    std::string_view after = util::trim(line.substr(close + 1));
    if (!after.starts_with(':')) return {};
    if (scan.excluded(inside)) return {};
    return std::string(inside);
  };
  for (std::size_t i = 0; i < lines.size() && out.size() < k_max_recipients; ++i) {
    std::string address = entry_address(lines[i]);
    if (address.empty()) continue;
    Failure f;
    f.address = std::move(address);
    const std::string_view line = util::trim(lines[i]);
    f.diagnostic = std::string(util::trim(line.substr(line.find(':', line.find('>')) + 1)));
    for (std::size_t j = i + 1; j < lines.size() && j <= i + 10; ++j) {
      if (blank(lines[j]) || !entry_address(lines[j]).empty()) break;
      f.diagnostic += ' ';
      f.diagnostic.append(util::trim(lines[j]));
    }
    bool seen = false;
    for (const auto& o : out) seen = seen || util::iequals(o.address, f.address);
    if (!seen) out.push_back(std::move(f));
  }
  return out;
}

// AOL names only the screen name: "could not be delivered because they are
// not accepting mail from ...:" followed by indented names.
std::vector<Failure> aol_names(const Scan& scan) {
  std::vector<Failure> out;
  if (!text::icontains(scan.report.from, "aol.com")) return out;
  const auto& lines = scan.lines;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!scan.has(i, "could not be delivered")) continue;
    std::string reason(util::trim(lines[i]));
    std::size_t j = i + 1;
    while (j < lines.size() && !blank(lines[j]) && lines[j][0] != ' ' && lines[j][0] != '\t') {
      reason += ' ';
      reason.append(util::trim(lines[j++]));
    }
    for (; j < lines.size() && !blank(lines[j]) && (lines[j][0] == ' ' || lines[j][0] == '\t'); ++j) {
      const std::string_view name = util::trim(lines[j]);
      if (name.empty() || name.find_first_of(" @<>") != std::string_view::npos) continue;
      Failure f;
      f.address = std::string(name) + "@aol.com";
      f.diagnostic = reason;
      out.push_back(std::move(f));
    }
    break;
  }
  return out;
}

}  // namespace

std::string_view cut_returned(std::string_view text) {
  // The first line holding a marker: the earliest marker in the text
  // lower-cased once (a marker holds no line end).
  static const text::PhraseSet k_markers(k_copy_markers);
  const std::string low = util::to_lower_ascii(text);
  std::size_t cut = text.size();
  if (const auto at = k_markers.earliest(low); at != std::string::npos) {
    const auto lf = low.rfind('\n', at);
    cut = lf == std::string::npos ? 0 : lf + 1;
  }
  // The returned headers themselves, quoted without a marker.
  for (const std::string_view field : {"Received: ", "Return-Path:", "Return-path:"}) {
    for (auto at = text.find(field); at != std::string_view::npos && at < cut; at = text.find(field, at + 1)) {
      if (at == 0 || text[at - 1] == '\n') {
        cut = at;
        break;
      }
    }
  }
  return text.substr(0, cut);
}

bool says_delayed(std::string_view text, std::string_view subject) {
  static constexpr std::array<std::string_view, 5> k_subjects = {"delayed", "delay)", "still being retried",
                                                                 "not yet been delivered", "warning: message"};
  return contains_any(subject, k_subjects) || contains_any(text, k_delay_phrases);
}

std::vector<Failure> read_plain(const PlainText& report) {
  const Scan scan(report);
  if (auto aol = aol_names(scan); !aol.empty()) return aol;
  if (auto qmail = qmail_entries(scan); !qmail.empty()) return qmail;

  static const text::PhraseSet k_trigger_set(k_triggers);
  std::vector<std::string> found;
  for (const auto& a : report.failed) Scan::add(found, a);
  if (found.empty()) {
    std::vector<std::size_t> triggers;
    // At most k_max_triggers trigger lines, each read to the end of its
    // paragraph: lines of trigger phrases one after another (a hostile
    // report) would otherwise cost triggers x paragraph length.
    constexpr std::size_t k_max_triggers = 32;
    for (std::size_t i = 0; i < scan.lines.size() && triggers.size() < k_max_triggers; ++i) {
      if (k_trigger_set.any_in(scan.low[i])) triggers.push_back(i);
    }
    for (const auto t : triggers) {
      if (found.size() >= Scan::k_max_found) break;
      scan.collect_from(t, found);
    }
    for (std::size_t k = 0; found.empty() && k < triggers.size(); ++k) scan.collect_before(triggers[k], found);
    if (triggers.empty()) scan.collect_first(found);
  }

  std::vector<Failure> out;
  const std::string labels = scan.labelled();
  for (auto& address : found) {
    Failure f;
    f.diagnostic = scan.reply_lines(scan.first_line_with(address));
    if (f.diagnostic.empty()) {
      f.diagnostic = scan.own_paragraphs(address);
      if (classify("", "", f.diagnostic).reason == Reason::k_other && !labels.empty()) {
        f.diagnostic += " " + labels;
      }
    }
    f.address = std::move(address);
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace blindcast::bounce
