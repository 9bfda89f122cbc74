// MTA-STS (RFC 8461): a domain's published promise that its MX hosts take
// mail over TLS with a valid certificate, honoured by mx: delivery.
//
// Policy:
// - discovery: the TXT record `_mta-sts.DOMAIN` ("v=STSv1; id=..."); the
//   policy is fetched over HTTPS from https://mta-sts.DOMAIN/.well-known/
//   mta-sts.txt (certificate checked, no redirects, at most 64 KB,
//   text/plain) with libcurl, the host's address from the same resolver;
// - a policy is kept for its max_age, in a cache file that outlives the
//   process; a new id in the TXT record fetches it again, and a fetch that
//   fails never replaces (or removes) a policy still in force (§5.1);
// - `enforce`: only MX hosts matching the policy's `mx` patterns are used,
//   over STARTTLS with the certificate checked against the MX host name; a
//   domain none of whose MX hosts match is deferred, never sent in clear.
//   `testing` and `none` change nothing. TLS-RPT reports are not sent.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "delivery/mx_resolver.hpp"

namespace blindcast::delivery {

struct StsPolicy {
  enum class Mode { k_none, k_testing, k_enforce };
  Mode mode = Mode::k_none;
  std::vector<std::string> mx;  // patterns: "mail.example.com" or "*.example.com"
  std::int64_t max_age = 0;     // seconds
  std::string id;               // from the TXT record it was fetched for
  std::int64_t fetched_at = 0;  // unix seconds
};

// Parses a policy file (RFC 8461 §3.2); nullopt with `error` set when it is not one.
std::optional<StsPolicy> parse_sts_policy(std::string_view text, std::string& error);

// True when MX host `host` matches one of `policy`'s patterns (§4.1: a
// leading "*." stands for exactly one label).
bool sts_mx_matches(const StsPolicy& policy, std::string_view host);

struct StsSettings {
  std::string ca_file;     // trust anchors for the policy host (default: the system's)
  int port = 443;          // of the policy host (tests use others)
  std::string cache_path;  // where policies outlive the process ("": memory only)
};

class MtaSts {
 public:
  MtaSts(StsSettings settings, MxResolver& resolver);
  // The policy in force for `domain` now, if it has one. Looks up and
  // fetches as RFC 8461 says; never throws away a policy in force.
  std::optional<StsPolicy> policy_for(const std::string& domain);

 private:
  std::optional<StsPolicy> fetch(const std::string& domain, const std::string& id, std::string& error);
  void load();
  void save() const;
  StsSettings m_settings;
  MxResolver& m_resolver;
  std::map<std::string, StsPolicy> m_cache;
};

}  // namespace blindcast::delivery
