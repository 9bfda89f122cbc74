#include <gtest/gtest.h>

#include <string>

#include "util/base64.hpp"

namespace blindcast::util {
namespace {

// RFC 4648 §10 test vectors, in both alphabets.
TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},           {"f", "Zg=="},     {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [in, out] : vectors) {
    EXPECT_EQ(base64(in), out) << in;
    std::string appended = "x";
    append_base64(appended, in);
    EXPECT_EQ(appended, std::string("x") + out) << in;
    std::string url = out;
    while (!url.empty() && url.back() == '=') url.pop_back();
    EXPECT_EQ(base64url(in), url) << in;
  }
  // The two alphabets differ only in the last two characters.
  EXPECT_EQ(base64("\xfb\xff"), "+/8=");
  EXPECT_EQ(base64url("\xfb\xff"), "-_8");
}

}  // namespace
}  // namespace blindcast::util
