// The flufl.bounce corpus (real bounces from many MTAs, installed by Debian's
// python3-flufl.bounce) against the answers written by hand in
// tests/data/bounces/expected.tsv: type, recipients, hard or soft, reason and
// status of every message. A row whose note starts with "not matched:" is one
// the parser is known to get wrong: it must still parse, and the test says
// when it starts to match.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bounce/report.hpp"

namespace blindcast::bounce {
namespace {

const std::string k_corpus = "/usr/lib/python3/dist-packages/flufl/bounce/tests/data/";
const std::string k_table = std::string(BLINDCAST_TEST_DATA) + "/bounces/expected.tsv";

struct Row {
  std::string file, type, addresses, hard, reason, status, note;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, sep)) out.push_back(item);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

std::vector<Row> read_table() {
  std::vector<Row> rows;
  std::ifstream in(k_table);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.starts_with("file\t")) continue;
    auto f = split(line, '\t');
    f.resize(7);
    rows.push_back({f[0], f[1], f[2], f[3], f[4], f[5], f[6]});
  }
  return rows;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// What parse() says, in the table's terms; "" when it matches `row`.
std::string mismatch(const Row& row, const Report& r) {
  std::vector<std::string> got;
  for (const auto& x : r.recipients) got.push_back(x.address);
  std::sort(got.begin(), got.end());
  std::string joined;
  for (const auto& a : got) joined += (joined.empty() ? "" : ",") + a;
  if (joined.empty()) joined = "-";
  std::string why;
  if (std::string(to_string(r.type)) != row.type) why += " type " + std::string(to_string(r.type));
  if (joined != row.addresses) why += " addresses " + joined;
  for (const auto& x : r.recipients) {
    if ((x.hard ? "y" : "n") != row.hard) why += " hard(" + x.address + ")=" + (x.hard ? "y" : "n");
    if (std::string(to_string(x.reason)) != row.reason) {
      why += " reason(" + x.address + ")=" + std::string(to_string(x.reason));
    }
    if ((x.status.empty() ? "-" : x.status) != row.status) why += " status(" + x.address + ")=" + x.status;
  }
  return why;
}

TEST(BounceCorpus, MatchesTheHandWrittenAnswers) {
  if (!std::filesystem::is_directory(k_corpus)) GTEST_SKIP() << "python3-flufl.bounce is not installed";
  const auto rows = read_table();
  ASSERT_GE(rows.size(), 100U);
  int matched = 0;
  int known = 0;
  for (const auto& row : rows) {
    SCOPED_TRACE(row.file);
    const std::string raw = read_file(k_corpus + row.file);
    ASSERT_FALSE(raw.empty());
    const Report r = parse(raw);
    const std::string why = mismatch(row, r);
    if (row.note.starts_with("not matched:")) {
      ++known;
      EXPECT_FALSE(why.empty()) << row.file << " matches now: drop its \"not matched:\" note";
      continue;
    }
    EXPECT_EQ(why, "") << row.file;
    if (why.empty()) ++matched;
  }
  // At least 90% of the corpus is read exactly as a postmaster would.
  EXPECT_GE(matched * 10, static_cast<int>(rows.size()) * 9) << matched << " of " << rows.size() << " (" << known
                                                               << " known misses)";
  std::printf("[ corpus   ] %d of %zu messages match exactly\n", matched, rows.size());
}

}  // namespace
}  // namespace blindcast::bounce
