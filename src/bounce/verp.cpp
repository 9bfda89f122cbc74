#include "bounce/verp.hpp"

#include <openssl/crypto.h>

#include <array>

#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace blindcast::bounce {

namespace {

constexpr std::size_t k_mac_bytes = 10;
constexpr std::size_t k_tag_bytes = 8;
constexpr std::size_t k_message_bytes = 12;
constexpr std::string_view k_alphabet = "abcdefghijklmnopqrstuvwxyz234567";

std::string base32(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 8 + 4) / 5);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const char c : bytes) {
    buffer = (buffer << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 5) {
      out += k_alphabet[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += k_alphabet[(buffer << (5 - bits)) & 31];
  return out;
}

std::optional<std::string> unbase32(std::string_view text) {
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const auto v = k_alphabet.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    buffer = (buffer << 5) | static_cast<std::uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out += static_cast<char>((buffer >> (bits - 8)) & 0xFF);
      bits -= 8;
    }
  }
  // The leftover bits are padding: they must be zero (one text per token).
  if (bits >= 5 || (buffer & ((1U << bits) - 1)) != 0) return std::nullopt;
  return out;
}

}  // namespace

std::string campaign_tag(std::string_view campaign_id) {
  return util::to_hex(util::sha256(campaign_id).substr(0, k_tag_bytes));
}

VerpKey::VerpKey(std::string_view secret) : m_mac(util::sha256(std::string("blindcast verp v1\n").append(secret))) {}

std::string VerpKey::seal(std::string payload) const {
  payload += m_mac.mac(payload).substr(0, k_mac_bytes);
  return base32(payload);
}

std::string VerpKey::campaign_token(std::string_view campaign_id, std::int64_t recipient_id) const {
  std::string p = "c";
  p += util::sha256(campaign_id).substr(0, k_tag_bytes);
  auto v = static_cast<std::uint64_t>(recipient_id < 0 ? 0 : recipient_id);
  do {
    const auto byte = static_cast<unsigned char>(v & 0x7F);
    v >>= 7;
    p += static_cast<char>(v != 0 ? (byte | 0x80) : byte);
  } while (v != 0);
  return seal(std::move(p));
}

std::string VerpKey::message_token(std::string_view message_id) const {
  if (!message_id.starts_with("msg_") || message_id.size() != 4 + 2 * k_message_bytes) return {};
  std::string p = "t";
  for (std::size_t i = 4; i < message_id.size(); i += 2) {
    const int hi = util::hex_digit_value(message_id[i]);
    const int lo = util::hex_digit_value(message_id[i + 1]);
    if (hi < 0 || lo < 0) return {};
    p += static_cast<char>(hi * 16 + lo);
  }
  return seal(std::move(p));
}

namespace {

std::optional<TokenSubject> decode_payload(std::string_view payload);

}  // namespace

std::optional<TokenSubject> peek_token(std::string_view token) {
  if (token.size() > 64) return std::nullopt;
  auto raw = unbase32(token);
  if (!raw || raw->size() < 1 + k_mac_bytes) return std::nullopt;
  return decode_payload(std::string_view(*raw).substr(0, raw->size() - k_mac_bytes));
}

std::optional<TokenSubject> VerpKey::open(std::string_view token) const {
  if (token.size() > 64) return std::nullopt;
  auto raw = unbase32(token);
  if (!raw || raw->size() < 1 + k_mac_bytes) return std::nullopt;
  const std::string_view payload = std::string_view(*raw).substr(0, raw->size() - k_mac_bytes);
  const std::string expected = m_mac.mac(payload).substr(0, k_mac_bytes);
  if (CRYPTO_memcmp(expected.data(), raw->data() + payload.size(), k_mac_bytes) != 0) return std::nullopt;
  return decode_payload(payload);
}

namespace {

std::optional<TokenSubject> decode_payload(std::string_view payload) {
  TokenSubject s;
  if (payload[0] == 'c' && payload.size() > 1 + k_tag_bytes) {
    s.kind = TokenSubject::Kind::k_campaign;
    s.campaign_tag = util::to_hex(payload.substr(1, k_tag_bytes));
    std::uint64_t v = 0;
    int shift = 0;
    for (std::size_t i = 1 + k_tag_bytes; i < payload.size(); ++i, shift += 7) {
      if (shift > 56) return std::nullopt;
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(payload[i]) & 0x7F) << shift;
      if ((static_cast<unsigned char>(payload[i]) & 0x80) == 0) {
        if (i + 1 != payload.size()) return std::nullopt;
        s.recipient_id = static_cast<std::int64_t>(v);
        return s;
      }
    }
    return std::nullopt;
  }
  if (payload[0] == 't' && payload.size() == 1 + k_message_bytes) {
    s.kind = TokenSubject::Kind::k_message;
    s.message_id = "msg_" + util::to_hex(payload.substr(1));
    return s;
  }
  return std::nullopt;
}

}  // namespace

std::string return_path(std::string_view token, std::string_view domain) {
  std::string out = "bounce+";
  out.append(token).append("@").append(domain);
  return out;
}

std::string token_of_address(std::string_view address) {
  constexpr std::string_view k_prefix = "bounce+";
  if (address.size() < k_prefix.size()) return {};
  for (std::size_t i = 0; i < k_prefix.size(); ++i) {
    char c = address[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != k_prefix[i]) return {};
  }
  const auto at = address.find('@', k_prefix.size());
  if (at == std::string_view::npos) return {};
  std::string token(address.substr(k_prefix.size(), at - k_prefix.size()));
  for (char& c : token) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (k_alphabet.find(c) == std::string_view::npos) return {};
  }
  return token;
}

}  // namespace blindcast::bounce
