// Message catalogs: `locales/<tag>.toml`, one ICU MessageFormat string per key.
//
// Policy:
// - every message is parsed once at load; syntax errors, numbered arguments
//   ({0}) and non-string values are diagnostics with file and line;
// - arguments are named after audience columns; their kind comes from the
//   pattern: plural/selectordinal/number/spellout/ordinal/duration take a
//   number (the column's text parsed as a decimal), date/time take an ISO 8601
//   date ("2026-11-22", "2026-11-22T08:30:00Z") or epoch milliseconds, select
//   and plain arguments take the text;
// - locale resolution (SPEC §1): the row's tag (BCP 47, `_` accepted for `-`),
//   then its parents ("pt-BR" -> "pt"), then `default_locale`;
// - dates and times are formatted in UTC.
// ICU formatters are kept per message and reused; format() is const and
// thread-safe. Results are remembered per message for up to 4,096 distinct
// argument lists: the same date, count or locale text across a whole
// audience is formatted by ICU once, not once per recipient.
#pragma once

#include <filesystem>
#include <expected>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "util/diagnostic.hpp"

namespace blindcast::render {

enum class ArgKind { k_text, k_number, k_date };

struct MessageArg {
  std::string name;
  ArgKind kind = ArgKind::k_text;
  bool plain = false;  // only ever a plain {name}: its value is shown as it is (no select, number, date)
};

class CatalogMessage;

struct Catalog {
  std::string tag;   // canonical BCP 47 tag, e.g. "pt-BR"
  std::string file;  // "locales/pt-BR.toml"
  std::unordered_map<std::string, std::shared_ptr<const CatalogMessage>> messages;
};

class CatalogMessage {
 public:
  CatalogMessage(std::string key, std::string file, long line, std::vector<MessageArg> args, void* format);
  ~CatalogMessage();
  CatalogMessage(const CatalogMessage&) = delete;
  CatalogMessage& operator=(const CatalogMessage&) = delete;

  [[nodiscard]] const std::string& key() const { return m_key; }
  [[nodiscard]] long line() const { return m_line; }
  [[nodiscard]] const std::string& file() const { return m_file; }  // "locales/de.toml"
  [[nodiscard]] const std::vector<MessageArg>& args() const { return m_args; }

  // Formats with `values[i]` as the value of args()[i]; the error names the
  // argument whose value does not fit its kind.
  [[nodiscard]] std::expected<std::string, std::string> format(
      const std::vector<std::string_view>& values) const;

 private:
  [[nodiscard]] std::expected<std::string, std::string> format_with_icu(
      const std::vector<std::string_view>& values) const;
  std::string m_key;
  std::string m_file;
  long m_line;
  std::vector<MessageArg> m_args;
  struct Icu;
  std::unique_ptr<Icu> m_icu;
  static constexpr std::size_t k_memo_limit = 4096;
  mutable std::mutex m_memo_mutex;
  mutable std::unordered_map<std::string, std::string> m_memo;  // argument values -> result
};

class Catalogs {
 public:
  // Loads every `*.toml` in `dir`; findings are appended to `diags`.
  static Catalogs load(const std::filesystem::path& campaign_dir, std::string_view default_locale,
                       util::Diagnostics& diags);

  // The catalogs to search for `row_locale`, most specific first.
  [[nodiscard]] std::vector<const Catalog*> chain(std::string_view row_locale) const;
  // The message `key` for `row_locale`, or nullptr when no catalog in the chain has it.
  [[nodiscard]] const CatalogMessage* find(std::string_view row_locale, std::string_view key) const;

  [[nodiscard]] const std::map<std::string, Catalog>& all() const { return m_catalogs; }
  [[nodiscard]] const std::string& default_tag() const { return m_default; }

 private:
  std::map<std::string, Catalog> m_catalogs;  // by canonical tag
  std::string m_default;
};

// Returns the canonical BCP 47 form of `tag` ("pt_br" -> "pt-BR"), or "" when invalid.
std::string canonical_locale(std::string_view tag);

// Parses ISO 8601 dates or epoch milliseconds into ICU UDate (ms since epoch, UTC).
std::expected<double, std::string> parse_date_value(std::string_view text);

}  // namespace blindcast::render
