// RFC 3464 delivery status fields (and RFC 6533's UTF-8 form): one group of
// per-message fields, then one group per recipient, separated by empty lines.
// Real reports bend the syntax: "Action: failure", "Status: 553 Exceeded
// ...", "Final-Recipient: <user@example.com>" without an address type, an
// x400 final recipient beside an rfc822 original one, no recipient group at
// all. What can be read is read; the rest is left to the text heuristics.
#include <string>

#include "bounce/formats.hpp"
#include "bounce/text_scan.hpp"
#include "util/strings.hpp"
#include "util/utf8.hpp"

namespace blindcast::bounce {

namespace {

constexpr std::size_t k_max_recipients = 500;

// Decodes RFC 6533 "\x{HHHH}" escapes (utf-8-addr-xtext / unitext) to UTF-8.
std::string decode_unitext(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in.substr(i).starts_with("\\x{")) {
      const auto close = in.find('}', i + 3);
      if (close != std::string_view::npos && close - i - 3 >= 1 && close - i - 3 <= 6) {
        char32_t cp = 0;
        bool ok = true;
        for (std::size_t j = i + 3; j < close; ++j) {
          const int v = util::hex_digit_value(in[j]);
          if (v < 0) {
            ok = false;
            break;
          }
          cp = cp * 16 + static_cast<char32_t>(v);
        }
        if (ok && cp > 0 && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF)) {
          util::append_utf8(out, cp);
          i = close;
          continue;
        }
      }
    }
    out += in[i];
  }
  return out;
}

// The address of a recipient field ("rfc822; user@example.com",
// "utf-8; josé@exemplo.com.br", "<user@example.com>"), or "" for another
// address type (x400) or anything that is no address.
std::string field_address(std::string_view value) {
  value = util::trim(value);
  std::string_view type;
  if (const auto semi = value.find(';'); semi != std::string_view::npos) {
    type = util::trim(value.substr(0, semi));
    value = util::trim(value.substr(semi + 1));
  }
  const bool utf8 = util::iequals(type, "utf-8");
  if (!type.empty() && !utf8 && !util::iequals(type, "rfc822")) return {};
  if (value.size() >= 2 && value.front() == '<' && value.back() == '>') value = value.substr(1, value.size() - 2);
  std::string address = utf8 ? decode_unitext(value) : std::string(value);
  const auto at = address.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 == address.size()) return {};
  for (const char c : address) {
    if (c == ' ' || c == '\t' || c == '<' || c == '>' || c == ',' || c == ';') return {};
  }
  return text::sanitize_utf8(address);
}

// "smtp; 550 5.1.1 ..." -> "550 5.1.1 ..." (a diagnostic-type is one word).
std::string_view strip_diagnostic_type(std::string_view value) {
  const auto semi = value.find(';');
  if (semi == std::string_view::npos) return value;
  const std::string_view type = util::trim(value.substr(0, semi));
  if (type.empty() || type.find(' ') != std::string_view::npos) return value;
  return util::trim(value.substr(semi + 1));
}

// The human-readable part's words about `address`: its line and the rest of
// its paragraph (dsn_04-style "Original address: ...\n%MAIL-E-..., disk quota
// exceeded"), at most six lines.
std::string human_lines(std::string_view human, std::string_view address) {
  if (human.empty() || address.empty()) return {};
  const auto lines = text::split_lines(human);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!text::icontains(lines[i], util::to_lower_ascii(address))) continue;
    std::string out;
    std::string_view first = lines[i];
    // What follows the address on its line ("user@example.com: Domain does not exist").
    const auto pos = util::to_lower_ascii(first).find(util::to_lower_ascii(address));
    first = first.substr(pos + address.size());
    while (!first.empty() && (first.front() == '>' || first.front() == ':' || first.front() == ' ')) {
      first.remove_prefix(1);
    }
    out.append(first);
    for (std::size_t j = i + 1; j < lines.size() && j <= i + 6; ++j) {
      if (util::trim(lines[j]).empty()) break;
      out += ' ';
      out.append(util::trim(lines[j]));
    }
    return out;
  }
  return {};
}

}  // namespace

std::vector<Failure> read_dsn(std::string_view body, std::string_view human) {
  std::vector<Failure> out;
  std::string_view rest = body;
  for (int group = 0; !rest.empty() && group < 2000 && out.size() < k_max_recipients; ++group) {
    std::string_view next;
    const auto fields = text::parse_header_block(rest, &next);
    if (next.size() >= rest.size()) break;
    rest = next;
    std::string original, final_rcpt, action, status, diagnostic, x400_info;
    for (const auto& [name, value] : fields) {
      if (util::iequals(name, "Original-Recipient")) original = field_address(value);
      else if (util::iequals(name, "Final-Recipient")) final_rcpt = field_address(value);
      else if (util::iequals(name, "Action")) action = util::to_lower_ascii(util::trim(value));
      else if (util::iequals(name, "Status")) status = value;
      else if (util::iequals(name, "Diagnostic-Code")) diagnostic = strip_diagnostic_type(value);
      else if (util::iequals(name, "X400-Supplementary-Info")) x400_info = value;
    }
    // The address we sent to is the original one; the final one may be an
    // alias the receiving side expanded it to.
    std::string address = !original.empty() ? original : final_rcpt;
    if (address.empty()) continue;
    Failure f;
    f.address = std::move(address);
    const std::string_view word = std::string_view(action).substr(0, action.find_first_of(" \t("));
    f.delayed = word == "delayed";
    f.delivered = word == "delivered" || word == "relayed" || word == "expanded";
    const std::string_view code = text::leading_status(status);
    f.status = std::string(code);
    std::string_view comment = util::trim(std::string_view(status).substr(code.size()));
    if (code.empty()) {
      // "Status: 553 Exceeded maximum inbound message size": a reply code, not a status.
      const std::string_view reply = text::find_reply_code(comment);
      if (!reply.empty() && comment.starts_with(reply)) f.reply_code = std::string(reply);
    }
    if (comment.size() >= 2 && comment.front() == '(' && comment.back() == ')') {
      comment = util::trim(comment.substr(1, comment.size() - 2));
    }
    f.diagnostic = diagnostic;
    if (!x400_info.empty()) f.diagnostic += (f.diagnostic.empty() ? "" : "; ") + x400_info;
    if (f.diagnostic.empty()) f.diagnostic = std::string(comment);
    // A specific status needs no words; a generic one may find them in the
    // human-readable part.
    if (f.diagnostic.empty() && (code.empty() || std::string_view(code).substr(1) == ".0.0")) {
      f.diagnostic = human_lines(human, f.address);
      if (f.diagnostic.empty() && !final_rcpt.empty()) f.diagnostic = human_lines(human, final_rcpt);
    }
    bool seen = false;
    for (const auto& o : out) seen = seen || util::iequals(o.address, f.address);
    if (!seen) out.push_back(std::move(f));
  }
  return out;
}

}  // namespace blindcast::bounce
