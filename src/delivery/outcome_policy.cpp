#include "delivery/outcome_policy.hpp"

#include <algorithm>
#include <cctype>

namespace blindcast::delivery {

namespace {

bool contains_ci(std::string_view hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         }) != hay.end();
}

// Yahoo: "421 4.7.0 [TSS04] Messages from ... temporarily deferred", "[TS01]".
bool yahoo_ts_code(std::string_view text) {
  for (std::size_t i = 0; i + 4 < text.size(); ++i) {
    if (text[i] == '[' && text[i + 1] == 'T' && text[i + 2] == 'S') {
      std::size_t j = i + 3;
      while (j < text.size() && std::isalnum(static_cast<unsigned char>(text[j]))) ++j;
      if (j < text.size() && text[j] == ']' && j > i + 3) return true;
    }
  }
  return false;
}

// Microsoft: "451 4.7.650 ... (S3150)", "(S3140)", "(S775)".
bool microsoft_s_code(std::string_view text) {
  for (std::size_t i = 0; i + 3 < text.size(); ++i) {
    if (text[i] == '(' && text[i + 1] == 'S' && std::isdigit(static_cast<unsigned char>(text[i + 2]))) {
      std::size_t j = i + 2;
      while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
      if (j < text.size() && text[j] == ')') return true;
    }
  }
  return false;
}

// A 5xx that says the mailbox itself is bad: never worth another try.
bool mailbox_is_bad(std::string_view enhanced) {
  if (enhanced.empty()) return true;  // a plain 550 from a server without enhanced codes
  if (enhanced.starts_with("5.1.")) return true;
  return enhanced == "5.2.1";  // mailbox disabled
}

}  // namespace

bool is_throttling(int code, std::string_view enhanced, std::string_view text) {
  if (code / 100 != 4) return false;
  const bool policy_code = enhanced.starts_with("4.7.") || code == 421;
  const bool wording = contains_ci(text, "rate limit") || contains_ci(text, "too many") ||
                       contains_ci(text, "throttl") || contains_ci(text, "slow down") ||
                       contains_ci(text, "try again later");
  return policy_code || yahoo_ts_code(text) || microsoft_s_code(text) || wording;
}

std::int64_t OutcomePolicy::retry_at(std::int64_t now, int attempts, std::int64_t first_attempt_at,
                                     std::uint64_t salt) const {
  const auto& steps = m_schedule.steps_seconds;
  if (steps.empty()) return 0;
  const std::int64_t first = first_attempt_at > 0 ? first_attempt_at : now;
  if (now - first >= m_schedule.max_age_seconds) return 0;
  const std::size_t step = std::min<std::size_t>(static_cast<std::size_t>(std::max(attempts, 1) - 1), steps.size() - 1);
  const std::int64_t base = steps[step];
  // ±10% jitter from a cheap mix of the salt.
  std::uint64_t h = salt * 0x9E3779B97F4A7C15ULL;
  h ^= h >> 31;
  const std::int64_t span = std::max<std::int64_t>(base / 5, 0);
  const std::int64_t jitter = span > 0 ? static_cast<std::int64_t>(h % static_cast<std::uint64_t>(span + 1)) - span / 2 : 0;
  const std::int64_t at = now + std::max<std::int64_t>(1, base + jitter);
  if (at - first > m_schedule.max_age_seconds) return first + m_schedule.max_age_seconds;  // one last try at the limit
  return at;
}

Decision OutcomePolicy::decide(const AttemptFacts& f, const AttemptHistory& history, std::int64_t now,
                               std::uint64_t salt) const {
  Decision d;
  d.reason = std::string(f.text);
  if (!f.attempted) {
    d.action = Action::k_not_attempted;
    d.counts_attempt = false;
    d.stop_transport = f.settings_failure;
    return d;
  }
  if (f.phase == Phase::k_connect && !f.maybe_delivered) {
    // No server took the envelope (refused, unreachable, a 4xx or 5xx
    // greeting): not an attempt, never a bounce. Held briefly; a throttle
    // still slows the lane.
    d.action = Action::k_not_attempted;
    d.counts_attempt = false;
    d.slow_lane = is_throttling(f.code, f.enhanced, f.text);
    d.retry_at = now + std::max<std::int64_t>(1, m_schedule.connect_hold_seconds);
    return d;
  }
  d.possible_duplicate = f.maybe_delivered;
  const int klass = f.code / 100;
  if (klass == 2 && !f.maybe_delivered) {
    d.action = Action::k_sent;
    return d;
  }
  if (klass == 5) {
    d.action = Action::k_bounce;
    d.suppress = mailbox_is_bad(f.enhanced);
    return d;
  }
  // 4xx, or no reply at all: try again later.
  d.slow_lane = is_throttling(f.code, f.enhanced, f.text);
  const std::int64_t first = history.first_attempt_at > 0 ? history.first_attempt_at : now;
  const std::int64_t at = retry_at(now, history.attempts_before + 1, first, salt);
  if (at == 0) {
    d.action = Action::k_fail;
    d.reason = "gave up after max_retry_age: " + d.reason;
    return d;
  }
  d.action = Action::k_retry;
  d.retry_at = at;
  return d;
}

}  // namespace blindcast::delivery
