// The built-in table of mailbox providers ("lanes"): which domains belong to
// which provider, and the conservative shaping each gets by default
// (SPEC §5). `[shaping.<lane>]` in campaign.toml overrides or extends it.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace blindcast::delivery {

struct LaneDefaults {
  std::string name;
  std::vector<std::string> domains;        // exact domains or "prefix.*" for any TLD
  std::vector<std::string> mx;             // MX hosts, exact or "*.suffix" (with mx: delivery)
  double rate_per_second = 10;             // 0 = not shaped
  int connections = 2;
  int burst = 0;                           // messages allowed at once; 0 = one second's worth
  int messages_per_connection = 100;
};

// The built-in lanes, "default" last.
const std::vector<LaneDefaults>& builtin_lanes();

// The built-in table with a campaign's `[shaping.<lane>]` overrides applied
// (changed settings of a built-in lane, or new lanes with their own domains,
// which are matched before the built-in ones).
class LaneTable {
 public:
  explicit LaneTable(std::vector<LaneDefaults> overrides = {});
  // The lane of an A-label `domain`: the first lane naming the domain; else,
  // when its MX hosts are known (`mx_hosts`, with mx: delivery), the first
  // lane whose `mx` patterns match one of them (a company hosted by Google
  // shares Google's lane); else "default".
  [[nodiscard]] const LaneDefaults& lane_for(std::string_view domain,
                                             std::span<const std::string> mx_hosts = {}) const;
  // True when a lane's domain rules name `domain` (then its MX hosts do not count).
  [[nodiscard]] bool names(std::string_view domain) const;
  // True when a lane matches by MX host: lanes then need MX lookups.
  [[nodiscard]] bool matches_mx() const;
  [[nodiscard]] const std::vector<LaneDefaults>& lanes() const { return m_lanes; }
  // The same lanes without rates (for a transport no provider throttles).
  [[nodiscard]] LaneTable unpaced() const;

 private:
  std::vector<LaneDefaults> m_lanes;  // custom lanes first, "default" last
};

// The fastest rate a setting may name: far above any provider's, below
// anything that would overflow a token bucket.
inline constexpr double k_max_rate_per_second = 1'000'000;

// Parses a rate like "600/min", "10/s", "20000/h" into messages per second;
// nullopt for anything else, and for rates not above 0 or above k_max_rate_per_second.
std::optional<double> parse_rate(std::string_view text);

}  // namespace blindcast::delivery
