#include "audience/audience_loader.hpp"

#include <algorithm>
#include <unordered_set>

#include <fmt/format.h>

#include "mail/address.hpp"
#include "util/strings.hpp"
#include "util/utf8.hpp"

namespace blindcast::audience {

namespace {

std::uint64_t mix(std::string_view s, std::uint64_t seed) {
  // FNV-1a over the bytes followed by a SplitMix64 finaliser.
  std::uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

bool valid_column_name(std::string_view name) {
  if (name.empty()) return false;
  const char f = name.front();
  if (!((f >= 'a' && f <= 'z') || f == '_')) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace

std::pair<std::uint64_t, std::uint64_t> key_digest(std::string_view key) {
  return {mix(key, 0), mix(key, 0x5bd1e9955bd1e995ULL)};
}

AudienceLoader::AudienceLoader(CsvReader reader, std::filesystem::path path, LoadOptions options)
    : m_reader(std::move(reader)), m_path(std::move(path)), m_options(std::move(options)) {}

int AudienceLoader::column_index(std::string_view name) const {
  for (std::size_t i = 0; i < m_columns.size(); ++i) {
    if (m_columns[i] == name) return static_cast<int>(i);
  }
  return -1;
}

Result<AudienceLoader> AudienceLoader::open(const std::filesystem::path& path,
                                            LoadOptions options) {
  auto reader = CsvReader::open(path);
  if (!reader) return std::unexpected(reader.error());
  AudienceLoader loader(std::move(*reader), path, std::move(options));
  CsvRecord header;
  if (!loader.m_reader.next(header)) {
    return fail(fmt::format("{}:1: error: the file is empty; it needs a header row with an "
                            "'email' column",
                            path.string()));
  }
  if (header.fields.size() >= CsvReader::k_max_fields && header.error.starts_with("more than")) {
    return fail(fmt::format("{}:1: error: the header row has more than {} columns, more than an audience "
                            "needs (is this the audience file?); keep the columns the templates use",
                            path.string(), CsvReader::k_max_fields));
  }
  if (!header.error.empty()) {
    return fail(fmt::format("{}:1: error: malformed header row: {}", path.string(), header.error));
  }
  std::unordered_set<std::string> names;
  names.reserve(header.fields.size());
  for (std::size_t i = 0; i < header.fields.size(); ++i) {
    std::string name = util::to_lower_ascii(util::trim(header.fields[i]));
    if (!valid_column_name(name)) {
      return fail(fmt::format("{}:1: error: column {} has the name '{}'; column names must start "
                              "with a letter or '_' and hold only a-z, 0-9, '_' or '-'",
                              path.string(), i + 1, name));
    }
    if (!names.insert(name).second) {
      return fail(fmt::format("{}:1: error: column '{}' appears twice", path.string(), name));
    }
    loader.m_columns.push_back(std::move(name));
  }
  loader.m_email = loader.column_index("email");
  if (loader.m_email < 0) {
    return fail(fmt::format("{}:1: error: no 'email' column in the header row (found: {})",
                            path.string(), fmt::join(loader.m_columns, ", ")));
  }
  loader.m_locale = loader.column_index("locale");
  loader.m_name = loader.column_index("name");
  for (const auto& c : loader.m_columns) {
    loader.m_reaches_header.push_back(c == "email" || c == "name" ||
                                      loader.m_options.header_columns.contains(c));
  }
  // One entry per row: sized from the file (rows of a real audience are
  // rarely under 40 bytes) so a large import does not rehash as it grows.
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  if (loader.m_options.find_duplicates) {
    loader.m_seen.reserve(ec ? 1024 : std::clamp<std::size_t>(bytes / 40, 1024, std::size_t{1} << 24));
  }
  return loader;
}

std::string AudienceLoader::fatal_error() const {
  return fmt::format("{}:{}: error: {}", m_path.filename().string(), m_fatal_line, m_fatal.value_or(""));
}

void AudienceLoader::reject(std::int64_t line, std::string reason) {
  ++m_stats.rejected;
  if (m_options.on_reject) m_options.on_reject(Rejection{line, std::move(reason)});
}

bool AudienceLoader::next(AudienceRow& row) {
  while (m_reader.next(m_record)) {
    auto& f = m_record.fields;
    if (f.size() == 1 && f[0].empty() && m_record.error.empty()) {
      ++m_stats.blank;
      continue;
    }
    ++m_stats.records;
    const std::int64_t line = m_record.line;
    if (!m_record.error.empty()) {
      const std::int64_t spans = m_reader.line() - line;
      if (spans > 1) {
        m_fatal_line = line;
        m_fatal = fmt::format("malformed CSV ({}); the record that starts here runs over {} lines, so a stray "
                              "quote has joined the rows after it into one field: close or remove that quote "
                              "(nothing was read past it)",
                              m_record.error, spans);
        return false;
      }
      reject(line, "malformed CSV: " + m_record.error);
      continue;
    }
    if (f.size() != m_columns.size()) {
      reject(line, fmt::format("has {} fields, the header has {}", f.size(), m_columns.size()));
      continue;
    }
    std::string problem;
    for (std::size_t i = 0; i < f.size() && problem.empty(); ++i) {
      const auto& v = f[i];
      if (!util::is_valid_utf8(v)) {
        problem = fmt::format("column '{}' is not valid UTF-8", m_columns[i]);
      } else if (v.find('\0') != std::string::npos) {
        problem = fmt::format("column '{}' contains a NUL byte", m_columns[i]);
      } else if (m_reaches_header[i] && v.find_first_of("\r\n") != std::string::npos) {
        problem = fmt::format("column '{}' contains CR or LF and is used in a header "
                              "(header injection)", m_columns[i]);
      } else if (static_cast<int>(i) == m_name && v.size() > k_max_name) {
        problem = fmt::format("column 'name' is {} bytes; a display name in To: is at most {}", v.size(), k_max_name);
      }
    }
    if (!problem.empty()) {
      reject(line, problem);
      continue;
    }
    auto address = mail::parse_address(f[static_cast<std::size_t>(m_email)]);
    if (!address) {
      reject(line, "invalid email: " + address.error());
      continue;
    }
    if (m_options.find_duplicates) {
      const auto key = key_digest(address->dedup_key());
      const auto [it, inserted] = m_seen.try_emplace(key, line);
      if (!inserted) {
        ++m_stats.duplicates;
        if (m_options.on_duplicate) m_options.on_duplicate(line, it->second);
        continue;
      }
    }
    ++m_stats.accepted;
    row.line = line;
    row.email = address->str();
    f[static_cast<std::size_t>(m_email)] = row.email;
    row.locale = m_locale >= 0 ? std::string(util::trim(f[static_cast<std::size_t>(m_locale)]))
                               : std::string();
    row.name = m_name >= 0 ? std::string(util::trim(f[static_cast<std::size_t>(m_name)])) : "";
    row.fields = std::move(f);
    return true;
  }
  return false;
}

}  // namespace blindcast::audience
