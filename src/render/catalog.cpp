#include "render/catalog.hpp"

#include <unicode/locid.h>
#include <unicode/messagepattern.h>
#include <unicode/msgfmt.h>
#include <unicode/plurrule.h>
#include <unicode/timezone.h>
#include <unicode/uchar.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cmath>
#include <mutex>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include "util/strings.hpp"
#include "util/toml_file.hpp"

namespace blindcast::render {

namespace {

void use_utc_once() {
  static std::once_flag once;
  std::call_once(once, [] { icu::TimeZone::adoptDefault(icu::TimeZone::createTimeZone("UTC")); });
}

ArgKind kind_of_simple(std::string_view type) {
  if (type == "date" || type == "time") return ArgKind::k_date;
  if (type == "number" || type == "spellout" || type == "ordinal" || type == "duration") {
    return ArgKind::k_number;
  }
  return ArgKind::k_text;
}

std::string to_utf8(const icu::UnicodeString& s) {
  std::string out;
  s.toUTF8String(out);
  return out;
}

struct ParsedMessage {
  std::vector<MessageArg> args;
  std::unique_ptr<icu::MessageFormat> format;
};

// How deep the braces of a message nest, read as ICU reads them: an
// apostrophe before a brace quotes up to the next apostrophe, and two
// apostrophes are one. ('#' and '|' start a quote only inside a plural or a
// choice; counting them as text can only count deeper, never let a deep
// message through.) ICU recurses once per level when it formats, so a
// message nested thousands deep overflows the stack.
std::size_t brace_depth(std::string_view text) {
  std::size_t depth = 0, deepest = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\'' && i + 1 < text.size()) {
      const char n = text[i + 1];
      if (n == '\'') {
        ++i;
      } else if (n == '{' || n == '}') {
        const auto end = text.find('\'', i + 1);
        if (end == std::string_view::npos) break;  // quoted to the end
        i = end;
      }
    } else if (c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == '}' && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

// Argument nesting a message may have: a select in a plural in a select is
// three; real messages stay under five.
constexpr std::size_t k_max_brace_depth = 32;  // 16 nested arguments

// True when the argument at [start, limit) of `text` stands as a word of its
// own: after the start, a space or an opening bracket or quote; before the
// end, a space or punctuation that ends a phrase. A value inside a URL or a
// longer token ("https://x/{ticket}", "#{n}") is part of it and must not be
// isolated.
bool stands_alone(const icu::UnicodeString& text, int32_t start, int32_t limit) {
  bool before = start == 0;
  if (!before) {
    const UChar32 c = text.char32At(text.moveIndex32(start, -1));
    before = u_isUWhiteSpace(c) || u_charType(c) == U_START_PUNCTUATION || u_charType(c) == U_INITIAL_PUNCTUATION ||
             c == '"' || c == '\'';
  }
  bool after = limit >= text.length();
  if (!after) {
    const UChar32 c = text.char32At(limit);
    after = u_isUWhiteSpace(c) ||
            (u_ispunct(c) && c != '/' && c != '@' && c != '=' && c != '&' && c != '?' && c != '#' && c != '-' &&
             c != '_' && c != '%');
  }
  return before && after;
}

// The argument types ICU's MessageFormat knows besides plural, select,
// selectordinal and choice.
constexpr std::string_view k_simple_types[] = {"number", "date", "time", "spellout", "ordinal", "duration"};

// True when every letter of `style` outside 'quoted text' is in `letters`.
bool pattern_letters_only(std::string_view style, std::string_view letters) {
  bool quoted = false;
  for (const char c : style) {
    if (c == '\'') {
      quoted = !quoted;
    } else if (!quoted && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) &&
               letters.find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// What ICU would do silently wrong with an argument: an unknown type or
// style (a date styled "lng" formats as nothing), a plural keyword that is
// not a category of the locale ("on" for "one" is never chosen). The first
// such mistake, or nothing.
std::optional<std::string> check_arguments(const icu::MessagePattern& pattern, const icu::Locale& locale) {
  UErrorCode tag_status = U_ZERO_ERROR;
  const std::string tag = locale.toLanguageTag<std::string>(tag_status);
  for (int32_t i = 0; i < pattern.countParts(); ++i) {
    const auto& part = pattern.getPart(i);
    if (part.getType() != UMSGPAT_PART_TYPE_ARG_START) continue;
    const std::string name = to_utf8(pattern.getSubstring(pattern.getPart(i + 1)));
    const int32_t limit = pattern.getLimitPartIndex(i);
    if (part.getArgType() == UMSGPAT_ARG_TYPE_SIMPLE) {
      // ICU matches types and style keywords ignoring case ({n, Number, Integer}).
      const std::string type = util::to_lower_ascii(to_utf8(pattern.getSubstring(pattern.getPart(i + 2))));
      if (std::find(std::begin(k_simple_types), std::end(k_simple_types), type) == std::end(k_simple_types)) {
        return fmt::format("argument '{}' has the unknown type '{}' (number, date, time, spellout, ordinal, duration; "
                           "or plural, selectordinal, select)",
                           name, type);
      }
      if (i + 3 >= limit || pattern.getPartType(i + 3) != UMSGPAT_PART_TYPE_ARG_STYLE) continue;
      const std::string style(util::trim(to_utf8(pattern.getSubstring(pattern.getPart(i + 3)))));
      if (style.starts_with("::")) continue;  // an ICU skeleton
      const std::string keyword = util::to_lower_ascii(style);
      bool ok = true;
      std::string expected;
      if (type == "date" || type == "time") {
        ok = keyword == "short" || keyword == "medium" || keyword == "long" || keyword == "full" ||
             pattern_letters_only(style, "GyYuUrQqMLlwWdDFgEecabBhHkKjJmsSAzZOvVXx");
        expected = "short, medium, long, full, a ::skeleton or a pattern like yyyy-MM-dd";
      } else if (type == "number") {
        ok = keyword == "integer" || keyword == "currency" || keyword == "percent" || pattern_letters_only(style, "E");
        expected = "integer, currency, percent, a ::skeleton or a pattern like #,##0.00";
      } else {
        ok = style.starts_with("%");
        expected = "a rule set like %spellout-numbering";
      }
      if (!ok) {
        return fmt::format("argument '{}': unknown {} style '{}' ({}); ICU would format it as nothing or garbage",
                           name, type, style, expected);
      }
      continue;
    }
    const auto type = part.getArgType();
    if (type != UMSGPAT_ARG_TYPE_PLURAL && type != UMSGPAT_ARG_TYPE_SELECTORDINAL) continue;
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<icu::PluralRules> rules(icu::PluralRules::forLocale(
        locale, type == UMSGPAT_ARG_TYPE_PLURAL ? UPLURAL_TYPE_CARDINAL : UPLURAL_TYPE_ORDINAL, status));
    if (U_FAILURE(status) || !rules) continue;
    std::vector<std::string> categories;
    status = U_ZERO_ERROR;
    std::unique_ptr<icu::StringEnumeration> keywords(rules->getKeywords(status));
    if (U_FAILURE(status) || !keywords) continue;
    while (const icu::UnicodeString* k = keywords->snext(status)) categories.push_back(to_utf8(*k));
    // The selectors directly inside this argument: SELECTOR [explicit value] MESSAGE ...
    for (int32_t j = i + 2; j < limit;) {
      const auto t = pattern.getPartType(j);
      if (t == UMSGPAT_PART_TYPE_MSG_START) {
        j = pattern.getLimitPartIndex(j) + 1;
        continue;
      }
      if (t == UMSGPAT_PART_TYPE_ARG_SELECTOR) {
        const std::string selector = to_utf8(pattern.getSubstring(pattern.getPart(j)));
        if (!selector.starts_with("=") &&
            std::find(categories.begin(), categories.end(), selector) == categories.end()) {
          const auto meant = util::closest_match(selector, categories);
          return fmt::format("argument '{}': '{}' is not a {} category of {} ({}): its text is never chosen{}", name,
                             selector, type == UMSGPAT_ARG_TYPE_PLURAL ? "plural" : "ordinal", tag,
                             fmt::join(categories, ", "),
                             meant.empty() ? "" : fmt::format("; did you mean '{}'?", meant));
        }
      }
      ++j;
    }
  }
  return std::nullopt;
}

std::expected<ParsedMessage, std::string> parse_message(std::string_view text,
                                                        const icu::Locale& locale) {
  if (const auto depth = brace_depth(text); depth > k_max_brace_depth) {
    return std::unexpected(fmt::format("braces nested {} deep; at most {} (arguments inside arguments {} levels "
                                       "deep) are read: split the message",
                                       depth, k_max_brace_depth, k_max_brace_depth / 2));
  }
  const auto pattern_text = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(),
                                                                          static_cast<int32_t>(text.size())));
  UParseError perr{};
  UErrorCode status = U_ZERO_ERROR;
  icu::MessagePattern pattern(pattern_text, &perr, status);
  if (U_FAILURE(status)) {
    return std::unexpected(fmt::format("invalid MessageFormat at offset {}: {}", perr.offset,
                                       u_errorName(status)));
  }
  if (auto mistake = check_arguments(pattern, locale)) return std::unexpected(*mistake);
  ParsedMessage parsed;
  for (int32_t i = 0; i < pattern.countParts(); ++i) {
    const auto& part = pattern.getPart(i);
    if (part.getType() != UMSGPAT_PART_TYPE_ARG_START) continue;
    const auto& name_part = pattern.getPart(i + 1);
    if (name_part.getType() == UMSGPAT_PART_TYPE_ARG_NUMBER) {
      return std::unexpected("numbered argument {" + to_utf8(pattern.getSubstring(name_part)) +
                             "}: name arguments after audience columns, e.g. {name}");
    }
    MessageArg arg{to_utf8(pattern.getSubstring(name_part)), ArgKind::k_text,
                   part.getArgType() == UMSGPAT_ARG_TYPE_NONE &&
                       stands_alone(pattern_text, part.getIndex(),
                                    pattern.getPart(pattern.getLimitPartIndex(i)).getLimit())};
    switch (part.getArgType()) {
      case UMSGPAT_ARG_TYPE_PLURAL:
      case UMSGPAT_ARG_TYPE_SELECTORDINAL:
      case UMSGPAT_ARG_TYPE_CHOICE:
        arg.kind = ArgKind::k_number;
        break;
      case UMSGPAT_ARG_TYPE_SIMPLE:
        arg.kind = kind_of_simple(util::to_lower_ascii(to_utf8(pattern.getSubstring(pattern.getPart(i + 2)))));
        break;
      default:
        break;
    }
    bool seen = false;
    for (auto& a : parsed.args) {
      if (a.name == arg.name) {
        seen = true;
        if (a.kind == ArgKind::k_text) a.kind = arg.kind;
        a.plain = a.plain && arg.plain;
      }
    }
    if (!seen) parsed.args.push_back(std::move(arg));
  }
  status = U_ZERO_ERROR;
  parsed.format = std::make_unique<icu::MessageFormat>(pattern_text, locale, perr, status);
  if (U_FAILURE(status)) {
    return std::unexpected(fmt::format("invalid MessageFormat at offset {}: {}", perr.offset,
                                       u_errorName(status)));
  }
  return parsed;
}

void flatten(const toml::table& table, const std::string& prefix, Catalog& catalog,
             const icu::Locale& locale, util::Diagnostics& diags) {
  for (const auto& [k, node] : table) {
    const std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    const long line = static_cast<long>(node.source().begin.line);
    if (const auto* sub = node.as_table()) {
      flatten(*sub, key, catalog, locale, diags);
      continue;
    }
    const auto* str = node.as_string();
    if (str == nullptr) {
      diags.push_back({catalog.file, line, util::Severity::k_error,
                       fmt::format("message '{}' must be a string", key)});
      continue;
    }
    auto parsed = parse_message(str->get(), locale);
    if (!parsed) {
      diags.push_back({catalog.file, line, util::Severity::k_error,
                       fmt::format("message '{}': {}", key, parsed.error())});
      continue;
    }
    catalog.messages.emplace(key, std::make_shared<CatalogMessage>(key, catalog.file, line, std::move(parsed->args),
                                                                   parsed->format.release()));
  }
}

}  // namespace

struct CatalogMessage::Icu {
  std::unique_ptr<icu::MessageFormat> format;
  std::vector<icu::UnicodeString> names;
};

CatalogMessage::CatalogMessage(std::string key, std::string file, long line, std::vector<MessageArg> args,
                               void* format)
    : m_key(std::move(key)),
      m_file(std::move(file)),
      m_line(line),
      m_args(std::move(args)),
      m_icu(std::make_unique<Icu>()) {
  m_icu->format.reset(static_cast<icu::MessageFormat*>(format));
  for (const auto& a : m_args) {
    m_icu->names.push_back(icu::UnicodeString::fromUTF8(a.name));
  }
}

CatalogMessage::~CatalogMessage() = default;

std::expected<std::string, std::string> CatalogMessage::format(
    const std::vector<std::string_view>& values) const {
  // The memo key: each value with its length in front, so no two lists collide.
  std::string key;
  for (std::size_t i = 0; i < m_args.size(); ++i) {
    const std::string_view v = i < values.size() ? values[i] : std::string_view();
    const auto n = static_cast<std::uint32_t>(v.size());
    key.append(reinterpret_cast<const char*>(&n), sizeof n);
    key.append(v);
  }
  {
    std::lock_guard lock(m_memo_mutex);
    if (const auto it = m_memo.find(key); it != m_memo.end()) return it->second;
  }
  auto formatted = format_with_icu(values);
  if (formatted) {
    std::lock_guard lock(m_memo_mutex);
    if (m_memo.size() < k_memo_limit) m_memo.emplace(std::move(key), *formatted);
  }
  return formatted;
}

std::expected<std::string, std::string> CatalogMessage::format_with_icu(
    const std::vector<std::string_view>& values) const {
  std::vector<icu::Formattable> args(m_args.size());
  for (std::size_t i = 0; i < m_args.size(); ++i) {
    const std::string_view v = i < values.size() ? values[i] : std::string_view();
    switch (m_args[i].kind) {
      case ArgKind::k_text:
        args[i] = icu::Formattable(icu::UnicodeString::fromUTF8(
            icu::StringPiece(v.data(), static_cast<int32_t>(v.size()))));
        break;
      case ArgKind::k_number: {
        const std::string_view t = util::trim(v);
        std::int64_t n = 0;
        const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
        if (ec == std::errc() && p == t.data() + t.size() && !t.empty()) {
          args[i] = icu::Formattable(n);
          break;
        }
        double d = 0;
        const auto [p2, ec2] = std::from_chars(t.data(), t.data() + t.size(), d);
        if (ec2 != std::errc() || p2 != t.data() + t.size() || t.empty() || !std::isfinite(d)) {
          return std::unexpected(fmt::format("argument '{}' of message '{}' needs a number, got '{}'",
                                             m_args[i].name, m_key, v));
        }
        args[i] = icu::Formattable(d);
        break;
      }
      case ArgKind::k_date: {
        auto d = parse_date_value(v);
        if (!d) {
          return std::unexpected(fmt::format("argument '{}' of message '{}': {}", m_args[i].name,
                                             m_key, d.error()));
        }
        args[i] = icu::Formattable(*d, icu::Formattable::kIsDate);
        break;
      }
    }
  }
  icu::UnicodeString result;
  UErrorCode status = U_ZERO_ERROR;
  m_icu->format->format(m_icu->names.data(), args.data(), static_cast<int32_t>(args.size()),
                        result, status);
  if (U_FAILURE(status)) {
    return std::unexpected(fmt::format("message '{}' could not be formatted: {}", m_key,
                                       u_errorName(status)));
  }
  return to_utf8(result);
}

std::string canonical_locale(std::string_view tag) {
  std::string t(util::trim(tag));
  for (char& c : t) {
    if (c == '_') c = '-';
  }
  if (t.empty()) return "";
  for (char c : t) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) {
      return "";
    }
  }
  UErrorCode status = U_ZERO_ERROR;
  const icu::Locale loc = icu::Locale::forLanguageTag(t, status);
  if (U_FAILURE(status) || loc.isBogus() || std::string_view(loc.getLanguage()).empty()) return "";
  status = U_ZERO_ERROR;
  std::string out = loc.toLanguageTag<std::string>(status);
  if (U_FAILURE(status) || out == "und") return "";
  return out;
}

std::expected<double, std::string> parse_date_value(std::string_view text) {
  text = util::trim(text);
  if (text.empty()) return std::unexpected("needs a date (YYYY-MM-DD), got an empty value");
  bool digits_only = true;
  for (char c : text) digits_only = digits_only && c >= '0' && c <= '9';
  if (digits_only && text.size() > 8) {
    double ms = 0;
    std::from_chars(text.data(), text.data() + text.size(), ms);
    return ms;
  }
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char tail[8] = {0};
  const std::string t(text);
  const int n = std::sscanf(t.c_str(), "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%7s", &y, &mo, &d, &h, &mi, &s, tail);
  if (n < 3 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 ||
      (n > 6 && std::string_view(tail) != "Z")) {
    return std::unexpected(fmt::format("needs a date like 2026-11-22 or 2026-11-22T08:30:00Z, got '{}'", text));
  }
  // Days from civil (H. Hinnant's algorithm), exact for the proleptic Gregorian calendar.
  const int yy = y - (mo <= 2 ? 1 : 0);
  const int era = (yy >= 0 ? yy : yy - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(yy - era * 400);
  const unsigned doy = static_cast<unsigned>((153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1);
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const long long days = static_cast<long long>(era) * 146097 + static_cast<long long>(doe) - 719468;
  return static_cast<double>(((days * 24 + h) * 60 + mi) * 60 + s) * 1000.0;
}

Catalogs Catalogs::load(const std::filesystem::path& campaign_dir, std::string_view default_locale,
                        util::Diagnostics& diags) {
  use_utc_once();
  Catalogs cats;
  cats.m_default = canonical_locale(default_locale);
  const auto dir = campaign_dir / "locales";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return cats;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".toml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    const std::string rel = "locales/" + path.filename().string();
    const std::string tag = canonical_locale(path.stem().string());
    if (tag.empty()) {
      diags.push_back({rel, 0, util::Severity::k_error,
                       fmt::format("'{}' is not a BCP 47 locale tag; name catalogs like en.toml or "
                                   "pt-BR.toml", path.stem().string())});
      continue;
    }
    if (cats.m_catalogs.contains(tag)) {
      diags.push_back({rel, 0, util::Severity::k_error,
                       fmt::format("a second catalog for locale '{}' ({})", tag,
                                   cats.m_catalogs[tag].file)});
      continue;
    }
    auto parsed = util::parse_toml_file(path, rel, diags);
    if (!parsed) continue;
    Catalog catalog{tag, rel, {}};
    UErrorCode status = U_ZERO_ERROR;
    const icu::Locale locale = icu::Locale::forLanguageTag(tag, status);
    flatten(*parsed, "", catalog, locale, diags);
    cats.m_catalogs.emplace(tag, std::move(catalog));
  }
  if (!cats.m_default.empty() && !cats.m_catalogs.empty() &&
      !cats.m_catalogs.contains(cats.m_default)) {
    diags.push_back({"campaign.toml", 0, util::Severity::k_error,
                     fmt::format("default_locale '{}' has no catalog; add locales/{}.toml",
                                 cats.m_default, cats.m_default)});
  }
  return cats;
}

std::vector<const Catalog*> Catalogs::chain(std::string_view row_locale) const {
  std::vector<const Catalog*> chain;
  std::string tag = canonical_locale(row_locale);
  while (!tag.empty()) {
    if (auto it = m_catalogs.find(tag); it != m_catalogs.end()) chain.push_back(&it->second);
    const auto dash = tag.rfind('-');
    if (dash == std::string::npos) break;
    tag.resize(dash);
  }
  if (auto it = m_catalogs.find(m_default); it != m_catalogs.end()) {
    if (chain.empty() || chain.back() != &it->second) chain.push_back(&it->second);
  }
  return chain;
}

const CatalogMessage* Catalogs::find(std::string_view row_locale, std::string_view key) const {
  const std::string k(key);
  for (const Catalog* c : chain(row_locale)) {
    if (auto it = c->messages.find(k); it != c->messages.end()) return it->second.get();
  }
  return nullptr;
}

}  // namespace blindcast::render
