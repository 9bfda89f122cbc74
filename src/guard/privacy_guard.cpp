#include "guard/privacy_guard.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "guard/address_scan.hpp"
#include "guard/confusables.hpp"
#include "guard/decoders.hpp"
#include "guard/header_fields.hpp"
#include "guard/reader_view.hpp"

namespace blindcast::guard {

namespace {

constexpr int k_max_depth = 8;
constexpr int k_max_parts = 512;

std::string mask(std::string_view a) {
  const auto at = a.rfind('@');
  if (at == std::string_view::npos || at == 0) return "***";
  std::string out(1, a.front());
  out += "***@";
  const std::string_view d = a.substr(at + 1);
  if (!d.empty()) out += d.front();
  out += "***";
  const auto dot = d.rfind('.');
  if (dot != std::string_view::npos && dot > 0) out += d.substr(dot);
  return out;
}

bool is_recipient_field(std::string_view name) {
  static constexpr std::string_view k_fields[] = {
      "cc", "bcc", "apparently-to", "delivered-to", "x-original-to", "envelope-to",
      "x-envelope-to", "x-rcpt-to", "disposition-notification-to", "return-receipt-to",
      "errors-to", "x-apparently-to"};
  if (name.starts_with("resent-")) return true;
  for (auto f : k_fields) {
    if (name == f) return true;
  }
  return false;
}

// The value of parameter `param` (lower case) in a Content-Type value.
std::string param_value(std::string_view header_value, std::string_view param) {
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  const std::size_t n = header_value.size();
  for (std::size_t pos = 0; pos + param.size() <= n; ++pos) {
    bool match = true;
    for (std::size_t k = 0; k < param.size() && match; ++k) match = lower(header_value[pos + k]) == param[k];
    if (!match) continue;
    const bool boundary_ok = pos == 0 || header_value[pos - 1] == ';' || header_value[pos - 1] == ' ' ||
                             header_value[pos - 1] == '\t';
    std::size_t eq = pos + param.size();
    while (eq < n && (header_value[eq] == ' ' || header_value[eq] == '\t')) ++eq;
    if (!boundary_ok || eq >= n || header_value[eq] != '=') continue;
    std::size_t v = eq + 1;
    while (v < n && (header_value[v] == ' ' || header_value[v] == '\t')) ++v;
    if (v < n && header_value[v] == '"') {
      const auto close = header_value.find('"', v + 1);
      return std::string(header_value.substr(v + 1, close == std::string_view::npos ? std::string_view::npos : close - v - 1));
    }
    std::size_t e = v;
    while (e < n && header_value[e] != ';' && header_value[e] != ' ' && header_value[e] != '\t') ++e;
    return std::string(header_value.substr(v, e - v));
  }
  return "";
}

bool is_message_id_field(std::string_view name) {
  return name == "message-id" || name == "in-reply-to" || name == "references" || name == "content-id";
}

// Matches `text` against `pattern`, where '*' stands for any run of characters but '@'.
bool glob_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos && text[mark] != '@') {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The part of `view` a person is told about: ", percent-decoded" etc.
constexpr int k_max_reading_depth = 3;

}  // namespace

struct PrivacyGuard::Permitted {
  std::vector<std::uint64_t> constants;  // From and Reply-To (hashes): exempt from the audience rule too
  std::vector<std::uint64_t> reviewed;   // addresses written in the reviewed content (sorted hashes)
  std::vector<std::string> patterns;     // reviewed addresses with '*', and [guard] allow (normalised)

  [[nodiscard]] bool is_constant(std::uint64_t h) const {
    return std::find(constants.begin(), constants.end(), h) != constants.end();
  }
  // True when strict mode lets `r` appear.
  [[nodiscard]] bool contains(const Reading& r) const {
    if (is_constant(r.hash) || std::binary_search(reviewed.begin(), reviewed.end(), r.hash)) return true;
    if (patterns.empty()) return false;
    const std::string norm = normalize_for_guard(r.address);
    for (const auto& p : patterns) {
      if (glob_match(p, norm)) return true;
    }
    return false;
  }
};

namespace {

// Buffers a check reuses: one per thread, so checking allocates little.
struct Scratch {
  ReaderView views[k_max_reading_depth + 1][2];
};

struct Check {
  const AddressIndex& index;
  const PrivacyGuard::Permitted& permitted;
  bool strict;
  std::uint64_t recipient;                  // hash of the recipient's address
  std::span<const std::uint64_t> own;       // the recipient's other addresses (strict mode only)
  Scratch& scratch;
  std::vector<std::string_view> where = {}; // where in the message, for the violation's text
  std::optional<Violation> violation = {};         // an audience address: stops the check
  std::optional<Violation> strict_violation = {};  // the first strict-mode finding: the check goes on,
                                                   // so an audience address found later is named instead
  std::vector<std::string>* collected = nullptr;   // collect mode: gather addresses, check nothing

  // Names the current place while it lives ("part 2 (text/html, base64)", ", as read").
  struct Place {
    Check& c;
    Place(Check& check, std::string_view what) : c(check) { c.where.push_back(what); }  // `what` outlives it
    ~Place() { c.where.pop_back(); }
    Place(const Place&) = delete;
    Place& operator=(const Place&) = delete;
  };

  // Index lookups are cache misses in a large table; a message repeats its
  // few addresses across its views, so the last answers are kept.
  std::uint64_t seen_hash[8] = {};
  bool seen_found[8] = {};
  bool in_audience(std::uint64_t h) {
    const std::size_t slot = h & 7;
    if (seen_hash[slot] == h) return seen_found[slot];
    seen_hash[slot] = h;
    return seen_found[slot] = index.contains_hash(h);
  }

  std::string place() const {
    std::string out;
    for (auto w : where) out += w;
    return out;
  }

  // Checks the readings at every '@' of `t`: the audience rule always,
  // strict mode when `strict_here`. For each end of the domain the longest
  // reading that is an audience address (or the recipient's, or a campaign
  // constant) decides: `o'neil@x` is not read as `neil@x` when o'neil is a
  // recipient. In collect mode the shaped readings are gathered instead.
  bool readings(std::string_view t, bool strict_here) {
    if (collected == nullptr && index.size() == 0 && !(strict && strict_here)) return true;
    return scan_addresses(t, [&](std::span<const Reading> rs, bool overflow) {
      if (collected != nullptr) {
        for (const Reading& r : rs) {
          if (r.address.find('*') != std::string_view::npos || reading_shaped(r)) {
            collected->push_back(normalize_for_guard(r.address));
          }
        }
        return true;
      }
      if (overflow) {
        violation = Violation{3, "", place(),
                              "an address with more possible readings than the guard can check (markup or "
                              "punctuation around it); refused",
                              ""};
        return false;
      }
      bool allowed = false;
      std::uint32_t decided = 0;  // ends of the domain a longer reading decided
      for (const Reading& r : rs) {
        const std::uint32_t bit = 1u << (r.end & 31);
        if ((decided & bit) != 0) continue;
        if (r.hash == recipient || permitted.is_constant(r.hash)) {
          allowed = true;
          decided |= bit;
          continue;
        }
        if (in_audience(r.hash)) {
          violation = Violation{3, "", place(), "another audience member's address appears",
                                normalize_for_guard(r.address)};
          return false;
        }
        // A look-alike of an audience address (Cyrillic letters for Latin ones).
        if (const auto alike = ascii_look_alike(r.address)) {
          const std::uint64_t h = guard_hash(*alike);
          if (h != recipient && !permitted.is_constant(h) && in_audience(h)) {
            violation = Violation{3, "", place(), "another audience member's address appears in look-alike letters",
                                  *alike};
            return false;
          }
        }
      }
      if (allowed || !strict || !strict_here || strict_violation) return true;
      // Strict mode: one reading at this '@' must be an address that may appear.
      const Reading* shown = nullptr;
      for (const Reading& r : rs) {
        // A percent-escape is read decoded, in a view of its own.
        if (has_percent_escape(r.address) || !reading_shaped(r)) continue;
        if (std::find(own.begin(), own.end(), r.hash) != own.end() || permitted.contains(r)) return true;
        if (shown == nullptr || r.address.size() < shown->address.size()) shown = &r;
      }
      if (shown != nullptr && !strict_violation) {
        strict_violation = Violation{0, "strict mode", place(),
                                     "an address that is neither the recipient's nor in the reviewed content "
                                     "(templates, catalogs, settings) nor in [guard] allow appears",
                                     normalize_for_guard(shown->address)};
      }
      return true;
    });
  }

  // Checks `t` as a person reads it: as written when reading changes
  // nothing, else with markup removed (`html`; plain text is read both ways),
  // references decoded, Unicode folded, bidi applied, combining marks on
  // ASCII dropped; then its percent-decoded forms and data: URIs, down to
  // k_max_reading_depth.
  bool text(std::string_view t, bool html, bool strict_here, int depth = 0) {
    if (!could_hold_address(t)) return true;
    // Texts read further (percent, data:), with whether they hold one value
    // per line and whether strict mode applies to what is read from them.
    struct Seen {
      std::string_view text;
      bool by_line;
      bool strict;
    };
    Seen seen[7] = {{t, false, strict_here}};
    std::size_t n_seen = 1;
    if (reads_as_written(t, html)) {
      if (!readings(t, strict_here)) return false;
    } else {
      ReaderView& v = scratch.views[depth][0];
      read_as_person(t, html, v);
      n_seen = 0;
      const std::pair<const std::string*, const char*> views[] = {
          {&v.text, ", as read"},
          {&v.hidden, ", in markup attributes, comments or hidden content"},
          {&v.visual, ", as displayed (bidirectional text)"},
          {&v.hidden_visual, ", in markup attributes as displayed (bidirectional text)"},
          {&v.unmarked, ", without combining marks"}};
      for (const auto& [view, name] : views) {
        if (view->empty()) continue;
        const Place p(*this, name);
        // Without its marks a text is no longer what was written: the audience
        // rule only, for it and for everything read from it.
        const bool strict_view = strict_here && view != &v.unmarked;
        if (!readings(*view, strict_view)) return false;
        seen[n_seen++] = {*view, view == &v.hidden || view == &v.hidden_visual, strict_view};
      }
    }
    if (!html && t.find('<') != std::string_view::npos && markup_removed_could_hold_address(t)) {
      // Plain text holding markup: a reader may take the tags for noise.
      ReaderView& h = scratch.views[depth][1];
      read_as_person(t, true, h);
      const Place p(*this, ", markup removed");
      if (!readings(h.text, strict_here)) return false;
      seen[n_seen++] = {h.text, false, strict_here};
    }
    if (depth >= k_max_reading_depth) return true;
    for (std::size_t k = 0; k < n_seen; ++k) {
      const std::string_view s = seen[k].text;
      const bool by_line = seen[k].by_line;
      const bool strict_next = seen[k].strict;
      if (has_percent_escape(s)) {
        const Place p(*this, ", percent-decoded");
        if (!text(decode_percent(s), html, strict_next, depth + 1)) return false;
      }
      if (s.find(':') == std::string_view::npos) continue;
      bool ok = true;
      for_each_data_uri(s, by_line, [&](std::string_view payload) {
        const Place p(*this, ", in a data: URI");
        if (ok) ok = text(payload, true, strict_next, depth + 1);
      });
      if (!ok) return false;
    }
    return true;
  }

  // Checks a header field's value (RFC 2047 words decoded).
  bool field(const HeaderField& f) {
    const bool strict_here = !is_message_id_field(f.name);
    if (f.value.find("=?") == std::string::npos) return text(f.value, false, strict_here);
    return text(decode_encoded_words(f.value), false, strict_here);
  }

  // Walks a MIME entity (headers + body) and checks every decoded leaf.
  bool entity(std::string_view bytes, int depth, int& parts, const std::string& label,
              const HeaderSection* parsed = nullptr) {
    if (++parts > k_max_parts || depth > k_max_depth) {
      violation = Violation{4, "", label, "MIME structure too deep or too many parts to check", ""};
      return false;
    }
    HeaderSection own_section;
    if (parsed == nullptr) own_section = split_header_fields(bytes);
    const HeaderSection& hs = parsed != nullptr ? *parsed : own_section;
    std::string_view body = bytes;
    std::string content_type = "text/plain";
    std::string cte;
    std::string ct_value;
    if (hs.error.empty()) {
      body = bytes.substr(hs.body_offset);
      for (const auto& f : hs.fields) {
        if (f.name == "content-type") ct_value = f.value;
        if (f.name == "content-transfer-encoding") {
          cte.clear();
          for (char c : f.value) {
            if (c != ' ' && c != '\t') cte += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
          }
        }
        const Place p1(*this, label);
        const Place p2(*this, label.empty() ? "header " : " header ");
        const Place p3(*this, f.name);
        if (!field(f)) return false;
      }
      if (!ct_value.empty()) {
        content_type.clear();
        for (char c : ct_value) {
          if (c == ';' || c == ' ' || c == '\t') {
            if (!content_type.empty()) break;
            continue;
          }
          content_type += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
      }
    }
    if (content_type.starts_with("multipart/")) {
      const std::string boundary = param_value(ct_value, "boundary");
      if (boundary.empty()) {
        const std::string name = label + " (multipart without boundary)";
        const Place p(*this, name);
        return text(body, false, true);
      }
      const std::string delim = "--" + boundary;
      // The next delimiter line at or after `from` ("--boundary" at the start of a line).
      auto next_delimiter = [&](std::size_t from) {
        for (std::size_t at = body.find(delim, from); at != std::string_view::npos; at = body.find(delim, at + 1)) {
          if (at == 0 || body[at - 1] == '\n') return at;
        }
        return std::string_view::npos;
      };
      int index_in_parent = 0;
      std::size_t part_start = std::string_view::npos;
      const std::size_t first = next_delimiter(0);
      {
        // The preamble: clients without MIME show it.
        const std::string name = label + (label.empty() ? "" : " ") + "preamble";
        const Place p(*this, name);
        if (!text(body.substr(0, std::min(first, body.size())), false, true)) return false;
      }
      for (std::size_t pos = first; pos != std::string_view::npos;) {
        std::size_t eol = body.find('\n', pos);
        if (eol == std::string_view::npos) eol = body.size();
        if (part_start != std::string_view::npos) {
          const std::size_t part_end = pos >= 2 && body[pos - 2] == '\r' ? pos - 2 : (pos > 0 ? pos - 1 : pos);
          const std::string sub = (depth == 0 ? std::string() : label + ".") + "part " +
                                  std::to_string(++index_in_parent);
          if (part_end >= part_start &&
              !entity(body.substr(part_start, part_end - part_start), depth + 1, parts, sub)) {
            return false;
          }
        }
        if (body.substr(pos + delim.size()).starts_with("--")) {
          const std::string name = label + (label.empty() ? "" : " ") + "epilogue";
          const Place p(*this, name);
          return text(body.substr(std::min(eol + 1, body.size())), false, true);
        }
        part_start = eol + 1;
        pos = next_delimiter(eol + 1);
      }
      return true;
    }
    const std::string charset = lower_ascii(param_value(ct_value, "charset"));
    if (!charset.empty() && charset != "utf-8" && charset != "us-ascii") {
      violation = Violation{4, "", label.empty() ? "body" : label,
                            "charset '" + charset + "' cannot be read by the guard (only UTF-8 is sent)", ""};
      return false;
    }
    const bool html = content_type == "text/html";
    const bool encoded = cte == "base64" || cte == "quoted-printable";
    const Place p1(*this, label.empty() ? std::string_view("body") : std::string_view(label));
    const Place p2(*this, " (");
    const Place p3(*this, content_type);
    const Place p4(*this, encoded ? ", " : "");
    const Place p5(*this, encoded ? std::string_view(cte) : std::string_view());
    const Place p6(*this, ")");
    if (cte == "base64") return text(decode_base64(body), html, true);
    if (cte == "quoted-printable") return text(decode_quoted_printable(body), html, true);
    return text(body, html, true);
  }
};

}  // namespace

std::string Violation::describe(bool show_addresses) const {
  std::string out = invariant > 0 ? fmt::format("invariant {} broken in {}: {}", invariant, where, detail)
                                  : fmt::format("{}: {} in {}", rule, detail, where);
  if (!address.empty()) out += fmt::format(" ({})", show_addresses ? address : mask(address));
  return out;
}

void collect_addresses(std::string_view text, std::vector<std::string>& out) {
  // Read exactly as a message is checked (every view, percent, data: URIs),
  // so what strict mode finds in a message it finds in the reviewed content.
  static const AddressIndex k_empty;
  static const PrivacyGuard::Permitted k_none;
  thread_local Scratch scratch;
  Check collect{k_empty, k_none, false, 0, {}, scratch};
  collect.collected = &out;
  collect.text(text, true, false);
  collect.text(text, false, false);
}

PrivacyGuard::PrivacyGuard(std::shared_ptr<const AddressIndex> index, GuardPolicy policy)
    : m_index(std::move(index)),
      m_policy(std::move(policy)),
      m_from_norm(normalize_for_guard(m_policy.from_address)),
      m_reply_to_norm(normalize_for_guard(m_policy.reply_to_address)) {
  auto p = std::make_unique<Permitted>();
  p->constants.push_back(guard_hash(m_from_norm));
  if (!m_reply_to_norm.empty()) p->constants.push_back(guard_hash(m_reply_to_norm));
  auto add = [&](const std::string& a) {
    const std::string norm = normalize_for_guard(a);
    if (norm.find('*') != std::string::npos) {
      p->patterns.push_back(norm);
    } else {
      p->reviewed.push_back(guard_hash(norm));
    }
  };
  for (const auto& a : m_policy.reviewed_addresses) add(a);
  for (const auto& a : m_policy.allow) add(a);
  std::sort(p->reviewed.begin(), p->reviewed.end());
  p->reviewed.erase(std::unique(p->reviewed.begin(), p->reviewed.end()), p->reviewed.end());
  std::sort(p->patterns.begin(), p->patterns.end());
  p->patterns.erase(std::unique(p->patterns.begin(), p->patterns.end()), p->patterns.end());
  m_permitted = std::move(p);
}

PrivacyGuard::~PrivacyGuard() = default;

std::optional<Violation> PrivacyGuard::check(std::string_view message,
                                             const Envelope& envelope) const {
  // 1. One envelope recipient.
  if (envelope.recipients.size() != 1) {
    return Violation{1, "", "envelope",
                     fmt::format("{} envelope recipients; exactly one is allowed", envelope.recipients.size()),
                     envelope.recipients.size() > 1 ? envelope.recipients[1] : std::string()};
  }
  const std::string rcpt = normalize_for_guard(envelope.recipients[0]);

  // 4. Well-formed header lines (checked while splitting).
  const HeaderSection hs = split_header_fields(message);
  if (!hs.error.empty()) return Violation{4, "", "header section", hs.error, ""};

  // 2. Recipient-bearing and constant fields.
  int to_count = 0, from_count = 0, reply_count = 0, sender_count = 0;
  for (const auto& f : hs.fields) {
    if (is_recipient_field(f.name)) {
      return Violation{2, "", "header " + f.name, "recipient-bearing field is not allowed", ""};
    }
    const bool is_to = f.name == "to";
    const bool is_from = f.name == "from";
    const bool is_reply = f.name == "reply-to";
    const bool is_sender = f.name == "sender";
    if (!(is_to || is_from || is_reply || is_sender)) continue;
    (is_to ? to_count : is_from ? from_count : is_reply ? reply_count : sender_count)++;
    const auto mailbox = parse_single_mailbox(f.value);
    if (!mailbox) {
      return Violation{2, "", "header " + f.name, "must hold exactly one mailbox", ""};
    }
    const std::string norm = normalize_for_guard(*mailbox);
    if (is_to && norm != rcpt) {
      return Violation{2, "", "header to", "To differs from the envelope recipient", *mailbox};
    }
    if ((is_from || is_sender) && norm != m_from_norm) {
      return Violation{2, "", "header " + f.name, "not the campaign's From address", *mailbox};
    }
    if (is_reply && (m_reply_to_norm.empty() || norm != m_reply_to_norm)) {
      return Violation{2, "", "header reply-to", "not the campaign's Reply-To address", *mailbox};
    }
  }
  if (to_count != 1) {
    return Violation{2, "", "header to", fmt::format("{} To fields; exactly one is required", to_count), ""};
  }
  if (from_count != 1) {
    return Violation{2, "", "header from", fmt::format("{} From fields; exactly one is required", from_count), ""};
  }
  if (reply_count > 1 || sender_count > 1) {
    return Violation{2, "", "header section", "more than one Reply-To or Sender field", ""};
  }

  // 3 and strict mode: every address a reader could see, in every view.
  std::vector<std::uint64_t> own;
  own.reserve(envelope.own_addresses.size());
  for (const auto& a : envelope.own_addresses) own.push_back(address_hash(a));
  thread_local Scratch scratch;
  Check check{*m_index, *m_permitted, m_policy.strict, guard_hash(rcpt), own, scratch};
  int parts = 0;
  if (!check.entity(message, 0, parts, "", &hs) && check.violation) return check.violation;
  return check.strict_violation;
}

}  // namespace blindcast::guard
