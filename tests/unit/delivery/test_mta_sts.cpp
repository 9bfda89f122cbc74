// MTA-STS policies (RFC 8461 §3.2, §4.1): parsing and MX matching.
#include <gtest/gtest.h>

#include "delivery/mta_sts.hpp"

namespace blindcast::delivery {
namespace {

TEST(MtaSts, ParsesAPolicyFile) {
  std::string error;
  auto p = parse_sts_policy("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
                            "mx: backupmx.example.com\r\nmax_age: 604800\r\n",
                            error);
  ASSERT_TRUE(p.has_value()) << error;
  EXPECT_EQ(p->mode, StsPolicy::Mode::k_enforce);
  EXPECT_EQ(p->mx, (std::vector<std::string>{"mail.example.com", "*.example.net", "backupmx.example.com"}));
  EXPECT_EQ(p->max_age, 604800);
  auto none = parse_sts_policy("version: STSv1\nmode: none\nmax_age: 86400\n", error);
  ASSERT_TRUE(none.has_value()) << error;
  EXPECT_EQ(none->mode, StsPolicy::Mode::k_none);
}

TEST(MtaSts, RefusesWhatIsNotAPolicy) {
  for (const char* bad : {"version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
                          "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",
                          "version: STSv1\nmode: enforce\nmax_age: 86400\n",
                          "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n",
                          "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: soon\n",
                          "<html>not found</html>"}) {
    std::string error;
    EXPECT_FALSE(parse_sts_policy(bad, error).has_value()) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(MtaSts, AWildcardStandsForExactlyOneLabel) {
  StsPolicy p;
  p.mx = {"mail.example.com", "*.example.net"};
  EXPECT_TRUE(sts_mx_matches(p, "mail.example.com"));
  EXPECT_TRUE(sts_mx_matches(p, "MAIL.Example.COM"));
  EXPECT_TRUE(sts_mx_matches(p, "mx1.example.net"));
  EXPECT_FALSE(sts_mx_matches(p, "a.b.example.net")) << "§4.1: one label only";
  EXPECT_FALSE(sts_mx_matches(p, "example.net"));
  EXPECT_FALSE(sts_mx_matches(p, "mail.example.com.evil.test"));
  EXPECT_FALSE(sts_mx_matches(p, "other.example.com"));
}

}  // namespace
}  // namespace blindcast::delivery
