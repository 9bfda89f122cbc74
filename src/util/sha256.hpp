// SHA-256 (OpenSSL EVP), incremental, for content hashes and digests.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace blindcast::util {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  // Feeds `data` into the hash.
  void update(std::string_view data);
  // Feeds `data` prefixed by its length, so field boundaries are unambiguous.
  void update_field(std::string_view data);
  // Returns the lower-case hex digest; the object cannot be updated after.
  std::string hex_digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// `n` bytes from OpenSSL's cryptographic random generator; empty if it fails.
std::string random_bytes(std::size_t n);

// Returns the raw (32-byte) SHA-256 of `data`.
std::string sha256(std::string_view data);
// Returns the hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// HMAC-SHA256 (RFC 2104) under a key given once. mac() is const and
// thread-safe: it duplicates a context keyed at construction, so per call
// OpenSSL neither looks the algorithm up again nor re-derives the key pads.
class HmacSha256 {
 public:
  explicit HmacSha256(std::string_view key);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;

  // Returns the raw (32-byte) HMAC of `data`.
  [[nodiscard]] std::string mac(std::string_view data) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace blindcast::util
