#include <gtest/gtest.h>

#include "store/sqlite_org_list.hpp"
#include "store/state_store.hpp"
#include "test_support.hpp"

namespace blindcast::store {
namespace {

BounceEvent soft(const std::string& address, const std::string& ref, const std::string& reason, std::int64_t at) {
  BounceEvent e;
  e.at = at;
  e.kind = "bounce";
  e.address = address;
  e.scope = "spring-sale";
  e.ref = ref;
  e.lane = "yahoo";
  e.status = "4.2.2";
  e.reason = reason;
  e.fingerprint = "report-" + ref + "-" + std::to_string(at);
  return e;
}

TEST(OrgList, ASuppressionFromOneCampaignStopsTheNextThatSharesTheStore) {
  testing::TempDir dir;
  const auto shared = (dir.path() / "org.db").string();
  {
    auto a = open_sqlite_store(shared);
    ASSERT_TRUE(a.has_value());
    ASSERT_TRUE((*a)->org_list().suppress({"josé.garcía@correo.example.es", "hard bounce: user-unknown 5.1.1", "all",
                                           "campaign-a", 0}).value());
  }
  // Campaign B keeps its own file and attaches the shared one.
  auto b = open_sqlite_store((dir.path() / "b.db").string(), shared);
  ASSERT_TRUE(b.has_value());
  auto imp = (*b)->begin_import();
  ASSERT_TRUE((*imp)->add({2, "josé.garcía@correo.example.es", "josé.garcía@correo.example.es", "correo.example.es",
                           "default", "es", {"x"}}));
  ASSERT_TRUE((*imp)->add({3, "li.wei@example.com.cn", "li.wei@example.com.cn", "example.com.cn", "default", "zh",
                           {"y"}}));
  ASSERT_TRUE((*imp)->commit().has_value());
  EXPECT_EQ((*b)->apply_suppressions().value(), 1);
  // An address B suppresses (a 5xx at the relay) is on the shared list too.
  ASSERT_TRUE((*b)->add_suppressions(std::vector<std::string>{"li.wei@example.com.cn"}, "operator").has_value());
  auto list = open_sqlite_org_list(shared);
  ASSERT_TRUE(list.has_value());
  EXPECT_TRUE((*list)->suppression("li.wei@example.com.cn").value().has_value());
  // Removing it from the shared list lets B send to it again, and it stays removed.
  ASSERT_TRUE((*b)->remove_suppression("josé.garcía@correo.example.es").value());
  EXPECT_FALSE((*list)->suppression("josé.garcía@correo.example.es").value().has_value());
}

TEST(OrgList, AnUnsubscribeIsFoundAfterAHardBounceOfTheSameAddress) {
  testing::TempDir dir;
  auto list = open_sqlite_org_list((dir.path() / "org.db").string());
  ASSERT_TRUE(list.has_value());
  ASSERT_TRUE((*list)->suppress({"ana@example.com.br", "unsubscribed", "unsubscribe", "digest", 0}).value());
  EXPECT_EQ((*list)->suppression("ana@example.com.br").value()->category, "unsubscribe");
  ASSERT_TRUE((*list)->suppress({"ana@example.com.br", "complaint (abuse)", "all", "digest", 0}).value());
  EXPECT_EQ((*list)->suppression("ana@example.com.br").value()->category, "all");
  EXPECT_FALSE((*list)->suppress({"ana@example.com.br", "again", "all", "digest", 0}).value());
}

TEST(OrgList, ASameReportIsRecordedOnceAndSoftBouncesCountDistinctMessagesInTheWindow) {
  testing::TempDir dir;
  auto list = open_sqlite_org_list((dir.path() / "org.db").string());
  ASSERT_TRUE(list.has_value());
  auto& l = **list;
  const std::int64_t now = 1'800'000'000;
  EXPECT_TRUE(l.record_event(soft("kim@example.co.kr", "7", "mailbox-full", now)).value());
  EXPECT_FALSE(l.record_event(soft("kim@example.co.kr", "7", "mailbox-full", now)).value());  // the same report
  auto again = soft("kim@example.co.kr", "7", "mailbox-full", now + 60);  // another report, the same message
  EXPECT_TRUE(l.record_event(again).value());
  EXPECT_TRUE(l.record_event(soft("kim@example.co.kr", "8", "policy", now)).value());          // does not count
  EXPECT_TRUE(l.record_event(soft("kim@example.co.kr", "9", "expired", now - 40 * 86400)).value());  // too old
  EXPECT_EQ(l.soft_bounces("kim@example.co.kr", now - k_soft_bounce_window).value(), 1);
  EXPECT_TRUE(l.record_event(soft("kim@example.co.kr", "10", "expired", now - 86400)).value());
  EXPECT_EQ(l.soft_bounces("kim@example.co.kr", now - k_soft_bounce_window).value(), 2);
  const auto counts = l.event_counts("spring-sale", 0).value();
  ASSERT_EQ(counts.size(), 1U);
  EXPECT_EQ(counts[0].lane, "yahoo");
  EXPECT_EQ(counts[0].soft, 4);  // messages: two reports of message 7 count once
  EXPECT_EQ(counts[0].hard, 0);
}

TEST(OrgList, AListKeptByAStoreBeforeItWasSharedMovesToTheSharedOne) {
  testing::TempDir dir;
  const auto own = (dir.path() / "own.db").string();
  {
    auto s = open_sqlite_store(own);
    ASSERT_TRUE(s.has_value());
    ASSERT_TRUE((*s)->add_suppressions(std::vector<std::string>{"olu@example.com.ng"}, "imported").has_value());
  }
  const auto shared = (dir.path() / "org.db").string();
  {
    auto s = open_sqlite_store(own, shared);
    ASSERT_TRUE(s.has_value());
  }
  auto list = open_sqlite_org_list(shared);
  ASSERT_TRUE(list.has_value());
  EXPECT_TRUE((*list)->suppression("olu@example.com.ng").value().has_value());
  // Taken off the shared list, it does not come back from the store's own copy.
  ASSERT_TRUE((*list)->unsuppress("olu@example.com.ng").value());
  { auto s = open_sqlite_store(own, shared); ASSERT_TRUE(s.has_value()); }
  EXPECT_FALSE((*list)->suppression("olu@example.com.ng").value().has_value());
}

}  // namespace
}  // namespace blindcast::store
