#include <gtest/gtest.h>

#include "audience/csv_reader.hpp"
#include "test_support.hpp"

namespace blindcast::audience {
namespace {

struct Expected {
  std::vector<std::string> fields;
  std::int64_t line;
  std::string error_part;  // empty: well-formed
};

struct Case {
  const char* name;
  std::string input;
  std::vector<Expected> records;
};

std::vector<CsvRecord> read_all(const std::string& input, std::size_t max_field = 64 * 1024) {
  testing::TempDir dir;
  const auto path = dir.write("a.csv", input);
  auto reader = CsvReader::open(path, max_field);
  EXPECT_TRUE(reader.has_value());
  std::vector<CsvRecord> out;
  CsvRecord r;
  while (reader->next(r)) out.push_back(r);
  return out;
}

TEST(CsvReader, EdgeCases) {
  const std::vector<Case> cases = {
      {"simple LF", "a,b\n1,2\n", {{{"a", "b"}, 1, ""}, {{"1", "2"}, 2, ""}}},
      {"CRLF", "a,b\r\n1,2\r\n", {{{"a", "b"}, 1, ""}, {{"1", "2"}, 2, ""}}},
      {"no final newline", "a,b\n1,2", {{{"a", "b"}, 1, ""}, {{"1", "2"}, 2, ""}}},
      {"BOM", "\xEF\xBB\xBF" "email\nx@y.z\n", {{{"email"}, 1, ""}, {{"x@y.z"}, 2, ""}}},
      {"quoted comma", "a\n\"x,y\"\n", {{{"a"}, 1, ""}, {{"x,y"}, 2, ""}}},
      {"escaped quote", "a\n\"say \"\"hi\"\"\"\n", {{{"a"}, 1, ""}, {{"say \"hi\""}, 2, ""}}},
      {"quoted LF counts lines", "a,b\n\"1\n2\",x\ny,z\n",
       {{{"a", "b"}, 1, ""}, {{"1\n2", "x"}, 2, ""}, {{"y", "z"}, 4, ""}}},
      {"quoted CRLF", "a\n\"1\r\n2\"\n", {{{"a"}, 1, ""}, {{"1\r\n2"}, 2, ""}}},
      {"empty fields", "a,b,c\n,,\n", {{{"a", "b", "c"}, 1, ""}, {{"", "", ""}, 2, ""}}},
      {"empty quoted", "a,b\n\"\",x\n", {{{"a", "b"}, 1, ""}, {{"", "x"}, 2, ""}}},
      {"blank line is a record of one empty field", "a\n\nb\n", {{{"a"}, 1, ""}, {{""}, 2, ""}, {{"b"}, 3, ""}}},
      {"stray quote in unquoted field", "a\nx\"y\nok\n",
       {{{"a"}, 1, ""}, {{"x\"y"}, 2, "quote inside"}, {{"ok"}, 3, ""}}},
      {"text after closing quote", "a\n\"x\"y,z\nok\n",
       {{{"a"}, 1, ""}, {{"x"}, 2, "after a closing quote"}, {{"ok"}, 3, ""}}},
      {"unterminated quote at EOF", "a\n\"never closed\nmore\n",
       {{{"a"}, 1, ""}, {{"never closed\nmore\n"}, 2, "unterminated"}}},
      {"header injection value stays one field", "email,name\nx@y.z,\"Eve\r\nBcc: all@y.z\"\n",
       {{{"email", "name"}, 1, ""}, {{"x@y.z", "Eve\r\nBcc: all@y.z"}, 2, ""}}},
      {"unicode", "name\nJörg 山田 ليلى\n", {{{"name"}, 1, ""}, {{"Jörg 山田 ليلى"}, 2, ""}}},
      {"lone CR line ends", "a\r1\r", {{{"a"}, 1, ""}, {{"1"}, 2, ""}}},
      {"spaces kept", "a\n x \n", {{{"a"}, 1, ""}, {{" x "}, 2, ""}}},
  };
  for (const auto& c : cases) {
    const auto got = read_all(c.input);
    ASSERT_EQ(got.size(), c.records.size()) << c.name;
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].fields, c.records[i].fields) << c.name << " record " << i;
      EXPECT_EQ(got[i].line, c.records[i].line) << c.name << " record " << i;
      if (c.records[i].error_part.empty()) {
        EXPECT_TRUE(got[i].error.empty()) << c.name << ": " << got[i].error;
      } else {
        EXPECT_NE(got[i].error.find(c.records[i].error_part), std::string::npos) << c.name << ": " << got[i].error;
      }
    }
  }
}

TEST(CsvReader, FieldOverLimitMarksRecordAndContinues) {
  const auto got = read_all("a\n" + std::string(100, 'x') + "\nok\n", 64);
  ASSERT_EQ(got.size(), 3U);
  EXPECT_NE(got[1].error.find("longer than 64"), std::string::npos);
  EXPECT_EQ(got[2].fields, std::vector<std::string>{"ok"});
  EXPECT_TRUE(got[2].error.empty());
}

TEST(CsvReader, ReadsAcrossChunkBoundaries) {
  std::string input = "email\n";
  for (int i = 0; i < 100000; ++i) input += "\"user" + std::to_string(i) + "@example.com\"\n";
  const auto got = read_all(input);
  ASSERT_EQ(got.size(), 100001U);
  EXPECT_EQ(got[77777].fields, std::vector<std::string>{"user77776@example.com"});
  EXPECT_EQ(got[100000].line, 100001);
}

}  // namespace
}  // namespace blindcast::audience
