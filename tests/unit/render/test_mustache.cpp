#include <gtest/gtest.h>

#include <map>

#include "render/mustache.hpp"

namespace blindcast::render {
namespace {

std::string render(const std::string& src, const std::map<std::string, std::string>& values, bool html = false) {
  auto t = MustacheTemplate::compile(src);
  EXPECT_TRUE(t.has_value()) << src << ": " << (t ? "" : t.error().message);
  if (!t) return "";
  std::string out;
  t->render(out, [&](std::uint32_t i) -> std::string_view {
    auto it = values.find(t->variables()[i]);
    return it == values.end() ? std::string_view() : std::string_view(it->second);
  }, html);
  return out;
}

TEST(Mustache, RendersTable) {
  const std::map<std::string, std::string> v = {{"name", "A & <B>"}, {"empty", ""}, {"yes", "1"}};
  struct {
    const char* src;
    bool html;
    const char* out;
  } cases[] = {
      {"Hello {{name}}!", false, "Hello A & <B>!"},
      {"Hello {{name}}!", true, "Hello A &amp; &lt;B&gt;!"},
      {"Hello {{{name}}}!", true, "Hello A & <B>!"},
      {"Hello {{& name}}!", true, "Hello A & <B>!"},
      {"{{ name }}", false, "A & <B>"},
      {"a{{! comment }}b", false, "ab"},
      {"{{#yes}}shown{{/yes}}", false, "shown"},
      {"{{#empty}}hidden{{/empty}}", false, ""},
      {"{{^empty}}shown{{/empty}}", false, "shown"},
      {"{{^yes}}hidden{{/yes}}", false, ""},
      {"x\n{{#yes}}\nin\n{{/yes}}\ny\n", false, "x\nin\ny\n"},
      {"x\n  {{#empty}}  \nin\n{{/empty}}\ny\n", false, "x\ny\n"},
      {"x\n{{! standalone comment }}\ny", false, "x\ny"},
      {"{{#yes}}{{#empty}}no{{/empty}}ok{{/yes}}", false, "ok"},
      {"{{missing}}|", false, "|"},
      {"'\"", true, "'\""},
      {"{{name}}", false, "A & <B>"},
      {"no tags at all", false, "no tags at all"},
      {"{ {not a tag} }", false, "{ {not a tag} }"},
  };
  for (const auto& c : cases) EXPECT_EQ(render(c.src, v, c.html), c.out) << c.src;
}

TEST(Mustache, EscapesQuotesInHtml) {
  EXPECT_EQ(render("{{v}}", {{"v", "\"it's\""}}, true), "&quot;it&#39;s&quot;");
}

TEST(Mustache, ErrorsCarryLines) {
  struct {
    const char* src;
    long line;
    const char* part;
  } cases[] = {
      {"line1\n{{name", 2, "never closed"},
      {"{{#a}}\n\n{{/b}}", 3, "opened on line 1"},
      {"a\n{{/a}}", 2, "never opened"},
      {"a\n\n{{#open}}", 3, "never closed"},
      {"{{> partial}}", 1, "partials"},
      {"{{=<% %>=}}", 1, "delimiters"},
      {"x\n{{bad name}}", 2, "invalid variable"},
      {"{{}}", 1, "invalid variable"},
  };
  for (const auto& c : cases) {
    auto t = MustacheTemplate::compile(c.src);
    ASSERT_FALSE(t.has_value()) << c.src;
    EXPECT_EQ(t.error().line, c.line) << c.src;
    EXPECT_NE(t.error().message.find(c.part), std::string::npos) << t.error().message;
  }
}

TEST(Mustache, VariablesListedWithFirstLine) {
  auto t = MustacheTemplate::compile("a\n{{x}}\n{{t.key}} {{x}}");
  ASSERT_TRUE(t.has_value());
  ASSERT_EQ(t->variables().size(), 2U);
  EXPECT_EQ(t->variables()[1], "t.key");
  EXPECT_EQ(t->variable_line(0), 2);
  EXPECT_EQ(t->variable_line(1), 3);
}

}  // namespace
}  // namespace blindcast::render
