#include "delivery/providers.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "util/strings.hpp"

namespace blindcast::delivery {

const std::vector<LaneDefaults>& builtin_lanes() {
  // Rates are deliberately conservative starting points for a new sending IP;
  // operators raise them per lane as their reputation allows.
  static const std::vector<LaneDefaults> k_lanes = {
  // The MX patterns put companies hosted by these providers in their lanes
  // (mx: delivery only: through a relay MX hosts are not looked up).
      {"google", {"gmail.com", "googlemail.com"}, {"*.google.com", "*.googlemail.com"}, 50, 8},
      {"yahoo", {"yahoo.*", "ymail.com", "rocketmail.com", "aol.com"}, {"*.yahoodns.net"}, 10, 4},
      {"microsoft", {"outlook.*", "hotmail.*", "live.*", "msn.com"}, {"*.outlook.com"}, 20, 4},
      {"apple", {"icloud.com", "me.com", "mac.com"}, {"*.mail.icloud.com"}, 20, 4},
      {"netease", {"163.com", "126.com", "yeah.net"}, {"*.netease.com", "*.163.com"}, 5, 2},
      {"tencent", {"qq.com", "foxmail.com"}, {"*.qq.com"}, 10, 2},
      {"default", {}, {}, 0, 8},  // unshaped unless [shaping.default] sets a rate
  };
  return k_lanes;
}

namespace {

bool domain_matches(const LaneDefaults& lane, std::string_view domain) {
  for (const auto& d : lane.domains) {
    if (d.ends_with(".*")) {
      const std::string_view prefix(d.data(), d.size() - 1);  // "yahoo."
      // yahoo.com, yahoo.de, and two-label suffixes such as yahoo.co.uk
      if (domain.starts_with(prefix) && domain.size() > prefix.size() &&
          domain.substr(prefix.size()).size() <= 6) {
        return true;
      }
    } else if (domain == d) {
      return true;
    }
  }
  return false;
}

bool mx_matches(const LaneDefaults& lane, std::span<const std::string> hosts) {
  for (const auto& pattern : lane.mx) {
    for (const auto& host : hosts) {
      if (pattern.starts_with("*.")) {
        const std::string_view suffix(pattern.data() + 1, pattern.size() - 1);  // ".google.com"
        if (host.size() > suffix.size() && host.ends_with(suffix)) return true;
      } else if (host == pattern) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

std::optional<double> parse_rate(std::string_view text) {
  text = util::trim(text);
  const auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  // The whole count, in plain decimal: "5abc/s", "inf/s" and "0x10/s" are not rates.
  const std::string_view count = text.substr(0, slash);
  if (count.find_first_not_of("0123456789.") != std::string_view::npos) return std::nullopt;
  double n = 0;
  const auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
  if (ec != std::errc() || end != count.data() + count.size()) return std::nullopt;
  const std::string_view unit = text.substr(slash + 1);
  double per = 0;
  if (unit == "s" || unit == "sec") per = 1;
  if (unit == "min" || unit == "m") per = 60;
  if (unit == "h" || unit == "hour") per = 3600;
  if (per == 0 || !(n > 0)) return std::nullopt;
  const double rate = n / per;
  if (!std::isfinite(rate) || rate > k_max_rate_per_second) return std::nullopt;
  return rate;
}

LaneTable::LaneTable(std::vector<LaneDefaults> overrides) {
  std::vector<LaneDefaults> builtin = builtin_lanes();
  for (auto& o : overrides) {
    bool known = false;
    for (auto& b : builtin) {
      if (b.name != o.name) continue;
      known = true;
      if (!o.domains.empty()) b.domains.insert(b.domains.begin(), o.domains.begin(), o.domains.end());
      if (!o.mx.empty()) b.mx.insert(b.mx.begin(), o.mx.begin(), o.mx.end());
      if (o.rate_per_second > 0) b.rate_per_second = o.rate_per_second;
      if (o.connections > 0) b.connections = o.connections;
      if (o.burst > 0) b.burst = o.burst;
      if (o.messages_per_connection > 0) b.messages_per_connection = o.messages_per_connection;
    }
    if (!known) {
      if (o.rate_per_second <= 0) o.rate_per_second = 10;  // a new lane is shaped
      if (o.connections <= 0) o.connections = 2;
      m_lanes.push_back(o);
    }
  }
  for (auto& b : builtin) m_lanes.push_back(std::move(b));
}

const LaneDefaults& LaneTable::lane_for(std::string_view domain, std::span<const std::string> mx_hosts) const {
  for (const auto& lane : m_lanes) {
    if (domain_matches(lane, domain)) return lane;
  }
  if (!mx_hosts.empty()) {
    for (const auto& lane : m_lanes) {
      if (mx_matches(lane, mx_hosts)) return lane;
    }
  }
  return m_lanes.back();  // default
}

bool LaneTable::names(std::string_view domain) const {
  return std::any_of(m_lanes.begin(), m_lanes.end(), [&](const LaneDefaults& l) { return domain_matches(l, domain); });
}

bool LaneTable::matches_mx() const {
  return std::any_of(m_lanes.begin(), m_lanes.end(), [](const LaneDefaults& l) { return !l.mx.empty(); });
}

LaneTable LaneTable::unpaced() const {
  LaneTable t = *this;
  for (auto& l : t.m_lanes) l.rate_per_second = 0;
  return t;
}

}  // namespace blindcast::delivery
