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

// Returns the raw (32-byte) SHA-256 of `data`.
std::string sha256(std::string_view data);
// Returns the hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// Returns the raw HMAC-SHA256 of `data` under `key`.
std::string hmac_sha256(std::string_view key, std::string_view data);

}  // namespace blindcast::util
