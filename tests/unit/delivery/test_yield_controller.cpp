#include <gtest/gtest.h>

#include "delivery/yield_controller.hpp"

namespace blindcast::delivery {
namespace {

using namespace std::chrono_literals;
using Clock = YieldController::Clock;

// Runs a campaign that starts `per_ms` messages every millisecond it may, for
// `ms` milliseconds from `t`; returns how many started. `started` counts on.
// Its queue holds more than it starts unless `per_ms` is 0 or `queued` false.
int run_campaign(YieldController& y, Clock::time_point& t, std::uint64_t& started, int ms, int per_ms,
                 bool queued = true, std::size_t urgent_in_flight = 0) {
  int n = 0;
  for (int i = 0; i < ms; ++i) {
    t += 1ms;
    for (int k = 0; k < per_ms && y.bulk_ready(t); ++k) {
      y.bulk_taken();
      ++started;
      ++n;
    }
    y.tick(t, started, queued && per_ms > 0, urgent_in_flight);
  }
  return n;
}

// 50 replies 20 ms apart, each taking `latency` (late ones cut the rate to its floor).
void replies(YieldController& y, Clock::time_point& t, std::chrono::microseconds latency) {
  for (int i = 0; i < 50; ++i) {
    t += 20ms;
    y.urgent_replied(t, latency);
  }
}

// A campaign at `per_ms` a millisecond for a second, then a transactional
// reply on time (the base) and 50 late ones: the limit at its floor.
void slow_down(YieldController& y, Clock::time_point& t, std::uint64_t& started, int per_ms = 5) {
  run_campaign(y, t, started, 1000, per_ms);
  y.urgent_replied(t, 1000us);
  replies(y, t, 9000us);
}

TEST(YieldController, NoTransactionalMailNoLimit) {
  YieldController y;
  auto t = Clock::now();
  std::uint64_t started = 0;
  EXPECT_EQ(run_campaign(y, t, started, 2000, 5), 10000);  // 5 a millisecond, every one let through
  EXPECT_FALSE(y.limiting());
  EXPECT_EQ(y.rate(), 0);
  EXPECT_NEAR(y.full_rate(), 5000, 100);  // measured while no limit applied
}

TEST(YieldController, LateTransactionalRepliesSlowTheCampaignDownToItsFloor) {
  YieldController y;
  auto t = Clock::now();
  std::uint64_t started = 0;
  run_campaign(y, t, started, 1000, 5);
  y.urgent_submitted(t);
  ASSERT_TRUE(y.limiting());
  EXPECT_NEAR(y.rate(), 2500, 50);  // the first limit starts at half the full speed
  y.urgent_replied(t, 1000us);       // the first reply sets the base: on time
  EXPECT_EQ(y.base_us(), 1000);
  EXPECT_EQ(y.target_us(), 4000);   // four times the base
  EXPECT_NEAR(y.rate(), 2600, 50);  // on time: 2% of the full speed more
  for (int i = 0; i < 10; ++i) y.urgent_replied(t, 1500us);
  EXPECT_NEAR(y.rate(), 3600, 50);
  const double before = y.rate();
  y.urgent_replied(t, 5000us);  // late: cut to three quarters
  EXPECT_NEAR(y.rate(), before * 0.75, 1);
  y.urgent_replied(t + 1ms, 5000us);  // within the spacing: the same stall, counted once
  EXPECT_NEAR(y.rate(), before * 0.75, 1);
  for (int i = 0; i < 100; ++i) {
    t += 20ms;
    y.urgent_replied(t, 5000us);
    y.tick(t, started, true, 0);
  }
  EXPECT_NEAR(y.rate(), 500, 10);  // the floor: a tenth of the full speed
  // The campaign goes on at that rate, no faster.
  const int n = run_campaign(y, t, started, 1000, 5);
  EXPECT_NEAR(n, 500, 5);
}

TEST(YieldController, OnTimeRepliesGiveTheSpeedBack) {
  YieldController y;
  auto t = Clock::now();
  std::uint64_t started = 0;
  slow_down(y, t, started);
  const double low = y.rate();
  ASSERT_LT(low, 1000);
  // Each reply within the target adds 2% of the full speed (100/s here).
  for (int i = 0; i < 10; ++i) {
    t += 20ms;
    y.urgent_replied(t, 1500us);
  }
  EXPECT_NEAR(y.rate(), low + 10 * 100, 20);
}

TEST(YieldController, LiftsTheLimitWhenTransactionalMailStops) {
  YieldController y;
  auto t = Clock::now();
  std::uint64_t started = 0;
  slow_down(y, t, started);
  ASSERT_TRUE(y.limiting());
  run_campaign(y, t, started, 2900, 5);  // slowed, no transactional message meanwhile
  EXPECT_TRUE(y.limiting());
  EXPECT_NEAR(y.full_rate(), 5000, 100);  // windows under the limit do not count
  for (int i = 0; i < 10; ++i) y.urgent_replied(t, 1500us);  // on time: 500 + 10 × 100
  const double found = y.rate();
  ASSERT_NEAR(found, 1500, 10);
  run_campaign(y, t, started, 3100, 5);  // 3 s since the last one
  EXPECT_FALSE(y.limiting());
  EXPECT_EQ(run_campaign(y, t, started, 1000, 5), 5000);
  // The next spell starts where this one ended ...
  y.urgent_submitted(t);
  EXPECT_TRUE(y.limiting());
  EXPECT_NEAR(y.rate(), found, 1);
  // ... unless that is long ago: then at half the full speed.
  run_campaign(y, t, started, 3100, 5);
  ASSERT_FALSE(y.limiting());
  t += 11min;
  run_campaign(y, t, started, 1000, 5);
  y.urgent_submitted(t);
  EXPECT_NEAR(y.rate(), 2500, 50);
}

TEST(YieldController, ALimitTheCampaignDoesNotReachDoesNotGrow) {
  YieldController y;
  auto t = Clock::now();
  std::uint64_t started = 0;
  run_campaign(y, t, started, 1000, 5);
  y.urgent_replied(t, 1000us);
  const double start = y.rate();
  // The campaign runs out of messages: nothing starts; a window later the
  // replies on time no longer raise the limit.
  run_campaign(y, t, started, 300, 0);
  y.urgent_replied(t, 1000us);
  const double idle = y.rate();
  for (int i = 0; i < 50; ++i) {
    t += 20ms;
    y.tick(t, started, true, 0);
    y.urgent_replied(t, 1000us);
  }
  EXPECT_NEAR(y.rate(), idle, 1);
  EXPECT_LT(idle, start + 20 * 100);
  // It has messages again and uses its allowance: on time, the limit climbs.
  run_campaign(y, t, started, 300, 5);
  for (int i = 0; i < 5; ++i) y.urgent_replied(t, 1000us);
  EXPECT_NEAR(y.rate(), idle + 5 * 100, 1);
}

TEST(YieldController, BaseDelayIsTheMinimumOfTheLastTenMinutes) {
  YieldController y;
  auto t = Clock::now();
  y.urgent_replied(t, 400us);
  y.urgent_replied(t, 900us);
  EXPECT_EQ(y.base_us(), 400);
  EXPECT_EQ(y.target_us(), 1600);
  t += 5min;
  y.urgent_replied(t, 700us);
  EXPECT_EQ(y.base_us(), 400);  // still within ten minutes
  t += 6min;
  y.urgent_replied(t, 800us);
  EXPECT_EQ(y.base_us(), 700);  // the 400 µs minute has gone
  t += 30min;                   // a long quiet spell forgets everything before it
  y.urgent_replied(t, 3000us);
  EXPECT_EQ(y.base_us(), 3000);
  EXPECT_EQ(y.target_us(), 12000);
}

TEST(YieldController, TargetHasAFloor) {
  YieldController y;
  const auto t = Clock::now();
  y.urgent_replied(t, 50us);
  EXPECT_EQ(y.target_us(), 500);  // four times 50 µs would call most replies late
}

TEST(YieldController, DisabledNeverLimits) {
  YieldSettings s;
  s.enabled = false;
  YieldController y(s);
  auto t = Clock::now();
  std::uint64_t started = 0;
  run_campaign(y, t, started, 500, 5);
  y.urgent_submitted(t);
  replies(y, t, 90000us);
  EXPECT_FALSE(y.limiting());
  EXPECT_EQ(run_campaign(y, t, started, 1000, 5), 5000);
}

TEST(YieldController, NextBulkSaysWhenTheNextTokenComes) {
  YieldController y;
  auto t = Clock::now();
  std::uint64_t started = 0;
  slow_down(y, t, started, 1);  // 1,000/s full speed
  ASSERT_NEAR(y.rate(), 100, 1);  // the floor: 10 ms a message
  while (y.bulk_ready(t)) y.bulk_taken();
  const auto next = y.next_bulk(t);
  EXPECT_GT(next, t);
  EXPECT_LE(next, t + 10ms + 1us);
  EXPECT_TRUE(y.bulk_ready(next + 1us));
}

}  // namespace
}  // namespace blindcast::delivery

namespace blindcast::delivery {
namespace {

TEST(YieldController, OnlyACampaignWithMoreToSendShowsItsFullSpeed) {
  YieldController y;
  auto t = Clock::now();
  std::uint64_t started = 0;
  run_campaign(y, t, started, 1000, 5);
  ASSERT_NEAR(y.full_rate(), 5000, 100);
  // Its last messages trickle out (nothing more queued): not its speed.
  run_campaign(y, t, started, 2000, 1, false);
  EXPECT_NEAR(y.full_rate(), 5000, 100);
  // The next campaign is slower on this machine: that is its speed.
  run_campaign(y, t, started, 2000, 2);
  EXPECT_NEAR(y.full_rate(), 2000, 100);
}

TEST(YieldController, UnderALimitAHigherSpeedStillCounts) {
  YieldController y;
  auto t = Clock::now();
  std::uint64_t started = 0;
  run_campaign(y, t, started, 1000, 1);  // 1,000/s while the relay was slow
  y.urgent_replied(t, 1000us);
  // On time: the limit climbs (500/s + 100 × 20/s), held at twice the full speed.
  for (int i = 0; i < 100; ++i) y.urgent_replied(t, 1000us);
  run_campaign(y, t, started, 1000, 3);
  EXPECT_TRUE(y.limiting());
  EXPECT_NEAR(y.full_rate(), 2000, 100);  // it did 2,000/s under a limit of 2,000/s
}

TEST(YieldController, HoldsWhileATransactionalMessageIsInFlight) {
  YieldController y;
  auto t = Clock::now();
  std::uint64_t started = 0;
  run_campaign(y, t, started, 1000, 5);
  y.urgent_submitted(t);
  // The relay takes 5 s to answer it: the campaign keeps yielding.
  run_campaign(y, t, started, 5000, 5, true, 1);
  EXPECT_TRUE(y.limiting());
  run_campaign(y, t, started, 10, 5, true, 0);  // answered (3 s since the last one long passed)
  EXPECT_FALSE(y.limiting());
  // One that never comes back holds it for a minute at most.
  y.urgent_submitted(t);
  run_campaign(y, t, started, 59000, 1, true, 1);
  EXPECT_TRUE(y.limiting());
  run_campaign(y, t, started, 1100, 1, true, 1);
  EXPECT_FALSE(y.limiting());
  EXPECT_EQ(y.spells(), 2U);
}

}  // namespace
}  // namespace blindcast::delivery
