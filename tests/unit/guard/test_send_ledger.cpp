#include <gtest/gtest.h>

#include <sys/stat.h>

#include "guard/send_ledger.hpp"
#include "test_support.hpp"

namespace blindcast::guard {
namespace {

std::vector<std::uint64_t> keys(int from, int to) {
  std::vector<std::uint64_t> out;
  for (int i = from; i < to; ++i) out.push_back(SendLedger::key("user" + std::to_string(i) + "@example.com"));
  return out;
}

std::unique_ptr<SendLedger> open(const std::filesystem::path& p, LedgerLimits limits = {}) {
  std::string error;
  auto l = SendLedger::open(p, limits, error);
  EXPECT_NE(l, nullptr) << error;
  return l;
}

constexpr std::int64_t k_now = 1795392000;

TEST(SendLedger, FirstMessagesPassAndTheFileIsPrivate) {
  testing::TempDir dir;
  const auto path = dir.path() / "ledger";
  auto l = open(path, {10, 0});
  std::string error;
  EXPECT_FALSE(l->admit(keys(0, 500), k_now, error).has_value());
  EXPECT_TRUE(error.empty()) << error;
  EXPECT_EQ(l->second_messages(), 0U);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  EXPECT_EQ(st.st_size, 500 * 16);
}

TEST(SendLedger, ResendAfterACrashFitsTheWindowButNotMore) {
  testing::TempDir dir;
  const auto path = dir.path() / "ledger";
  std::string error;
  open(path, {40, 0})->admit(keys(0, 100), k_now, error);
  // A new run (a resume): 40 recipients again is what a crash explains.
  auto resumed = open(path, {40, 0});
  EXPECT_FALSE(resumed->admit(keys(60, 100), k_now, error).has_value());
  EXPECT_EQ(resumed->second_messages(), 40U);
  EXPECT_FALSE(resumed->admit(keys(100, 200), k_now, error).has_value()) << "first messages never count";
  std::size_t which = 99;
  const auto v = resumed->admit(keys(0, 1), k_now, error, &which);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->rule, "limit: second messages");
  EXPECT_EQ(which, 0U);
  EXPECT_EQ(resumed->halted(), "limit: second messages");
}

// The second messages a run may send are what a crash can leave possibly
// delivered, which can be far fewer than the window admitted at once.
TEST(SendLedger, ResendsAreTheirOwnLimitBesideTheWindow) {
  testing::TempDir dir;
  const auto path = dir.path() / "ledger";
  std::string error;
  open(path, {1000, 0, 40})->admit(keys(0, 500), k_now, error);
  auto resumed = open(path, {1000, 0, 40});
  EXPECT_FALSE(resumed->admit(keys(0, 40), k_now, error).has_value()) << "40 possibly delivered, sent again";
  const auto v = resumed->admit(keys(40, 41), k_now, error);
  ASSERT_TRUE(v.has_value()) << "the window (1000) does not widen it";
  EXPECT_EQ(v->rule, "limit: second messages");
}

// The table is made for the campaign's recipients; more fit too, and
// what was counted before it grew still counts.
TEST(SendLedger, MoreRecipientsThanExpectedStillCount) {
  testing::TempDir dir;
  const auto path = dir.path() / "ledger";
  LedgerLimits limits{5000, 0, 5000, 100};
  auto l = open(path, limits);
  std::string error;
  for (int from = 0; from < 20'000; from += 1000) {
    ASSERT_FALSE(l->admit(keys(from, from + 1000), k_now + from / 1000, error).has_value());
  }
  EXPECT_EQ(l->second_messages(), 0U) << "20,000 different recipients";
  ASSERT_FALSE(l->admit(keys(0, 10), k_now + 30, error).has_value());
  EXPECT_EQ(l->second_messages(), 10U);
  const auto v = l->admit(keys(5, 6), k_now + 31, error);
  ASSERT_TRUE(v.has_value()) << "a third message to a recipient counted before the table grew";
  EXPECT_EQ(v->rule, "limit: third message");
  // Another process reading the file counts the same.
  l->clear_halt(k_now + 32, error);
  auto other = open(path, limits);
  EXPECT_TRUE(other->admit(keys(7, 8), k_now + 33, error).has_value());
}

TEST(SendLedger, AThirdMessageTripsAtOnce) {
  testing::TempDir dir;
  const auto path = dir.path() / "ledger";
  std::string error;
  open(path)->admit(keys(0, 10), k_now, error);
  open(path)->admit(keys(5, 6), k_now, error);
  std::size_t which = 99;
  const auto v = open(path)->admit(keys(3, 8), k_now, error, &which);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->rule, "limit: third message");
  EXPECT_EQ(which, 2U) << "user5 is the third element of user3..user7";
}

TEST(SendLedger, ARepeatedKeyInOneGroupCounts) {
  testing::TempDir dir;
  std::vector<std::uint64_t> k = keys(0, 1);
  k.push_back(k[0]);
  k.push_back(k[0]);
  std::string error;
  const auto v = open(dir.path() / "ledger")->admit(k, k_now, error);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->rule, "limit: third message");
}

TEST(SendLedger, ReleasedMessagesDoNotCount) {
  testing::TempDir dir;
  const auto path = dir.path() / "ledger";
  auto l = open(path, {0, 0});
  std::string error;
  for (int attempt = 0; attempt < 5; ++attempt) {  // deferred four times, then delivered
    ASSERT_FALSE(l->admit(keys(0, 50), k_now + attempt, error).has_value()) << "attempt " << attempt;
    if (attempt < 4) l->release(keys(0, 50), k_now + attempt, error);
  }
  EXPECT_EQ(l->second_messages(), 0U);
}

TEST(SendLedger, TwoSendersOnOneFileSeeEachOtherAndBothStop) {
  testing::TempDir dir;
  const auto path = dir.path() / "ledger";
  auto a = open(path, {100, 0});
  auto b = open(path, {100, 0});  // another process, its own --state
  std::string error;
  ASSERT_FALSE(a->admit(keys(0, 100), k_now, error).has_value());
  ASSERT_FALSE(b->admit(keys(0, 100), k_now, error).has_value()) << "one window of seconds is allowed";
  ASSERT_FALSE(a->admit(keys(100, 200), k_now, error).has_value());
  const auto v = b->admit(keys(100, 101), k_now, error);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->rule, "limit: second messages");
  const auto va = a->admit(keys(200, 201), k_now, error);
  ASSERT_TRUE(va.has_value()) << "the other sender stops too";
  EXPECT_NE(va->detail.find("another sender"), std::string::npos);

  a->clear_halt(k_now, error);
  EXPECT_TRUE(b->halted().empty());
  EXPECT_FALSE(open(path, {100, 0})->admit(keys(500, 501), k_now, error).has_value());
}

TEST(SendLedger, RateOverTenSecondsPlusOneWindow) {
  testing::TempDir dir;
  auto l = open(dir.path() / "ledger", {50, 100});  // 100/s: 1,000 in 10 s, +50
  std::string error;
  for (int s = 0; s < 10; ++s) {
    ASSERT_FALSE(l->admit(keys(s * 100, s * 100 + 100), k_now + s, error).has_value()) << "second " << s;
  }
  EXPECT_FALSE(l->admit(keys(1000, 1050), k_now + 9, error).has_value());
  const auto v = l->admit(keys(1050, 1051), k_now + 9, error);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->rule, "limit: rate");
}

TEST(SendLedger, RateWindowSlides) {
  testing::TempDir dir;
  auto l = open(dir.path() / "ledger", {0, 10});
  std::string error;
  for (int s = 0; s < 60; ++s) {
    ASSERT_FALSE(l->admit(keys(s * 10, s * 10 + 10), k_now + s, error).has_value()) << "second " << s;
  }
}

}  // namespace
}  // namespace blindcast::guard
