// The leak and false-positive corpora of tests/data/guard/ through the guard
// itself, each payload composed by the real composer into the subject, the
// text/plain part and the text/html part of alice's message: every leak is
// blocked (an audience victim by the audience rule alone, with strict mode
// off), and every clean payload passes with strict mode on.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "guard/decoders.hpp"
#include "guard/privacy_guard.hpp"
#include "mail/composer.hpp"

namespace blindcast::guard {
namespace {

const std::string k_dir = std::string(BLINDCAST_TEST_DATA) + "/guard/";
constexpr const char* k_alice = "alice.smith@example.com";

// The corpus escapes: \u{HEX} is that code point, \\ one backslash.
std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '\\') {
      out += '\\';
      ++i;
    } else if (s.substr(i, 3) == "\\u{") {
      const auto close = s.find('}', i);
      append_utf8(out, static_cast<char32_t>(std::stoul(std::string(s.substr(i + 3, close - i - 3)), nullptr, 16)));
      i = close;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct Row {
  int line;
  std::vector<std::string> cols;
};

std::vector<Row> read_tsv(const std::string& name) {
  std::ifstream in(k_dir + name);
  std::vector<Row> rows;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    Row r{n, {}};
    std::stringstream ss(line);
    std::string col;
    while (std::getline(ss, col, '\t')) r.cols.push_back(col);
    rows.push_back(std::move(r));
  }
  return rows;
}

std::vector<std::string> audience() {
  std::ifstream in(k_dir + "audience.csv");
  std::vector<std::string> out;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(line.substr(0, line.find(',')));
  }
  return out;
}

// `rcpt`'s message with `payload` in `placement` (0 subject, 1 text, 2 HTML).
std::string message(const std::string& rcpt, const std::string& payload, int placement) {
  mail::MessageSpec spec;
  spec.from = "Example Exchange <noreply@example.com>";
  spec.reply_to = "support@example.com";
  spec.to_address = rcpt;
  spec.subject = std::string("Index change") + (placement == 0 ? " " + payload : "");
  spec.text = "Hello,\nthe index changes on 1 December.\n" + (placement == 1 ? payload + "\n" : std::string());
  spec.html = "<html><body><p>Hello,</p><p>the index changes on 1 December.</p>" +
              (placement == 2 ? "<p>" + payload + "</p>" : std::string()) + "</body></html>\n";
  spec.message_id = "<corpus.1@example.com>";
  spec.date = 1795392000;
  spec.boundary = "=_corpus";
  return mail::compose(spec);
}

class GuardCorpus : public ::testing::Test {
 protected:
  void SetUp() override {
    auto index = std::make_shared<AddressIndex>();
    for (const auto& a : audience()) index->add(a);
    ASSERT_GE(index->size(), 40U);
    GuardPolicy p;
    p.from_address = "noreply@example.com";
    p.reply_to_address = "support@example.com";
    m_strict = std::make_unique<PrivacyGuard>(index, p);
    p.strict = false;
    m_lenient = std::make_unique<PrivacyGuard>(index, p);
  }
  static std::optional<Violation> check(const PrivacyGuard& g, const std::string& rcpt, const std::string& data) {
    const std::string r[] = {rcpt};
    return g.check(data, Envelope{"noreply@example.com", r});
  }
  std::unique_ptr<PrivacyGuard> m_strict;
  std::unique_ptr<PrivacyGuard> m_lenient;
};

constexpr const char* k_placement[] = {"subject", "text", "html"};

TEST_F(GuardCorpus, EveryLeakIsBlockedInEveryPlacement) {
  const auto rows = read_tsv("leaks.tsv");
  ASSERT_GE(rows.size(), 150U) << "the corpus holds at least 150 leak attempts";
  std::size_t cases = 0;
  std::vector<std::string> missed;
  std::size_t expected = 0;
  for (const auto& row : rows) {
    ASSERT_TRUE(row.cols.size() == 3 || row.cols.size() == 4) << "leaks.tsv:" << row.line;
    const bool outsider = row.cols[0].starts_with("outsider-");
    const std::string payload = unescape(row.cols[2]);
    // An optional fourth column names the placements (s, t, h) the row applies to.
    const std::string only = row.cols.size() == 4 ? row.cols[3] : "s,t,h";
    for (int p = 0; p < 3; ++p) {
      if (only.find("sth"[p]) == std::string::npos) continue;
      ++expected;
      ++cases;
      const std::string data = message(k_alice, payload, p);
      const std::string where = "leaks.tsv:" + std::to_string(row.line) + " " + row.cols[0] + " [" + k_placement[p] + "]";
      const auto strict = check(*m_strict, k_alice, data);
      if (!strict) {
        missed.push_back(where + ": passed strict mode");
        continue;
      }
      EXPECT_EQ(strict->describe().find(row.cols[1]), std::string::npos) << where << ": unmasked in " << strict->describe();
      if (outsider) continue;
      // An audience victim is caught by the audience rule alone, and named as such.
      const auto lenient = check(*m_lenient, k_alice, data);
      if (!lenient || lenient->invariant != 3) {
        missed.push_back(where + ": the audience rule " + (lenient ? "said " + lenient->describe(true) : "passed it"));
      } else if (strict->invariant != 3) {
        missed.push_back(where + ": strict mode reported " + strict->describe(true) + " instead of invariant 3");
      }
    }
  }
  EXPECT_EQ(cases, expected);
  EXPECT_GE(cases, rows.size() * 3 - 40) << "most rows run in every placement";
  std::string all;
  for (const auto& m : missed) all += "\n  " + m;
  EXPECT_TRUE(missed.empty()) << missed.size() << " leak cases not blocked as they should be:" << all;
}

TEST_F(GuardCorpus, CleanPayloadsPassInEveryPlacement) {
  const auto rows = read_tsv("clean.tsv");
  ASSERT_GE(rows.size(), 60U);
  const auto members = audience();
  std::vector<std::string> blocked;
  for (const auto& row : rows) {
    ASSERT_GE(row.cols.size(), 2U) << "clean.tsv:" << row.line;
    ASSERT_NE(std::find(members.begin(), members.end(), row.cols[0]), members.end())
        << "clean.tsv:" << row.line << ": recipient not in audience.csv";
    const std::string payload = unescape(row.cols[1]);
    // 'html only:' rows: outside HTML the markup is shown as written (see clean.tsv).
    const bool html_only = row.cols.size() > 2 && row.cols[2].starts_with("html only");
    for (int p = html_only ? 2 : 0; p < 3; ++p) {
      if (auto v = check(*m_strict, row.cols[0], message(row.cols[0], payload, p))) {
        blocked.push_back("clean.tsv:" + std::to_string(row.line) + " [" + k_placement[p] + "] " +
                          (row.cols.size() > 2 ? row.cols[2] : "") + ": " + v->describe(true));
      }
    }
  }
  std::string all;
  for (const auto& b : blocked) all += "\n  " + b;
  EXPECT_TRUE(blocked.empty()) << blocked.size() << " false positives:" << all;
}

}  // namespace
}  // namespace blindcast::guard
