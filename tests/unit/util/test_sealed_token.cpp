#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "util/sealed_token.hpp"

namespace blindcast::util {
namespace {

TEST(SealedToken, RoundTripsAndIsStable) {
  const SealKey key("0123456789abcdef-unsubscribe");
  for (const std::string& value : std::vector<std::string>{"index-change-2026-11\nalice@example.org",
                                                           "password-reset\nzoë@bücher.de",
                                                           std::string("x\n") + std::string(400, 'a')}) {
    const std::string token = key.seal(value);
    ASSERT_TRUE(token.starts_with("u1")) << token;
    EXPECT_EQ(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), std::string::npos);
    EXPECT_EQ(key.seal(value), token);  // one value, one token
    EXPECT_EQ(key.open(token), value);
    EXPECT_EQ(token.find("alice"), std::string::npos);
  }
}

TEST(SealedToken, RefusesEveryAlteredForgedOrForeignToken) {
  const SealKey key("0123456789abcdef-unsubscribe");
  const SealKey other("another-key-0123456789abcdef");
  const std::string token = key.seal("campaign\nbob@example.net");
  EXPECT_FALSE(other.open(token));
  // Every single-character change anywhere in the token.
  for (std::size_t i = 0; i < token.size(); ++i) {
    for (const char c : {'A', 'z', '0', '-', '_'}) {
      if (token[i] == c) continue;
      std::string bad = token;
      bad[i] = c;
      EXPECT_FALSE(key.open(bad)) << i;
    }
  }
  for (const std::string& bad : std::vector<std::string>{std::string(), std::string("u1"), token.substr(0, token.size() - 1),
                                token + "A", "u2" + token.substr(2), token.substr(2), std::string("u1====")}) {
    EXPECT_FALSE(key.open(bad)) << bad;
  }
  std::set<std::string> tokens;
  for (int i = 0; i < 200; ++i) tokens.insert(key.seal("c\nuser" + std::to_string(i) + "@example.com"));
  EXPECT_EQ(tokens.size(), 200U);
}

TEST(Base64UrlDecode, Table) {
  EXPECT_EQ(base64url_decode(""), "");
  EXPECT_EQ(base64url_decode("Zm9v"), "foo");
  EXPECT_EQ(base64url_decode("Zm9vYg"), "foob");
  EXPECT_EQ(base64url_decode("_-8"), "\xff\xef");
  EXPECT_FALSE(base64url_decode("Zm9vY"));
  EXPECT_FALSE(base64url_decode("Zm9v+"));
  EXPECT_FALSE(base64url_decode("Zm=v"));
}

}  // namespace
}  // namespace blindcast::util
