// Shaping per provider lane (SPEC §5): each lane has a token bucket (its rate
// and burst) and a cap on messages in progress (its connections). A
// throttling reply halves the lane's rate, down to a floor; after a quiet
// period without one, the rate climbs back by a tenth of the configured rate
// per period (additive increase, multiplicative decrease). Lanes are
// independent: one lane's empty bucket never blocks another lane.
// Pure logic on an injected clock; not thread-safe (the send engine's journal
// thread owns it).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "delivery/providers.hpp"

namespace blindcast::delivery {

struct LaneStatus {
  std::string name;
  double configured_rate = 0;  // messages per second
  double rate = 0;             // now, after throttling
  std::int64_t throttled_at = 0;
};

class LaneShaper {
 public:
  using Clock = std::chrono::steady_clock;

  // Shapes `lanes`; `quiet_seconds` is the quiet period before speeding up.
  // Without `cap_in_progress` only rates are shaped: the caller caps each
  // lane's messages in progress elsewhere (the SMTP pool does, per lane).
  LaneShaper(const std::vector<LaneDefaults>& lanes, int quiet_seconds, Clock::time_point now,
             bool cap_in_progress = true);

  // Takes a token of `lane` when it may start a message now.
  bool try_acquire(const std::string& lane, Clock::time_point now);
  // A message of `lane` finished or went back to the queue.
  void release(const std::string& lane);
  // Messages of `lane` started and not yet released.
  [[nodiscard]] int in_progress(const std::string& lane) const;
  // True when `lane` is shaped (has a rate).
  [[nodiscard]] bool shaped(const std::string& lane) const { return m_lanes.contains(lane); }
  // Seconds from `now` until message number `position` (0 = next) of `lane` may start.
  [[nodiscard]] double wait_for(const std::string& lane, std::size_t position, Clock::time_point now) const;
  // Records a throttling reply; returns a log line when the rate changed.
  std::optional<std::string> throttled(const std::string& lane, Clock::time_point now);
  // Speeds lanes up after quiet periods; returns one log line per change.
  std::vector<std::string> recover(Clock::time_point now);
  // The lanes' rates now; `epoch_now` converts throttle times to unix seconds.
  [[nodiscard]] std::vector<LaneStatus> status(Clock::time_point now, std::int64_t epoch_now) const;

 private:
  struct Lane {
    double configured = 10;
    double rate = 10;
    double capacity = 10;
    double tokens = 10;
    int max_in_progress = 2;
    int in_progress = 0;
    Clock::time_point refilled;
    std::optional<Clock::time_point> throttled_at;
    Clock::time_point last_change;
  };
  void refill(Lane& lane, Clock::time_point now) const;
  std::map<std::string, Lane> m_lanes;
  std::chrono::seconds m_quiet;
  bool m_cap = true;
};

}  // namespace blindcast::delivery
