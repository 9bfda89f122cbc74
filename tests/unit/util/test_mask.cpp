#include <gtest/gtest.h>

#include "util/mask.hpp"
#include "util/utf8.hpp"

namespace blindcast::util {
namespace {

TEST(Mask, KeepsTheFirstCharacterOfEachPartAndTheTopLevelDomain) {
  EXPECT_EQ(mask_address("alice.smith@example.com"), "a***@e***.com");
  EXPECT_EQ(mask_address("x@y"), "x***@y***");
}

TEST(Mask, AnInternationalizedAddressStaysValidUtf8) {
  const auto m = mask_address("用户@例子.广告");
  EXPECT_EQ(m, "用***@例***.广告");
  EXPECT_TRUE(is_valid_utf8(m));
  EXPECT_EQ(mask_address("zoë@müller.de"), "z***@m***.de");
}

TEST(Mask, AddressesInRightToLeftTextLeaveTheBidiIsolatesOutside) {
  // An Arabic template wraps the address in U+2068 FIRST STRONG ISOLATE ... U+2069.
  const std::string text = "أُرسلت هذه الرسالة إلى \u2068omar.hassan@example.ae\u2069.";
  const auto m = mask_addresses_in(text);
  EXPECT_EQ(m, "أُرسلت هذه الرسالة إلى \u2068o***@e***.ae\u2069.");
  EXPECT_TRUE(is_valid_utf8(m));
}

TEST(Mask, NoBreakSpacesQuotesAndIdeographicPunctuationEndAnAddress) {
  EXPECT_EQ(mask_addresses_in("to\u00a0bob@example.org\u00a0now"), "to\u00a0b***@e***.org\u00a0now");
  EXPECT_EQ(mask_addresses_in("\u201cbob@example.org\u201d"), "\u201cb***@e***.org\u201d");
  EXPECT_EQ(mask_addresses_in("发送至：li.wei@163.com。"), "发送至：l***@1***.com。");
  EXPECT_EQ(mask_addresses_in("kein Text"), "kein Text");
}

TEST(Mask, ATruncatedSequenceNeverBreaksTheOutput) {
  const std::string cut = std::string("\xE4\xBD") + "@example.com";  // a lead byte without its last byte
  EXPECT_TRUE(is_valid_utf8(mask_addresses_in("a " + std::string("用户@例子.广告"))));
  EXPECT_NO_THROW(mask_addresses_in(cut));
}

}  // namespace
}  // namespace blindcast::util
