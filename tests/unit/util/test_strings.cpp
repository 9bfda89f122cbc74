#include <gtest/gtest.h>

#include <string>

#include "util/strings.hpp"
#include "util/utf8.hpp"

namespace blindcast::util {
namespace {

// to_lower_ascii and is_valid_utf8 take 16 bytes a step where they can:
// every byte value, at every position of a block and of the tail, must
// give what a byte at a time gives.
TEST(LowerAscii, EveryByteAtEveryPosition) {
  for (int b = 0; b < 256; ++b) {
    for (std::size_t len : {1U, 15U, 16U, 17U, 33U, 40U}) {
      for (std::size_t at = 0; at < len; ++at) {
        std::string in(len, 'Q');
        in[at] = static_cast<char>(b);
        std::string want = in;
        for (char& c : want) {
          if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
        }
        ASSERT_EQ(to_lower_ascii(in), want) << b << " at " << at << " of " << len;
      }
    }
  }
}

TEST(ValidUtf8, SequencesAndErrorsAtEveryPosition) {
  const std::string good[] = {"\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x93\xa7", "\xef\xbb\xbf"};
  const std::string bad[] = {"\x80",         "\xc3",         "\xc0\xaf",     "\xe0\x80\xaf", "\xed\xa0\x80",
                             "\xf4\x90\x80\x80", "\xff", "\xe4\xb8", "\xc3\x28"};
  for (std::size_t len : {0U, 5U, 15U, 16U, 31U, 40U}) {
    for (std::size_t at = 0; at <= len; ++at) {
      const std::string head(at, 'a');
      const std::string tail(len - at, 'z');
      for (const auto& g : good) EXPECT_TRUE(is_valid_utf8(head + g + tail)) << at << " of " << len;
      for (const auto& x : bad) EXPECT_FALSE(is_valid_utf8(head + x + tail)) << at << " of " << len;
      EXPECT_TRUE(is_valid_utf8(head + good[0] + tail + good[2]));
      EXPECT_FALSE(is_valid_utf8(head + good[1] + tail + bad[0]));
    }
  }
}

TEST(EditDistance, CountsInsertionsDeletionsReplacementsAndSwaps) {
  EXPECT_EQ(edit_distance("url", "url"), 0U);
  EXPECT_EQ(edit_distance("uri", "url"), 1U);                                // replaced
  EXPECT_EQ(edit_distance("replyto", "reply_to"), 1U);                       // inserted
  EXPECT_EQ(edit_distance("approvals_requried", "approvals_required"), 1U);  // two neighbours swapped
  EXPECT_EQ(edit_distance("Connections", "connections"), 0U);               // case does not count
  EXPECT_EQ(edit_distance("", "abc"), 3U);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3U);
}

TEST(ClosestMatch, SuggestsOnlyWhatIsClose) {
  const std::vector<std::string> known = {"url", "tls", "username", "password_file", "connections"};
  EXPECT_EQ(closest_match("uri", known), "url");
  EXPECT_EQ(closest_match("conections", known), "connections");
  EXPECT_EQ(closest_match("pasword_file", known), "password_file");
  EXPECT_EQ(closest_match("moonphase", known), "");  // nothing alike: no guess
  EXPECT_EQ(closest_match("x", known), "");           // one letter is too little to guess from
}

}  // namespace
}  // namespace blindcast::util
