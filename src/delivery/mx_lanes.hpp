// Lanes by MX host (SPEC §11): with mx: delivery a company domain hosted by
// Google shares Google's lane. The lane is stored with each recipient at
// import, so the domains the lanes' domain rules leave in "default" are
// looked up then (one batch), and `plan` does the same.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <unordered_map>

#include "delivery/mx_resolver.hpp"
#include "delivery/providers.hpp"
#include "util/error.hpp"

namespace blindcast::delivery {

// A resolver for placing domains in lanes: when `url` is "mx:" and a lane
// of `table` matches by MX host; nullptr otherwise (nothing to look up).
Result<std::unique_ptr<MxResolver>> lane_resolver(const std::string& url, const std::string& resolver_server,
                                                  const LaneTable& table);

// The lane of each of `domains` that its MX hosts place (a domain no lane
// names, whose MX hosts match a lane's `mx` patterns); the others are not in
// the map (their lane is table.lane_for(domain)). A domain whose lookup
// fails stays out too.
std::unordered_map<std::string, std::string> lanes_by_mx(const LaneTable& table, MxResolver& resolver,
                                                         std::span<const std::string> domains);

}  // namespace blindcast::delivery
