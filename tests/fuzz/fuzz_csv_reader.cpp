// libFuzzer target for the audience's CSV reader: any bytes (the audience
// file comes from outside) must be read to the end in time linear in their
// size, and every record must keep the reader's limits: at most
// k_max_fields fields of at most max_field bytes, lines that only grow.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "audience/csv_reader.hpp"

using blindcast::audience::CsvReader;
using blindcast::audience::CsvRecord;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  constexpr std::size_t k_max_field = 64;  // small, so that the limit is reached often
  std::FILE* f = fmemopen(const_cast<std::uint8_t*>(data), size, "rb");
  if (f == nullptr) return 0;
  auto reader = CsvReader::adopt(f, k_max_field);
  CsvRecord r;
  std::int64_t last_line = 0;
  std::size_t records = 0;
  while (reader.next(r)) {
    if (++records > size + 1) std::abort();  // every record consumes at least one byte
    if (r.fields.empty() || r.fields.size() > CsvReader::k_max_fields) std::abort();
    for (const auto& field : r.fields) {
      if (field.size() > k_max_field) std::abort();
    }
    if (r.line <= last_line) std::abort();
    last_line = r.line;
  }
  if (reader.bytes_read() > size) std::abort();
  return 0;
}
