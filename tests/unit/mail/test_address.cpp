#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string_view>
#include <vector>

#include "mail/address.hpp"

namespace blindcast::mail {
namespace {

struct Case {
  const char* input;
  const char* normalized;  // nullptr: must be rejected
  const char* reason_part = "";  // substring expected in the rejection reason
};

// Valid addresses and their one stored form.
const Case k_valid[] = {
    {"alice@example.com", "alice@example.com"},
    {"Alice@Example.COM", "Alice@example.com"},
    {"  bob@example.org  ", "bob@example.org"},
    {"first.last@example.com", "first.last@example.com"},
    {"first.middle.last@example.co.uk", "first.middle.last@example.co.uk"},
    {"user+tag@example.com", "user+tag@example.com"},
    {"user-name@example.com", "user-name@example.com"},
    {"user_name@example.com", "user_name@example.com"},
    {"x@example.com", "x@example.com"},
    {"1234567890@example.com", "1234567890@example.com"},
    {"!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~@example.com"},
    {"o'brien@example.ie", "o'brien@example.ie"},
    {"user@sub.domain.example.com", "user@sub.domain.example.com"},
    {"user@a-b.example", "user@a-b.example"},
    {"user@123.example", "user@123.example"},
    {"user@example.museum", "user@example.museum"},
    {"user@xn--bcher-kva.example", "user@xn--bcher-kva.example"},
    {"user@bücher.example", "user@xn--bcher-kva.example"},
    {"user@BÜCHER.example", "user@xn--bcher-kva.example"},
    {"user@müller.de", "user@xn--mller-kva.de"},
    {"user@例え.jp", "user@xn--r8jz45g.jp"},
    {"user@пример.рф", "user@xn--e1afmkfd.xn--p1ai"},
    {"user@xn--e1afmkfd.xn--p1ai", "user@xn--e1afmkfd.xn--p1ai"},
    {"user@مثال.إختبار", "user@xn--mgbh0fb.xn--kgbechtv"},
    {"user@faß.de", "user@xn--fa-hia.de"},
    {"\"john doe\"@example.com", "\"john doe\"@example.com"},
    {"\"john@doe\"@example.com", "\"john@doe\"@example.com"},
    {"\"a\\\"b\"@example.com", "\"a\\\"b\"@example.com"},
    {"\"\"@example.com", "\"\"@example.com"},
    {"\"a,b\"@example.com", "\"a,b\"@example.com"},
    {"user@example-with-hyphen.com", "user@example-with-hyphen.com"},
    {"u@e.io", "u@e.io"},
    {"a.b.c.d.e.f@example.com", "a.b.c.d.e.f@example.com"},
    // exactly 64 octets of local part
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.com",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.com"},
    // a 63-octet label
    {"u@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
     "u@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com"},
    {"USER@GMAIL.COM", "USER@gmail.com"},
    {"user@Gmail.Com", "user@gmail.com"},
    {"a+b+c@example.com", "a+b+c@example.com"},
    {"user%host@example.com", "user%host@example.com"},
    {"user=x@example.com", "user=x@example.com"},
    {"{curly}@example.com", "{curly}@example.com"},
};

// Invalid addresses and a part of the reason given.
const Case k_invalid[] = {
    {"", nullptr, "empty"},
    {"   ", nullptr, "empty"},
    {"plainaddress", nullptr, "missing '@'"},
    {"@example.com", nullptr, "empty local part"},
    {"user@", nullptr, "empty domain"},
    {"user@@example.com", nullptr, "character not allowed"},
    {"a@b@example.com", nullptr, "character not allowed"},
    {".user@example.com", nullptr, "starts or ends with a dot"},
    {"user.@example.com", nullptr, "starts or ends with a dot"},
    {"us..er@example.com", nullptr, "two dots"},
    {"us er@example.com", nullptr, "character not allowed"},
    {"user@exa mple.com", nullptr, "character not allowed"},
    {"user(comment)@example.com", nullptr, "character not allowed"},
    {"user@example", nullptr, "single label"},
    {"user@localhost", nullptr, "single label"},
    {"user@example.com.", nullptr, "ends with a dot"},
    {"user@.example.com", nullptr, "empty label"},
    {"user@example..com", nullptr, "empty label"},
    {"user@-example.com", nullptr, "hyphen"},
    {"user@example-.com", nullptr, "hyphen"},
    {"user@exa_mple.com", nullptr, "character not allowed"},
    {"user@example.123", nullptr, "numeric"},
    {"user@[127.0.0.1]", nullptr, "domain literals"},
    {"user@[IPv6:::1]", nullptr, "domain literals"},
    {"Joe <joe@example.com>", nullptr, "angle brackets"},
    {"<joe@example.com>", nullptr, "angle brackets"},
    {"a@example.com, b@example.com", nullptr, "comma"},
    {"a@example.com\r\nBcc: x@example.com", nullptr, "CR, LF or NUL"},
    {"a@example.com\nBcc: x@example.com", nullptr, "CR, LF or NUL"},
    {"a@exam\rple.com", nullptr, "CR, LF or NUL"},
    {"\"unterminated@example.com", nullptr, "quote"},
    {"\"a\"b\"@example.com", nullptr, "quote"},
    {"müller@example.de", nullptr, "non-ASCII local part"},
    {"用户@例子.中国", nullptr, "non-ASCII local part"},
    // 65 octets of local part
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.com", nullptr, "64 octets"},
    // a 64-octet label
    {"u@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", nullptr, "63 octets"},
    {"user@xn--invalid-.com", nullptr, "hyphen"},
    {"user@xn--zz.com", nullptr, "A-label"},
    {"user@ab--cd.com", nullptr, "reserved"},
    {"user@exa\xffmple.com", nullptr, "UTF-8"},
    {"user@example.com;", nullptr, "character not allowed"},
    {"user@example.com>", nullptr, "angle brackets"},
    {"user:pass@example.com", nullptr, "character not allowed"},
    {"user\\@example.com", nullptr, "character not allowed"},
};

TEST(Address, ValidAddressesNormalise) {
  for (const auto& c : k_valid) {
    auto a = parse_address(c.input);
    ASSERT_TRUE(a.has_value()) << "rejected: " << c.input << ": " << a.error();
    EXPECT_EQ(a->str(), c.normalized) << c.input;
  }
}

TEST(Address, InvalidAddressesAreRejectedWithReason) {
  for (const auto& c : k_invalid) {
    auto a = parse_address(c.input);
    ASSERT_FALSE(a.has_value()) << "accepted: " << c.input << " as " << a->str();
    EXPECT_NE(a.error().find(c.reason_part), std::string::npos)
        << c.input << " -> " << a.error() << " (wanted '" << c.reason_part << "')";
  }
}

// The stored form is final: parsing it again gives the same address and key.
TEST(Address, NormalisedFormParsesToItself) {
  for (const auto& c : k_valid) {
    auto once = parse_address(c.input);
    ASSERT_TRUE(once.has_value()) << c.input << ": " << once.error();
    auto twice = parse_address(once->str());
    ASSERT_TRUE(twice.has_value()) << once->str() << ": " << twice.error();
    EXPECT_EQ(twice->str(), once->str()) << c.input;
    EXPECT_EQ(twice->dedup_key(), once->dedup_key()) << c.input;
  }
}

std::string_view local_of(std::string_view s) { return s.substr(0, s.rfind('@')); }
std::string_view domain_of(std::string_view s) {
  const auto at = s.rfind('@');
  return at == std::string_view::npos ? std::string_view{} : s.substr(at + 1);
}
bool has_non_ascii(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) { return static_cast<unsigned char>(ch) >= 0x80; });
}
bool has_label_of(std::string_view domain, std::size_t n) {
  std::size_t start = 0;
  while (start <= domain.size()) {
    const auto dot = std::min(domain.find('.', start), domain.size());
    if (dot - start == n) return true;
    start = dot + 1;
  }
  return false;
}
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return out;
}

struct Category {
  const char* name;
  std::function<bool(const Case&)> holds;
};

// The tables above claim to cover each kind of address and each length limit
// exactly at its boundary; the table-driven tests pass just as well when an
// edit drops a kind or shifts a boundary by one octet, so this checks the
// tables themselves.
TEST(Address, TablesCoverEveryCategoryAndBoundary) {
  const std::vector<Category> valid = {
      {"plain ASCII, stored as written",
       [](const Case& c) { return !has_non_ascii(c.input) && std::string_view(c.input) == c.normalized; }},
      {"surrounding spaces trimmed", [](const Case& c) { return c.input[0] == ' '; }},
      {"domain lower-cased, local part kept as written",
       [](const Case& c) {
         return !has_non_ascii(c.input) && local_of(c.input) == local_of(c.normalized) &&
                lower(local_of(c.input)) != local_of(c.input) && domain_of(c.input) != domain_of(c.normalized) &&
                lower(domain_of(c.input)) == domain_of(c.normalized);
       }},
      {"U-label domain stored as A-label",
       [](const Case& c) { return has_non_ascii(c.input) && domain_of(c.normalized).find("xn--") != std::string_view::npos; }},
      {"A-label domain kept", [](const Case& c) { return !has_non_ascii(c.input) && std::string_view(c.input).find("xn--") != std::string_view::npos; }},
      {"quoted local part", [](const Case& c) { return c.input[0] == '"'; }},
      {"quoted local part holding an '@'", [](const Case& c) { return c.input[0] == '"' && local_of(c.input).find('@') != std::string_view::npos; }},
      {"local part of exactly 64 octets", [](const Case& c) { return local_of(c.input).size() == 64; }},
      {"domain label of exactly 63 octets", [](const Case& c) { return has_label_of(domain_of(c.input), 63); }},
  };
  const std::vector<Category> invalid = {
      {"empty", [](const Case& c) { return std::string_view(c.input).find_first_not_of(' ') == std::string_view::npos; }},
      {"no '@'", [](const Case& c) { return std::string_view(c.input).find('@') == std::string_view::npos; }},
      {"local part of 65 octets", [](const Case& c) { return local_of(c.input).size() == 65; }},
      {"domain label of 64 octets", [](const Case& c) { return has_label_of(domain_of(c.input), 64); }},
      {"header injection (CR or LF)", [](const Case& c) { return std::string_view(c.input).find_first_of("\r\n") != std::string_view::npos; }},
      {"non-ASCII local part", [](const Case& c) { return has_non_ascii(local_of(c.input)); }},
      {"invalid UTF-8 domain", [](const Case& c) { return std::string_view(c.input).find('\xff') != std::string_view::npos; }},
      {"display name or angle brackets", [](const Case& c) { return std::string_view(c.input).find('<') != std::string_view::npos; }},
      {"two addresses", [](const Case& c) { return std::string_view(c.input).find(',') != std::string_view::npos; }},
      {"domain literal", [](const Case& c) { return domain_of(c.input).starts_with('['); }},
      {"unbalanced quotes", [](const Case& c) { return c.input[0] == '"'; }},
      {"single-label domain", [](const Case& c) { return !domain_of(c.input).empty() && domain_of(c.input).find('.') == std::string_view::npos; }},
      {"malformed A-label", [](const Case& c) { return std::string_view(c.input).find("xn--") != std::string_view::npos; }},
  };
  for (const auto& cat : valid) {
    EXPECT_TRUE(std::any_of(std::begin(k_valid), std::end(k_valid), cat.holds)) << "no valid case: " << cat.name;
  }
  for (const auto& cat : invalid) {
    EXPECT_TRUE(std::any_of(std::begin(k_invalid), std::end(k_invalid), cat.holds)) << "no invalid case: " << cat.name;
  }
  for (const auto& c : k_valid) EXPECT_NE(c.normalized, nullptr) << c.input;
  // An empty reason_part matches any reason, so the rejection test would not check it.
  for (const auto& c : k_invalid) {
    EXPECT_EQ(c.normalized, nullptr) << c.input;
    EXPECT_STRNE(c.reason_part, "") << c.input << ": a rejected case must name a part of its reason";
  }
}

TEST(Address, EmbeddedNulIsRejected) {
  const std::string with_nul("a@example.com\0Bcc", 17);
  EXPECT_FALSE(parse_address(with_nul).has_value());
}

TEST(Address, WholeAddressLimitIs254Octets) {
  // 64 + 1 + 189 = 254: accepted; one more octet of domain: rejected.
  const std::string local(64, 'a');
  auto domain_of = [](std::size_t n) {
    std::string d;
    while (n - d.size() > 64) d += std::string(60, 'b') + ".";
    return d + std::string(n - d.size() - 3, 'c') + ".io";
  };
  const std::string ok = local + "@" + domain_of(189);
  ASSERT_EQ(ok.size(), 254U);
  EXPECT_TRUE(parse_address(ok).has_value()) << parse_address(ok).error();
  const std::string too_long = local + "@" + domain_of(190);
  ASSERT_EQ(too_long.size(), 255U);
  auto r = parse_address(too_long);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("254"), std::string::npos) << r.error();
}

TEST(Address, DedupKeyFoldsCase) {
  const auto a = parse_address("Alice@Example.com");
  const auto b = parse_address("alice@EXAMPLE.COM");
  const auto u = parse_address("kai@BÜCHER.example");
  const auto x = parse_address("kai@xn--bcher-kva.example");
  ASSERT_TRUE(a && b && u && x);
  EXPECT_EQ(a->dedup_key(), b->dedup_key());
  EXPECT_EQ(u->dedup_key(), x->dedup_key());
}

TEST(Address, DomainToUnicodeRoundTrips) {
  EXPECT_EQ(domain_to_unicode("xn--bcher-kva.example"), "bücher.example");
  EXPECT_EQ(domain_to_unicode("example.com"), "example.com");
}

}  // namespace
}  // namespace blindcast::mail
