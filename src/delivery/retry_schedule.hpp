// When to try a deferred message again (SPEC §5): the `[delivery] retry`
// steps in order, the last one repeating, each with ±10% jitter so retries
// of a large batch spread out; past `max_retry_age` since the first attempt
// the message is given up as failed.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace blindcast::delivery {

struct RetryPolicy {
  std::vector<std::int64_t> steps_seconds = {60, 300, 1800, 7200};
  std::int64_t max_age_seconds = 3 * 86400;
};

// Returns when to retry after attempt number `attempts` (1 = first) that
// began the sequence at `first_attempt_at`, or nullopt to give up. `salt`
// varies the jitter per recipient.
std::optional<std::int64_t> next_attempt_at(const RetryPolicy& policy, std::int64_t now, int attempts,
                                            std::int64_t first_attempt_at, std::uint64_t salt);

}  // namespace blindcast::delivery
