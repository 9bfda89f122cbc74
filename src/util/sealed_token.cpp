#include "util/sealed_token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/base64.hpp"
#include "util/sha256.hpp"

namespace blindcast::util {

namespace {

constexpr std::size_t k_nonce = 12;
constexpr std::size_t k_tag = 16;
constexpr std::string_view k_prefix = "u1";
constexpr std::size_t k_max_token = 1024;

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

}  // namespace

SealKey::SealKey(std::string_view secret) {
  const HmacSha256 derive(secret);
  m_key = derive.mac("blindcast sealed token v1: key");
  m_nonce = derive.mac("blindcast sealed token v1: nonce");
}

SealKey::~SealKey() {
  OPENSSL_cleanse(m_key.data(), m_key.size());
  OPENSSL_cleanse(m_nonce.data(), m_nonce.size());
}

std::string SealKey::seal(std::string_view value) const {
  const std::string nonce = HmacSha256(m_nonce).mac(value).substr(0, k_nonce);
  std::string out = nonce;
  out.resize(k_nonce + value.size() + k_tag);
  CipherCtx c;
  int len = 0;
  int tail = 0;
  unsigned char* cipher = bytes(out) + k_nonce;
  if (c.ctx == nullptr || EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, bytes(m_key), bytes(nonce)) != 1 ||
      EVP_EncryptUpdate(c.ctx, cipher, &len, bytes(value), static_cast<int>(value.size())) != 1 ||
      EVP_EncryptFinal_ex(c.ctx, cipher + len, &tail) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, k_tag, cipher + value.size()) != 1) {
    return {};  // OpenSSL failed (out of memory): no token, no link
  }
  return std::string(k_prefix) + base64url(out);
}

std::optional<std::string> SealKey::open(std::string_view token) const {
  if (token.size() > k_max_token || !token.starts_with(k_prefix)) return std::nullopt;
  auto raw = base64url_decode(token.substr(k_prefix.size()));
  if (!raw || raw->size() < k_nonce + k_tag) return std::nullopt;
  const std::size_t n = raw->size() - k_nonce - k_tag;
  std::string value(n, '\0');
  std::string tag = raw->substr(k_nonce + n);
  CipherCtx c;
  int len = 0;
  int tail = 0;
  if (c.ctx == nullptr ||
      EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, bytes(m_key), bytes(*raw)) != 1 ||
      EVP_DecryptUpdate(c.ctx, bytes(value), &len, bytes(*raw) + k_nonce, static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, k_tag, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(c.ctx, bytes(value) + len, &tail) != 1) {
    return std::nullopt;
  }
  // The nonce is the value's own HMAC: a token whose nonce is not is not ours.
  const std::string nonce = HmacSha256(m_nonce).mac(value).substr(0, k_nonce);
  if (CRYPTO_memcmp(nonce.data(), raw->data(), k_nonce) != 0) return std::nullopt;
  return value;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char ch : text) {
    int v = 0;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    else if (ch == '-') v = 62;
    else if (ch == '_') v = 63;
    else return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

}  // namespace blindcast::util
