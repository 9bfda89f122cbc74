#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace blindcast::util {
namespace {

TEST(Sha256, KnownDigests) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// RFC 4231 §4.2, §4.3 and §4.7.
TEST(HmacSha256, Rfc4231Vectors) {
  EXPECT_EQ(to_hex(HmacSha256(std::string(20, '\x0b')).mac("Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(to_hex(HmacSha256("Jefe").mac("what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(to_hex(HmacSha256(std::string(131, '\xaa')).mac("Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

// One keyed object serves every builder thread at once.
TEST(HmacSha256, SharedAcrossThreads) {
  const HmacSha256 mac("Jefe");
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string m = mac.mac(i % 2 == 0 ? "what do ya want for nothing?" : "other");
        if (i % 2 == 0 && results[t].empty()) results[t] = to_hex(m);
        if (i % 2 == 0 && to_hex(m) != results[t]) results[t] = "mismatch";
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& r : results) EXPECT_EQ(r, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace
}  // namespace blindcast::util
