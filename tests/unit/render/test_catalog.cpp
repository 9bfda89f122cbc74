#include <gtest/gtest.h>

#include "render/catalog.hpp"
#include "test_support.hpp"

namespace blindcast::render {
namespace {

class CatalogTest : public ::testing::Test {
 protected:
  testing::TempDir dir;
  util::Diagnostics diags;

  Catalogs load(const std::string& def = "en") { return Catalogs::load(dir.path(), def, diags); }
  std::string format(const Catalogs& c, const std::string& locale, const std::string& key,
                     const std::vector<std::string_view>& values) {
    const auto* m = c.find(locale, key);
    EXPECT_NE(m, nullptr) << locale << " " << key;
    if (m == nullptr) return "";
    auto r = m->format(values);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error());
    return r.value_or("");
  }
};

TEST_F(CatalogTest, PluralSelectNumberDate) {
  dir.write("locales/en.toml",
            "items = \"{n, plural, =0 {none} one {# item} other {# items}}\"\n"
            "who = \"{g, select, f {her} m {his} other {their}} account\"\n"
            "amount = \"{x, number}\"\n"
            "day = \"{d, date, long}\"\n");
  dir.write("locales/ar.toml", "items = \"{n, plural, zero {صفر} one {واحد} two {اثنان} few {# قليلة} many {# كثيرة} other {# أخرى}}\"\n");
  const auto c = load();
  ASSERT_TRUE(diags.empty()) << diags.front().str();
  const auto* m = c.find("en", "items");
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(m->args().size(), 1U);
  EXPECT_EQ(m->args()[0].kind, ArgKind::k_number);
  EXPECT_EQ(format(c, "en", "items", {"0"}), "none");
  EXPECT_EQ(format(c, "en", "items", {"1"}), "1 item");
  EXPECT_EQ(format(c, "en", "items", {" 12 "}), "12 items");
  EXPECT_EQ(format(c, "en", "who", {"f"}), "her account");
  EXPECT_EQ(format(c, "en", "who", {"x"}), "their account");
  EXPECT_EQ(format(c, "en", "amount", {"1234567.5"}), "1,234,567.5");
  EXPECT_EQ(format(c, "en", "day", {"2026-12-01"}), "December 1, 2026");
  EXPECT_EQ(format(c, "en", "day", {"2026-12-01T23:30:00Z"}), "December 1, 2026");
  EXPECT_EQ(format(c, "ar", "items", {"2"}), "اثنان");
  EXPECT_EQ(format(c, "ar", "items", {"3"}), "٣ قليلة");
}

TEST_F(CatalogTest, RememberedResultsMatchFreshOnesAndNeverMixArguments) {
  dir.write("locales/en.toml",
            "pair = \"[{a}|{b}]\"\n"
            "day = \"{d, date, long}: {n, plural, one {# item} other {# items}}\"\n");
  const auto c = load();
  ASSERT_TRUE(diags.empty()) << diags.front().str();
  // Argument lists that a plain concatenation would confuse.
  EXPECT_EQ(format(c, "en", "pair", {"a", "bc"}), "[a|bc]");
  EXPECT_EQ(format(c, "en", "pair", {"ab", "c"}), "[ab|c]");
  EXPECT_EQ(format(c, "en", "pair", {"a", "bc"}), "[a|bc]");
  EXPECT_EQ(format(c, "en", "pair", {"", ""}), "[|]");
  // The same values again and again.
  for (int i = 0; i < 300; ++i) {
    const std::string n = std::to_string(i % 3 == 0 ? 1 : i);
    const std::string want = "December 1, 2026: " + n + (n == "1" ? " item" : " items");
    ASSERT_EQ(format(c, "en", "day", {"2026-12-01", n}), want) << i;
  }
  // Past the memo's limit of distinct argument lists, and back.
  for (int i = 0; i < 5000; ++i) {
    const std::string v = std::to_string(i);
    ASSERT_EQ(format(c, "en", "pair", {v, "x"}), "[" + v + "|x]") << i;
  }
  EXPECT_EQ(format(c, "en", "pair", {"ab", "c"}), "[ab|c]");
  // A bad value is an error every time, never a remembered result.
  const auto* m = c.find("en", "day");
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(m->format({"not a date", "1"}).has_value());
  EXPECT_FALSE(m->format({"not a date", "1"}).has_value());
}

TEST_F(CatalogTest, FallbackChain) {
  dir.write("locales/en.toml", "a = \"en a\"\nb = \"en b\"\nc = \"en c\"\n");
  dir.write("locales/pt.toml", "a = \"pt a\"\nb = \"pt b\"\n");
  dir.write("locales/pt-BR.toml", "a = \"br a\"\n");
  const auto c = load();
  ASSERT_TRUE(diags.empty());
  EXPECT_EQ(format(c, "pt-BR", "a", {}), "br a");
  EXPECT_EQ(format(c, "pt_br", "b", {}), "pt b");
  EXPECT_EQ(format(c, "pt-BR", "c", {}), "en c");
  EXPECT_EQ(format(c, "pt-PT", "a", {}), "pt a");
  EXPECT_EQ(format(c, "xx-invalid!", "a", {}), "en a");
  EXPECT_EQ(format(c, "", "b", {}), "en b");
  EXPECT_EQ(c.find("de", "missing"), nullptr);
}

TEST_F(CatalogTest, ErrorsNameFileAndLine) {
  dir.write("locales/en.toml", "ok = \"fine\"\nbad = \"{n, plural, one {x}\"\nnum = \"{0} items\"\nnotstr = 5\n");
  dir.write("locales/de.toml", "broken = \n");
  dir.write("locales/not_a_tag!.toml", "x = \"y\"\n");
  load();
  auto has = [&](const std::string& file, long line, const std::string& part) {
    for (const auto& d : diags) {
      if (d.file == file && d.line == line && d.message.find(part) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("locales/en.toml", 2, "invalid MessageFormat")) << diags.size();
  EXPECT_TRUE(has("locales/en.toml", 3, "numbered argument"));
  EXPECT_TRUE(has("locales/en.toml", 4, "must be a string"));
  EXPECT_TRUE(has("locales/de.toml", 1, ""));
  EXPECT_TRUE(has("locales/not_a_tag!.toml", 0, "BCP 47"));
}

TEST_F(CatalogTest, NumberArgumentRejectsText) {
  dir.write("locales/en.toml", "items = \"{n, plural, one {# item} other {# items}}\"\nday = \"{d, date}\"\n");
  const auto c = load();
  auto r = c.find("en", "items")->format({"many"});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("needs a number"), std::string::npos);
  auto d = c.find("en", "day")->format({"yesterday"});
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().find("2026-11-22"), std::string::npos);
}

TEST_F(CatalogTest, MissingDefaultCatalogIsReported) {
  dir.write("locales/de.toml", "a = \"x\"\n");
  load("en");
  ASSERT_FALSE(diags.empty());
  EXPECT_NE(diags.back().message.find("default_locale 'en' has no catalog"), std::string::npos);
}

TEST(Locale, Canonical) {
  EXPECT_EQ(canonical_locale("pt_br"), "pt-BR");
  EXPECT_EQ(canonical_locale("EN"), "en");
  EXPECT_EQ(canonical_locale("zh-hant-tw"), "zh-Hant-TW");
  EXPECT_EQ(canonical_locale(""), "");
  EXPECT_EQ(canonical_locale("@@"), "");
}

}  // namespace
}  // namespace blindcast::render
