#include <gtest/gtest.h>

#include <optional>
#include <string_view>

#include "delivery/lane_shaper.hpp"
#include "delivery/transport.hpp"

namespace blindcast::delivery {
namespace {

using namespace std::chrono_literals;
using Clock = LaneShaper::Clock;

std::vector<LaneDefaults> lanes() {
  return {{"slow", {"slow.example"}, {}, 10, 2, 5, 100}, {"fast", {"fast.example"}, {}, 1000, 8, 0, 100}};
}

// The status of one lane, if the shaper reports it.
std::optional<LaneStatus> status_of(const LaneShaper& s, Clock::time_point now, std::string_view lane) {
  for (auto& st : s.status(now, 0)) {
    if (st.name == lane) return st;
  }
  return std::nullopt;
}

TEST(LaneShaper, RateAndBurstHold) {
  const auto t0 = Clock::now();
  LaneShaper s(lanes(), 60, t0);
  int sent = 0;
  // Simulate 10 s in 1 ms steps with instant completions.
  for (int ms = 0; ms <= 10000; ++ms) {
    const auto now = t0 + std::chrono::milliseconds(ms);
    while (s.try_acquire("slow", now)) {
      ++sent;
      s.release("slow");
    }
  }
  EXPECT_NEAR(sent, 5 + 100, 2);  // the burst, then 10/s
}

TEST(LaneShaper, InProgressCapAndIndependentLanes) {
  const auto t0 = Clock::now();
  LaneShaper s(lanes(), 60, t0);
  EXPECT_TRUE(s.try_acquire("slow", t0));
  EXPECT_TRUE(s.try_acquire("slow", t0));
  EXPECT_FALSE(s.try_acquire("slow", t0)) << "two connections at most";
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(s.try_acquire("fast", t0)) << "a blocked lane does not block another";
  EXPECT_TRUE(s.try_acquire("unshaped", t0));
  s.release("slow");
  EXPECT_TRUE(s.try_acquire("slow", t0));
}

TEST(LaneShaper, WaitFor) {
  const auto t0 = Clock::now();
  LaneShaper s(lanes(), 60, t0);
  EXPECT_DOUBLE_EQ(s.wait_for("slow", 0, t0), 0);
  EXPECT_DOUBLE_EQ(s.wait_for("slow", 4, t0), 0);
  EXPECT_NEAR(s.wait_for("slow", 24, t0), 2.0, 1e-9);  // 20 past the burst at 10/s
  EXPECT_DOUBLE_EQ(s.wait_for("unshaped", 1000, t0), 0);
}

TEST(LaneShaper, ThrottleHalvesThenRecoversAfterQuiet) {
  const auto t0 = Clock::now();
  LaneShaper s(lanes(), 5, t0);
  auto line = s.throttled("slow", t0 + 2s);
  ASSERT_TRUE(line.has_value());
  EXPECT_NE(line->find("600/min -> 300/min"), std::string::npos) << *line;
  EXPECT_FALSE(s.throttled("slow", t0 + 2500ms).has_value()) << "one cut per second";
  EXPECT_TRUE(s.throttled("slow", t0 + 4s).has_value());
  auto slow = status_of(s, t0 + 4s, "slow");
  ASSERT_TRUE(slow.has_value());
  EXPECT_NEAR(slow->rate, 2.5, 1e-9);
  EXPECT_TRUE(s.recover(t0 + 8s).empty()) << "not quiet long enough";
  auto up = s.recover(t0 + 9s);
  ASSERT_EQ(up.size(), 1U);
  EXPECT_NE(up[0].find("150/min -> 210/min"), std::string::npos) << up[0];
  for (int k = 2; k < 20; ++k) s.recover(t0 + std::chrono::seconds(9 + 5 * k));
  slow = status_of(s, t0 + 200s, "slow");
  ASSERT_TRUE(slow.has_value());
  EXPECT_NEAR(slow->rate, 10, 1e-9) << "back to the configured rate";
  for (int k = 0; k < 40; ++k) s.throttled("slow", t0 + std::chrono::seconds(300 + 2 * k));
  slow = status_of(s, t0 + 400s, "slow");
  ASSERT_TRUE(slow.has_value());
  EXPECT_NEAR(slow->rate, 0.5, 1e-9) << "floor: 5% of the configured rate";
}

}  // namespace
}  // namespace blindcast::delivery
