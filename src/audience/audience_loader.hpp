// Loads an audience CSV (SPEC §1) one validated row at a time.
//
// Policy:
// - the header row names the columns; `email` is required; names are
//   trimmed and lower-cased and must be usable as template variables;
// - every value must be valid UTF-8 without NUL and at most 64 KiB;
// - values of columns that reach a header (`email`, `name`, and whatever the
//   caller lists: subject and List-Unsubscribe variables) must not hold CR or
//   LF — header injection;
// - the address is validated and normalised (mail/address.hpp);
// - duplicates (ASCII case folded) are dropped, first kept, and reported with
//   the line of the first occurrence.
// A rejected row is reported to the caller's callback with its line and
// reason; the rest of the file still loads. Memory stays bounded: one record
// at a time plus a 16-byte digest per accepted address for duplicate checks
// (none when the caller drops duplicates itself: find_duplicates = false).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <set>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "audience/csv_reader.hpp"
#include "util/error.hpp"

namespace blindcast::audience {

struct AudienceRow {
  std::int64_t line = 0;
  std::string email;                 // normalised address
  std::string locale;                // the row's `locale` value, possibly empty
  std::string name;                  // the row's `name` value, possibly empty
  std::vector<std::string> fields;   // all columns, `email` normalised
};

struct Rejection {
  std::int64_t line = 0;
  std::string reason;
};

struct LoadStats {
  std::int64_t records = 0;     // data records read (header excluded)
  std::int64_t accepted = 0;
  std::int64_t rejected = 0;
  std::int64_t duplicates = 0;
  std::int64_t blank = 0;       // empty lines, skipped
};

// The longest `name` (the display name in To:): a longer one is no one's
// name, and a long unbroken one cannot be folded onto header lines of 998
// octets (RFC 5322 §2.1.1). Subject variables are encoded and folded.
inline constexpr std::size_t k_max_name = 256;

struct LoadOptions {
  std::set<std::string> header_columns;  // columns whose values reach a header
  std::function<void(const Rejection&)> on_reject;
  std::function<void(std::int64_t line, std::int64_t first_line)> on_duplicate;
  // Off: duplicates are passed on (the caller drops them; no table of keys
  // is kept, and memory stays flat whatever the audience's size).
  bool find_duplicates = true;
};

class AudienceLoader {
 public:
  // Opens `path` and reads its header row; errors name the file and what to fix.
  static Result<AudienceLoader> open(const std::filesystem::path& path, LoadOptions options);

  // Column names in file order.
  [[nodiscard]] const std::vector<std::string>& columns() const { return m_columns; }
  // Index of column `name`, or -1.
  [[nodiscard]] int column_index(std::string_view name) const;

  // Reads the next accepted row into `row`; false at end of file.
  bool next(AudienceRow& row);
  // Set when next() stopped before the end: a malformed record that ran
  // over several lines (a stray quote) swallowed the rows after it, and
  // rejecting it as one row would drop them without a word. The message
  // names the file and line; the audience must not be used.
  [[nodiscard]] const std::optional<std::string>& fatal() const { return m_fatal; }
  [[nodiscard]] std::int64_t fatal_line() const { return m_fatal_line; }
  // "audience.csv:200: error: " + fatal(), for an Error.
  [[nodiscard]] std::string fatal_error() const;

  [[nodiscard]] const LoadStats& stats() const { return m_stats; }
  [[nodiscard]] std::uint64_t bytes_read() const { return m_reader.bytes_read(); }

 private:
  struct KeyHash {
    std::size_t operator()(const std::pair<std::uint64_t, std::uint64_t>& k) const noexcept {
      return static_cast<std::size_t>(k.first);
    }
  };
  AudienceLoader(CsvReader reader, std::filesystem::path path, LoadOptions options);
  void reject(std::int64_t line, std::string reason);

  CsvReader m_reader;
  std::filesystem::path m_path;
  LoadOptions m_options;
  std::vector<std::string> m_columns;
  std::vector<bool> m_reaches_header;
  int m_email = -1;
  int m_locale = -1;
  int m_name = -1;
  LoadStats m_stats;
  std::optional<std::string> m_fatal;
  std::int64_t m_fatal_line = 0;
  CsvRecord m_record;
  std::unordered_map<std::pair<std::uint64_t, std::uint64_t>, std::int64_t, KeyHash> m_seen;
};

// Returns a 128-bit digest of `key` used for duplicate detection.
std::pair<std::uint64_t, std::uint64_t> key_digest(std::string_view key);

}  // namespace blindcast::audience
