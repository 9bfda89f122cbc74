#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <string>
#include <vector>

#include "mail/dkim_signer.hpp"

namespace blindcast::mail {
namespace {

// RFC 6376 §3.4.5, the worked example of relaxed canonicalization.
TEST(DkimCanonicalization, Rfc6376Example) {
  EXPECT_EQ(dkim_relaxed_header("A: X"), "a:X");
  EXPECT_EQ(dkim_relaxed_header("B : Y\t\r\n\tZ  "), "b:Y Z");
  EXPECT_EQ(dkim_relaxed_body(" C \r\nD \t E\r\n\r\n\r\n"), " C\r\nD E\r\n");
}

TEST(DkimCanonicalization, BodyEdges) {
  EXPECT_EQ(dkim_relaxed_body(""), "");
  EXPECT_EQ(dkim_relaxed_body("\r\n\r\n"), "");
  EXPECT_EQ(dkim_relaxed_body("no newline at end"), "no newline at end\r\n");
  EXPECT_EQ(dkim_relaxed_body("a\r\n \t \r\nb\r\n \r\n"), "a\r\n\r\nb\r\n");  // inner blank lines stay
  EXPECT_EQ(dkim_relaxed_body(std::string(76, 'Q') + "\r\n"), std::string(76, 'Q') + "\r\n");
}

// The rules of RFC 6376 §3.4.2 and §3.4.4 written as plainly as possible,
// to check the canonicalizers against.
std::string reference_header(const std::string& field) {
  const std::size_t colon = field.find(':');
  std::string name = field.substr(0, colon);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  name = std::regex_replace(name, std::regex("[ \t]+$"), "");
  std::string value = colon == std::string::npos ? "" : field.substr(colon + 1);
  value = std::regex_replace(value, std::regex("[\r\n]"), "");
  value = std::regex_replace(value, std::regex("[ \t]+"), " ");
  value = std::regex_replace(value, std::regex("^ | $"), "");
  return name + ":" + value;
}

std::string reference_body(const std::string& body) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::size_t eol = body.find("\r\n", pos);
    if (eol == std::string::npos) eol = body.size();
    std::string line = std::regex_replace(body.substr(pos, eol - pos), std::regex("[ \t]+"), " ");
    if (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(line);
    pos = eol + 2;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::string out;
  for (const auto& l : lines) out += l + "\r\n";
  return out;
}

// Bodies whose lines need no change take a 16-byte-at-a-time path; runs of
// whitespace across a 16-byte boundary must still be seen.
TEST(DkimCanonicalization, WhitespaceAtEveryOffset) {
  for (std::size_t at = 0; at < 40; ++at) {
    const std::string head(at, 'a');
    for (const char* ws : {"  ", " \r\n", "\t", " \t", " "}) {
      const std::string body = head + ws + "b\r\n" + std::string(20, 'c') + "\r\n\r\n";
      ASSERT_EQ(dkim_relaxed_body(body), reference_body(body)) << testing::PrintToString(body);
    }
    const std::string trailing = head + " ";
    ASSERT_EQ(dkim_relaxed_body(trailing), reference_body(trailing)) << at;
  }
}

// `rounds` texts of up to `max_tokens` tokens drawn from `tokens`.
std::vector<std::string> random_texts(const std::vector<std::string>& tokens, int max_tokens, unsigned seed,
                                      int rounds) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, tokens.size() - 1);
  std::uniform_int_distribution<int> length(0, max_tokens);
  std::vector<std::string> out(static_cast<std::size_t>(rounds));
  for (auto& text : out) {
    for (int i = length(rng); i > 0; --i) text += tokens[pick(rng)];
  }
  return out;
}

TEST(DkimCanonicalization, MatchesTheRfcRulesOnRandomText) {
  for (const auto& text : random_texts({"a", "Bc", "=3D", " ", "  ", "\t", " \t ", "\r\n", "\r\n\r\n", "\r", "\n", "\xc3\xa9"},
                                       60, 20261122, 1500)) {
    ASSERT_EQ(dkim_relaxed_body(text), reference_body(text)) << "body: " << testing::PrintToString(text);
    const std::string field = "X-Name \t:" + text;
    ASSERT_EQ(dkim_relaxed_header(field), reference_header(field)) << "field: " << testing::PrintToString(field);
  }
}

// Texts whose lines mostly need no change: the 16-byte path.
TEST(DkimCanonicalization, MatchesTheRfcRulesOnRandomCleanText) {
  for (const auto& text : random_texts({"a", "Bc", " x", "=3D", "\r\n", "\r\n\r\n", "\r", "\n", "\xc3\xa9", "0123456789abcdef"},
                                       80, 112226, 1500)) {
    ASSERT_EQ(dkim_relaxed_body(text), reference_body(text)) << "body: " << testing::PrintToString(text);
  }
}

}  // namespace
}  // namespace blindcast::mail
