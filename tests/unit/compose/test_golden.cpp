// Golden .eml files for the example campaign: the exact bytes for one row
// per locale with a fixed Date, Message-ID and boundary. On a mismatch the
// test writes NAME.eml.actual beside the golden file for review.
#include <gtest/gtest.h>

#include "audience/audience_loader.hpp"
#include "compose/audience_session.hpp"
#include "campaign/example.hpp"
#include "test_support.hpp"
#include "util/file.hpp"

namespace blindcast::compose {
namespace {

TEST(Golden, ExampleCampaignMessages) {
  testing::TempDir dir;
  ASSERT_TRUE(campaign::write_example_campaign(dir.path()));
  util::Diagnostics diags;
  auto campaign = campaign::load_campaign(dir.path(), diags);
  ASSERT_TRUE(campaign.has_value());
  auto session = open_audience(*campaign, diags, {});
  ASSERT_TRUE(session.has_value());
  ASSERT_EQ(util::error_count(diags), 0U);
  const std::filesystem::path golden_dir = std::filesystem::path(BLINDCAST_TEST_DATA) / "golden";
  audience::AudienceRow row;
  int compared = 0;
  while (session->loader->next(row)) {
    BuildOptions o;
    o.date = 1795392000;  // 2026-11-23T00:00:00Z
    o.message_id = "<golden." + std::to_string(row.line) + "@example.com>";
    o.boundary = "=_bc_golden";
    auto built = session->builder->build(row.fields, row.email, row.name, row.locale, o);
    ASSERT_TRUE(built.has_value()) << built.error();
    const auto name = "line" + std::to_string(row.line) + "-" + (row.locale.empty() ? "default" : row.locale) + ".eml";
    const auto path = golden_dir / name;
    auto expected = util::read_file(path);
    if (!expected || *expected != built->data) {
      auto actual = path;
      actual += ".actual";
      (void)util::write_file_atomic(actual, built->data);
      ADD_FAILURE() << name << " differs from its golden file; wrote " << actual.string();
    }
    ++compared;
  }
  EXPECT_EQ(compared, 12);
}

}  // namespace
}  // namespace blindcast::compose
