#include "mail/mailbox.hpp"

#include "mail/encoding.hpp"
#include "util/strings.hpp"

namespace blindcast::mail {

std::expected<Mailbox, std::string> parse_mailbox(std::string_view text) {
  text = util::trim(text);
  const auto lt = text.rfind('<');
  if (lt == std::string_view::npos) {
    auto address = parse_address(text);
    if (!address) return std::unexpected(address.error());
    return Mailbox{"", std::move(*address)};
  }
  if (text.back() != '>') return std::unexpected("text after '>'");
  std::string_view name = util::trim(text.substr(0, lt));
  if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
    name = name.substr(1, name.size() - 2);
  }
  for (char c : name) {
    if (c == '\r' || c == '\n' || c == '\0') return std::unexpected("CR, LF or NUL in display name");
  }
  auto address = parse_address(text.substr(lt + 1, text.size() - lt - 2));
  if (!address) return std::unexpected(address.error());
  return Mailbox{std::string(name), std::move(*address)};
}

std::string format_mailbox(const Mailbox& mailbox) {
  std::string out;
  if (!mailbox.name.empty()) {
    append_display_name(out, mailbox.name);
    out += " <";
    out += mailbox.address.str();
    out += '>';
  } else {
    out = mailbox.address.str();
  }
  return out;
}

}  // namespace blindcast::mail
