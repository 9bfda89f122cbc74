#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "guard/privacy_guard.hpp"
#include "mail/encoding.hpp"
#include "util/base64.hpp"

namespace blindcast::guard {
namespace {

std::string b64(std::string_view s) {
  std::string out;
  mail::append_base64_lines(out, s);
  return out;
}
std::string b64_word(std::string_view s) {
  std::string out = "=?UTF-8?B?";
  util::append_base64(out, s);
  return out + "?=";
}

struct Msg {
  std::string to = "alice@example.com";
  std::string extra_headers;                  // full lines with CRLF
  std::string subject = "Monthly update";
  std::string body = "Hello,\r\nnothing to see.\r\n";
  std::string content_headers = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n";
  std::string from = "Example <noreply@example.com>";

  [[nodiscard]] std::string bytes() const {
    return "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject +
           "\r\nDate: Sun, 22 Nov 2026 12:00:00 +0000\r\nMessage-ID: <1.2@example.com>\r\n" + extra_headers +
           "MIME-Version: 1.0\r\n" + content_headers + "\r\n" + body;
  }
};

Msg with_body(std::string cte, std::string body, std::string type = "text/plain") {
  Msg m;
  m.content_headers = "Content-Type: " + type + "; charset=utf-8\r\nContent-Transfer-Encoding: " + cte + "\r\n";
  m.body = std::move(body);
  return m;
}

Msg multipart(std::string part1_headers, std::string part1, std::string part2_headers, std::string part2) {
  Msg m;
  m.content_headers = "Content-Type: multipart/alternative; boundary=\"=_b1\"\r\n";
  m.body = "--=_b1\r\n" + part1_headers + "\r\n" + part1 + "\r\n--=_b1\r\n" + part2_headers + "\r\n" + part2 +
           "\r\n--=_b1--\r\n";
  return m;
}

class GuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto idx = std::make_shared<AddressIndex>();
    for (const char* a : {"alice@example.com", "victim@example.org", "other.person@xn--bcher-kva.example",
                          "Mixed.Case@example.net", "support@example.com", "noreply@example.com"}) {
      idx->add(a);
    }
    for (int i = 0; i < 1000; ++i) idx->add("filler" + std::to_string(i) + "@example.com");
    GuardPolicy policy;
    policy.from_address = "noreply@example.com";
    policy.reply_to_address = "support@example.com";
    m_guard = std::make_unique<PrivacyGuard>(idx, policy);
    policy.strict = false;
    m_lenient = std::make_unique<PrivacyGuard>(idx, policy);
  }
  std::optional<Violation> check(const std::string& message, std::vector<std::string> rcpts = {"alice@example.com"}) {
    return m_guard->check(message, Envelope{"noreply@example.com", rcpts});
  }
  std::unique_ptr<PrivacyGuard> m_guard;    // strict mode (the default)
  std::unique_ptr<PrivacyGuard> m_lenient;  // strict mode off: the audience rule alone
};

struct Leak {
  const char* name;
  std::string message;
  int invariant;
  std::vector<std::string> rcpts = {"alice@example.com"};
};

TEST_F(GuardTest, PlantedLeaksAreAllBlocked) {
  const std::string plain = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n";
  const std::string html_qp = "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n";
  const std::string html_b64 = "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n";
  std::vector<Leak> leaks;
  auto add = [&](const char* name, const Msg& m, int inv) { leaks.push_back({name, m.bytes(), inv}); };
  Msg m;

  m = Msg{}; m.subject = "News for victim@example.org"; add("subject plain", m, 3);
  m = Msg{}; m.subject = b64_word("News for victim@example.org"); add("subject RFC 2047 B", m, 3);
  m = Msg{}; m.subject = "=?UTF-8?Q?News_for_victim=40example=2Eorg?="; add("subject RFC 2047 Q", m, 3);
  m = Msg{}; m.subject = b64_word("News for vic") + "\r\n " + b64_word("tim@example.org"); add("subject split encoded-words", m, 3);
  add("text 7bit", with_body("7bit", "Your referrer is victim@example.org\r\n"), 3);
  add("text quoted-printable", with_body("quoted-printable", "Referrer: victim=40example.org\r\n"), 3);
  add("text QP soft line break", with_body("quoted-printable", "Referrer: vic=\r\ntim@exam=\r\nple.org\r\n"), 3);
  add("text base64", with_body("base64", b64("Your referrer is victim@example.org\r\n")), 3);
  add("html link", with_body("7bit", "<a href=\"mailto:victim@example.org\">x</a>\r\n", "text/html"), 3);
  add("html decimal entities", with_body("7bit", "<p>victim&#64;example&#46;org</p>\r\n", "text/html"), 3);
  add("html hex entities", with_body("7bit", "<p>victim&#x40;example&#x2E;org</p>\r\n", "text/html"), 3);
  add("html named entities", with_body("7bit", "<p>victim&commat;example&period;org</p>\r\n", "text/html"), 3);
  add("percent-encoded link", with_body("7bit", "https://x.test/r?u=victim%40example.org\r\n"), 3);
  add("entity then percent", with_body("7bit", "<a href=\"https://x.test/?u=victim&#37;40example.org\">", "text/html"), 3);
  add("upper case", with_body("7bit", "VICTIM@EXAMPLE.ORG\r\n"), 3);
  add("mixed case", with_body("7bit", "Victim@Example.Org\r\n"), 3);
  add("mixed case audience entry", with_body("7bit", "mixed.case@EXAMPLE.NET\r\n"), 3);
  add("IDN U-label", with_body("7bit", "other.person@bücher.example\r\n"), 3);
  add("IDN upper U-label", with_body("7bit", "OTHER.PERSON@BÜCHER.EXAMPLE\r\n"), 3);
  add("IDN A-label", with_body("7bit", "other.person@xn--bcher-kva.example\r\n"), 3);
  add("html base64 part", multipart(plain, "clean text", html_b64, b64("<b>victim@example.org</b>")), 3);
  add("html quoted-printable part", multipart(plain, "clean", html_qp, "<a href=3D\"mailto:victim@example.org\">"), 3);
  {
    Msg n;
    n.content_headers = "Content-Type: multipart/mixed; boundary=outer\r\n";
    n.body = "--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\n" + plain +
             "\r\nclean\r\n--inner\r\n" + html_qp + "\r\nvictim=40example.org\r\n--inner--\r\n--outer--\r\n";
    add("nested multipart", n, 3);
  }
  m = Msg{}; m.extra_headers = "List-Unsubscribe: <https://x.test/u?e=victim%40example.org>\r\n"; add("list-unsubscribe", m, 3);
  m = Msg{}; m.to = "\"victim@example.org\" <alice@example.com>"; add("address in To display name", m, 3);
  m = Msg{}; m.to = b64_word("victim@example.org") + " <alice@example.com>"; add("encoded To display name", m, 3);
  add("followed by CJK text", with_body("base64", b64("victim@example.org様へ\r\n")), 3);
  add("in a query without encoding", with_body("7bit", "https://x.test/?u=victim@example.org&x=1\r\n"), 3);
  add("end of sentence", with_body("7bit", "Write to victim@example.org.\r\n"), 3);
  {
    Msg p = multipart("Content-Type: text/plain; name=\"" + b64_word("victim@example.org.txt") + "\"\r\n", "x", plain, "y");
    // A whole address is "victim@example.org.txt" (a domain is never read as a
    // prefix of a longer one: maria@yahoo.com is not maria@yahoo.com.br), so
    // the audience rule lets it pass; strict mode blocks it.
    add("part header parameter", p, 0);
  }
  m = Msg{}; m.to = "alice@example.com, victim@example.org"; add("second To mailbox", m, 2);
  m = Msg{}; m.to = "list: alice@example.com, victim@example.org;"; add("group in To", m, 2);
  m = Msg{}; m.extra_headers = "To: victim@example.org\r\n"; add("two To fields", m, 2);
  m = Msg{}; m.extra_headers = "Cc: nobody@example.net\r\n"; add("Cc field", m, 2);
  m = Msg{}; m.extra_headers = "Bcc: nobody@example.net\r\n"; add("Bcc field", m, 2);
  m = Msg{}; m.extra_headers = "Resent-To: nobody@example.net\r\n"; add("Resent-To field", m, 2);
  m = Msg{}; m.from = "Example <attacker@example.net>"; add("foreign From", m, 2);
  m = Msg{}; m.extra_headers = "Reply-To: someone@example.net\r\n"; add("foreign Reply-To", m, 2);
  m = Msg{}; m.extra_headers = "Sender: someone@example.net\r\n"; add("foreign Sender", m, 2);
  m = Msg{}; m.to = "bob@example.net"; add("To differs from envelope", m, 2);
  leaks.push_back({"two envelope recipients", Msg{}.bytes(), 1, {"alice@example.com", "victim@example.org"}});
  leaks.push_back({"no envelope recipient", Msg{}.bytes(), 1, {}});
  m = Msg{}; m.extra_headers = "X-Note: a\nb\r\n"; add("bare LF in header", m, 4);
  m = Msg{}; m.extra_headers = "X-Note: a\rb\r\n"; add("bare CR in header", m, 4);
  m = Msg{}; m.extra_headers = "X-Long: " + std::string(999 - 8, 'x') + "\r\n"; add("999-octet header line", m, 4);
  m = Msg{}; m.extra_headers = "not a header line\r\n"; add("malformed header line", m, 4);

  ASSERT_GE(leaks.size(), 30U);
  for (const auto& leak : leaks) {
    const auto v = check(leak.message, leak.rcpts);
    ASSERT_TRUE(v.has_value()) << "not blocked: " << leak.name;
    EXPECT_EQ(v->invariant, leak.invariant) << leak.name << ": " << v->describe(true);
    if (leak.invariant == 3) {
      const auto lenient = m_lenient->check(leak.message, Envelope{"noreply@example.com", leak.rcpts});
      ASSERT_TRUE(lenient.has_value()) << "the audience rule alone misses: " << leak.name;
      EXPECT_EQ(lenient->invariant, 3) << leak.name << ": " << lenient->describe(true);
    }
    EXPECT_EQ(v->describe().find("victim@"), std::string::npos) << "unmasked address printed: " << v->describe();
  }
}

TEST_F(GuardTest, CleanMessagesPass) {
  const std::vector<std::pair<const char*, Msg>> clean = {
      {"minimal", Msg{}},
      {"own address in body", with_body("7bit", "This was sent to alice@example.com.\r\n")},
      {"own address upper case", with_body("7bit", "ALICE@EXAMPLE.COM\r\n")},
      {"own address entity-encoded", with_body("7bit", "alice&#64;example.com", "text/html")},
      {"own address in display name form", [] { Msg m; m.to = "Alice Smith <alice@example.com>"; return m; }()},
      {"quoted display name with comma", [] { Msg m; m.to = "\"Smith, Alice\" <alice@example.com>"; return m; }()},
      {"encoded display name", [] { Msg m; m.to = "=?UTF-8?B?5bGx55Sw?= <alice@example.com>"; return m; }()},
      {"campaign reply-to", [] { Msg m; m.extra_headers = "Reply-To: support@example.com\r\n"; return m; }()},
      {"support address in body", with_body("7bit", "Questions? support@example.com\r\n")},
      {"CJK text", with_body("base64", b64("山田様、alice@example.com宛のお知らせです。\r\n"))},
  };
  for (const auto& [name, m] : clean) {
    const auto v = check(m.bytes());
    EXPECT_FALSE(v.has_value()) << name << ": " << v->describe(true);
  }
}

TEST_F(GuardTest, StrictModeBlocksAnAddressOutsideTheAudienceAndTheReviewedContent) {
  const Msg m = with_body("7bit", "stranger@example.net and 100% of 50@ offers\r\n");
  const auto v = check(m.bytes());
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->invariant, 0);
  EXPECT_EQ(v->rule, "strict mode");
  EXPECT_NE(v->describe().find("s***@e***.net"), std::string::npos) << v->describe();
  const std::string rcpt[] = {"alice@example.com"};
  EXPECT_FALSE(m_lenient->check(m.bytes(), Envelope{"noreply@example.com", rcpt}).has_value())
      << "not an audience address: only strict mode blocks it";
}

// A mail client decodes an encoded-word in its charset, even inside a quoted
// display name: ISO-2022-JP, UTF-16 and Shift_JIS spell the address too.
TEST_F(GuardTest, EncodedWordsAreReadInTheirCharset) {
  const char* names[] = {"=?ISO-2022-JP?B?dmljdGltGyRCIXcbKEJleGFtcGxlLm9yZw==?=",  // victim＠example.org
                         "=?UTF-16BE?B?AHYAaQBjAHQAaQBtAEAAZQB4AGEAbQBwAGwAZQAuAG8AcgBn?=",
                         "=?Shift_JIS?B?dmljdGltgZdleGFtcGxlLm9yZw==?=",
                         "=?iso-8859-1?Q?victim=40example=2Eorg?="};
  for (const char* name : names) {
    Msg m;
    m.to = std::string("\"") + name + "\" <alice@example.com>";
    const auto v = m_lenient->check(m.bytes(), Envelope{"noreply@example.com", std::vector<std::string>{"alice@example.com"}});
    ASSERT_TRUE(v.has_value()) << name;
    EXPECT_EQ(v->invariant, 3) << name << ": " << v->describe(true);
  }
}

// Found by a review of the guard's fast paths: each was read as clean.
TEST_F(GuardTest, FastPathsMissNothing) {
  const std::string html = "text/html";
  const std::pair<const char*, Msg> leaks[] = {
      // Reversed behind an override after a markup break: displayed "victim@example.org".
      {"bdo after the @", with_body("8bit", "Write to victim@<bdo dir=\"rtl\">gro.elpmaxe</bdo> today\r\n", html)},
      // The same in plain text, a full-width letter making the break.
      {"override with a full-width letter",
       with_body("8bit", "Write to victim@\u202Egro.elpma\uFF58e\u202C today\r\n")},
      // <xmp> shows its content as text: plain text read as HTML joins the parts.
      {"xmp in plain text", with_body("8bit", "Contact: <xmp><i victim@exam</xmp>ple.org\r\n")},
      // A data: URI whose scheme markup splits.
      {"data: split by a tag",
       with_body("8bit", "<p>see da<b></b>ta:text/plain;base64,dmljdGltQGV4YW1wbGUub3Jn</p>\r\n", html)},
  };
  for (const auto& [name, m] : leaks) {
    for (const auto* g : {m_guard.get(), m_lenient.get()}) {
      const auto v = g->check(m.bytes(), Envelope{"noreply@example.com", std::vector<std::string>{"alice@example.com"}});
      ASSERT_TRUE(v.has_value()) << name;
      EXPECT_EQ(v->invariant, 3) << name << ": " << v->describe(true);
    }
  }
}

// What strict mode finds in a message it finds in the reviewed content: the
// same reading, in every form a template may write an address.
TEST(CollectAddresses, ReadsReviewedContentAsMessagesAreRead) {
  const std::string forms[] = {
      "<a href=\"https://t.example/c?u=help%2540example.com\">help</a>",
      "<a href=\"data:text/vcard;base64,QkVHSU46VkNBUkQKRU1BSUw6aGVscEBleGFtcGxlLmNvbQpFTkQ6VkNBUkQ=\">card</a>",
      "<p>Write to help%40example.com</p>",
      "<p>\xE2\x80\xAEmoc.elpmaxe@pleh\xE2\x80\xAC</p>",
      "help&#64;example&period;com",
      "<style>.x::after{content:\"help\\40 example.com\"}</style>"};
  for (const auto& form : forms) {
    std::vector<std::string> found;
    collect_addresses(form, found);
    EXPECT_NE(std::find(found.begin(), found.end(), "help@example.com"), found.end()) << form;
  }
}

TEST_F(GuardTest, ViolationDescriptionMasksAddresses) {
  const auto v = check(with_body("7bit", "victim@example.org").bytes());
  ASSERT_TRUE(v.has_value());
  EXPECT_NE(v->describe().find("v***@e***.org"), std::string::npos) << v->describe();
  EXPECT_NE(v->describe(true).find("victim@example.org"), std::string::npos);
}

TEST(AddressIndex, AMillionAddressesReservedFitIn11MB) {
  AddressIndex idx;
  idx.reserve(1'000'000);
  for (int i = 0; i < 1'000'000; ++i) idx.add("user" + std::to_string(i) + "@example.com");
  EXPECT_EQ(idx.size(), 1'000'000U);
  EXPECT_LE(idx.memory_bytes(), 11U * 1000 * 1000);
  EXPECT_TRUE(idx.contains("USER999999@EXAMPLE.COM"));
  EXPECT_FALSE(idx.contains("user1000000@example.com"));
}

// Without a reservation the table grows as addresses come; every address
// added before a growth is found after it, in any case and in either form
// of an international domain, and look-alikes are not.
TEST(AddressIndex, GrowingKeepsEveryAddress) {
  const char* const locals[] = {"maria.garcia", "o'brien", "jean-luc.picard", "li.wei", "anna+news", "j.smith"};
  const char* const domains[] = {"correo.es", "example.co.uk", "bücher.example", "mail.example.com.br", "example.jp",
                                 "xn--bcher-kva.example"};
  std::vector<std::string> added;
  AddressIndex idx;
  for (int i = 0; i < 60'000; ++i) {
    added.push_back(fmt::format("{}{}@{}", locals[i % 6], i, domains[(i / 6) % 6]));
    idx.add(added.back());
  }
  EXPECT_EQ(idx.size(), added.size());
  EXPECT_LE(idx.memory_bytes(), 8 * (2 * 60'000 + 60'000 * 2 / 3 + 16));  // grown at most once past 3/4
  for (const auto& a : added) ASSERT_TRUE(idx.contains(a)) << a;
  EXPECT_TRUE(idx.contains("MARIA.GARCIA0@CORREO.ES"));
  EXPECT_TRUE(idx.contains("maria.garcia12@xn--bcher-kva.example"));  // 12: bücher.example
  EXPECT_FALSE(idx.contains("maria.garcia0@correo.es.example"));
  EXPECT_FALSE(idx.contains("maria.garcia60000@correo.es"));
}

// Text read without its combining marks is no longer what was written: what
// is decoded from it (percent-escapes) is held to the audience rule only. A
// recipient's own address written in NFD beside a percent-encoded copy of it
// is no strict-mode finding ("kai@bucher.example" was).
TEST(GuardStrict, WhatIsDecodedFromTheUnmarkedViewIsNotStrict) {
  auto idx = std::make_shared<AddressIndex>();
  idx->add("kai@bücher.example");
  idx->add("victim@example.org");
  GuardPolicy policy;
  policy.from_address = "noreply@example.com";
  policy.strict = true;
  const PrivacyGuard g(idx, policy);
  const std::string rcpt[] = {"kai@bücher.example"};
  Msg m = with_body("7bit", "kai@bu\u0308cher.example ; kai%40b%C3%BCcher.example\r\n");
  m.to = rcpt[0];
  const auto v = g.check(m.bytes(), Envelope{"noreply@example.com", rcpt});
  EXPECT_FALSE(v.has_value()) << v->describe(true);
  // The audience rule still reads that path: another member's address is found.
  m = with_body("7bit", "kai@bu\u0308cher.example ; victim%40example.org\r\n");
  m.to = rcpt[0];
  const auto leak = g.check(m.bytes(), Envelope{"noreply@example.com", rcpt});
  ASSERT_TRUE(leak.has_value());
  EXPECT_EQ(leak->invariant, 3);
}
}  // namespace
}  // namespace blindcast::guard
