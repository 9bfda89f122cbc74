#include "audience/csv_reader.hpp"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace blindcast::audience {

namespace {
constexpr std::size_t k_chunk = 1 << 20;
constexpr int k_eof = -1;
}  // namespace

CsvReader::CsvReader(std::FILE* file, std::size_t max_field)
    : m_file(file), m_max_field(max_field), m_buffer(k_chunk) {}

CsvReader::CsvReader(CsvReader&& other) noexcept
    : m_file(other.m_file),
      m_max_field(other.m_max_field),
      m_buffer(std::move(other.m_buffer)),
      m_pos(other.m_pos),
      m_end(other.m_end),
      m_line(other.m_line),
      m_consumed(other.m_consumed),
      m_started(other.m_started) {
  other.m_file = nullptr;
}

CsvReader::~CsvReader() {
  if (m_file != nullptr) std::fclose(m_file);
}

Result<CsvReader> CsvReader::open(const std::filesystem::path& path, std::size_t max_field) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return fail(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  }
  return CsvReader(f, max_field);
}

bool CsvReader::fill() {
  if (m_file == nullptr) return false;
  m_end = std::fread(m_buffer.data(), 1, m_buffer.size(), m_file);
  m_pos = 0;
  return m_end > 0;
}

int CsvReader::peek() {
  if (m_pos >= m_end && !fill()) return k_eof;
  return static_cast<unsigned char>(m_buffer[m_pos]);
}

int CsvReader::get() {
  const int c = peek();
  if (c != k_eof) {
    ++m_pos;
    ++m_consumed;
  }
  return c;
}

bool CsvReader::next(CsvRecord& record) {
  record.fields.clear();
  record.error.clear();
  if (!m_started) {
    m_started = true;
    // Skip a UTF-8 byte order mark.
    if (peek() == 0xEF) {
      const std::size_t save = m_pos;
      if (m_end - m_pos >= 3 && static_cast<unsigned char>(m_buffer[m_pos + 1]) == 0xBB &&
          static_cast<unsigned char>(m_buffer[m_pos + 2]) == 0xBF) {
        m_pos += 3;
        m_consumed += 3;
      } else {
        m_pos = save;
      }
    }
  }
  if (peek() == k_eof) return false;
  record.line = m_line;
  std::string field;
  bool too_long = false;
  auto push_field = [&] {
    if (too_long && record.error.empty()) {
      record.error = fmt::format("field {} is longer than {} bytes", record.fields.size() + 1,
                                 m_max_field);
    }
    if (record.fields.size() < k_max_fields) {
      record.fields.push_back(std::move(field));
    } else if (record.error.empty()) {
      record.error = fmt::format("more than {} fields", k_max_fields);
    }
    field.clear();
    too_long = false;
  };
  auto add = [&](char c) {
    if (field.size() < m_max_field) {
      field += c;
    } else {
      too_long = true;
    }
  };
  auto end_of_record = [&](int c) {
    if (c == '\r') {
      if (peek() == '\n') get();
    }
    ++m_line;
  };

  while (true) {
    int c = get();
    if (c == '"' && field.empty()) {
      // Quoted field.
      const std::int64_t quote_line = m_line;
      while (true) {
        c = get();
        if (c == k_eof) {
          record.error = fmt::format("unterminated quoted field opened on line {}", quote_line);
          push_field();
          return true;
        }
        if (c == '"') {
          if (peek() == '"') {
            get();
            add('"');
            continue;
          }
          break;
        }
        if (c == '\n') ++m_line;
        if (c == '\r' && peek() != '\n') ++m_line;
        add(static_cast<char>(c));
      }
      c = get();
      if (c == ',' ) {
        push_field();
        continue;
      }
      if (c == '\n' || c == '\r' || c == k_eof) {
        push_field();
        if (c != k_eof) end_of_record(c);
        return true;
      }
      // Text after the closing quote: malformed; skip to the end of the line.
      if (record.error.empty()) record.error = "text after a closing quote";
      while (c != '\n' && c != '\r' && c != k_eof) c = get();
      push_field();
      if (c != k_eof) end_of_record(c);
      return true;
    }
    if (c == ',') {
      push_field();
      continue;
    }
    if (c == '\n' || c == '\r' || c == k_eof) {
      push_field();
      if (c != k_eof) end_of_record(c);
      return true;
    }
    if (c == '"' && record.error.empty()) record.error = "quote inside an unquoted field";
    add(static_cast<char>(c));
  }
}

}  // namespace blindcast::audience
