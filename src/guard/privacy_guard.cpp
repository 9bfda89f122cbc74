#include "guard/privacy_guard.hpp"

#include <fmt/format.h>

#include "guard/address_scan.hpp"
#include "guard/decoders.hpp"
#include "guard/header_fields.hpp"

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

std::string param_value(std::string_view header_value, std::string_view param) {
  const std::string lower = [&] {
    std::string s(header_value);
    for (char& c : s) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return s;
  }();
  std::size_t pos = 0;
  while ((pos = lower.find(param, pos)) != std::string::npos) {
    const bool boundary_ok = pos == 0 || lower[pos - 1] == ';' || lower[pos - 1] == ' ' || lower[pos - 1] == '\t';
    std::size_t eq = pos + param.size();
    while (eq < lower.size() && (lower[eq] == ' ' || lower[eq] == '\t')) ++eq;
    if (!boundary_ok || eq >= lower.size() || lower[eq] != '=') {
      pos += param.size();
      continue;
    }
    std::size_t v = eq + 1;
    while (v < header_value.size() && (header_value[v] == ' ' || header_value[v] == '\t')) ++v;
    if (v < header_value.size() && header_value[v] == '"') {
      const auto close = header_value.find('"', v + 1);
      return std::string(header_value.substr(v + 1, close == std::string_view::npos ? std::string_view::npos : close - v - 1));
    }
    std::size_t e = v;
    while (e < header_value.size() && header_value[e] != ';' && header_value[e] != ' ' && header_value[e] != '\t') ++e;
    return std::string(header_value.substr(v, e - v));
  }
  return "";
}

struct Scan {
  const AddressIndex& index;
  const std::vector<std::uint64_t>& allowed;  // hashes of the recipient and the campaign's constants
  std::optional<Violation> violation;

  // Looks for foreign audience addresses in `t`; `where` + `suffix` names the view.
  bool text(std::string_view t, const std::string& where, const char* suffix = "") {
    scan_for_addresses(t, index, [&](std::string_view found, std::uint64_t h) {
      for (const auto a : allowed) {
        if (a == h) return true;
      }
      violation = Violation{3, where + suffix, "another audience member's address appears",
                            normalize_for_guard(found)};
      return false;
    });
    return !violation;
  }

  // Scans `t` as is and with HTML references and percent-encoding decoded.
  bool all_views(std::string_view t, const std::string& where) {
    if (!text(t, where)) return false;
    if (t.find('&') != std::string_view::npos) {
      const std::string h = decode_html_entities(t);
      if (!text(h, where, ", HTML references decoded")) return false;
      if (h.find('%') != std::string::npos && !text(decode_percent(h), where, ", HTML and percent-decoded")) {
        return false;
      }
    }
    if (t.find('%') != std::string_view::npos && !text(decode_percent(t), where, ", percent-decoded")) return false;
    return true;
  }

  // Walks a MIME entity (headers + body) and scans every decoded leaf.
  bool entity(std::string_view bytes, int depth, int& parts, const std::string& label,
              const HeaderSection* parsed = nullptr) {
    if (++parts > k_max_parts || depth > k_max_depth) {
      violation = Violation{4, label, "MIME structure too deep or too many parts to check", ""};
      return false;
    }
    HeaderSection own;
    if (parsed == nullptr) own = split_header_fields(bytes);
    const HeaderSection& hs = parsed != nullptr ? *parsed : own;
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
        if (depth > 0 && !all_views(decode_encoded_words(f.value), label + " header " + f.name)) return false;
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
      if (boundary.empty()) return all_views(body, label + " (multipart without boundary)");
      const std::string delim = "--" + boundary;
      std::size_t pos = 0;
      int index_in_parent = 0;
      std::size_t part_start = std::string_view::npos;
      while (pos <= body.size()) {
        std::size_t eol = body.find('\n', pos);
        if (eol == std::string_view::npos) eol = body.size();
        std::string_view line = body.substr(pos, eol - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.starts_with(delim)) {
          if (part_start != std::string_view::npos) {
            const std::size_t part_end = pos >= 2 && body[pos - 2] == '\r' ? pos - 2 : (pos > 0 ? pos - 1 : pos);
            const std::string sub = (depth == 0 ? std::string() : label + ".") + "part " +
                                    std::to_string(++index_in_parent);
            if (!entity(body.substr(part_start, part_end - part_start), depth + 1, parts, sub)) return false;
          }
          if (line.substr(delim.size()).starts_with("--")) break;
          part_start = eol + 1;
        }
        pos = eol + 1;
      }
      return true;
    }
    const std::string where = (label.empty() ? std::string("body") : label) + " (" + content_type;
    if (cte == "base64") {
      return all_views(decode_base64(body), where + ", base64)");
    }
    if (cte == "quoted-printable") {
      return all_views(decode_quoted_printable(body), where + ", quoted-printable)");
    }
    return all_views(body, where + ")");
  }
};

}  // namespace

std::string Violation::describe(bool show_addresses) const {
  std::string out = fmt::format("invariant {} broken in {}: {}", invariant, where, detail);
  if (!address.empty()) out += fmt::format(" ({})", show_addresses ? address : mask(address));
  return out;
}

PrivacyGuard::PrivacyGuard(std::shared_ptr<const AddressIndex> index, GuardPolicy policy)
    : m_index(std::move(index)),
      m_policy(std::move(policy)),
      m_from_norm(normalize_for_guard(m_policy.from_address)),
      m_reply_to_norm(normalize_for_guard(m_policy.reply_to_address)) {}

std::optional<Violation> PrivacyGuard::check(std::string_view message,
                                             const Envelope& envelope) const {
  // 1. One envelope recipient.
  if (envelope.recipients.size() != 1) {
    return Violation{1, "envelope",
                     fmt::format("{} envelope recipients; exactly one is allowed", envelope.recipients.size()),
                     envelope.recipients.size() > 1 ? envelope.recipients[1] : std::string()};
  }
  const std::string rcpt = normalize_for_guard(envelope.recipients[0]);

  // 4. Well-formed header lines (checked while splitting).
  const HeaderSection hs = split_header_fields(message);
  if (!hs.error.empty()) return Violation{4, "header section", hs.error, ""};

  // 2. Recipient-bearing and constant fields.
  int to_count = 0, from_count = 0, reply_count = 0, sender_count = 0;
  for (const auto& f : hs.fields) {
    if (is_recipient_field(f.name)) {
      return Violation{2, "header " + f.name, "recipient-bearing field is not allowed", ""};
    }
    const bool is_to = f.name == "to";
    const bool is_from = f.name == "from";
    const bool is_reply = f.name == "reply-to";
    const bool is_sender = f.name == "sender";
    if (!(is_to || is_from || is_reply || is_sender)) continue;
    (is_to ? to_count : is_from ? from_count : is_reply ? reply_count : sender_count)++;
    const auto mailbox = parse_single_mailbox(f.value);
    if (!mailbox) {
      return Violation{2, "header " + f.name, "must hold exactly one mailbox", ""};
    }
    const std::string norm = normalize_for_guard(*mailbox);
    if (is_to && norm != rcpt) {
      return Violation{2, "header to", "To differs from the envelope recipient", *mailbox};
    }
    if ((is_from || is_sender) && norm != m_from_norm) {
      return Violation{2, "header " + f.name, "not the campaign's From address", *mailbox};
    }
    if (is_reply && (m_reply_to_norm.empty() || norm != m_reply_to_norm)) {
      return Violation{2, "header reply-to", "not the campaign's Reply-To address", *mailbox};
    }
  }
  if (to_count != 1) {
    return Violation{2, "header to", fmt::format("{} To fields; exactly one is required", to_count), ""};
  }
  if (from_count != 1) {
    return Violation{2, "header from", fmt::format("{} From fields; exactly one is required", from_count), ""};
  }
  if (reply_count > 1 || sender_count > 1) {
    return Violation{2, "header section", "more than one Reply-To or Sender field", ""};
  }

  // 3. No other audience address, in every view of the message.
  const std::vector<std::uint64_t> allowed = {guard_hash(rcpt), guard_hash(m_from_norm),
                                              guard_hash(m_reply_to_norm)};
  Scan scan{*m_index, allowed, std::nullopt};
  const std::string_view header_bytes = message.substr(0, hs.body_offset);
  if (!scan.all_views(header_bytes, "header section")) return scan.violation;
  if (header_bytes.find("=?") != std::string_view::npos &&
      !scan.all_views(decode_encoded_words(header_bytes), "header section (RFC 2047 decoded)")) {
    return scan.violation;
  }
  if (!scan.text(message.substr(hs.body_offset), "body", " (raw)")) return scan.violation;
  int parts = 0;
  if (!scan.entity(message, 0, parts, "", &hs)) return scan.violation;
  return std::nullopt;
}

}  // namespace blindcast::guard
