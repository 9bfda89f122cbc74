#include "delivery/retry_schedule.hpp"

#include <algorithm>

namespace blindcast::delivery {

std::optional<std::int64_t> next_attempt_at(const RetryPolicy& policy, std::int64_t now, int attempts,
                                            std::int64_t first_attempt_at, std::uint64_t salt) {
  if (policy.steps_seconds.empty()) return std::nullopt;
  const std::int64_t first = first_attempt_at > 0 ? first_attempt_at : now;
  if (now - first >= policy.max_age_seconds) return std::nullopt;
  const std::size_t step = std::min<std::size_t>(static_cast<std::size_t>(std::max(attempts, 1) - 1),
                                                 policy.steps_seconds.size() - 1);
  const std::int64_t base = policy.steps_seconds[step];
  // ±10% jitter from a cheap mix of the salt.
  std::uint64_t h = salt * 0x9E3779B97F4A7C15ULL;
  h ^= h >> 31;
  const std::int64_t span = std::max<std::int64_t>(base / 5, 0);
  const std::int64_t jitter = span > 0 ? static_cast<std::int64_t>(h % static_cast<std::uint64_t>(span + 1)) - span / 2 : 0;
  const std::int64_t at = now + std::max<std::int64_t>(1, base + jitter);
  if (at - first > policy.max_age_seconds) return first + policy.max_age_seconds;  // one last try at the limit
  return at;
}

}  // namespace blindcast::delivery
