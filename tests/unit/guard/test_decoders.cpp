#include <gtest/gtest.h>

#include "guard/decoders.hpp"

namespace blindcast::guard {
namespace {

TEST(Decoders, QuotedPrintableEscapesSoftBreaksAndStrayEquals) {
  EXPECT_EQ(decode_quoted_printable("caf=C3=A9 =3D ok"), "café = ok");
  EXPECT_EQ(decode_quoted_printable("soft=\r\nbreak"), "softbreak");
  EXPECT_EQ(decode_quoted_printable("soft= \t\r\nbreak"), "softbreak");
  EXPECT_EQ(decode_quoted_printable("soft=\nbreak"), "softbreak");
  EXPECT_EQ(decode_quoted_printable("a=zz b"), "a=zz b");  // not an escape: kept
  EXPECT_EQ(decode_quoted_printable("a=4"), "a=4");
  EXPECT_EQ(decode_quoted_printable("end="), "end");        // a soft break at the very end
  EXPECT_EQ(decode_quoted_printable("end= \t"), "end");
  EXPECT_EQ(decode_quoted_printable("=40=2E=40"), "@.@");   // escapes back to back
  EXPECT_EQ(decode_quoted_printable(""), "");
}

TEST(Decoders, EncodedWordsAndTheWhiteSpaceBetweenThem) {
  // RFC 2047 §6.2: white space between adjacent encoded-words is dropped;
  // between an encoded-word and text it stays.
  EXPECT_EQ(decode_encoded_words("=?UTF-8?Q?a?= =?UTF-8?Q?b?="), "ab");
  EXPECT_EQ(decode_encoded_words("=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?="), "ab");
  EXPECT_EQ(decode_encoded_words("x =?UTF-8?Q?a?= y"), "x a y");
  EXPECT_EQ(decode_encoded_words("=?UTF-8?Q?a?= y =?UTF-8?Q?b?="), "a y b");
  EXPECT_EQ(decode_encoded_words("=?UTF-8?B?5bGx55Sw?= <a@b.c>"), "山田 <a@b.c>");
  EXPECT_EQ(decode_encoded_words("=?UTF-8?Q?bob=40example=2Eorg_x?="), "bob@example.org x");
  // Not encoded-words: copied as they are.
  EXPECT_EQ(decode_encoded_words("a = b =? c"), "a = b =? c");
  EXPECT_EQ(decode_encoded_words("=?UTF-8?X?zz?= t"), "=?UTF-8?X?zz?= t");
  EXPECT_EQ(decode_encoded_words("plain text only"), "plain text only");
  EXPECT_EQ(decode_encoded_words(""), "");
}

}  // namespace
}  // namespace blindcast::guard
