#include "serve/api_keys.hpp"

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <ctime>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/base64.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace blindcast::serve {

namespace {

constexpr std::size_t k_id_hex = 16;
constexpr std::size_t k_secret_bytes = 32;


bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

// The address bytes of `text` (IPv4 as 4 bytes, IPv4-mapped IPv6 too).
bool address_bytes(std::string_view text, unsigned char out[16], bool& v6) {
  const std::string s(text);
  if (inet_pton(AF_INET, s.c_str(), out) == 1) {
    v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out) == 1) {
    static constexpr unsigned char k_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(k_mapped, k_mapped + 12, out)) {
      std::copy(out + 12, out + 16, out);
      v6 = false;
    } else {
      v6 = true;
    }
    return true;
  }
  return false;
}

}  // namespace

std::optional<Cidr> parse_cidr(std::string_view text) {
  Cidr c;
  const auto slash = text.find('/');
  const std::string_view addr = text.substr(0, slash);
  if (!address_bytes(addr, c.bytes, c.v6)) return std::nullopt;
  const int max = c.v6 ? 128 : 32;
  c.prefix = max;
  if (slash != std::string_view::npos) {
    const auto p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      return std::nullopt;
    }
    c.prefix = std::stoi(std::string(p));
    if (c.prefix > max) return std::nullopt;
  }
  return c;
}

bool cidr_contains(const Cidr& net, std::string_view address) {
  unsigned char a[16] = {};
  bool v6 = false;
  if (!address_bytes(address, a, v6) || v6 != net.v6) return false;
  int bits = net.prefix;
  for (int i = 0; bits > 0; ++i, bits -= 8) {
    const unsigned mask = bits >= 8 ? 0xffU : (0xffU << (8 - bits)) & 0xffU;
    if ((a[i] & mask) != (net.bytes[i] & mask)) return false;
  }
  return true;
}

Result<CreatedKey> make_key(const std::string& name, const std::vector<std::string>& scopes,
                            const std::vector<std::string>& cidrs) {
  if (!valid_name(name)) {
    return fail(fmt::format("key name '{}': use 1-64 letters, digits, '.', '_' or '-' (name it after the tool that "
                            "uses it, e.g. \"auth-service\")",
                            name));
  }
  if (scopes.empty()) {
    return fail(fmt::format("--scope is required: one or more of {} (least privilege: only what the tool needs)",
                            fmt::join(k_scopes, ", ")));
  }
  for (const auto& s : scopes) {
    if (std::find(std::begin(k_scopes), std::end(k_scopes), s) == std::end(k_scopes)) {
      return fail(fmt::format("unknown scope '{}'; the scopes are {}", s, fmt::join(k_scopes, ", ")));
    }
  }
  if (cidrs.empty()) {
    return fail("--cidr is required: the networks this key may be used from, e.g. --cidr 10.1.2.0/24 (a key is "
                "bound to where its tool runs)");
  }
  for (const auto& c : cidrs) {
    if (!parse_cidr(c)) return fail(fmt::format("--cidr '{}' is not a network such as 10.1.2.0/24 or ::1/128", c));
  }
  const std::string id = util::to_hex(util::random_bytes(k_id_hex / 2));
  const std::string secret = util::base64url(util::random_bytes(k_secret_bytes));
  if (id.size() != k_id_hex || secret.size() < 40) return fail("the random generator failed", ExitCode::k_runtime);
  CreatedKey out;
  out.key = fmt::format("bc_{}_{}", id, secret);
  out.record.name = name;
  out.record.key_id = id;
  out.record.secret_hash = util::sha256(secret);
  out.record.scopes = scopes;
  std::sort(out.record.scopes.begin(), out.record.scopes.end());
  out.record.scopes.erase(std::unique(out.record.scopes.begin(), out.record.scopes.end()), out.record.scopes.end());
  out.record.cidrs = cidrs;
  out.record.created_at = static_cast<std::int64_t>(std::time(nullptr));
  return out;
}

bool AuthResult::has(std::string_view scope) const {
  return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

Result<void> KeyRing::reload(store::ServiceStore& store) {
  auto version = store.change_counter();
  if (!version) return std::unexpected(version.error());
  {
    std::lock_guard lock(m_mutex);
    if (*version == m_version) return {};
  }
  auto keys = store.keys();
  if (!keys) return std::unexpected(keys.error());
  std::unordered_map<std::string, std::shared_ptr<const Entry>> by_id;
  for (auto& k : *keys) {
    if (k.revoked_at != 0) continue;
    auto e = std::make_shared<Entry>();
    for (const auto& c : k.cidrs) {
      if (auto net = parse_cidr(c)) e->nets.push_back(*net);
    }
    e->record = std::move(k);
    by_id[e->record.key_id] = std::move(e);
  }
  std::lock_guard lock(m_mutex);
  m_by_id = std::move(by_id);
  m_version = *version;
  return {};
}

AuthResult KeyRing::check(std::string_view authorization, std::string_view client, std::string_view scope) const {
  AuthResult r;
  authorization = util::trim(authorization);
  constexpr std::string_view k_bearer = "Bearer ";
  if (authorization.empty()) {
    r.status = AuthStatus::k_missing;
    return r;
  }
  if (authorization.size() < k_bearer.size() ||
      util::to_lower_ascii(authorization.substr(0, k_bearer.size())) != "bearer ") {
    return r;
  }
  const std::string_view key = util::trim(authorization.substr(k_bearer.size()));
  // bc_<16 hex>_<secret>
  if (key.size() < 3 + k_id_hex + 1 + 1 || !key.starts_with("bc_") || key[3 + k_id_hex] != '_') return r;
  const std::string id(key.substr(3, k_id_hex));
  const std::string_view secret = key.substr(3 + k_id_hex + 1);
  std::shared_ptr<const Entry> e;
  {
    std::lock_guard lock(m_mutex);
    const auto it = m_by_id.find(id);
    if (it != m_by_id.end()) e = it->second;
  }
  // The hash is computed whether or not the id is known: the time taken
  // says nothing about which ids exist.
  const std::string presented = util::sha256(secret);
  if (e == nullptr || e->record.secret_hash.size() != presented.size() ||
      CRYPTO_memcmp(presented.data(), e->record.secret_hash.data(), presented.size()) != 0) {
    return r;
  }
  r.name = e->record.name;
  r.key_id = e->record.key_id;
  r.scopes = e->record.scopes;
  if (!std::any_of(e->nets.begin(), e->nets.end(), [&](const Cidr& n) { return cidr_contains(n, client); })) {
    r.status = AuthStatus::k_network;
    return r;
  }
  if (!scope.empty() && !r.has(scope)) {
    r.status = AuthStatus::k_scope;
    return r;
  }
  r.status = AuthStatus::k_ok;
  return r;
}

AuthResult KeyRing::check_id(std::string_view key_id, std::string_view client) const {
  AuthResult r;
  std::shared_ptr<const Entry> e;
  {
    std::lock_guard lock(m_mutex);
    const auto it = m_by_id.find(std::string(key_id));
    if (it != m_by_id.end()) e = it->second;
  }
  if (e == nullptr) return r;
  r.name = e->record.name;
  r.key_id = e->record.key_id;
  r.scopes = e->record.scopes;
  r.status = std::any_of(e->nets.begin(), e->nets.end(), [&](const Cidr& n) { return cidr_contains(n, client); })
                 ? AuthStatus::k_ok
                 : AuthStatus::k_network;
  return r;
}

}  // namespace blindcast::serve
