// What an SMTP session needs to know of a message's bytes before it sends
// them: whether any byte is 8-bit (BODY=8BITMIME) and whether any line starts
// with '.' (dot-stuffing, RFC 5321 §4.5.2). Found in one pass by scan_data();
// the message builders do it while the bytes are still in their cache, so the
// delivery thread does not read every message twice more.
#pragma once

#include <string_view>

namespace blindcast::smtp {

class DataTraits {
 public:
  // Unknown bytes: assume both, so a session never skips stuffing by default.
  DataTraits() = default;
  [[nodiscard]] bool eight_bit() const { return m_eight_bit; }
  // True when a line may start with '.' (conservative: a '.' after any LF).
  [[nodiscard]] bool dot_lines() const { return m_dot_lines; }

 private:
  friend DataTraits scan_data(std::string_view data);
  bool m_eight_bit = true;
  bool m_dot_lines = true;
};

// Scans `data` once (16 bytes per step with SSE2). Only this function makes
// traits that allow a session to skip the stuffing scan.
DataTraits scan_data(std::string_view data);

}  // namespace blindcast::smtp
