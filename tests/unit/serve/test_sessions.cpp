#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>

#include "serve/sessions.hpp"

namespace blindcast::serve {
namespace {

TEST(Sessions, ASessionIsFoundByItsCookieUntilItEnds) {
  Sessions s;
  const auto made = s.create("0123456789abcdef", "ops-alice");
  EXPECT_GE(made.cookie.size(), 40u);
  EXPECT_NE(made.cookie, made.csrf);
  const auto found = s.find(made.cookie);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->name, "ops-alice");
  EXPECT_EQ(found->key_id, "0123456789abcdef");
  EXPECT_EQ(found->csrf, made.csrf);
  EXPECT_FALSE(s.find(made.csrf));  // the token is not a cookie
  EXPECT_FALSE(s.find(made.cookie + "x"));
  EXPECT_FALSE(s.find(""));
  s.end(made.cookie);
  EXPECT_FALSE(s.find(made.cookie));
}

TEST(Sessions, IdleAndOldSessionsExpire) {
  Sessions idle(std::chrono::seconds(1), std::chrono::hours(1));
  const auto a = idle.create("k", "a");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_FALSE(idle.find(a.cookie));

  Sessions old(std::chrono::hours(1), std::chrono::seconds(1));
  const auto b = old.create("k", "b");
  for (int i = 0; i < 5; ++i) {  // in use all along, it still ends at its lifetime
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    (void)old.find(b.cookie);
  }
  EXPECT_FALSE(old.find(b.cookie));
}

TEST(Sessions, EveryCookieIsDifferent) {
  Sessions s;
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) EXPECT_TRUE(seen.insert(s.create("k", "n").cookie).second);
}

TEST(Sessions, FailedSignInsAreThrottledPerAddress) {
  Sessions s;
  for (int i = 0; i < Sessions::k_max_failures; ++i) {
    EXPECT_TRUE(s.sign_in_allowed("192.0.2.7"));
    s.sign_in_failed("192.0.2.7");
  }
  EXPECT_FALSE(s.sign_in_allowed("192.0.2.7"));
  EXPECT_TRUE(s.sign_in_allowed("192.0.2.8"));
}

TEST(Sessions, CookieHeaderParsing) {
  EXPECT_EQ(cookie_value("a=1; bc_session=xyz; b=2", "bc_session"), "xyz");
  EXPECT_EQ(cookie_value("bc_session=xyz", "bc_session"), "xyz");
  EXPECT_EQ(cookie_value("xbc_session=1; bc_sessionx=2", "bc_session"), "");
  EXPECT_EQ(cookie_value("", "bc_session"), "");
  EXPECT_EQ(cookie_value(";;=;bc_session", "bc_session"), "");
}

}  // namespace
}  // namespace blindcast::serve
