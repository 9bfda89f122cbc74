// Streaming RFC 4180 CSV reader.
//
// Reads a file in fixed-size chunks (memory does not grow with the file) and
// yields one record at a time with the physical line it starts on. Accepts a
// UTF-8 BOM, CRLF or LF line ends, quoted fields holding commas, quotes ("")
// and line breaks. A malformed record (stray quote, text after a closing
// quote, a field over the size limit, more than k_max_fields fields) is reported with its line and the reader
// moves on to the next record; only an unterminated quote at end of file ends
// the read, because the rest of the file cannot be split into records.
//
// Hand-written rather than a library: the loader needs exact line numbers,
// per-record recovery and a hard per-field limit, and the format is small.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace blindcast::audience {

struct CsvRecord {
  std::vector<std::string> fields;
  std::int64_t line = 0;      // physical line the record starts on (1-based)
  std::string error;          // non-empty when the record is malformed
};

class CsvReader {
 public:
  static constexpr std::size_t k_default_max_field = 64 * 1024;
  // Fields a record may have: the rest of a wider record is read (to find
  // the next record) but not kept, and the record is malformed. An audience
  // has tens of columns; a million commas must not cost a million strings.
  static constexpr std::size_t k_max_fields = 1024;

  // Opens `path`; fields longer than `max_field` bytes make their record malformed.
  static Result<CsvReader> open(const std::filesystem::path& path,
                                std::size_t max_field = k_default_max_field);
  // Reads `file` (taken over: closed with the reader), e.g. from fmemopen.
  static CsvReader adopt(std::FILE* file, std::size_t max_field = k_default_max_field) {
    return CsvReader(file, max_field);
  }
  CsvReader(CsvReader&& other) noexcept;
  CsvReader& operator=(CsvReader&&) = delete;
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;
  ~CsvReader();

  // Reads the next record into `record`; false at end of file.
  bool next(CsvRecord& record);

  // The physical line the next record starts on.
  [[nodiscard]] std::int64_t line() const { return m_line; }

  // Bytes consumed so far (for progress).
  [[nodiscard]] std::uint64_t bytes_read() const { return m_consumed; }

 private:
  CsvReader(std::FILE* file, std::size_t max_field);
  int peek();
  int get();
  bool fill();

  std::FILE* m_file = nullptr;
  std::size_t m_max_field;
  std::vector<char> m_buffer;
  std::size_t m_pos = 0;
  std::size_t m_end = 0;
  std::int64_t m_line = 1;
  std::uint64_t m_consumed = 0;
  bool m_started = false;
};

}  // namespace blindcast::audience
