#include <gtest/gtest.h>

#include "bounce/verp.hpp"

namespace blindcast::bounce {
namespace {

constexpr std::string_view k_secret = "a-secret-of-at-least-16-bytes-9f3c";

TEST(Verp, CampaignTokenNamesTheRecipientAndFitsALocalPart) {
  VerpKey key(k_secret);
  for (const std::int64_t id : {std::int64_t{1}, std::int64_t{127}, std::int64_t{128}, std::int64_t{9'999'999'999}}) {
    const auto token = key.campaign_token("index-change-2026-11", id);
    EXPECT_LE(std::string("bounce+").size() + token.size(), 64U) << token;
    const auto s = key.open(token);
    ASSERT_TRUE(s.has_value()) << token;
    EXPECT_EQ(s->kind, TokenSubject::Kind::k_campaign);
    EXPECT_EQ(s->recipient_id, id);
    EXPECT_EQ(s->campaign_tag, campaign_tag("index-change-2026-11"));
  }
}

TEST(Verp, MessageTokenRoundTrips) {
  VerpKey key(k_secret);
  const std::string id = "msg_0123456789abcdef01234567";
  const auto s = key.open(key.message_token(id));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->kind, TokenSubject::Kind::k_message);
  EXPECT_EQ(s->message_id, id);
  EXPECT_EQ(key.message_token("msg_short"), "");
  EXPECT_EQ(key.message_token("msg_0123456789abcdef0123456z"), "");
}

TEST(Verp, MtasThatChangeTheCaseOfLocalPartsDoNotBreakTokens) {
  VerpKey key(k_secret);
  std::string token = key.campaign_token("c", 42);
  for (char& c : token) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ASSERT_TRUE(key.open(token).has_value());
  EXPECT_EQ(token_of_address("BOUNCE+" + token + "@Bounces.Example.com"),
            key.campaign_token("c", 42));
}

TEST(Verp, ForgedAlteredTruncatedOrForeignTokensNameNobody) {
  VerpKey key(k_secret);
  VerpKey other("another-secret-of-16-bytes-or-more");
  const std::string token = key.campaign_token("index-change-2026-11", 4242);
  // Every single-character change, anywhere.
  for (std::size_t i = 0; i < token.size(); ++i) {
    std::string t = token;
    t[i] = t[i] == 'a' ? 'b' : 'a';
    EXPECT_FALSE(key.open(t).has_value()) << i;
  }
  EXPECT_FALSE(key.open(token.substr(0, token.size() - 1)).has_value());
  EXPECT_FALSE(key.open(token + "a").has_value());
  EXPECT_FALSE(key.open("").has_value());
  EXPECT_FALSE(key.open("not base32!").has_value());
  EXPECT_FALSE(other.open(token).has_value());
  // Another recipient's id with this token's MAC.
  const std::string next = key.campaign_token("index-change-2026-11", 4243);
  EXPECT_FALSE(key.open(next.substr(0, 20) + token.substr(20)).has_value());
  // peek_token reads without verifying (to choose the key), never more.
  ASSERT_TRUE(peek_token(token).has_value());
  EXPECT_EQ(peek_token(token)->recipient_id, 4242);
}

TEST(Verp, AddressesThatAreNotReturnPaths) {
  EXPECT_EQ(token_of_address("alice@example.com"), "");
  EXPECT_EQ(token_of_address("bounce+@example.com"), "");
  EXPECT_EQ(token_of_address("bounce+abc!@example.com"), "");
  EXPECT_EQ(token_of_address("bounce+abc"), "");
  EXPECT_EQ(return_path("abc", "bounces.example.com"), "bounce+abc@bounces.example.com");
}

}  // namespace
}  // namespace blindcast::bounce
