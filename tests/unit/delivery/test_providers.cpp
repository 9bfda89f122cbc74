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

// With mx: delivery a domain no lane names goes by its MX hosts: a company
// hosted by Google or Microsoft shares that provider's lane.
TEST(LaneTable, DomainsNoLaneNamesGoByTheirMxHosts) {
  LaneDefaults corp;
  corp.name = "corporate";
  corp.mx = {"*.mx.corp.example", "relay.partner.example"};
  LaneDefaults own_default;
  own_default.name = "default";
  own_default.domains = {"kept.example"};
  const LaneTable table({corp, own_default});
  const std::vector<std::string> google{"aspmx.l.google.com", "alt1.aspmx.l.google.com"};
  EXPECT_EQ(table.lane_for("company.example", google).name, "google");
  EXPECT_EQ(table.lane_for("company.example", std::vector<std::string>{"acme-com.mail.protection.outlook.com"}).name,
            "microsoft");
  EXPECT_EQ(table.lane_for("a.example", std::vector<std::string>{"in1.mx.corp.example"}).name, "corporate");
  EXPECT_EQ(table.lane_for("b.example", std::vector<std::string>{"relay.partner.example"}).name, "corporate");
  // "*.google.com" is a suffix at a label boundary: not google.com itself, not evilgoogle.com.
  EXPECT_EQ(table.lane_for("c.example", std::vector<std::string>{"google.com"}).name, "default");
  EXPECT_EQ(table.lane_for("c.example", std::vector<std::string>{"mx.evilgoogle.com"}).name, "default");
  // A domain a lane names keeps that lane whatever its MX hosts.
  EXPECT_TRUE(table.names("gmail.com"));
  EXPECT_TRUE(table.names("kept.example"));
  EXPECT_EQ(table.lane_for("kept.example", google).name, "default");
  EXPECT_FALSE(table.names("company.example"));
  EXPECT_EQ(table.lane_for("company.example").name, "default") << "without MX hosts, by its domain";
  EXPECT_TRUE(table.matches_mx());
}

}  // namespace
}  // namespace blindcast::delivery
