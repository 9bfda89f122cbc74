#include "delivery/mx_lanes.hpp"

#include <vector>

namespace blindcast::delivery {

Result<std::unique_ptr<MxResolver>> lane_resolver(const std::string& url, const std::string& resolver_server,
                                                  const LaneTable& table) {
  if (url != "mx:" || !table.matches_mx()) return std::unique_ptr<MxResolver>();
  ResolverSettings settings;
  settings.server = resolver_server;
  return MxResolver::create(settings);
}

std::unordered_map<std::string, std::string> lanes_by_mx(const LaneTable& table, MxResolver& resolver,
                                                         std::span<const std::string> domains) {
  std::vector<std::string> unnamed;
  for (const auto& d : domains) {
    if (!table.names(d)) unnamed.push_back(d);
  }
  std::unordered_map<std::string, std::string> out;
  if (unnamed.empty()) return out;
  const auto routes = resolver.resolve(unnamed);
  std::vector<std::string> hosts;
  for (std::size_t i = 0; i < unnamed.size(); ++i) {
    if (routes[i].kind != MxRoute::Kind::k_hosts || routes[i].implicit) continue;
    hosts.clear();
    for (const auto& h : routes[i].hosts) hosts.push_back(h.name);
    const auto& lane = table.lane_for(unnamed[i], hosts);
    if (&lane != &table.lanes().back()) out[unnamed[i]] = lane.name;  // placed by an mx pattern
  }
  return out;
}

}  // namespace blindcast::delivery
