#include <gtest/gtest.h>

#include "delivery/reply_policy.hpp"
#include "delivery/retry_schedule.hpp"

namespace blindcast::delivery {
namespace {

TEST(ReplyPolicy, Table) {
  struct {
    int code;
    const char* enhanced;
    const char* text;
    ReplyClass klass;
    bool throttling;
  } cases[] = {
      {250, "2.0.0", "OK queued", ReplyClass::k_sent, false},
      {550, "5.1.1", "no such user", ReplyClass::k_permanent, false},
      {554, "5.7.1", "rejected by policy", ReplyClass::k_permanent, false},
      {450, "4.2.1", "mailbox busy", ReplyClass::k_transient, false},
      {451, "4.3.0", "temporary local problem", ReplyClass::k_transient, false},
      {421, "4.7.0", "too many connections", ReplyClass::k_transient, true},
      {421, "", "Service not available", ReplyClass::k_transient, true},
      {451, "4.7.1", "greylisted", ReplyClass::k_transient, true},
      {421, "4.7.0", "[TSS04] Messages from 1.2.3.4 temporarily deferred due to unexpected volume", ReplyClass::k_transient, true},
      {451, "", "[TS01] Messages from 1.2.3.4 temporarily deferred", ReplyClass::k_transient, true},
      {451, "4.7.650", "The mail server has been temporarily rate limited (S3150)", ReplyClass::k_transient, true},
      {452, "", "Too many recipients received this hour", ReplyClass::k_transient, true},
      {450, "", "please slow down", ReplyClass::k_transient, true},
      {0, "", "connection lost", ReplyClass::k_transient, false},
  };
  for (const auto& c : cases) {
    const auto v = classify_reply(c.code, c.enhanced, c.text);
    EXPECT_EQ(v.klass, c.klass) << c.code << " " << c.text;
    EXPECT_EQ(v.throttling, c.throttling) << c.code << " " << c.text;
  }
}

TEST(RetrySchedule, StepsRepeatJitterAndGiveUp) {
  const RetryPolicy p{{60, 300, 1800, 7200}, 3 * 86400};
  const std::int64_t t0 = 1'800'000'000;
  for (int attempt = 1; attempt <= 6; ++attempt) {
    const std::int64_t base = p.steps_seconds[std::min<std::size_t>(static_cast<std::size_t>(attempt - 1), 3)];
    for (std::uint64_t salt = 0; salt < 50; ++salt) {
      const auto at = next_attempt_at(p, t0, attempt, t0, salt);
      ASSERT_TRUE(at.has_value());
      EXPECT_GE(*at - t0, base - base / 10 - 1) << attempt;
      EXPECT_LE(*at - t0, base + base / 10 + 1) << attempt;
    }
  }
  EXPECT_FALSE(next_attempt_at(p, t0 + 3 * 86400, 9, t0, 1).has_value()) << "past max_retry_age: give up";
  EXPECT_LE(*next_attempt_at(p, t0 + 3 * 86400 - 100, 9, t0, 1), t0 + 3 * 86400) << "last try at the limit";
}

}  // namespace
}  // namespace blindcast::delivery
