// SMTP replies (RFC 5321 §4.2) and an incremental parser for them.
//
// A reply is one or more lines "CODE-text" ... "CODE text"; the parser joins
// multi-line replies, extracts an enhanced status code (RFC 3463, "4.7.0")
// from the first line when present, and rejects what is not a reply: a code
// that is not three digits, a continuation with a different code, a line over
// 4,096 octets (RFC 5321 allows 512; real servers exceed it). Bare LF line ends
// are accepted, as most clients do.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace blindcast::smtp {

struct Reply {
  int code = 0;
  std::string enhanced;            // "4.7.0", or empty
  std::vector<std::string> lines;  // text of each line, without code and separator

  [[nodiscard]] int klass() const { return code / 100; }
  [[nodiscard]] bool positive() const { return klass() == 2; }
  [[nodiscard]] bool transient() const { return klass() == 4; }
  [[nodiscard]] bool permanent() const { return klass() == 5; }
  // "CODE text" with lines joined by " / ", for logs and the state store.
  [[nodiscard]] std::string summary() const;
};

class ReplyParser {
 public:
  static constexpr std::size_t k_max_line = 4096;
  static constexpr std::size_t k_max_lines = 256;

  // Feeds `bytes`; appends each complete reply to `out`. Returns an error when
  // the peer is not speaking SMTP (the connection must be dropped). Plain
  // optional rather than std::expected so the fuzz target builds with clang 14.
  [[nodiscard]] std::optional<std::string> feed(std::string_view bytes, std::vector<Reply>& out);

  // True when part of a reply has been received but not its last line.
  [[nodiscard]] bool partial() const { return !m_line.empty() || !m_current.lines.empty(); }

 private:
  std::optional<std::string> line(std::string_view line, std::vector<Reply>& out);
  std::string m_line;
  Reply m_current;
};

}  // namespace blindcast::smtp
