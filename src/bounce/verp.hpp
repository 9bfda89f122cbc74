// The VERP return path (SPEC §9): every message blindcast sends with
// `[bounces] domain` has the envelope sender bounce+TOKEN@DOMAIN, where TOKEN
// names the message (a campaign's recipient, or a transactional message) and
// carries an HMAC under the organisation's bounce secret. A bounce whose token
// does not verify suppresses nobody: a forged report cannot take an address
// off the list of a sender it does not hold the key of.
//
// TOKEN is lower-case base32 (RFC 4648 alphabet, no padding), so it survives
// MTAs that change the case of local parts, of
//   'c' | tag (8 bytes: SHA-256 of the campaign id) | recipient id (LEB128) | MAC (10 bytes)
//   't' | message id (the 12 random bytes of msg_<24 hex>)                | MAC (10 bytes)
// MAC = HMAC-SHA256(key, everything before it), truncated: 80 bits, so a
// forger's chance per try is 2^-80. At most 39 characters, so the local part
// "bounce+TOKEN" stays within RFC 5321's 64 octets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/sha256.hpp"

namespace blindcast::bounce {

struct TokenSubject {
  enum class Kind { k_campaign, k_message };
  Kind kind = Kind::k_campaign;
  std::string campaign_tag;      // k_campaign: campaign_tag() of the campaign's id
  std::int64_t recipient_id = 0;  // k_campaign: the recipient's row in the campaign's store
  std::string message_id;        // k_message: "msg_<24 hex>"
};

// The 16-hex-digit tag of a campaign id (what tokens carry instead of the id).
std::string campaign_tag(std::string_view campaign_id);

class VerpKey {
 public:
  // `secret`: the bounce secret file's bytes (at least 16; the caller checks).
  explicit VerpKey(std::string_view secret);

  [[nodiscard]] std::string campaign_token(std::string_view campaign_id, std::int64_t recipient_id) const;
  // `message_id`: "msg_" and 24 hex digits; "" for anything else.
  [[nodiscard]] std::string message_token(std::string_view message_id) const;
  // What `token` names, or nothing when this key did not make it (forged,
  // altered, truncated, another key). Case-insensitive.
  [[nodiscard]] std::optional<TokenSubject> open(std::string_view token) const;

 private:
  [[nodiscard]] std::string seal(std::string payload) const;
  util::HmacSha256 m_mac;
};

// What `token` says it names, NOT verified (to choose the key that opens
// it: a campaign's tag names its key); nothing when it is not a token.
std::optional<TokenSubject> peek_token(std::string_view token);

// "bounce+TOKEN@DOMAIN".
std::string return_path(std::string_view token, std::string_view domain);
// The TOKEN of an address "bounce+TOKEN@..." (lower-cased), or "".
std::string token_of_address(std::string_view address);

}  // namespace blindcast::bounce
