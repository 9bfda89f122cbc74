#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "campaign/example.hpp"
#include "check/lint.hpp"
#include "test_support.hpp"
#include "util/file.hpp"

namespace blindcast::check {
namespace {

class LintTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(campaign::write_example_campaign(dir.path())); }
  void replace(const std::string& rel, const std::string& from, const std::string& to) {
    auto text = util::read_file(dir.path() / rel);
    ASSERT_TRUE(text.has_value());
    const auto pos = text->find(from);
    ASSERT_NE(pos, std::string::npos) << from;
    text->replace(pos, from.size(), to);
    dir.write(rel, *text);
  }
  void append(const std::string& rel, const std::string& more) {
    auto text = util::read_file(dir.path() / rel);
    dir.write(rel, *text + more);
  }
  // True when some error reads "FILE:LINE: error: ...PART...".
  bool has_error(const LintReport& r, const std::string& file, long line, const std::string& part) {
    for (const auto& d : r.diags) {
      if (d.severity == util::Severity::k_error && d.file == file && d.line == line &&
          d.str().find(part) != std::string::npos) {
        return true;
      }
    }
    std::string all;
    for (const auto& d : r.diags) all += d.str() + "\n";
    ADD_FAILURE() << "no error " << file << ":" << line << " '" << part << "' in:\n" << all;
    return false;
  }
  testing::TempDir dir;
};

TEST_F(LintTest, ExampleCampaignIsClean) {
  const auto r = lint_campaign(dir.path(), {});
  EXPECT_EQ(util::error_count(r.diags), 0U) << (r.diags.empty() ? "" : r.diags.front().str());
  EXPECT_EQ(r.stats.accepted, 12);
  EXPECT_EQ(r.rendered, 12);
  EXPECT_EQ(r.guard_violations, 0);
  EXPECT_EQ(r.content_hash.size(), 64U);
}

// d= and s= end up in the DKIM-Signature field and in a DNS name: a space or
// ';' would make every signature unverifiable.
TEST_F(LintTest, DkimDomainAndSelectorMustBeDnsNames) {
  const auto text = util::read_file(dir.path() / "campaign.toml");
  ASSERT_TRUE(text.has_value());
  const auto base = static_cast<long>(std::count(text->begin(), text->end(), '\n'));
  append("campaign.toml", "\n[dkim]\ndomain = \"exa mple.com\"\nselector = \"s1; x\"\nkey_file = \"secrets/k.pem\"\n");
  auto r = lint_campaign(dir.path(), {});
  EXPECT_TRUE(has_error(r, "campaign.toml", base + 3, "not a domain name"));
  EXPECT_TRUE(has_error(r, "campaign.toml", base + 4, "'s1; x' is not a DNS name"));

  replace("campaign.toml", "exa mple.com", "Mail.Example.com");
  replace("campaign.toml", "s1; x", "s-2026.a_b");
  r = lint_campaign(dir.path(), {});
  for (const auto& d : r.diags) {
    EXPECT_EQ(d.str().find("DNS name"), std::string::npos) << d.str();
    EXPECT_EQ(d.str().find("not a domain name"), std::string::npos) << d.str();
  }
}

TEST_F(LintTest, InlineDkimKeyNamesTheKeyFileSetting) {
  append("campaign.toml", "\n[dkim]\ndomain = \"example.com\"\nselector = \"s1\"\nprivate_key = \"MC4CAQAwBQYDK2VwBCIEI\"\n");
  const auto r = lint_campaign(dir.path(), {});
  bool found = false;
  for (const auto& d : r.diags) {
    found = found || d.str().find("'dkim.private_key' holds a secret inline; put it in a file under secrets/ (mode "
                                  "0600) and name it with 'dkim.key_file'") != std::string::npos;
    EXPECT_EQ(d.str().find("MC4CAQAwBQYDK2VwBCIEI"), std::string::npos) << d.str();
  }
  EXPECT_TRUE(found);
}

TEST_F(LintTest, ListUnsubscribeWithBothUrlsAndValuesThatCannotGoInAHeader) {
  replace("campaign.toml", "list_unsubscribe = \"mailto:unsubscribe@example.com?subject=unsubscribe-{{campaign_id}}\"",
          "list_unsubscribe = [\"https://example.com/u/{{ticket}}\", \"mailto:u@example.com?subject={{name}}\"]");
  const auto r = lint_campaign(dir.path(), {});
  // "Alice Smith" has a space: that row cannot be sent with this header.
  EXPECT_TRUE(has_error(r, "audience.csv", 2, "list_unsubscribe renders to a value with spaces"));
  EXPECT_LT(r.rendered, r.stats.accepted);
}

TEST_F(LintTest, TwentyThousandRowsAllLocalesNoFalsePositives) {
  ASSERT_TRUE(campaign::write_synthetic_audience(dir.path(), 20000, false));
  const auto r = lint_campaign(dir.path(), {});
  EXPECT_EQ(util::error_count(r.diags), 0U) << (r.diags.empty() ? "" : r.diags.front().str());
  EXPECT_EQ(r.rendered, 20000);
  EXPECT_EQ(r.guard_violations, 0);
  EXPECT_EQ(r.locales.size(), 5U);
}

TEST_F(LintTest, TemplateSyntaxError) {
  replace("templates/body.txt", "{{/ticket}}", "{{/tickets}}");
  EXPECT_TRUE(has_error(lint_campaign(dir.path(), {}), "templates/body.txt", 10, "closes section 'ticket'"));
}

TEST_F(LintTest, UnknownVariable) {
  dir.write("templates/subject.txt", "{{t.subject}} for {{nickname}}\n");
  EXPECT_TRUE(has_error(lint_campaign(dir.path(), {}), "templates/subject.txt", 1, "unknown variable 'nickname'"));
}

TEST_F(LintTest, MissingCatalogKey) {
  append("templates/body.html", "<p>{{t.footer}}</p>\n");
  EXPECT_TRUE(has_error(lint_campaign(dir.path(), {}), "templates/body.html", 12, "catalog key 'footer' is missing"));
}

TEST_F(LintTest, KeyMissingOnlyInDefaultIsFoundThroughFallback) {
  // de has the key; rows with locale en fall back to nothing -> error for 'en'.
  append("locales/de.toml", "only_de = \"nur deutsch\"\n");
  append("templates/body.txt", "{{t.only_de}}\n");
  const auto r = lint_campaign(dir.path(), {});
  EXPECT_TRUE(has_error(r, "templates/body.txt", 15, "for locales en, (none), ar, ar-EG, en-GB"));
  for (const auto& d : r.diags) EXPECT_EQ(d.message.find(" de,"), std::string::npos) << d.str();
}

TEST_F(LintTest, InvalidMessageFormat) {
  replace("locales/de.toml", "ticket = \"Ihr offenes Support-Ticket {ticket} bleibt offen.\"",
          "ticket = \"Ihr offenes Support-Ticket {ticket bleibt offen.\"");
  EXPECT_TRUE(has_error(lint_campaign(dir.path(), {}), "locales/de.toml", 5, "invalid MessageFormat"));
}

TEST_F(LintTest, MessageArgumentThatIsNotAColumn) {
  replace("locales/en.toml", "Hello {name},", "Hello {nick},");
  EXPECT_TRUE(has_error(lint_campaign(dir.path(), {}), "locales/en.toml", 2, "argument 'nick'"));
}

TEST_F(LintTest, InlineSecretAndBadSettings) {
  replace("campaign.toml", "url = \"maildir:out/maildir\"", "url = \"maildir:out/maildir\"\npassword = \"hunter2\"");
  replace("campaign.toml", "reply_to = \"support@example.com\"", "reply_to = \"not an address\"");
  const auto r = lint_campaign(dir.path(), {});
  EXPECT_TRUE(has_error(r, "campaign.toml", 11, "holds a secret inline"));
  EXPECT_TRUE(has_error(r, "campaign.toml", 11, "name it with 'transport.password_file'"));
  EXPECT_TRUE(has_error(r, "campaign.toml", 4, "'reply_to' is not a valid mailbox"));
  for (const auto& d : r.diags) EXPECT_EQ(d.str().find("hunter2"), std::string::npos);
}

TEST_F(LintTest, RowThatCannotRenderIsAnError) {
  dir.write("audience.csv", "email,name,locale,assets,effective_date,ticket\n"
                            "a@example.org,A,en,many,2026-12-01,\n");
  EXPECT_TRUE(has_error(lint_campaign(dir.path(), {}), "audience.csv", 2, "needs a number"));
}

TEST_F(LintTest, GuardFindsLeakFromADataColumn) {
  dir.write("audience.csv", "email,name,locale,assets,effective_date,ticket\n"
                            "a@example.org,A,en,1,2026-12-01,\n"
                            "b@example.org,B,en,1,2026-12-01,referred by a@example.org\n");
  const auto r = lint_campaign(dir.path(), {});
  EXPECT_EQ(r.guard_violations, 1);
  EXPECT_TRUE(has_error(r, "audience.csv", 3, "privacy guard: invariant 3"));
}

TEST_F(LintTest, SampleChecksAboutNRows) {
  ASSERT_TRUE(campaign::write_synthetic_audience(dir.path(), 5000, false));
  LintOptions o;
  o.sample = 100;
  const auto r = lint_campaign(dir.path(), o);
  EXPECT_GE(r.rendered, 100);
  EXPECT_LE(r.rendered, 101);
}

}  // namespace
}  // namespace blindcast::check
