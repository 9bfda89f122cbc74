// The reader's view: the assumptions the fast paths rest on, and its views.
#include <gtest/gtest.h>

#include <algorithm>

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include "guard/address_scan.hpp"
#include "guard/reader_view.hpp"

namespace blindcast::guard {
namespace {

// could_hold_address() skips text with no '@' unless it holds U+FF20 or
// U+FE6B: that is only right while these are the only characters whose NFKC
// form holds '@'. A new Unicode version that adds one fails here first.
TEST(ReaderView, OnlyTwoCharactersBecomeAnAtSign) {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* nfkc = icu::Normalizer2::getNFKCInstance(err);
  ASSERT_TRUE(U_SUCCESS(err));
  std::vector<UChar32> at_signs;
  for (UChar32 c = 0x80; c < 0x110000; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    const icu::UnicodeString n = nfkc->normalize(icu::UnicodeString(c), err);
    if (n.indexOf(static_cast<char16_t>('@')) >= 0) at_signs.push_back(c);
  }
  EXPECT_EQ(at_signs, (std::vector<UChar32>{0xFE6B, 0xFF20}));
  EXPECT_TRUE(could_hold_address("bob\xEF\xBC\xA0x.org"));   // U+FF20
  EXPECT_TRUE(could_hold_address("bob\xEF\xB9\xABx.org"));   // U+FE6B
  EXPECT_TRUE(could_hold_address("content: \"a\\40 b\""));   // a CSS escape
  EXPECT_FALSE(could_hold_address("Nothing here but text, 100 percent: plain."));
}

// Plain text holding markup is read a second time as HTML only when what
// stays of it outside the tags could hold an address.
TEST(ReaderView, MarkupRemovedIsReadWhenItCouldShowAnAddress) {
  EXPECT_FALSE(markup_removed_could_hold_address("Example Exchange <noreply@example.com>"));
  EXPECT_TRUE(markup_removed_could_hold_address("<1.2@example.com>"));  // not a tag: "<1" is text
  EXPECT_TRUE(markup_removed_could_hold_address("bob<wbr>@example.org"));          // the tag joins the parts
  EXPECT_TRUE(markup_removed_could_hold_address("bob<x@y>&#64;example.org"));       // a reference outside
  EXPECT_TRUE(markup_removed_could_hold_address("<img alt='bob@example.org'>"));   // alt text is shown
  EXPECT_TRUE(markup_removed_could_hold_address("<IMG ALT=bob@example.org>"));
  EXPECT_TRUE(markup_removed_could_hold_address("<![CDATA[bob@example.org]]>"));   // CDATA is text
  EXPECT_TRUE(markup_removed_could_hold_address("<a title=\"x>y\">bob@example.org"));  // '>' inside quotes
  EXPECT_TRUE(markup_removed_could_hold_address("<b>bob%40example.org</b>"));
  EXPECT_TRUE(markup_removed_could_hold_address("<unclosed bob@example.org"));
}

// A markup break escaped inside a quoted local part is no character of the
// address (found by the fuzz target: `"\<b>sm\b"@x` read as "|smb@x").
TEST(AddressScan, EscapedMarkupBreakInAQuotedLocalPart) {
  const std::string text = std::string("\"\\") + k_break + "sm\\b\"@example.org";
  int readings = 0;
  scan_addresses(text, [&](std::span<const Reading> rs, bool) {
    for (const auto& r : rs) {
      ++readings;
      EXPECT_EQ(r.address.find(k_break), std::string_view::npos) << r.address;
      EXPECT_NE(r.address.find('@'), std::string_view::npos) << r.address;
    }
    return true;
  });
  EXPECT_GT(readings, 0);
}

TEST(ReaderView, Views) {
  struct Case {
    const char* in;
    bool html;
    const char* text;      // expected `text`, k_break written as '|'
    const char* hidden;    // a line expected in `hidden` (or "")
    const char* visual;    // expected `visual` (or "")
  } cases[] = {
      {"john.<b>smith</b>@x.org", true, "john.smith@x.org", "", ""},
      {"bob<br>@x.org", true, "bob|@x.org", "", ""},
      {"bob<span hidden>..</span>@x.org", true, "bob|@x.org", "..", ""},
      {"bob<style> </style>@x.org", true, "bob|@x.org", "", ""},
      {"bob<img alt=\"@x.org\" src=\"cid:a\">", true, "bob|@x.org|", "@x.org", ""},
      {"<a href=\"mailto:bob&#9;@x.org\">w</a>", true, "w", "mailto:bob@x.org", ""},
      {"<!-->bob<b>@</b>x.org", true, "bob@x.org", "", ""},
      {"bob</3>@x.org", true, "bob|@x.org", "3", ""},
      {"<bob@x.org>", true, "", "bob@x.org", ""},
      {"\xEF\xBD\x82\xEF\xBD\x8F\xEF\xBD\x82\xEF\xBC\xA0x.org", false, "bob@x.org", "", ""},
      {"bob@x.org\xC2\xB2", false, "bob@x.org|2", "", ""},
      {"b\xE2\x80\x8Bob@x.org", false, "bob@x.org", "", ""},
      {"\xE2\x80\xAEgro.x@bob\xE2\x80\xAC", false, "gro.x@bob", "", "bob@x.org"},
      {"<bdo dir=rtl>gro.x@bob</bdo>", true, "gro.x@bob", "", "bob@x.org"},
      {"bob&#153;", false, "bob|TM", "", ""},  // 0x99 is windows-1252's TRADE MARK SIGN
  };
  for (const auto& c : cases) {
    ReaderView v;
    read_as_person(c.in, c.html, v);
    std::string text = v.text;
    std::replace(text.begin(), text.end(), k_break, '|');
    EXPECT_EQ(text, c.text) << c.in;
    if (*c.hidden != 0) {
      EXPECT_NE(("\n" + v.hidden).find(std::string("\n") + c.hidden + "\n"), std::string::npos)
          << c.in << " hidden: " << v.hidden;
    }
    std::string visual = v.visual;  // the reordered stretches, one per line
    if (!visual.empty() && visual.back() == '\n') visual.pop_back();
    std::replace(visual.begin(), visual.end(), k_break, '|');
    EXPECT_EQ(visual, c.visual) << c.in;
  }
}

}  // namespace
}  // namespace blindcast::guard
