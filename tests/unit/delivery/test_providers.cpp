#include <gtest/gtest.h>

#include "delivery/providers.hpp"

namespace blindcast::delivery {
namespace {

TEST(ParseRate, ReadsCountsPerUnit) {
  EXPECT_DOUBLE_EQ(*parse_rate("10/s"), 10);
  EXPECT_DOUBLE_EQ(*parse_rate("600/min"), 10);
  EXPECT_DOUBLE_EQ(*parse_rate("36000/h"), 10);
  EXPECT_DOUBLE_EQ(*parse_rate(" 1.5/s "), 1.5);
  EXPECT_DOUBLE_EQ(*parse_rate("1000000/s"), k_max_rate_per_second);
}

TEST(ParseRate, RefusesWhatIsNotAPlainRate) {
  for (const char* bad : {"1e308/s", "inf/s", "nan/s", "0x10/s", "5abc/s", "-5/s", "0/s", "1000001/s", "10",
                          "/s", "10/day", "10 /s", ""}) {
    EXPECT_FALSE(parse_rate(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace blindcast::delivery
