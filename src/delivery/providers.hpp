// The built-in table of mailbox providers ("lanes"): which domains belong to
// which provider, and the conservative shaping each gets by default
// (SPEC §5). `[shaping.<lane>]` in campaign.toml overrides or extends it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace blindcast::delivery {

struct LaneDefaults {
  std::string name;
  std::vector<std::string> domains;        // exact domains or "prefix.*" for any TLD
  double rate_per_second = 10;
  int connections = 2;
};

// The built-in lanes, "default" last.
const std::vector<LaneDefaults>& builtin_lanes();

// Returns the lane name for an A-label `domain` ("default" when none matches).
std::string lane_for_domain(std::string_view domain);

}  // namespace blindcast::delivery
