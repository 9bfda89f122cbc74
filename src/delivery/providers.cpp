#include "delivery/providers.hpp"

namespace blindcast::delivery {

const std::vector<LaneDefaults>& builtin_lanes() {
  // Rates are deliberately conservative starting points for a new sending IP;
  // operators raise them per lane as their reputation allows.
  static const std::vector<LaneDefaults> k_lanes = {
      {"google", {"gmail.com", "googlemail.com"}, 50, 8},
      {"yahoo", {"yahoo.*", "ymail.com", "rocketmail.com", "aol.com"}, 10, 4},
      {"microsoft", {"outlook.*", "hotmail.*", "live.*", "msn.com"}, 20, 4},
      {"apple", {"icloud.com", "me.com", "mac.com"}, 20, 4},
      {"netease", {"163.com", "126.com", "yeah.net"}, 5, 2},
      {"tencent", {"qq.com", "foxmail.com"}, 10, 2},
      {"default", {}, 20, 8},
  };
  return k_lanes;
}

std::string lane_for_domain(std::string_view domain) {
  for (const auto& lane : builtin_lanes()) {
    for (const auto& d : lane.domains) {
      if (d.ends_with(".*")) {
        const std::string_view prefix(d.data(), d.size() - 1);  // "yahoo."
        if (domain.starts_with(prefix) && domain.find('.', prefix.size()) == std::string_view::npos) {
          return lane.name;
        }
        // co.uk-style: yahoo.co.uk
        if (domain.starts_with(prefix) && domain.size() > prefix.size() &&
            domain.substr(prefix.size()).find('.') != std::string_view::npos &&
            domain.substr(prefix.size()).size() <= 6) {
          return lane.name;
        }
      } else if (domain == d) {
        return lane.name;
      }
    }
  }
  return "default";
}

}  // namespace blindcast::delivery
