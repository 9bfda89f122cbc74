#include <gtest/gtest.h>

#include <set>

#include "audience/audience_loader.hpp"
#include "mail/address.hpp"
#include "test_support.hpp"

namespace blindcast::audience {
namespace {

struct Loaded {
  std::vector<AudienceRow> rows;
  std::vector<Rejection> rejections;
  std::vector<std::pair<std::int64_t, std::int64_t>> duplicates;
  LoadStats stats;
};

Loaded load(const std::string& csv, std::set<std::string> header_columns = {}, bool find_duplicates = true) {
  testing::TempDir dir;
  const auto path = dir.write("audience.csv", csv);
  Loaded out;
  LoadOptions o;
  o.header_columns = std::move(header_columns);
  o.find_duplicates = find_duplicates;
  o.on_reject = [&](const Rejection& r) { out.rejections.push_back(r); };
  o.on_duplicate = [&](std::int64_t l, std::int64_t f) { out.duplicates.emplace_back(l, f); };
  auto loader = AudienceLoader::open(path, o);
  EXPECT_TRUE(loader.has_value()) << (loader ? "" : loader.error().message);
  if (!loader) return out;
  AudienceRow r;
  while (loader->next(r)) out.rows.push_back(r);
  out.stats = loader->stats();
  return out;
}

TEST(AudienceLoader, ACallerThatDropsDuplicatesItselfGetsThemAll) {
  const std::string csv =
      "email,name\n"
      "zoe.mueller@example.de,Zoë\n"         // 2
      "Zoe.Mueller@EXAMPLE.DE,Zoë again\n"   // 3: the same address
      "li.wei@example.com.cn,李伟\n";          // 4
  const auto got = load(csv, {}, false);
  ASSERT_EQ(got.rows.size(), 3U);  // passed on: the store keeps the first (line 2)
  EXPECT_EQ(got.rows[1].line, 3);
  EXPECT_EQ(mail::dedup_key_of(got.rows[1].email), mail::dedup_key_of(got.rows[0].email));  // the store's key
  EXPECT_TRUE(got.duplicates.empty());
  EXPECT_EQ(got.stats.duplicates, 0);
}

TEST(AudienceLoader, RejectsBadRowsAndKeepsTheRest) {
  const std::string csv =
      "Email,Name,Locale,Note\n"
      "alice@example.com,Alice,en,ok\n"              // 2
      "not-an-address,Bad,en,x\n"                     // 3
      "bob@example.com,\"Bob\r\nBcc: x@y.com\",en,x\n"  // 4-5 header injection in name
      "carol@example.com,Carol,de,\"multi\nline note\"\n"  // 6-7: body-only column may hold LF
      "dave@example.com,Dave\xff,en,x\n"              // 8 invalid UTF-8
      "ALICE@EXAMPLE.COM,Alice again,en,x\n"          // 9 duplicate of 2
      "erin@example.com,Erin,en\n"                    // 10 too few fields
      "frank@bücher.example,Frank,de,x\n"             // 11 IDN
      "\"gina@example.com\",Gina,,\"x\"\n";            // 12
  const auto got = load(csv);
  ASSERT_EQ(got.rows.size(), 4U);
  EXPECT_EQ(got.rows[0].email, "alice@example.com");
  EXPECT_EQ(got.rows[1].email, "carol@example.com");
  EXPECT_EQ(got.rows[1].line, 6);
  EXPECT_EQ(got.rows[2].email, "frank@xn--bcher-kva.example");
  EXPECT_EQ(got.rows[2].line, 11);
  ASSERT_FALSE(got.rows[2].fields.empty());
  EXPECT_EQ(got.rows[2].fields[0], "frank@xn--bcher-kva.example");
  EXPECT_EQ(got.rows[3].email, "gina@example.com");
  EXPECT_EQ(got.rows[3].locale, "");
  ASSERT_EQ(got.rejections.size(), 4U);
  EXPECT_EQ(got.rejections[0].line, 3);
  EXPECT_NE(got.rejections[0].reason.find("invalid email"), std::string::npos);
  EXPECT_EQ(got.rejections[1].line, 4);
  EXPECT_NE(got.rejections[1].reason.find("header injection"), std::string::npos);
  EXPECT_EQ(got.rejections[2].line, 8);
  EXPECT_NE(got.rejections[2].reason.find("UTF-8"), std::string::npos);
  EXPECT_EQ(got.rejections[3].line, 10);
  EXPECT_NE(got.rejections[3].reason.find("3 fields"), std::string::npos);
  ASSERT_EQ(got.duplicates.size(), 1U);
  EXPECT_EQ(got.duplicates[0], std::make_pair(std::int64_t{9}, std::int64_t{2}));
  EXPECT_EQ(got.stats.accepted, 4);
  EXPECT_EQ(got.stats.rejected, 4);
  EXPECT_EQ(got.stats.duplicates, 1);
}

TEST(AudienceLoader, NamesHaveALengthLimit) {
  const std::string longest(k_max_name, 'N');
  const std::string csv = "email,name,note\n"
                          "a@example.com," + longest + ",x\n"            // 2: at the limit
                          "b@example.com," + longest + "N,x\n"           // 3: one over, in a header
                          "c@example.com,C," + std::string(5000, 'n') + "\n";  // 4: long, not the name
  const auto got = load(csv);
  ASSERT_EQ(got.rows.size(), 2U);
  EXPECT_EQ(got.rows[0].line, 2);
  EXPECT_EQ(got.rows[1].line, 4);
  ASSERT_EQ(got.rejections.size(), 1U);
  EXPECT_EQ(got.rejections[0].line, 3);
  EXPECT_NE(got.rejections[0].reason.find("'name' is 257 bytes"), std::string::npos) << got.rejections[0].reason;
}

TEST(AudienceLoader, ColumnsThatReachAHeaderRejectLineBreaks) {
  const auto got = load("email,ticket\na@example.com,\"T-1\nBcc: x@example.com\"\n", {"ticket"});
  EXPECT_EQ(got.rows.size(), 0U);
  ASSERT_EQ(got.rejections.size(), 1U);
  EXPECT_NE(got.rejections[0].reason.find("'ticket'"), std::string::npos);
  const auto body_only = load("email,ticket\na@example.com,\"T-1\nmore\"\n");
  EXPECT_EQ(body_only.rows.size(), 1U);
}

TEST(AudienceLoader, NulAnywhereIsRejected) {
  const auto got = load(std::string("email,note\na@example.com,x\0y\n", 29));
  EXPECT_EQ(got.rows.size(), 0U);
  ASSERT_EQ(got.rejections.size(), 1U);
  EXPECT_NE(got.rejections[0].reason.find("NUL"), std::string::npos);
}

TEST(AudienceLoader, HeaderErrorsNameTheFileAndFix) {
  testing::TempDir dir;
  struct {
    const char* csv;
    const char* part;
  } cases[] = {{"", "empty"},
               {"name,locale\nx,y\n", "no 'email' column"},
               {"email,email\n", "appears twice"},
               {"email,first name\n", "column 2"}};
  for (const auto& c : cases) {
    const auto path = dir.write("audience.csv", c.csv);
    auto loader = AudienceLoader::open(path, {});
    ASSERT_FALSE(loader.has_value()) << c.csv;
    EXPECT_NE(loader.error().message.find("audience.csv"), std::string::npos);
    EXPECT_NE(loader.error().message.find(c.part), std::string::npos) << loader.error().message;
  }
}

TEST(AudienceLoader, MissingFileIsAnError) {
  auto loader = AudienceLoader::open("/nonexistent/audience.csv", {});
  ASSERT_FALSE(loader.has_value());
  EXPECT_NE(loader.error().message.find("/nonexistent/audience.csv"), std::string::npos);
}

}  // namespace
}  // namespace blindcast::audience
