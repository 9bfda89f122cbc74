// Small string helpers with no mail knowledge.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace blindcast::util {

// Returns `text` without leading and trailing ASCII white space.
std::string_view trim(std::string_view text);

// Returns `text` with ASCII letters lower-cased (other bytes unchanged).
std::string to_lower_ascii(std::string_view text);

// Returns true when `a` and `b` are equal ignoring ASCII case.
bool iequals(std::string_view a, std::string_view b);

// Splits `text` at every `sep`.
std::vector<std::string_view> split(std::string_view text, char sep);

// Returns true when `text` starts with `prefix`.
inline bool starts_with(std::string_view text, std::string_view prefix) {
  return text.starts_with(prefix);
}

// Parses a duration like "30m", "2h", "45s", "3d", "1h30m" into seconds.
std::optional<std::int64_t> parse_duration_seconds(std::string_view text);

// Formats `seconds` as "3h20m", "45s", "2d4h".
std::string format_duration(std::int64_t seconds);

// Returns `n` with thousands separators: 1234567 -> "1,234,567".
std::string with_commas(std::int64_t n);

// Edits (insert, delete, replace, swap two neighbours) between `a` and `b`,
// compared case-insensitively (ASCII).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate a mistyped `word` most likely meant: the nearest within a
// third of its length (at least one edit, at most three); empty when none is.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

// Lower-case hex of `bytes`.
std::string to_hex(std::string_view bytes);

// The value of hex digit `c` (either case), or -1.
inline int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace blindcast::util
