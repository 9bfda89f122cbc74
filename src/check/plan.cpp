#include "check/plan.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "compose/audience_session.hpp"
#include "delivery/mx_lanes.hpp"
#include "delivery/providers.hpp"

namespace blindcast::check {

namespace {
constexpr double k_unshaped_rate = 2000;  // messages per second assumed for a lane without a rate
}

Result<SendPlan> make_plan(const std::filesystem::path& dir, util::Diagnostics& diags) {
  auto campaign = campaign::load_campaign(dir, diags);
  // A plan of settings with errors would show defaults where the operator
  // wrote something else (a mistyped rate): refused like send.
  if (!campaign || util::error_count(diags) > 0) {
    return fail(fmt::format("the campaign has errors; run 'blindcast lint {}'", dir.string()));
  }
  auto session = compose::open_audience(*campaign, diags, {});
  if (!session) return std::unexpected(session.error());
  SendPlan plan;
  const delivery::LaneTable table(campaign->config.shaping);
  std::map<std::string, std::int64_t> per_lane;
  std::map<std::string, std::int64_t> per_domain;  // those no lane names, with mx: lanes by MX host
  auto mx_lanes = delivery::lane_resolver(campaign->config.transport.url, campaign->config.transport.resolver, table);
  if (!mx_lanes) return std::unexpected(mx_lanes.error());
  audience::AudienceRow row;
  while (session->loader->next(row)) {
    const std::string domain = row.email.substr(row.email.rfind('@') + 1);
    const auto& lane = table.lane_for(domain);
    if (*mx_lanes && !table.names(domain)) {
      ++per_domain[domain];
    } else {
      ++per_lane[lane.name];
    }
    ++plan.locales[row.locale.empty() ? "(default)" : row.locale];
    ++plan.recipients;
  }
  if (session->loader->fatal()) return fail(session->loader->fatal_error());
  if (*mx_lanes) {
    // As a send will place them: by their MX hosts, looked up now.
    std::vector<std::string> domains;
    for (const auto& [d, n] : per_domain) domains.push_back(d);
    const auto by_mx = delivery::lanes_by_mx(table, **mx_lanes, domains);
    for (const auto& [d, n] : per_domain) {
      const auto it = by_mx.find(d);
      per_lane[it != by_mx.end() ? it->second : table.lanes().back().name] += n;
    }
  }
  plan.rejected = session->loader->stats().rejected;
  plan.duplicates = session->loader->stats().duplicates;
  for (const auto& lane : table.lanes()) {
    const auto it = per_lane.find(lane.name);
    if (it == per_lane.end()) continue;
    // A shaped lane sends its burst at once, then at its rate; an unshaped one
    // is estimated at k_unshaped_rate.
    const double rate = lane.rate_per_second > 0 ? lane.rate_per_second : k_unshaped_rate;
    const double burst = lane.rate_per_second > 0 ? (lane.burst > 0 ? lane.burst : std::max(1.0, rate)) : 0;
    LanePlan lp{lane.name, it->second, lane.rate_per_second, lane.connections,
                std::max(0.0, static_cast<double>(it->second) - burst) / rate};
    plan.total_seconds = std::max(plan.total_seconds, lp.seconds);
    plan.lanes.push_back(lp);
  }
  std::sort(plan.lanes.begin(), plan.lanes.end(),
            [](const LanePlan& a, const LanePlan& b) { return a.seconds > b.seconds; });
  if (plan.lanes.size() > 1 && plan.lanes[0].seconds > 2 * plan.lanes[1].seconds && plan.lanes[0].seconds > 60) {
    plan.dominant_lane = plan.lanes[0].lane;
  }
  return plan;
}

}  // namespace blindcast::check
