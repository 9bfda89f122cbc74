#include <gtest/gtest.h>

#include "smtp/reply.hpp"

namespace blindcast::smtp {
namespace {

TEST(ReplyParser, SingleMultiAndSplitReplies) {
  ReplyParser p;
  std::vector<Reply> out;
  ASSERT_FALSE(p.feed("220 mx.example ESMTP\r\n250-mx.example\r\n250-PIPE", out));
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].code, 220);
  EXPECT_TRUE(p.partial());
  ASSERT_FALSE(p.feed("LINING\r\n250 SIZE 1000\r\n", out));
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[1].lines, (std::vector<std::string>{"mx.example", "PIPELINING", "SIZE 1000"}));
  EXPECT_FALSE(p.partial());
}

TEST(ReplyParser, EnhancedCodes) {
  struct {
    const char* line;
    int code;
    const char* enhanced;
  } cases[] = {{"550 5.1.1 no such user\r\n", 550, "5.1.1"},
               {"421 4.7.0 try later\r\n", 421, "4.7.0"},
               {"250 2.0.0\r\n", 250, "2.0.0"},
               {"250 ok\r\n", 250, ""},
               {"451 4.7.500 Server busy\r\n", 451, "4.7.500"},
               {"550 5.1 incomplete\r\n", 550, ""},
               {"550 2.1.1 class does not match\r\n", 550, ""},
               {"250\r\n", 250, ""},
               {"354 go ahead\n", 354, ""}};
  for (const auto& c : cases) {
    ReplyParser p;
    std::vector<Reply> out;
    ASSERT_FALSE(p.feed(c.line, out)) << c.line;
    ASSERT_EQ(out.size(), 1U) << c.line;
    EXPECT_EQ(out[0].code, c.code);
    EXPECT_EQ(out[0].enhanced, c.enhanced) << c.line;
  }
}

TEST(ReplyParser, RejectsWhatIsNotAReply) {
  for (const char* bad : {"HTTP/1.1 200 OK\r\n", "99 short\r\n", "600 out of range\r\n", "250x\r\n",
                          "250-one\r\n251 two\r\n", "abc\r\n"}) {
    ReplyParser p;
    std::vector<Reply> out;
    EXPECT_TRUE(p.feed(bad, out).has_value()) << bad;
  }
  ReplyParser p;
  std::vector<Reply> out;
  EXPECT_TRUE(p.feed(std::string(5000, '2'), out).has_value());
}

TEST(ReplyParser, Summary) {
  ReplyParser p;
  std::vector<Reply> out;
  ASSERT_FALSE(p.feed("550-5.7.1 first\r\n550 second\r\n", out));
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].summary(), "550 5.7.1 first / second");
}

}  // namespace
}  // namespace blindcast::smtp
