#include <gtest/gtest.h>

#include <string>

#include "send/status_report.hpp"
#include "util/utf8.hpp"

namespace blindcast::send {
namespace {

TEST(ReasonOf, RepliesOfOneCauseGroupTogether) {
  const auto a = reason_of("421 4.7.0 [TSS04] Messages from 203.0.113.7 temporarily deferred due to user complaints "
                           "- 4.16.55.1; see https://postmaster.yahooinc.com/error-codes");
  const auto b = reason_of("421 4.7.0 [TSS04] Messages from 198.51.100.23 temporarily deferred due to user complaints "
                           "- 4.16.55.1; see https://postmaster.yahooinc.com/error-codes");
  EXPECT_EQ(a, b);
  EXPECT_EQ(reason_of("550 5.1.1 <li.wei@163.com>: Recipient address rejected: User unknown in queue 8F2A1C0B3D"),
            reason_of("550 5.1.1 <anna.k@163.com>: Recipient address rejected: User unknown in queue 11AB93C7F0"));
  EXPECT_NE(reason_of("550 5.1.1 user unknown"), reason_of("552 5.2.2 mailbox full"));
}

TEST(ReasonOf, NoAddressSurvivesEvenAtTheCut) {
  // The address straddles byte 400 of the reply.
  const std::string reply = "550 5.7.1 " + std::string(385, 'z') + " olga.ivanova@mail.ru rejected";
  const auto r = reason_of(reply);
  EXPECT_EQ(r.find("olga"), std::string::npos) << r;
  EXPECT_EQ(r.find("ivanova"), std::string::npos) << r;
}

TEST(ReasonOf, ALongUnicodeReplyIsCutAtACharacter) {
  std::string reply = "554 5.7.1 ";
  for (int i = 0; i < 120; ++i) reply += "拒绝";
  const auto r = reason_of(reply);
  EXPECT_LE(r.size(), 160u);
  EXPECT_TRUE(util::is_valid_utf8(r));
}

}  // namespace
}  // namespace blindcast::send
