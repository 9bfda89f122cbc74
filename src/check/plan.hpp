// `plan`: what a send would do — recipients per provider lane and locale, the
// shaping each lane gets, and the estimated time to finish per lane and
// overall (lanes run side by side, so the slowest lane sets the total).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "util/diagnostic.hpp"
#include "util/error.hpp"

namespace blindcast::check {

struct LanePlan {
  std::string lane;
  std::int64_t recipients = 0;
  double rate_per_second = 0;
  int connections = 0;
  double seconds = 0;
};

struct SendPlan {
  std::vector<LanePlan> lanes;                       // busiest first
  std::map<std::string, std::int64_t> locales;       // row locale -> recipients
  std::int64_t recipients = 0;
  std::int64_t rejected = 0;
  std::int64_t duplicates = 0;
  double total_seconds = 0;
  std::string dominant_lane;                         // set when one lane sets the pace
};

// Builds the plan for the campaign in `dir`.
Result<SendPlan> make_plan(const std::filesystem::path& dir, util::Diagnostics& diags);

}  // namespace blindcast::check
