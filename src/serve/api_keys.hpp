// API keys (SPEC §8): one per tool, named, least privilege, bound to the
// networks it may come from.
//
// A key reads "bc_<id>_<secret>": the id (16 hex digits) finds its record,
// the secret (32 random bytes, base64url) proves it. The store keeps the
// SHA-256 of the secret only (a random 256-bit secret needs no slow hash),
// compared in constant time. Keys are printed once, at creation.
//
// The KeyRing is the service's view of the keys: reloaded whenever the store
// changed (checked every 250 ms), so a key revoked by `blindcast keys
// revoke` fails within a second on every node sharing the store.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/service_store.hpp"
#include "util/error.hpp"

namespace blindcast::serve {

inline constexpr const char* k_scopes[] = {"send", "read", "campaigns", "approve", "admin"};

// A network: an IPv4 or IPv6 address and prefix length.
struct Cidr {
  unsigned char bytes[16] = {};
  bool v6 = false;
  int prefix = 0;
};

// Parses "10.0.0.0/8", "127.0.0.1" (a /32), "::1/128".
std::optional<Cidr> parse_cidr(std::string_view text);
// True when `address` (textual IPv4 or IPv6; IPv4-mapped IPv6 counts as IPv4) is in `net`.
bool cidr_contains(const Cidr& net, std::string_view address);

struct CreatedKey {
  std::string key;  // shown once
  store::ApiKeyRecord record;
};

// Makes a key named `name` with `scopes` and `cidrs` (validated).
Result<CreatedKey> make_key(const std::string& name, const std::vector<std::string>& scopes,
                            const std::vector<std::string>& cidrs);

enum class AuthStatus { k_ok, k_missing, k_unknown, k_network, k_scope };

struct AuthResult {
  AuthStatus status = AuthStatus::k_unknown;
  std::string name;                 // the key's name (when it was found)
  std::string key_id;               // its public id (a dashboard session holds it)
  std::vector<std::string> scopes;
  [[nodiscard]] bool has(std::string_view scope) const;
};

class KeyRing {
 public:
  // Reads the keys from `store` (its own connection) when it changed.
  Result<void> reload(store::ServiceStore& store);
  // Checks `authorization` (the header's value) from `client` for `scope`.
  [[nodiscard]] AuthResult check(std::string_view authorization, std::string_view client, std::string_view scope) const;
  // The key with public id `key_id` (a signed-in session's) as it is now:
  // unknown once revoked, k_network from outside its networks.
  [[nodiscard]] AuthResult check_id(std::string_view key_id, std::string_view client) const;

 private:
  struct Entry {
    store::ApiKeyRecord record;
    std::vector<Cidr> nets;
  };
  mutable std::mutex m_mutex;
  std::unordered_map<std::string, std::shared_ptr<const Entry>> m_by_id;
  std::int64_t m_version = -1;
};

}  // namespace blindcast::serve
