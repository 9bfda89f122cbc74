// MessagePreparer with more workers than batches in order: a later, smaller
// batch finishes first, and take() must still hand batches out in the order
// they were submitted, each message built for its own row.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "audience/audience_loader.hpp"
#include "compose/audience_session.hpp"
#include "campaign/example.hpp"
#include "compose/guard_setup.hpp"
#include "compose/message_preparer.hpp"
#include "test_support.hpp"

namespace blindcast::compose {
namespace {

TEST(MessagePreparer, ManyWorkersHandBatchesOutInSubmittedOrder) {
  testing::TempDir dir;
  ASSERT_TRUE(campaign::write_example_campaign(dir.path()));
  ASSERT_TRUE(campaign::write_synthetic_audience(dir.path(), 2000, false));
  util::Diagnostics diags;
  auto campaign = campaign::load_campaign(dir.path(), diags);
  ASSERT_TRUE(campaign.has_value());
  auto session = open_audience(*campaign, diags, {});
  ASSERT_TRUE(session.has_value());
  std::vector<store::StoredRecipient> rows;
  auto index = std::make_shared<guard::AddressIndex>();
  audience::AudienceRow row;
  while (session->loader->next(row)) {
    index->add(row.email);
    rows.push_back({static_cast<std::int64_t>(rows.size()) + 1, row.line, row.email, row.locale, row.fields, 0, 0, ""});
  }
  ASSERT_EQ(rows.size(), 2000U);
  auto guard = CampaignGuard::create(*campaign, index, session->columns);
  ASSERT_TRUE(guard.has_value()) << guard.error().message;
  auto preparer = MessagePreparer::create(*campaign, std::make_shared<const CampaignGuard>(std::move(*guard)), 4);
  ASSERT_TRUE(preparer.has_value()) << preparer.error().message;

  // One large batch, then small ones that the other workers finish first.
  const std::size_t sizes[] = {1200, 100, 100, 100, 100, 100, 100, 100, 100};
  std::size_t at = 0;
  for (const std::size_t n : sizes) {
    (*preparer)->submit(std::vector<store::StoredRecipient>(rows.begin() + static_cast<long>(at),
                                                            rows.begin() + static_cast<long>(at + n)));
    at += n;
  }
  ASSERT_EQ((*preparer)->pending(), std::size(sizes));
  std::int64_t next_id = 1;
  for (const std::size_t n : sizes) {
    const auto batch = (*preparer)->take();
    ASSERT_EQ(batch.size(), n);
    for (const auto& m : batch) {
      ASSERT_EQ(m.id, next_id);
      const auto& r = rows[static_cast<std::size_t>(next_id - 1)];
      EXPECT_EQ(m.email, r.email);
      EXPECT_TRUE(m.render_error.empty()) << m.render_error;
      EXPECT_FALSE(m.violation.has_value());
      EXPECT_NE(m.data.find("\r\nTo: "), std::string::npos);
      EXPECT_NE(m.data.find(r.email), std::string::npos) << r.email;
      ++next_id;
    }
  }
  EXPECT_EQ((*preparer)->pending(), 0U);
}

}  // namespace
}  // namespace blindcast::compose
