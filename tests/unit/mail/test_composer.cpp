#include <gtest/gtest.h>

#include <random>
#include <set>

#include "guard/decoders.hpp"
#include "mail/composer.hpp"
#include "mail/encoding.hpp"
#include "mail/mailbox.hpp"

namespace blindcast::mail {
namespace {

// The guard's decoders are written independently of these encoders, so each
// round trip checks one implementation against the other.
TEST(Encoding, QuotedPrintableRoundTrips) {
  const std::string texts[] = {
      "plain ascii line\r\n",
      "Größe = 5 €\r\nzweite Zeile  \r\n",
      std::string(300, 'x') + "\r\n",
      "trailing space \r\ntrailing tab\t\r\n",
      "=3D already looks encoded\r\n",
      "ends without newline é",
  };
  for (const auto& t : texts) {
    std::string enc;
    append_quoted_printable(enc, t);
    EXPECT_EQ(guard::decode_quoted_printable(enc), t) << enc;
    std::size_t line = 0;
    for (char c : enc) {
      line = (c == '\n') ? 0 : line + 1;
      EXPECT_LE(line, 77U);
    }
  }
}

// Random lines of every length around the 16-byte steps and the 76-character
// limit, mixing literal text with CR, LF, tab, space, '=' and 8-bit bytes.
TEST(Encoding, QuotedPrintableRandomLines) {
  std::mt19937 rng(20261122);
  const std::string alphabet = std::string("abcXYZ019 .,@-") + "=\t\r\n\x7F\x80\xC3\xA9\xFF";
  for (int round = 0; round < 3000; ++round) {
    std::string t;
    const int lines = 1 + static_cast<int>(rng() % 4);
    for (int l = 0; l < lines; ++l) {
      const std::size_t len = rng() % 100;
      const bool plain = rng() % 2 == 0;  // half the lines are plain text
      for (std::size_t i = 0; i < len; ++i) {
        t += plain ? alphabet[rng() % 14] : alphabet[rng() % alphabet.size()];
      }
      if (l + 1 < lines || rng() % 2 == 0) t += "\r\n";
    }
    std::string enc;
    append_quoted_printable(enc, t);
    ASSERT_EQ(guard::decode_quoted_printable(enc), t) << enc;
    std::size_t start = 0;
    while (start <= enc.size()) {
      std::size_t eol = enc.find("\r\n", start);
      if (eol == std::string::npos) eol = enc.size();
      const std::string_view line(enc.data() + start, eol - start);
      ASSERT_LE(line.size(), 76U) << enc;
      ASSERT_TRUE(line.empty() || (line.back() != ' ' && line.back() != '\t')) << enc;
      for (char c : line) {
        const auto u = static_cast<unsigned char>(c);
        ASSERT_TRUE(u == '\t' || (u >= 0x20 && u <= 0x7E)) << enc;
      }
      start = eol + 2;
    }
  }
  std::string unchanged;
  // Plain lines of up to 76 characters come out unchanged.
  for (int i = 0; i < 38; ++i) unchanged += std::string(static_cast<std::size_t>(i * 2), 'a') + "b\r\n";
  std::string enc;
  append_quoted_printable(enc, unchanged);
  EXPECT_EQ(enc, unchanged);
}

TEST(Encoding, NormalizesLineEndsToCrlf) {
  EXPECT_EQ(normalize_crlf(""), "");
  EXPECT_EQ(normalize_crlf("no line end"), "no line end");
  EXPECT_EQ(normalize_crlf("a\nb\n"), "a\r\nb\r\n");           // rendered templates: bare LF
  EXPECT_EQ(normalize_crlf("\n\n"), "\r\n\r\n");
  EXPECT_EQ(normalize_crlf("a\r\nb\rc\nd"), "a\r\nb\r\nc\r\nd");  // mixed, bare CR included
}

TEST(Encoding, Base64RoundTrips) {
  for (std::size_t n = 0; n < 200; n += 7) {
    std::string data;
    for (std::size_t i = 0; i < n; ++i) data += static_cast<char>((i * 37 + 11) & 0xFF);
    std::string enc;
    append_base64_lines(enc, data);
    EXPECT_EQ(guard::decode_base64(enc), data);
  }
}

TEST(Encoding, ChoosesEncodingByContent) {
  EXPECT_EQ(choose_encoding("hello\r\n"), TransferEncoding::k_7bit);
  EXPECT_EQ(choose_encoding("Grüße aus Köln, sagte er.\r\n"), TransferEncoding::k_quoted_printable);
  EXPECT_EQ(choose_encoding("日本語のテキストです。\r\n"), TransferEncoding::k_base64);
  EXPECT_EQ(choose_encoding(std::string(1200, 'a')), TransferEncoding::k_quoted_printable);
}

TEST(Encoding, UnstructuredHeaderEncodesNonAsciiAndFolds) {
  const std::string subjects[] = {"Ünïcödé subject", "日本語の件名です、とても長い件名が続きます、とても長い件名が続きます",
                                  "تغيير المؤشر", "Looks =?like?= a word"};
  for (const auto& s : subjects) {
    std::string out;
    append_unstructured(out, s, 7);
    EXPECT_EQ(out.find_first_of("\x80\xff"), std::string::npos);
    std::string unfolded;
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (out[i] == '\r' && i + 2 < out.size() && out[i + 1] == '\n') {
        i += 1;
        continue;
      }
      unfolded += out[i];
    }
    EXPECT_EQ(guard::decode_encoded_words(unfolded), s) << out;
    std::size_t line = 0;
    for (char c : out) {
      line = (c == '\n') ? 0 : line + 1;
      EXPECT_LE(line, 78U) << out;
    }
  }
}

TEST(Encoding, DisplayNames) {
  struct {
    const char* name;
    const char* out;
  } cases[] = {{"Alice Smith", "Alice Smith"},
               {"Smith, Alice", "\"Smith, Alice\""},
               {"Dieter \"DJ\" Jäger", "=?UTF-8?B?RGlldGVyICJESiIgSsOkZ2Vy?="},
               {"a\"b\\c", "\"a\\\"b\\\\c\""},
               {"<evil@example.com>", "\"<evil@example.com>\""}};
  for (const auto& c : cases) {
    std::string out;
    append_display_name(out, c.name);
    EXPECT_EQ(out, c.out);
  }
}

TEST(Composer, SingleRecipientAndRequiredHeaders) {
  MessageSpec spec;
  spec.from = format_mailbox(*parse_mailbox("Example <noreply@example.com>"));
  spec.to_address = "bob@example.org";
  spec.to_name = "Bob";
  spec.subject = "Hello";
  spec.text = "line one\nline two\n";
  spec.html = "<p>hi</p>";
  spec.message_id = "<1@example.com>";
  spec.date = 1795000000;
  const std::string m = compose(spec);
  EXPECT_NE(m.find("To: Bob <bob@example.org>\r\n"), std::string::npos);
  EXPECT_NE(m.find("Date: "), std::string::npos);
  EXPECT_NE(m.find("Message-ID: <1@example.com>\r\n"), std::string::npos);
  EXPECT_NE(m.find("MIME-Version: 1.0\r\n"), std::string::npos);
  EXPECT_NE(m.find("multipart/alternative"), std::string::npos);
  EXPECT_EQ(m.find("Cc:"), std::string::npos);
  // CRLF only.
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '\n') {
      EXPECT_EQ(m[i - 1], '\r') << i;
    }
  }
}

TEST(Composer, MessageIdsAreUnique) {
  std::set<std::string> ids;
  for (int i = 0; i < 10000; ++i) ids.insert(make_message_id("example.com"));
  EXPECT_EQ(ids.size(), 10000U);
  EXPECT_TRUE(make_message_id("example.com").ends_with("@example.com>"));
}

TEST(Composer, DateFormat) { EXPECT_EQ(format_date(0), "Thu, 01 Jan 1970 00:00:00 +0000"); }

}  // namespace
}  // namespace blindcast::mail
