#include "delivery/lane_shaper.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>


namespace blindcast::delivery {

namespace {
constexpr double k_floor_fraction = 0.05;  // never below 5% of the configured rate ...
constexpr double k_min_rate = 1.0 / 60;    // ... nor below one message a minute
std::string per_minute(double rate) { return fmt::format("{:.0f}/min", rate * 60); }
}  // namespace

LaneShaper::LaneShaper(const std::vector<LaneDefaults>& lanes, int quiet_seconds, Clock::time_point now,
                       bool cap_in_progress)
    : m_quiet(std::max(quiet_seconds, 1)), m_cap(cap_in_progress) {
  for (const auto& d : lanes) {
    if (d.rate_per_second <= 0) continue;  // not shaped
    Lane l;
    l.configured = l.rate = std::max(d.rate_per_second, k_min_rate);
    l.capacity = d.burst > 0 ? d.burst : std::max(1.0, l.rate);
    l.tokens = l.capacity;
    l.max_in_progress = std::max(d.connections, 1);
    l.refilled = l.last_change = now;
    m_lanes[d.name] = l;
  }
}

void LaneShaper::refill(Lane& lane, Clock::time_point now) const {
  const double dt = std::chrono::duration<double>(now - lane.refilled).count();
  if (dt > 0) {
    lane.tokens = std::min(lane.capacity, lane.tokens + dt * lane.rate);
    lane.refilled = now;
  }
}

bool LaneShaper::try_acquire(const std::string& name, Clock::time_point now) {
  auto it = m_lanes.find(name);
  if (it == m_lanes.end()) return true;  // not shaped
  Lane& l = it->second;
  refill(l, now);
  if ((m_cap && l.in_progress >= l.max_in_progress) || l.tokens < 1.0) return false;
  l.tokens -= 1.0;
  ++l.in_progress;
  return true;
}

void LaneShaper::release(const std::string& name) {
  auto it = m_lanes.find(name);
  if (it != m_lanes.end() && it->second.in_progress > 0) --it->second.in_progress;
}

int LaneShaper::in_progress(const std::string& name) const {
  const auto it = m_lanes.find(name);
  return it == m_lanes.end() ? 0 : it->second.in_progress;
}

double LaneShaper::wait_for(const std::string& name, std::size_t position, Clock::time_point now) const {
  auto it = m_lanes.find(name);
  if (it == m_lanes.end()) return 0;
  Lane l = it->second;
  refill(l, now);
  const double needed = static_cast<double>(position) + 1.0 - l.tokens;
  return needed <= 0 ? 0 : needed / l.rate;
}

std::optional<std::string> LaneShaper::throttled(const std::string& name, Clock::time_point now) {
  auto it = m_lanes.find(name);
  if (it == m_lanes.end()) return std::nullopt;
  Lane& l = it->second;
  l.throttled_at = now;
  // One cut per second at most: a burst of throttling replies is one signal.
  if (now - l.last_change < std::chrono::seconds(1) && l.rate < l.configured) return std::nullopt;
  refill(l, now);
  const double floor = std::max(l.configured * k_floor_fraction, k_min_rate);
  const double before = l.rate;
  l.rate = std::max(floor, l.rate / 2);
  l.capacity = std::max(1.0, std::min(l.capacity, l.rate));
  l.tokens = std::min(l.tokens, l.capacity);
  l.last_change = now;
  if (l.rate == before) return std::nullopt;
  return fmt::format("lane {}: throttled by the provider; rate {} -> {}", name, per_minute(before), per_minute(l.rate));
}

std::vector<std::string> LaneShaper::recover(Clock::time_point now) {
  std::vector<std::string> lines;
  for (auto& [name, l] : m_lanes) {
    if (l.rate >= l.configured || !l.throttled_at) continue;
    if (now - *l.throttled_at < m_quiet || now - l.last_change < m_quiet) continue;
    refill(l, now);
    const double before = l.rate;
    l.rate = std::min(l.configured, l.rate + l.configured / 10);
    l.capacity = std::max(1.0, l.rate);
    l.last_change = now;
    lines.push_back(fmt::format("lane {}: quiet for {}s; rate {} -> {}", name, m_quiet.count(), per_minute(before),
                                per_minute(l.rate)));
  }
  return lines;
}

std::vector<LaneStatus> LaneShaper::status(Clock::time_point now, std::int64_t epoch_now) const {
  std::vector<LaneStatus> out;
  for (const auto& [name, l] : m_lanes) {
    LaneStatus s{name, l.configured, l.rate, 0};
    if (l.throttled_at) {
      s.throttled_at = epoch_now - std::chrono::duration_cast<std::chrono::seconds>(now - *l.throttled_at).count();
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace blindcast::delivery
