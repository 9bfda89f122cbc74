// Sealed tokens: short strings that carry a small value (an unsubscribe
// link's scope and address) so that only the holder of the key can read or
// make one. AES-256-GCM (OpenSSL EVP) under a key derived from the secret
// with HMAC-SHA256; the nonce is an HMAC of the value, so one value always
// seals to the same token (a message built twice is the same message) and
// two values never share a nonce.
//
// A token is "u1" + base64url(nonce 12 | ciphertext | tag 16). open() returns
// nothing for anything it did not make: forged, altered, truncated, or made
// under another key.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace blindcast::util {

class SealKey {
 public:
  // `secret`: at least 16 random bytes (the caller checks its length).
  explicit SealKey(std::string_view secret);
  ~SealKey();
  SealKey(const SealKey&) = delete;
  SealKey& operator=(const SealKey&) = delete;

  // Returns the token that carries `value`.
  [[nodiscard]] std::string seal(std::string_view value) const;
  // Returns the value `token` carries, or nothing when this key did not make it.
  [[nodiscard]] std::optional<std::string> open(std::string_view token) const;

 private:
  std::string m_key;    // 32 bytes: the AES key
  std::string m_nonce;  // 32 bytes: the HMAC key of nonces
};

// Decodes base64url without padding (RFC 4648 §5); nothing on a character
// outside the alphabet or an impossible length.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace blindcast::util
