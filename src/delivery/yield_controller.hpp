// Campaigns yield to transactional mail (SPEC §8: "transactional first").
//
// Ranks in the connection queue put a password reset ahead of the campaign's
// queued messages, but when a campaign sends at full speed it also fills the
// machine: the CPU, the relay's queue, the disk. A transactional message then
// waits at every hand-over on its way for something busy with the campaign.
// The controller keeps that wait small the way LEDBAT (RFC 6817) keeps
// background traffic from adding delay to foreground traffic: it measures
// how long transactional messages take from their submission to the relay's
// reply, learns the shortest such time as the base, and while they arrive it
// limits the rate at which campaign messages (priority 1) start:
//   - a transactional message slower than the target, `target_factor` × base
//     but at least `min_target`, cuts the rate to `decrease` of itself (at
//     most once per `decrease_spacing`, so a burst of late replies from one
//     stall counts once);
//   - one within it raises the rate by `increase` of the campaign's full
//     speed (additive increase, multiplicative decrease), but only while
//     the campaigns use at least half of what they may: a limit they do not
//     reach says nothing about the machine (RFC 7661's rule for an idle
//     congestion window);
//   - the rate never falls below `floor_share` of the campaign's full speed
//     (a steady stream of password resets slows an announcement, it does not
//     stop it);
//   - `release_after` without a transactional message, and none in flight
//     (or `max_hold` after the last one, whatever is in flight), lifts the
//     limit; the next spell starts at the rate this one ended with (within
//     `remember_for`), else at half the full speed.
// The campaign's full speed is measured in windows during which campaign
// messages were queued the whole time (the campaign had more to send than it
// sent) and no limit applied; under a limit only a higher speed counts. Pure
// logic on an injected clock; not thread-safe (the transport's I/O loop owns
// it).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace blindcast::delivery {

struct YieldSettings {
  bool enabled = true;
  double target_factor = 4.0;  // a transactional message within base × this is on time
  std::chrono::microseconds min_target{500};  // ... or within this, whichever is longer
  double decrease = 0.75;
  double increase = 0.02;
  double floor_share = 0.10;
  std::chrono::milliseconds decrease_spacing{10};
  std::chrono::milliseconds release_after{3000};
  std::chrono::minutes remember_for{10};
  std::chrono::seconds max_hold{60};
};

class YieldController {
 public:
  using Clock = std::chrono::steady_clock;

  explicit YieldController(YieldSettings settings = {}) : m_s(settings) {}

  // A transactional message is coming (its request arrived) or was
  // submitted: the limit applies from now on.
  void urgent_submitted(Clock::time_point now);
  // A transactional message took `latency` from its submission to its reply.
  void urgent_replied(Clock::time_point now, std::chrono::microseconds latency);
  // Called often (each round of the I/O loop): `bulk_started` counts every
  // campaign message started so far, `bulk_queued` says whether one waits
  // to start, `urgent_in_flight` counts transactional messages submitted
  // and not finished. Measures the full speed, lifts the limit.
  void tick(Clock::time_point now, std::uint64_t bulk_started, bool bulk_queued, std::size_t urgent_in_flight);
  // True when a campaign message may start now; bulk_taken() when one did.
  bool bulk_ready(Clock::time_point now);
  void bulk_taken();
  // When the next campaign message may start (now when there is no limit).
  [[nodiscard]] Clock::time_point next_bulk(Clock::time_point now) const;

  [[nodiscard]] bool limiting() const { return m_limiting; }
  // Campaign messages per second allowed now; 0 when there is no limit.
  [[nodiscard]] double rate() const { return m_limiting ? m_rate : 0.0; }
  // The campaign's measured full speed (messages per second).
  [[nodiscard]] double full_rate() const { return m_full; }
  // Spells of limiting so far.
  [[nodiscard]] std::uint64_t spells() const { return m_spells; }
  // The base delay and the target, in microseconds (0 before the first reply).
  [[nodiscard]] std::int64_t base_us() const;
  [[nodiscard]] std::int64_t target_us() const;

 private:
  void start_limit(Clock::time_point now);
  [[nodiscard]] double floor() const;

  YieldSettings m_s;
  bool m_limiting = false;
  std::uint64_t m_spells = 0;
  double m_rate = 0;       // campaign messages per second while limiting
  double m_last_rate = 0;  // where the last limit ended (0: none yet)
  Clock::time_point m_released{};
  // The campaigns used at least half of what they could in the last whole
  // window (all of it without a limit: they were sending at all).
  bool m_demand = false;
  double m_tokens = 0;
  Clock::time_point m_refilled{};
  Clock::time_point m_last_urgent{};
  Clock::time_point m_last_decrease{};
  // Full speed: campaign starts counted over windows of k_window while no
  // limit applies, smoothed.
  static constexpr std::chrono::milliseconds k_window{250};
  double m_full = 0;
  std::uint64_t m_window_started = 0;
  Clock::time_point m_window_at{};
  bool m_window_clean = false;     // no limit during the whole window
  bool m_window_supplied = false;  // campaign messages queued at every tick of it
  // Base delay: the shortest latency of each of the last k_minutes minutes
  // (RFC 6817 §2.4.1's base delay history), so that it follows a change of
  // relay within minutes and one fast reply long ago does not stick.
  static constexpr std::size_t k_minutes = 10;
  std::array<std::int64_t, k_minutes> m_minima{};  // 0: none that minute
  std::int64_t m_minute = -1;                      // minutes since the epoch of the clock
};

}  // namespace blindcast::delivery
