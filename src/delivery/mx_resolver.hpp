// Where mail for a domain goes: its MX hosts in the order to try (RFC 5321
// §5.1), or why there are none (RFC 7505 null MX, no such domain), from DNS
// through c-ares, with a cache that honours the answers' TTLs.
//
// Why c-ares: it is asynchronous (many domains resolve at once on one
// thread, which 1,000 domains of an audience need), small, in Debian, and
// hands back the raw answer, whose TTLs (and the SOA of a negative answer,
// RFC 2308) the cache needs. libunbound would add a validating resolver
// that mail delivery does not use yet.
//
// Policy:
// - MX hosts by preference; hosts of equal preference shuffled on every
//   answer (cached or not), so load spreads;
// - no MX records (NODATA): the domain's own A/AAAA records, as one host of
//   preference 0 (the implicit MX);
// - a null MX (one MX record "0 .") is a permanent failure, never a
//   connection; NXDOMAIN too; so is a domain whose MX hosts all lack
//   addresses when none of those lookups failed temporarily;
// - SERVFAIL, timeouts and refused queries are temporary, cached briefly;
// - answers are cached for the smallest TTL among the records used (MX and
//   addresses), negative ones for the SOA's negative TTL (RFC 2308), within
//   [k_min_ttl, k_max_ttl].
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace blindcast::delivery {

struct MxHost {
  std::string name;                    // the exchange, lower case, no trailing dot
  int preference = 0;
  std::vector<std::string> addresses;  // IPv4 then IPv6, as text
};

struct MxRoute {
  enum class Kind {
    k_hosts,         // `hosts`, in the order to try
    k_null_mx,       // the domain accepts no mail (RFC 7505): permanent
    k_no_domain,     // NXDOMAIN: permanent
    k_no_hosts,      // neither MX nor address records, or MX hosts without addresses: permanent
    k_temporary,     // the DNS could not answer now: try again later
  };
  Kind kind = Kind::k_temporary;
  std::vector<MxHost> hosts;
  bool implicit = false;         // no MX: the domain's own addresses
  std::string detail;            // why, for a reply text (not k_hosts)
  std::chrono::seconds ttl{0};   // how long the answer holds
  [[nodiscard]] bool permanent() const { return kind != Kind::k_hosts && kind != Kind::k_temporary; }
};

struct ResolverSettings {
  std::string server;                        // "HOST:PORT" or "HOST"; empty: the system's resolvers
  std::chrono::milliseconds timeout{3000};   // per try
  int tries = 2;
};

class MxResolver {
 public:
  static constexpr std::chrono::seconds k_min_ttl{1};
  static constexpr std::chrono::seconds k_max_ttl{86400};
  static constexpr std::chrono::seconds k_temporary_ttl{30};
  static constexpr std::chrono::seconds k_negative_ttl{300};  // when a negative answer has no SOA

  // An Error when `settings.server` cannot be used.
  static Result<std::unique_ptr<MxResolver>> create(const ResolverSettings& settings);
  ~MxResolver();
  MxResolver(const MxResolver&) = delete;
  MxResolver& operator=(const MxResolver&) = delete;

  // The routes of `domains` (A-labels), resolved at once; fresh cached
  // answers are not asked again. Not thread-safe: one thread at a time.
  std::vector<MxRoute> resolve(std::span<const std::string> domains);
  MxRoute resolve(const std::string& domain);

  // The TXT records of `name` (each one's strings joined); nullopt when the
  // lookup failed for now (MTA-STS discovery).
  std::optional<std::vector<std::string>> txt(const std::string& name);
  // The addresses of `host`, IPv4 first, from the cache or asked now.
  std::vector<std::string> addresses(const std::string& host);

  // DNS queries sent so far (for tests and benchmarks).
  [[nodiscard]] std::uint64_t queries() const;
  // Thread-safe: a resolve() under way ends within 100 ms, what it had not
  // answered temporary; so does every later one.
  void interrupt();

 private:
  struct Impl;
  explicit MxResolver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace blindcast::delivery
