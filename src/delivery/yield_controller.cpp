#include "delivery/yield_controller.hpp"

#include <algorithm>

namespace blindcast::delivery {

namespace {

std::int64_t minute_of(YieldController::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::minutes>(t.time_since_epoch()).count();
}

}  // namespace

double YieldController::floor() const {
  // Without a measured full speed, a tenth of 1,000 a second (the default share).
  return (m_full > 0 ? m_full : 1000.0) * m_s.floor_share;
}

void YieldController::start_limit(Clock::time_point now) {
  m_limiting = true;
  ++m_spells;
  // Not at full speed: the first transactional messages of a spell would
  // pay for finding the rate. Where the last spell ended, while that is
  // recent; a limit under the right one climbs by the increase step per
  // reply on time (at 50 replies a second: the full speed in a second).
  const bool remembered = m_last_rate > 0 && now - m_released < m_s.remember_for;
  m_rate = std::max(floor(), remembered ? m_last_rate : 0.5 * m_full);
  m_tokens = 1;
  m_refilled = now;
  m_window_clean = false;
}

void YieldController::urgent_submitted(Clock::time_point now) {
  if (!m_s.enabled) return;
  m_last_urgent = now;
  if (!m_limiting) start_limit(now);
}

void YieldController::urgent_replied(Clock::time_point now, std::chrono::microseconds latency) {
  if (!m_s.enabled) return;
  m_last_urgent = now;
  const std::int64_t us = std::max<std::int64_t>(1, latency.count());
  const std::int64_t minute = minute_of(now);
  if (minute != m_minute) {
    // Minutes without a reply leave no minimum.
    const std::int64_t gap = m_minute < 0 ? static_cast<std::int64_t>(k_minutes) : minute - m_minute;
    for (std::int64_t i = 1; i <= std::min<std::int64_t>(gap, k_minutes); ++i) {
      m_minima[static_cast<std::size_t>((m_minute + i) % static_cast<std::int64_t>(k_minutes))] = 0;
    }
    m_minute = minute;
  }
  auto& slot = m_minima[static_cast<std::size_t>(minute % static_cast<std::int64_t>(k_minutes))];
  if (slot == 0 || us < slot) slot = us;
  if (!m_limiting) start_limit(now);
  if (us > target_us()) {
    if (now - m_last_decrease >= m_s.decrease_spacing) {
      m_rate = std::max(floor(), m_rate * m_s.decrease);
      m_last_decrease = now;
    }
  } else if (m_demand) {
    const double step = std::max(m_full, 1000.0) * m_s.increase;
    m_rate += step;
  }
}

void YieldController::tick(Clock::time_point now, std::uint64_t bulk_started, bool bulk_queued,
                           std::size_t urgent_in_flight) {
  if (m_window_at == Clock::time_point{}) {
    m_window_at = now;
    m_window_started = bulk_started;
    m_window_clean = !m_limiting;
    m_window_supplied = true;
  }
  m_window_supplied = m_window_supplied && bulk_queued;
  if (now - m_window_at >= k_window) {
    const double seconds = std::chrono::duration<double>(now - m_window_at).count();
    const double measured = static_cast<double>(bulk_started - m_window_started) / seconds;
    // A campaign that ran out of queued messages, or started none, says
    // nothing about the machine; nor does a long window (a gap between
    // ticks: the loop had nothing to do).
    const bool telling = m_window_supplied && measured > 0 && now - m_window_at < 4 * k_window;
    m_demand = telling && (!m_limiting || measured >= 0.5 * m_rate);
    if (telling && m_window_clean && !m_limiting) {
      m_full = m_full <= 0 ? measured : 0.5 * m_full + 0.5 * measured;
    } else if (telling && measured > m_full) {
      m_full = measured;  // under a limit: it can do at least this
    }
    m_window_at = now;
    m_window_started = bulk_started;
    m_window_clean = !m_limiting;
    m_window_supplied = bulk_queued;
  }
  // Lifted once transactional mail stopped: none for a while and none on
  // its way (a relay that takes long to answer is the very case to hold
  // on for), or long after the last one whatever is in flight.
  const auto quiet = now - m_last_urgent;
  if (m_limiting && quiet >= m_s.release_after && (urgent_in_flight == 0 || quiet >= m_s.max_hold)) {
    m_limiting = false;
    m_last_rate = m_rate;
    m_released = now;
    m_window_clean = false;  // the window that saw the limit does not count
  }
  // A limit above the full speed limits nothing; keep it from growing without bound.
  if (m_limiting && m_full > 0) m_rate = std::min(m_rate, std::max(2 * m_full, floor()));
}

bool YieldController::bulk_ready(Clock::time_point now) {
  if (!m_limiting) return true;
  const double elapsed = std::chrono::duration<double>(now - m_refilled).count();
  m_refilled = now;
  // A burst of at most 2 ms worth: the rate holds over short spans too.
  const double burst = std::max(1.0, m_rate * 0.002);
  m_tokens = std::min(burst, m_tokens + elapsed * m_rate);
  return m_tokens >= 1;
}

void YieldController::bulk_taken() {
  if (m_limiting) m_tokens -= 1;
}

YieldController::Clock::time_point YieldController::next_bulk(Clock::time_point now) const {
  if (!m_limiting || m_rate <= 0) return now;
  const double elapsed = std::chrono::duration<double>(now - m_refilled).count();
  const double have = m_tokens + elapsed * m_rate;
  if (have >= 1) return now;
  return now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>((1 - have) / m_rate));
}

std::int64_t YieldController::base_us() const {
  std::int64_t best = 0;
  for (const auto m : m_minima) {
    if (m > 0 && (best == 0 || m < best)) best = m;
  }
  return best;
}

std::int64_t YieldController::target_us() const {
  const auto base = base_us();
  if (base == 0) return 0;
  return std::max<std::int64_t>(static_cast<std::int64_t>(static_cast<double>(base) * m_s.target_factor),
                                m_s.min_target.count());
}

}  // namespace blindcast::delivery
