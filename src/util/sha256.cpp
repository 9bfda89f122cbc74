#include "util/sha256.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include <cstdint>
#include <stdexcept>

#include "util/strings.hpp"

namespace blindcast::util {

namespace {

// SHA-256 fetched from the default provider once. EVP_sha256() makes OpenSSL 3
// look the algorithm up again, under a lock, on every use.
const EVP_MD* sha256_md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md != nullptr ? md : EVP_sha256();
}

}  // namespace

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : m_impl(std::make_unique<Impl>()) {
  m_impl->ctx = EVP_MD_CTX_new();
  if (m_impl->ctx == nullptr || EVP_DigestInit_ex(m_impl->ctx, sha256_md(), nullptr) != 1) {
    throw std::runtime_error("OpenSSL SHA-256 initialisation failed");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(m_impl->ctx); }

void Sha256::update(std::string_view data) {
  EVP_DigestUpdate(m_impl->ctx, data.data(), data.size());
}

void Sha256::update_field(std::string_view data) {
  const std::uint64_t n = data.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  EVP_DigestUpdate(m_impl->ctx, len, sizeof len);
  update(data);
}

std::string Sha256::hex_digest() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(m_impl->ctx, out, &len);
  return to_hex(std::string_view(reinterpret_cast<const char*>(out), len));
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) return {};
  return out;
}

std::string sha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, sha256_md(), nullptr);
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string sha256_hex(std::string_view data) { return to_hex(sha256(data)); }

struct HmacSha256::Impl {
  EVP_MAC_CTX* keyed = nullptr;
};

HmacSha256::HmacSha256(std::string_view key) : m_impl(std::make_unique<Impl>()) {
  static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  m_impl->keyed = hmac != nullptr ? EVP_MAC_CTX_new(hmac) : nullptr;
  if (m_impl->keyed == nullptr ||
      EVP_MAC_init(m_impl->keyed, reinterpret_cast<const unsigned char*>(key.empty() ? "" : key.data()), key.size(),
                   params) != 1) {
    EVP_MAC_CTX_free(m_impl->keyed);
    throw std::runtime_error("OpenSSL HMAC-SHA256 initialisation failed");
  }
}

HmacSha256::~HmacSha256() { EVP_MAC_CTX_free(m_impl->keyed); }

std::string HmacSha256::mac(std::string_view data) const {
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(m_impl->keyed);
  unsigned char out[EVP_MAX_MD_SIZE];
  std::size_t len = 0;
  const bool ok = ctx != nullptr &&
                  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1 &&
                  EVP_MAC_final(ctx, out, &len, sizeof out) == 1;
  EVP_MAC_CTX_free(ctx);
  if (!ok) throw std::runtime_error("OpenSSL HMAC-SHA256 failed");
  return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace blindcast::util
