// text::PhraseSet, the one-pass search behind the rule table and the phrase
// lists, as a table against the plain find it replaces.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>

#include "bounce/text_scan.hpp"
#include "util/utf8.hpp"

namespace blindcast::bounce::text {
namespace {

constexpr std::array<std::string_view, 6> k_phrases = {"user unknown", "unknown", "quota", "x",
                                                       "no such",      "no mx"};

// What the set must answer: the first phrase in list order found anywhere,
// and the earliest position of any phrase.
std::size_t plain_first_listed(std::string_view low) {
  for (std::size_t k = 0; k < k_phrases.size(); ++k) {
    if (low.find(k_phrases[k]) != std::string_view::npos) return k;
  }
  return std::string_view::npos;
}

std::size_t plain_earliest(std::string_view low) {
  std::size_t best = std::string_view::npos;
  for (const auto p : k_phrases) best = std::min(best, low.find(p));
  return best;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  return out;
}

std::string mixed(std::string_view s) {  // every other letter upper-cased
  std::string out(s);
  for (std::size_t i = 0; i < out.size(); i += 2) out[i] = upper(out.substr(i, 1))[0];
  return out;
}

TEST(BounceTextScan, PhraseSetAgreesWithFind) {
  const PhraseSet set(k_phrases);
  const std::string_view rows[] = {
      "",
      "u",
      "no",
      "550 5.1.1 user unknown",
      "unknown user; user unknown",
      "over quota, unknown",
      "mailbox full",
      "no such user; no mx",
      "box",             // the one-byte phrase at the end
      "no mx",           // a phrase that is the whole text
      "nno sucno such",  // a near miss before the match
      "quot",            // a phrase cut by the end of the text
      "over quota",      // a phrase that ends the text
      "xno suc",         // a longer phrase cut by the end of the text
      "no mxno su",      // the last four bytes of a text read as one word
  };
  for (const auto row : rows) {
    EXPECT_EQ(set.first_listed(row), plain_first_listed(row)) << row;
    EXPECT_EQ(set.earliest(row), plain_earliest(row)) << row;
    EXPECT_EQ(set.any_in(row), plain_earliest(row) != std::string_view::npos) << row;
    // Whatever the case of the text, as any_in on it lower-cased.
    for (const auto& cased : {upper(row), mixed(row)}) {
      EXPECT_EQ(set.any_in_ignoring_case(cased), plain_earliest(row) != std::string_view::npos) << cased;
    }
  }
}

TEST(BounceTextScan, PhraseSetWithoutShortPhrases) {
  constexpr std::array<std::string_view, 2> k_two = {"ab", "bc"};
  const PhraseSet set(k_two);
  EXPECT_EQ(set.earliest("xxabc"), 2U);
  EXPECT_EQ(set.first_listed("xxbcab"), 0U);
  EXPECT_EQ(set.earliest("xxb"), std::string_view::npos);
  EXPECT_EQ(set.earliest("a"), std::string_view::npos);
  EXPECT_TRUE(set.any_in_ignoring_case("xxaBc"));
  EXPECT_TRUE(set.any_in_ignoring_case("BC"));
  EXPECT_FALSE(set.any_in_ignoring_case("xxB"));
  EXPECT_FALSE(set.any_in_ignoring_case("A-B"));
}

// An address in UTF-8 text is read up to a cap (128 bytes of local part, 256
// of domain): a cap that falls inside a multi-byte character must not cut
// it (a fuzzer's X-Failed-Recipients gave an address ending in half a "ÿ").
TEST(BounceTextScan, AnAddressCutAtItsCapStaysValidUtf8) {
  for (const std::string_view ch : {"\xc3\xa7", "\xe4\xb8\xad", "\xf0\x9f\x93\xa7"}) {
    for (std::size_t pad = 0; pad < 4; ++pad) {
      std::string local(pad, 'a');
      std::string domain(pad, 'b');
      while (local.size() < 300) local += ch;
      while (domain.size() < 600) domain += ch;
      for (const auto& text : {local + "@example.com", "x@" + domain + ".de", local + "@" + domain}) {
        const auto found = find_addresses(text, true, true);
        ASSERT_EQ(found.size(), 1U) << text.size();
        const std::string& a = found[0].address;
        EXPECT_TRUE(util::is_valid_utf8(a)) << a.size();
        EXPECT_LE(a.size(), 128U + 1 + 256);
        EXPECT_NE(a.find('@'), std::string::npos);
      }
    }
  }
  // Within the caps nothing changes.
  const auto whole = find_addresses("to j\xc3\xb8rgen@b\xc3\xb8rn.dk failed", true, true);
  ASSERT_EQ(whole.size(), 1U);
  EXPECT_EQ(whole[0].address, "j\xc3\xb8rgen@b\xc3\xb8rn.dk");
}

}  // namespace
}  // namespace blindcast::bounce::text
