#include "mail/dkim_signer.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/rsa.h>

#include <fmt/format.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "util/base64.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace blindcast::mail {

Result<std::string> generate_dkim_key(DkimKeyType type) {
  EVP_PKEY* key = type == DkimKeyType::k_rsa2048 ? EVP_RSA_gen(2048) : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (key == nullptr) return fail("cannot generate a DKIM key (OpenSSL)", ExitCode::k_runtime);
  BIO* bio = BIO_new(BIO_s_mem());
  const bool ok = bio != nullptr && PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::string pem;
  if (ok) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    pem.assign(data, static_cast<std::size_t>(n));
  }
  BIO_free(bio);
  EVP_PKEY_free(key);
  if (!ok) return fail("cannot write a DKIM key as PEM (OpenSSL)", ExitCode::k_runtime);
  return pem;
}

namespace {

constexpr const char* k_signed_fields[] = {"from",         "to",           "subject",
                                           "date",         "message-id",   "mime-version",
                                           "content-type", "list-unsubscribe", "list-unsubscribe-post"};

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

struct Field {
  std::string_view name;  // as written
  std::string_view raw;   // "Name: value\r\n continuation" without the final CRLF
};

// Splits the header section of `message`; returns the offset of the body.
std::size_t split_fields(std::string_view message, std::vector<Field>& fields) {
  std::size_t pos = 0;
  while (pos < message.size()) {
    const std::size_t eol = message.find("\r\n", pos);
    if (eol == std::string_view::npos) return message.size();
    if (eol == pos) return pos + 2;  // the blank line
    if (is_wsp(message[pos]) && !fields.empty()) {
      const auto start = static_cast<std::size_t>(fields.back().raw.data() - message.data());
      fields.back().raw = message.substr(start, eol - start);
    } else {
      const std::size_t colon = std::min(message.find(':', pos), eol);
      fields.push_back({message.substr(pos, colon - pos), message.substr(pos, eol - pos)});
    }
    pos = eol + 2;
  }
  return message.size();
}

// Appends one body line [p, end) with its WSP runs reduced to one SP and its
// trailing WSP dropped (RFC 6376 §3.4.4 a); returns whether anything was left.
bool append_relaxed_line(std::string& out, const char* p, const char* end) {
  while (end > p && is_wsp(end[-1])) --end;
  if (end == p) return false;
  const std::string_view line(p, static_cast<std::size_t>(end - p));
  // Most lines (base64, quoted-printable, prose) have no tab and no double space.
  bool as_is = true;
  for (std::size_t i = 0; i < line.size() && as_is; ++i) {
    as_is = line[i] != '\t' && !(line[i] == ' ' && i + 1 < line.size() && line[i + 1] == ' ');
  }
  if (as_is) {
    out.append(line);
    return true;
  }
  bool in_wsp = false;
  for (const char c : line) {
    if (is_wsp(c)) {
      in_wsp = true;
      continue;
    }
    if (in_wsp) out += ' ';
    in_wsp = false;
    out += c;
  }
  return true;
}

// Whether relaxed canonicalization leaves every line of `body` as it is: no
// tab, no run of two spaces, no space before a CR, and no space at the very
// end. Then only trailing empty lines go. 16 bytes at a time.
bool body_lines_are_canonical(std::string_view body) {
  const char* const p = body.data();
  const std::size_t n = body.size();
  if (n > 0 && is_wsp(p[n - 1])) return false;
  std::size_t i = 0;
#if defined(__SSE2__)
  const __m128i sp = _mm_set1_epi8(' ');
  const __m128i tab = _mm_set1_epi8('\t');
  const __m128i cr = _mm_set1_epi8('\r');
  unsigned carry = 0;  // 1 when the previous block ended with a space
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const auto spaces = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, sp)));
    const auto tabs = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, tab)));
    const auto crs = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, cr)));
    // Bit k of after_space: byte k follows a space.
    const unsigned after_space = (spaces << 1) | carry;
    if (tabs != 0 || (after_space & (spaces | crs)) != 0) return false;
    carry = spaces >> 15;
  }
  if (carry != 0 && i < n && (p[i] == ' ' || p[i] == '\r')) return false;
#endif
  for (; i < n; ++i) {
    if (p[i] == '\t') return false;
    if (p[i] == ' ' && i + 1 < n && (p[i + 1] == ' ' || p[i + 1] == '\r')) return false;
  }
  return true;
}

// The length of `body` without its trailing CRLFs.
std::size_t without_trailing_crlfs(std::string_view body) {
  std::size_t end = body.size();
  while (end >= 2 && body[end - 2] == '\r' && body[end - 1] == '\n') end -= 2;
  return end;
}

int no_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

}  // namespace

void append_relaxed_header(std::string& out, std::string_view field) {
  const std::size_t colon = field.find(':');
  std::string_view name = field.substr(0, colon);
  while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
  for (const char c : name) out += ascii_lower(c);
  out += ':';
  const std::string_view value = colon == std::string_view::npos ? std::string_view() : field.substr(colon + 1);
  bool pending_space = false;
  bool any = false;
  for (const char c : value) {
    if (c == '\r' || c == '\n') continue;  // unfold
    if (is_wsp(c)) {
      pending_space = any;
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    any = true;
    out += c;
  }
}

std::string dkim_relaxed_header(std::string_view field) {
  std::string out;
  append_relaxed_header(out, field);
  return out;
}

void append_relaxed_body(std::string& out, std::string_view body) {
  if (body_lines_are_canonical(body)) {
    const std::size_t end = without_trailing_crlfs(body);
    if (end > 0) {
      out.append(body.substr(0, end));
      out += "\r\n";
    }
    return;
  }
  std::size_t pending_empty = 0;  // empty lines are kept only when more text follows
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::size_t eol = body.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = body.size();
    const std::size_t mark = out.size();
    for (std::size_t i = 0; i < pending_empty; ++i) out += "\r\n";
    if (append_relaxed_line(out, body.data() + pos, body.data() + eol)) {
      out += "\r\n";
      pending_empty = 0;
    } else {
      out.resize(mark);
      ++pending_empty;
    }
    pos = eol + 2;
  }
}

std::string dkim_relaxed_body(std::string_view body) {
  std::string out;
  out.reserve(body.size() + 2);
  append_relaxed_body(out, body);
  return out;
}

// Each key keeps a context set up for signing; sign() duplicates it (a copy
// of a few fields) instead of setting one up, which would look the algorithm
// up in OpenSSL's provider store under a lock for every message. Duplicating
// only reads the template, so threads can share it.
struct DkimSigner::Key {
  EVP_PKEY* pkey = nullptr;
  bool ed25519 = false;
  std::string selector;
  EVP_PKEY_CTX* rsa_template = nullptr;    // RSA: PKCS#1 v1.5 over a SHA-256 digest
  EVP_MD_CTX* ed25519_template = nullptr;  // Ed25519: PureEdDSA
  ~Key() {
    EVP_PKEY_CTX_free(rsa_template);
    EVP_MD_CTX_free(ed25519_template);
    EVP_PKEY_free(pkey);
  }
  bool prepare() {
    if (ed25519) {
      ed25519_template = EVP_MD_CTX_new();
      return ed25519_template != nullptr &&
             EVP_DigestSignInit(ed25519_template, nullptr, nullptr, nullptr, pkey) == 1;
    }
    rsa_template = EVP_PKEY_CTX_new(pkey, nullptr);
    return rsa_template != nullptr && EVP_PKEY_sign_init(rsa_template) == 1 &&
           EVP_PKEY_CTX_set_rsa_padding(rsa_template, RSA_PKCS1_PADDING) == 1 &&
           EVP_PKEY_CTX_set_signature_md(rsa_template, EVP_sha256()) == 1;
  }
  // Signs the SHA-256 `digest` of the canonical data into `sig`.
  bool sign_digest(std::string_view digest, std::string& sig) const {
    const auto* in = reinterpret_cast<const unsigned char*>(digest.data());
    sig.resize(static_cast<std::size_t>(EVP_PKEY_get_size(pkey)));
    std::size_t len = sig.size();
    bool ok = false;
    if (ed25519) {
      // RFC 8463 §3: Ed25519 signs the SHA-256 of the canonical data.
      EVP_MD_CTX* ctx = EVP_MD_CTX_new();
      ok = ctx != nullptr && EVP_MD_CTX_copy_ex(ctx, ed25519_template) == 1 &&
           EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, in, digest.size()) == 1;
      EVP_MD_CTX_free(ctx);
    } else {
      EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_dup(rsa_template);
      ok = ctx != nullptr &&
           EVP_PKEY_sign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, in, digest.size()) == 1;
      EVP_PKEY_CTX_free(ctx);
    }
    sig.resize(ok ? len : 0);
    return ok;
  }
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
    const std::string& pem = pem_keys[i];
    if (pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string::npos ||
        pem.find("Proc-Type: 4,ENCRYPTED") != std::string::npos) {
      return fail(fmt::format("[dkim] key_file {}: the key is encrypted with a passphrase, which blindcast does not "
                              "ask for (the file's permissions protect the key); write it out unencrypted once with "
                              "`openssl pkey -in {} -out NEW.pem`, chmod 600 NEW.pem and name NEW.pem in key_file",
                              name, name));
    }
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    // No passphrase callback: OpenSSL's default one would prompt on the terminal.
    EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, no_passphrase, nullptr);
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
    if (!key->prepare()) return fail(fmt::format("[dkim] key_file {}: OpenSSL cannot sign with this key", name));
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

std::vector<DkimSigner::DnsRecord> DkimSigner::dns_records() const {
  std::vector<DnsRecord> out;
  for (const auto& key : m_keys) {
    std::string pub;
    if (key->ed25519) {
      // RFC 8463 §4.2: the bare 32-byte key, not wrapped in SubjectPublicKeyInfo.
      std::size_t len = 32;
      pub.resize(len);
      if (EVP_PKEY_get_raw_public_key(key->pkey, reinterpret_cast<unsigned char*>(pub.data()), &len) != 1) continue;
      pub.resize(len);
    } else {
      unsigned char* der = nullptr;
      const int len = i2d_PUBKEY(key->pkey, &der);
      if (len <= 0) continue;
      pub.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
      OPENSSL_free(der);
    }
    out.push_back({key->selector + "._domainkey." + m_domain,
                   fmt::format("v=DKIM1; k={}; p={}", key->ed25519 ? "ed25519" : "rsa", util::base64(pub))});
  }
  return out;
}

Result<std::string> DkimSigner::sign(std::string_view message, long long now) const {
  std::vector<Field> fields;
  fields.reserve(16);
  const std::size_t body_at = split_fields(message, fields);
  std::string canonical;
  canonical.reserve(message.size() - std::min(body_at, message.size()) + 2);
  append_relaxed_body(canonical, message.substr(std::min(body_at, message.size())));
  const std::string bh = util::base64(util::sha256(canonical));

  // The fields to sign, each instance from the bottom up (RFC 6376 §5.4.2),
  // plus one more "from" than there are: it signs the absence of another From.
  std::string h_tag;
  canonical.clear();  // now the canonical signed fields
  for (const char* name : k_signed_fields) {
    for (auto it = fields.rbegin(); it != fields.rend(); ++it) {
      if (!util::iequals(it->name, name)) continue;
      append_relaxed_header(canonical, it->raw);
      canonical += "\r\n";
      if (!h_tag.empty()) h_tag += ':';
      h_tag += name;
    }
    if (std::string_view(name) == "from") h_tag += ":from";
  }
  const std::size_t fields_end = canonical.size();

  std::string out;
  out.reserve(message.size() + 512 * m_keys.size());
  std::string sig;
  for (const auto& key : m_keys) {
    // Folded so no line is long; relaxed canonicalization makes the folds irrelevant.
    std::string field = fmt::format("DKIM-Signature: v=1; a={}; c=relaxed/relaxed; d={}; s={};\r\n\tt={}; h={};\r\n\tbh={};\r\n\tb=",
                                    key->ed25519 ? "ed25519-sha256" : "rsa-sha256", m_domain, key->selector, now, h_tag, bh);
    canonical.resize(fields_end);
    append_relaxed_header(canonical, field);
    if (!key->sign_digest(util::sha256(canonical), sig)) return fail("DKIM signing failed (OpenSSL)", ExitCode::k_runtime);
    const std::string b = util::base64(sig);
    for (std::size_t i = 0; i < b.size(); i += 72) {
      if (i > 0) field += "\r\n\t";
      field.append(b, i, 72);
    }
    out += field;
    out += "\r\n";
  }
  out.append(message);
  return out;
}

}  // namespace blindcast::mail
