// DKIM signing (RFC 6376) with rsa-sha256 and ed25519-sha256 (RFC 8463).
//
// Policy: relaxed/relaxed canonicalization; the signed fields are From, To,
// Subject, Date, Message-ID, MIME-Version, Content-Type, List-Unsubscribe and
// List-Unsubscribe-Post (those present), with From signed once more than it
// occurs so no From can be added after signing. The algorithm comes from the
// key: RSA (2048 bits or more) or Ed25519; several keys give several
// signatures (RSA and Ed25519 side by side). Keys are PEM private keys read by
// the caller from secret files (util/secret_file.hpp). sign() is const and
// thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace blindcast::mail {

// A new private key for DKIM as unencrypted PKCS#8 PEM: RSA-2048 or Ed25519
// (RFC 8463), from OpenSSL's random generator.
enum class DkimKeyType { k_rsa2048, k_ed25519 };
Result<std::string> generate_dkim_key(DkimKeyType type);

class DkimSigner {
 public:
  // Loads the PEM private keys in `pem_keys` (named `key_names` in errors)
  // for domain `domain`, key i published under selector `selectors[i]`.
  static Result<DkimSigner> create(std::string domain, const std::vector<std::string>& selectors,
                                   const std::vector<std::string>& pem_keys,
                                   const std::vector<std::string>& key_names);
  DkimSigner(DkimSigner&&) noexcept;
  DkimSigner& operator=(DkimSigner&&) noexcept;
  ~DkimSigner();

  // Returns `message` with DKIM-Signature fields prepended; `now` is the t= tag.
  [[nodiscard]] Result<std::string> sign(std::string_view message, long long now) const;

  // "rsa-sha256", "ed25519-sha256", ... in signing order.
  [[nodiscard]] std::vector<std::string> algorithms() const;

  // The DNS TXT record each key needs (RFC 6376 §3.6.1, RFC 8463 §4): name
  // "<selector>._domainkey.<domain>", value "v=DKIM1; k=rsa; p=<public key>".
  struct DnsRecord {
    std::string name;
    std::string value;
  };
  [[nodiscard]] std::vector<DnsRecord> dns_records() const;

 private:
  struct Key;
  DkimSigner();
  std::string m_domain;
  std::vector<std::unique_ptr<Key>> m_keys;
};

// Relaxed header canonicalization of one field "Name: value" (RFC 6376 §3.4.2),
// without the final CRLF: appended to `out`, or returned.
void append_relaxed_header(std::string& out, std::string_view field);
std::string dkim_relaxed_header(std::string_view field);

// Relaxed body canonicalization (RFC 6376 §3.4.4): appended to `out`, or returned.
void append_relaxed_body(std::string& out, std::string_view body);
std::string dkim_relaxed_body(std::string_view body);

}  // namespace blindcast::mail
