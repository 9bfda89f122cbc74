#include "smtp/reply.hpp"

namespace blindcast::smtp {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Returns the enhanced status code at the start of `text` ("5.1.1 ..."), or "".
std::string enhanced_code(std::string_view text) {
  std::size_t i = 0;
  if (text.empty() || (text[0] != '2' && text[0] != '4' && text[0] != '5')) return "";
  i = 1;
  for (int part = 0; part < 2; ++part) {
    if (i >= text.size() || text[i] != '.') return "";
    ++i;
    const std::size_t start = i;
    while (i < text.size() && is_digit(text[i]) && i - start < 3) ++i;
    if (i == start) return "";
  }
  if (i < text.size() && text[i] != ' ') return "";
  return std::string(text.substr(0, i));
}

}  // namespace

std::string Reply::summary() const {
  std::string out = std::to_string(code);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    out += i == 0 ? " " : " / ";
    out += lines[i];
  }
  return out;
}

std::optional<std::string> ReplyParser::feed(std::string_view bytes, std::vector<Reply>& out) {
  while (!bytes.empty()) {
    const auto lf = bytes.find('\n');
    if (lf == std::string_view::npos) {
      if (m_line.size() + bytes.size() > k_max_line) return std::string("reply line longer than 4096 octets");
      m_line.append(bytes);
      return std::nullopt;
    }
    m_line.append(bytes.substr(0, lf));
    bytes.remove_prefix(lf + 1);
    if (m_line.size() > k_max_line) return std::string("reply line longer than 4096 octets");
    if (!m_line.empty() && m_line.back() == '\r') m_line.pop_back();
    auto r = line(m_line, out);
    m_line.clear();
    if (r) return r;
  }
  return std::nullopt;
}

std::optional<std::string> ReplyParser::line(std::string_view l, std::vector<Reply>& out) {
  if (l.size() < 3 || !is_digit(l[0]) || !is_digit(l[1]) || !is_digit(l[2]) || l[0] < '2' || l[0] > '5') {
    return std::string("not an SMTP reply line: does not start with a code 200-599");
  }
  if (l.size() > 3 && l[3] != ' ' && l[3] != '-') return std::string("reply code not followed by ' ' or '-'");
  const int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
  if (!m_current.lines.empty() && m_current.code != code) {
    return std::string("multi-line reply changes its code");
  }
  if (m_current.lines.size() >= k_max_lines) return std::string("reply has too many lines");
  m_current.code = code;
  const std::string_view text = l.size() > 4 ? l.substr(4) : std::string_view();
  if (m_current.lines.empty()) {
    m_current.enhanced = enhanced_code(text);
    // RFC 3463 §2: the enhanced code's class must match the reply's; trust neither otherwise.
    if (!m_current.enhanced.empty() && m_current.enhanced[0] != l[0]) m_current.enhanced.clear();
  }
  m_current.lines.emplace_back(text);
  if (l.size() == 3 || l[3] == ' ') {
    out.push_back(std::move(m_current));
    m_current = Reply{};
  }
  return std::nullopt;
}

}  // namespace blindcast::smtp
