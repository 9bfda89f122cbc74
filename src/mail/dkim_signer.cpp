#include "mail/dkim_signer.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <fmt/format.h>

#include "util/base64.hpp"
#include "util/sha256.hpp"

namespace blindcast::mail {

namespace {

constexpr const char* k_signed_fields[] = {"from",         "to",           "subject",
                                           "date",         "message-id",   "mime-version",
                                           "content-type", "list-unsubscribe", "list-unsubscribe-post"};

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

struct Field {
  std::string name;   // lower-case
  std::string_view raw;  // "Name: value\r\n continuation" without the final CRLF
};

// Splits the header section of `message`; returns the offset of the body.
std::size_t split_fields(std::string_view message, std::vector<Field>& fields) {
  std::size_t pos = 0;
  while (pos < message.size()) {
    const std::size_t eol = message.find("\r\n", pos);
    if (eol == std::string_view::npos) return message.size();
    if (eol == pos) return pos + 2;  // the blank line
    if (is_wsp(message[pos]) && !fields.empty()) {
      fields.back().raw = message.substr(fields.back().raw.data() - message.data(),
                                         eol - static_cast<std::size_t>(fields.back().raw.data() - message.data()));
    } else {
      const std::size_t colon = message.find(':', pos);
      fields.push_back({lower(message.substr(pos, colon - pos)), message.substr(pos, eol - pos)});
    }
    pos = eol + 2;
  }
  return message.size();
}

}  // namespace

std::string dkim_relaxed_header(std::string_view field) {
  const std::size_t colon = field.find(':');
  std::string out = lower(field.substr(0, colon));
  while (!out.empty() && is_wsp(out.back())) out.pop_back();
  out += ':';
  std::string_view value = colon == std::string_view::npos ? std::string_view() : field.substr(colon + 1);
  bool in_wsp = false;
  std::string v;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c == '\r' || c == '\n') continue;  // unfold
    if (is_wsp(c)) {
      in_wsp = true;
      continue;
    }
    if (in_wsp && !v.empty()) v += ' ';
    in_wsp = false;
    v += c;
  }
  return out + v;
}

std::string dkim_relaxed_body(std::string_view body) {
  std::string out;
  out.reserve(body.size());
  std::size_t pos = 0;
  std::size_t pending_empty = 0;
  while (pos < body.size()) {
    std::size_t eol = body.find("\r\n", pos);
    const bool last = eol == std::string_view::npos;
    if (last) eol = body.size();
    std::string line;
    bool in_wsp = false;
    for (std::size_t i = pos; i < eol; ++i) {
      const char c = body[i];
      if (is_wsp(c)) {
        in_wsp = true;
        continue;
      }
      if (in_wsp) line += ' ';
      in_wsp = false;
      line += c;
    }
    if (line.empty()) {
      ++pending_empty;  // trailing empty lines are dropped; inner ones kept
    } else {
      for (; pending_empty > 0; --pending_empty) out += "\r\n";
      out += line;
      out += "\r\n";
    }
    if (last) break;
    pos = eol + 2;
  }
  return out;
}

struct DkimSigner::Key {
  EVP_PKEY* pkey = nullptr;
  bool ed25519 = false;
  std::string selector;
  ~Key() { EVP_PKEY_free(pkey); }
};

DkimSigner::DkimSigner() = default;
DkimSigner::DkimSigner(DkimSigner&&) noexcept = default;
DkimSigner& DkimSigner::operator=(DkimSigner&&) noexcept = default;
DkimSigner::~DkimSigner() = default;

Result<DkimSigner> DkimSigner::create(std::string domain, const std::vector<std::string>& selectors,
                                      const std::vector<std::string>& pem_keys,
                                      const std::vector<std::string>& key_names) {
  DkimSigner s;
  s.m_domain = std::move(domain);
  if (selectors.size() != pem_keys.size()) return fail("[dkim] needs one selector per key_file");
  for (std::size_t i = 0; i < pem_keys.size(); ++i) {
    const std::string& name = i < key_names.size() ? key_names[i] : "key";
    BIO* bio = BIO_new_mem_buf(pem_keys[i].data(), static_cast<int>(pem_keys[i].size()));
    EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (pkey == nullptr) {
      return fail(fmt::format("[dkim] key_file {}: not a PEM private key (make one with: openssl genpkey "
                              "-algorithm ed25519, or -algorithm rsa -pkeyopt rsa_keygen_bits:2048)",
                              name));
    }
    auto key = std::make_unique<Key>();
    key->pkey = pkey;
    key->selector = selectors[i];
    const int type = EVP_PKEY_get_base_id(pkey);
    if (type == EVP_PKEY_ED25519) {
      key->ed25519 = true;
    } else if (type == EVP_PKEY_RSA) {
      if (EVP_PKEY_get_bits(pkey) < 2048) {
        return fail(fmt::format("[dkim] key_file {}: RSA key of {} bits; DKIM needs 2048 or more", name,
                                EVP_PKEY_get_bits(pkey)));
      }
    } else {
      return fail(fmt::format("[dkim] key_file {}: only RSA and Ed25519 keys can sign DKIM", name));
    }
    s.m_keys.push_back(std::move(key));
  }
  if (s.m_keys.empty()) return fail("[dkim] needs at least one key_file");
  return s;
}

std::vector<std::string> DkimSigner::algorithms() const {
  std::vector<std::string> out;
  for (const auto& k : m_keys) out.emplace_back(k->ed25519 ? "ed25519-sha256" : "rsa-sha256");
  return out;
}

Result<std::string> DkimSigner::sign(std::string_view message, long long now) const {
  std::vector<Field> fields;
  const std::size_t body_at = split_fields(message, fields);
  const std::string bh = util::base64(util::sha256(dkim_relaxed_body(message.substr(std::min(body_at, message.size())))));

  // The fields to sign, each instance from the bottom up (RFC 6376 §5.4.2),
  // plus one more "from" than there are: it signs the absence of another From.
  std::string h_tag;
  std::string signed_headers;
  for (const char* name : k_signed_fields) {
    int count = 0;
    for (auto it = fields.rbegin(); it != fields.rend(); ++it) {
      if (it->name != name) continue;
      signed_headers += dkim_relaxed_header(it->raw) + "\r\n";
      h_tag += (h_tag.empty() ? "" : ":") + std::string(name);
      ++count;
    }
    if (std::string_view(name) == "from") h_tag += ":from";
    (void)count;
  }

  std::string out;
  for (const auto& key : m_keys) {
    const std::string algo = key->ed25519 ? "ed25519-sha256" : "rsa-sha256";
    // Folded so no line is long; relaxed canonicalization makes the folds irrelevant.
    std::string field = fmt::format("DKIM-Signature: v=1; a={}; c=relaxed/relaxed; d={}; s={};\r\n\tt={}; h={};\r\n\tbh={};\r\n\tb=",
                                    algo, m_domain, key->selector, now, h_tag, bh);
    const std::string data = signed_headers + dkim_relaxed_header(field);
    std::string sig;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    std::size_t len = 0;
    bool ok = false;
    if (key->ed25519) {
      // RFC 8463 §3: Ed25519 signs the SHA-256 of the canonical data (PureEdDSA).
      const std::string digest = util::sha256(data);
      ok = EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key->pkey) == 1 &&
           EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(digest.data()), digest.size()) == 1;
      sig.resize(len);
      ok = ok && EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                                reinterpret_cast<const unsigned char*>(digest.data()), digest.size()) == 1;
    } else {
      ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key->pkey) == 1 &&
           EVP_DigestSignUpdate(ctx, data.data(), data.size()) == 1 &&
           EVP_DigestSignFinal(ctx, nullptr, &len) == 1;
      sig.resize(len);
      ok = ok && EVP_DigestSignFinal(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len) == 1;
    }
    EVP_MD_CTX_free(ctx);
    if (!ok) return fail("DKIM signing failed (OpenSSL)", ExitCode::k_runtime);
    sig.resize(len);
    const std::string b = util::base64(sig);
    for (std::size_t i = 0; i < b.size(); i += 72) {
      if (i > 0) field += "\r\n\t";
      field += b.substr(i, 72);
    }
    out += field + "\r\n";
  }
  out.append(message);
  return out;
}

}  // namespace blindcast::mail
