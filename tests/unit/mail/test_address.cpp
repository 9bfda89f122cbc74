#include <gtest/gtest.h>

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
    {"user@xn--invalid-.com", nullptr, ""},
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

TEST(Address, TableHasAtLeastEightyCases) {
  EXPECT_GE(std::size(k_valid) + std::size(k_invalid), 80U);
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
  EXPECT_EQ(parse_address("Alice@Example.com")->dedup_key(), parse_address("alice@EXAMPLE.COM")->dedup_key());
  EXPECT_EQ(parse_address("kai@BÜCHER.example")->dedup_key(), parse_address("kai@xn--bcher-kva.example")->dedup_key());
}

TEST(Address, DomainToUnicodeRoundTrips) {
  EXPECT_EQ(domain_to_unicode("xn--bcher-kva.example"), "bücher.example");
  EXPECT_EQ(domain_to_unicode("example.com"), "example.com");
}

}  // namespace
}  // namespace blindcast::mail
