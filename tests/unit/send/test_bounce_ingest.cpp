#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>

#include "send/bounce_ingest.hpp"
#include "store/sqlite_org_list.hpp"
#include "test_support.hpp"

namespace blindcast::send {
namespace {

constexpr std::string_view k_secret = "the-service-bounce-key-3b9c1f0e77a2";

bounce::Report report(bounce::Type type, const std::string& address, const std::string& status, bool hard,
                      bounce::Reason reason) {
  bounce::Report r;
  r.type = type;
  r.recipients.push_back({address, status, "550", hard, reason, "diagnostic for " + address});
  return r;
}

class Ingest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto list = store::open_sqlite_org_list((m_dir.path() / "org.db").string());
    ASSERT_TRUE(list.has_value());
    m_list = std::move(*list);
    m_key = std::make_shared<const bounce::VerpKey>(k_secret);
    m_ingester = std::make_unique<BounceIngester>(
        *m_list, m_key, [this](std::string_view id) -> Result<std::optional<BounceIngester::MessageTarget>> {
          const auto it = m_messages.find(std::string(id));
          if (it == m_messages.end()) return std::optional<BounceIngester::MessageTarget>();
          return std::optional<BounceIngester::MessageTarget>(it->second);
        });
  }

  std::string message(const std::string& id, const std::string& to) {
    m_messages[id] = {to, "yahoo", "withdrawal-alert"};
    return m_key->message_token(id);
  }

  testing::TempDir m_dir;
  std::unique_ptr<store::OrgList> m_list;
  std::shared_ptr<const bounce::VerpKey> m_key;
  std::map<std::string, BounceIngester::MessageTarget> m_messages;
  std::unique_ptr<BounceIngester> m_ingester;
};

TEST_F(Ingest, TheTokensAddressIsSuppressedNeverTheOneTheReportNames) {
  const auto token = message("msg_00112233445566778899aabb", "Chloe.Martin@Yahoo.fr");
  // The holder of a genuine token names someone else in the report.
  auto r = m_ingester->apply(report(bounce::Type::k_bounce, "ceo@example.com", "5.1.1", true,
                                    bounce::Reason::k_user_unknown),
                             "raw-1", token);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, "suppressed");
  EXPECT_EQ(r->scope, "withdrawal-alert");
  EXPECT_TRUE(m_list->suppression("chloe.martin@yahoo.fr").value().has_value());
  EXPECT_FALSE(m_list->suppression("ceo@example.com").value().has_value());
  EXPECT_NE(m_list->suppression("chloe.martin@yahoo.fr").value()->reason.find("msg_00112233445566778899aabb"),
            std::string::npos);
}

TEST_F(Ingest, ThirdCountingSoftBounceOnDistinctMessagesTurnsHardPolicyOnesNever) {
  const std::string to = "kim.minjun@example.co.kr";
  for (int i = 0; i < 2; ++i) {
    const auto token = message(fmt::format("msg_{:024x}", i + 1), to);
    auto r = m_ingester->apply(report(bounce::Type::k_bounce, to, "5.2.2", false, bounce::Reason::k_mailbox_full),
                               "full-" + std::to_string(i), token);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->outcome, "counted");
  }
  // Blocks and DMARC failures are about the sender: never counted toward the address.
  for (int i = 0; i < 3; ++i) {
    const auto token = message(fmt::format("msg_{:024x}", i + 10), to);
    auto r = m_ingester->apply(report(bounce::Type::k_bounce, to, "5.7.1", false, bounce::Reason::k_blocked),
                               "blocked-" + std::to_string(i), token);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->outcome, "counted");
  }
  EXPECT_FALSE(m_list->suppression(to).value().has_value());
  // A second report of the same message does not count twice.
  const auto first = message(fmt::format("msg_{:024x}", 1), to);
  auto again = m_ingester->apply(report(bounce::Type::k_bounce, to, "4.2.2", false, bounce::Reason::k_mailbox_full),
                                 "full-0-later", first);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->outcome, "counted");
  EXPECT_FALSE(m_list->suppression(to).value().has_value());
  const auto third = message(fmt::format("msg_{:024x}", 3), to);
  auto r = m_ingester->apply(report(bounce::Type::k_bounce, to, "4.4.7", false, bounce::Reason::k_expired),
                             "expired", third);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, "suppressed");
  EXPECT_NE(m_list->suppression(to).value()->reason.find("3 soft bounces"), std::string::npos);
}

TEST_F(Ingest, ForgedMissingOrUnknownTokensAndNonBouncesChangeNothing) {
  const auto token = message("msg_aabbccddeeff001122334455", "ana.souza@example.com.br");
  std::string forged = token;
  forged.back() = forged.back() == 'a' ? 'b' : 'a';
  const auto hard = report(bounce::Type::k_bounce, "ana.souza@example.com.br", "5.1.1", true,
                           bounce::Reason::k_user_unknown);
  EXPECT_EQ(m_ingester->apply(hard, "r1", forged)->outcome, "refused");
  EXPECT_EQ(m_ingester->apply(hard, "r2", "")->outcome, "refused");
  bounce::VerpKey other("another-organisations-key-0000000");
  EXPECT_EQ(m_ingester->apply(hard, "r3", other.message_token("msg_aabbccddeeff001122334455"))->outcome, "refused");
  EXPECT_EQ(m_ingester->apply(hard, "r4", m_key->message_token("msg_000000000000000000000001"))->outcome, "refused");
  auto ooo = hard;
  ooo.type = bounce::Type::k_auto_reply;
  EXPECT_EQ(m_ingester->apply(ooo, "r5", token)->outcome, "ignored");
  EXPECT_FALSE(m_list->suppression("ana.souza@example.com.br").value().has_value());
  // The real one, twice.
  EXPECT_EQ(m_ingester->apply(hard, "r6", token)->outcome, "suppressed");
  EXPECT_EQ(m_ingester->apply(hard, "r6", token)->outcome, "duplicate");
  const auto counts = m_list->event_counts("withdrawal-alert", 0).value();
  ASSERT_EQ(counts.size(), 1U);
  EXPECT_EQ(counts[0].hard, 1);
}

TEST_F(Ingest, AComplaintIsHardWhateverItsRecipientSays) {
  const auto token = message("msg_0000000000000000000000ff", "li.wei@example.com.cn");
  bounce::Report r;
  r.type = bounce::Type::k_complaint;
  r.feedback_type = "abuse";
  r.token = token;
  r.recipients.push_back({"li.wei@example.com.cn", "", "", false, bounce::Reason::k_spam_detected, ""});
  auto out = m_ingester->apply(r, "arf");
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->outcome, "suppressed");
  const auto e = m_list->suppression("li.wei@example.com.cn").value();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->category, "all");
  EXPECT_EQ(m_list->event_counts("", 0).value().at(0).complaints, 1);
}

}  // namespace
}  // namespace blindcast::send
