#include <gtest/gtest.h>

#include "mail/alignment.hpp"

namespace blindcast::mail {
namespace {

// RFC 7489 §3.1.1 relaxed alignment, with organizational domains from the
// Public Suffix List.
TEST(DmarcAlignment, Relaxed) {
  EXPECT_TRUE(dmarc_relaxed_aligned("example.com", "example.com"));
  EXPECT_TRUE(dmarc_relaxed_aligned("example.com", "mail.example.com"));
  EXPECT_TRUE(dmarc_relaxed_aligned("news.example.com", "example.com"));
  EXPECT_TRUE(dmarc_relaxed_aligned("news.example.com", "mail.example.com"));
  EXPECT_TRUE(dmarc_relaxed_aligned("example.co.uk", "mail.example.co.uk"));
  EXPECT_FALSE(dmarc_relaxed_aligned("example.com", "example.net"));
  EXPECT_FALSE(dmarc_relaxed_aligned("example.com", "notexample.com"));
  EXPECT_FALSE(dmarc_relaxed_aligned("example.co.uk", "other.co.uk"));
  EXPECT_FALSE(dmarc_relaxed_aligned("example.co.uk", "co.uk"));  // a public suffix signs for nobody
  EXPECT_FALSE(dmarc_relaxed_aligned("alice.github.io", "bob.github.io"));  // private suffix
}

}  // namespace
}  // namespace blindcast::mail
