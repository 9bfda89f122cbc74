#include <gtest/gtest.h>

#include "util/strings.hpp"

namespace blindcast::util {
namespace {

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
