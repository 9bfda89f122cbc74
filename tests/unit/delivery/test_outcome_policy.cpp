// The outcome policy as one table: every reply class and local failure, in
// every phase, at every attempt age.
#include <gtest/gtest.h>

#include <array>
#include <set>

#include "delivery/outcome_policy.hpp"

namespace blindcast::delivery {
namespace {

constexpr std::int64_t k_t0 = 1'800'000'000;
constexpr std::int64_t k_day = 86400;

struct Row {
  const char* name;
  AttemptFacts facts;
  AttemptHistory history;
  std::int64_t now;
  Action action;
  bool suppress = false;
  bool slow_lane = false;
  bool stop = false;
  bool counts = true;
  bool duplicate = false;
};

TEST(OutcomePolicy, Table) {
  const OutcomePolicy policy({{60, 300, 1800, 7200}, 3 * k_day});
  const AttemptHistory first{0, 0};
  const AttemptHistory fourth{3, k_t0 - 2 * 3600};
  const AttemptHistory old{9, k_t0 - 3 * k_day};  // past max_retry_age
  const Row rows[] = {
      // not attempted
      {"stopped before it started", {false, false, 0, "", "not attempted: sending was stopped", Phase::k_none}, first, k_t0, Action::k_not_attempted, false, false, false, false},
      {"AUTH refused", {false, true, 0, "", "535 5.7.8 authentication failed", Phase::k_connect}, first, k_t0, Action::k_not_attempted, false, false, true, false},
      // 2xx
      {"250 at the end of DATA", {true, false, 250, "2.0.0", "OK queued", Phase::k_data_end}, first, k_t0, Action::k_sent},
      {"250 on a retry past the age", {true, false, 250, "2.0.0", "OK", Phase::k_data_end}, old, k_t0, Action::k_sent},
      // 5xx: the mailbox is bad -> suppressed
      {"550 5.1.1 at RCPT", {true, false, 550, "5.1.1", "no such user", Phase::k_envelope}, first, k_t0, Action::k_bounce, true},
      {"550 without enhanced code", {true, false, 550, "", "mailbox unavailable", Phase::k_envelope}, first, k_t0, Action::k_bounce, true},
      {"550 5.2.1 disabled", {true, false, 550, "5.2.1", "account disabled", Phase::k_envelope}, fourth, k_t0, Action::k_bounce, true},
      // 5xx that say nothing lasting about the address -> bounced, not suppressed
      {"554 5.7.1 policy at the end of DATA", {true, false, 554, "5.7.1", "rejected by policy", Phase::k_data_end}, first, k_t0, Action::k_bounce, false},
      {"552 5.2.2 mailbox full", {true, false, 552, "5.2.2", "mailbox full", Phase::k_data_end}, first, k_t0, Action::k_bounce, false},
      {"552 5.3.4 too big at DATA", {true, false, 552, "5.3.4", "message too big", Phase::k_data}, first, k_t0, Action::k_bounce, false},
      {"550 5.7.1 at MAIL", {true, false, 550, "5.7.1", "sender blocked", Phase::k_envelope}, first, k_t0, Action::k_bounce, false},
      // 4xx -> retry on the schedule; throttling slows the lane
      {"450 4.2.1 at RCPT, first", {true, false, 450, "4.2.1", "mailbox busy", Phase::k_envelope}, first, k_t0, Action::k_retry},
      {"451 4.3.0 at DATA, fourth", {true, false, 451, "4.3.0", "local problem", Phase::k_data}, fourth, k_t0, Action::k_retry},
      // no server took the envelope: not an attempt, never a bounce; held, unaged
      {"421 4.7.0 at connect", {true, false, 421, "4.7.0", "too many connections", Phase::k_connect}, first, k_t0, Action::k_not_attempted, false, true, false, false},
      {"connection refused", {true, false, 451, "4.4.1", "cannot connect: Connection refused", Phase::k_connect}, old, k_t0, Action::k_not_attempted, false, false, false, false},
      {"554 greeting", {true, false, 554, "5.7.1", "your IP is blocked", Phase::k_connect}, first, k_t0, Action::k_not_attempted, false, false, false, false},
      {"421 without code", {true, false, 421, "", "Service not available", Phase::k_envelope}, first, k_t0, Action::k_retry, false, true},
      {"451 4.7.1 greylisted", {true, false, 451, "4.7.1", "greylisted", Phase::k_envelope}, first, k_t0, Action::k_retry, false, true},
      {"Yahoo TSS04", {true, false, 421, "4.7.0", "[TSS04] Messages from 1.2.3.4 temporarily deferred due to unexpected volume", Phase::k_envelope}, first, k_t0, Action::k_retry, false, true},
      {"Yahoo TS01 in a 451", {true, false, 451, "", "[TS01] Messages from 1.2.3.4 temporarily deferred", Phase::k_envelope}, first, k_t0, Action::k_retry, false, true},
      {"Microsoft S3150", {true, false, 451, "4.7.650", "The mail server has been temporarily rate limited (S3150)", Phase::k_envelope}, first, k_t0, Action::k_retry, false, true},
      {"too many recipients this hour", {true, false, 452, "", "Too many recipients received this hour", Phase::k_envelope}, first, k_t0, Action::k_retry, false, true},
      {"please slow down", {true, false, 450, "", "please slow down", Phase::k_data_end}, first, k_t0, Action::k_retry, false, true},
      {"a 5xx rate text is no throttle", {true, false, 550, "5.7.1", "rate limit exceeded", Phase::k_envelope}, first, k_t0, Action::k_bounce, false, false},
      // no reply
      {"timeout at RCPT", {true, false, 0, "", "timed out waiting for RCPT reply", Phase::k_envelope}, first, k_t0, Action::k_retry},
      {"lost after the end of DATA", {true, false, 0, "", "connection lost after the end of DATA", Phase::k_data_end, true}, first, k_t0, Action::k_retry, false, false, false, true, true},
      // past max_retry_age
      {"450 past max_retry_age", {true, false, 450, "4.2.1", "mailbox busy", Phase::k_envelope}, old, k_t0, Action::k_fail},
      {"421 throttle past max_retry_age", {true, false, 421, "4.7.0", "slow down", Phase::k_envelope}, old, k_t0, Action::k_fail, false, true},
      {"lost after DATA past the age", {true, false, 0, "", "lost", Phase::k_data_end, true}, old, k_t0, Action::k_fail, false, false, false, true, true},
  };
  for (const auto& r : rows) {
    const auto d = policy.decide(r.facts, r.history, r.now, 42);
    EXPECT_EQ(d.action, r.action) << r.name;
    EXPECT_EQ(d.suppress, r.suppress) << r.name;
    EXPECT_EQ(d.slow_lane, r.slow_lane) << r.name;
    EXPECT_EQ(d.stop_transport, r.stop) << r.name;
    EXPECT_EQ(d.counts_attempt, r.counts) << r.name;
    EXPECT_EQ(d.possible_duplicate, r.duplicate) << r.name;
    if (d.action == Action::k_retry) {
      const std::int64_t step = std::array<std::int64_t, 4>{60, 300, 1800, 7200}[std::min(r.history.attempts_before, 3)];
      EXPECT_GE(d.retry_at - r.now, step - step / 10 - 1) << r.name;
      EXPECT_LE(d.retry_at - r.now, step + step / 10 + 1) << r.name;
    }
    if (d.action == Action::k_fail) {
      EXPECT_NE(d.reason.find("max_retry_age"), std::string::npos) << r.name;
    }
    if (r.facts.attempted && d.action == Action::k_not_attempted) {
      EXPECT_EQ(d.retry_at, r.now + 60) << r.name << ": held for connect_hold_seconds";
    }
  }
}

// Every reply class (and the local failures) in every phase at every
// attempt age: the rules that hold whatever the wording.
TEST(OutcomePolicy, EveryClassInEveryPhaseAtEveryAge) {
  const OutcomePolicy policy({{60, 300, 1800, 7200}, 3 * k_day});
  struct Class {
    const char* name;
    bool attempted, settings;
    int code;
    const char* enhanced;
    const char* text;
    bool lost_after_dot;
  };
  const Class classes[] = {
      {"2xx", true, false, 250, "2.0.0", "OK", false},
      {"4xx", true, false, 451, "4.3.0", "try later", false},
      {"4xx throttling", true, false, 421, "4.7.0", "slow down", false},
      {"5xx", true, false, 550, "5.7.1", "refused", false},
      {"no reply (timeout)", true, false, 0, "", "timed out", false},
      {"lost after the end of DATA", true, false, 0, "", "connection lost", true},
      {"not attempted", false, false, 0, "", "not attempted: stopped", false},
      {"settings failure", false, true, 0, "", "535 5.7.8 authentication failed", false},
  };
  const Phase phases[] = {Phase::k_none, Phase::k_connect, Phase::k_envelope, Phase::k_data, Phase::k_data_end};
  const AttemptHistory ages[] = {{0, 0}, {3, k_t0 - 2 * 3600}, {9, k_t0 - 3 * k_day}};
  int cases = 0;
  for (const auto& c : classes) {
    for (const Phase phase : phases) {
      for (const auto& age : ages) {
        ++cases;
        const bool old = age.first_attempt_at != 0 && k_t0 - age.first_attempt_at >= 3 * k_day;
        const AttemptFacts f{c.attempted, c.settings, c.code, c.enhanced, c.text, phase, c.lost_after_dot};
        const auto d = policy.decide(f, age, k_t0, 7);
        const std::string where = std::string(c.name) + " in phase " + std::to_string(static_cast<int>(phase)) +
                                  " after " + std::to_string(age.attempts_before) + " attempts";
        // A failed connection (no server took the envelope) is no attempt.
        const bool no_server = phase == Phase::k_connect && !c.lost_after_dot;
        // Only an attempt counts as one; only one lost after the end of DATA may have arrived.
        EXPECT_EQ(d.counts_attempt, c.attempted && !no_server) << where;
        EXPECT_EQ(d.possible_duplicate, c.lost_after_dot) << where;
        EXPECT_EQ(d.stop_transport, c.settings) << where;
        EXPECT_FALSE(d.reason.empty() && d.action != Action::k_sent) << where;
        if (!c.attempted) {
          EXPECT_EQ(d.action, Action::k_not_attempted) << where;
        } else if (no_server) {
          EXPECT_EQ(d.action, Action::k_not_attempted) << where;  // at any age, whatever the code
          EXPECT_GT(d.retry_at, k_t0) << where;                   // held, then tried again
          EXPECT_FALSE(d.suppress) << where;
        } else if (c.code / 100 == 2) {
          EXPECT_EQ(d.action, Action::k_sent) << where;  // at any age: it arrived
        } else if (c.code / 100 == 5) {
          EXPECT_EQ(d.action, Action::k_bounce) << where;  // never retried, at any age
        } else {
          // 4xx, no reply, lost: retried until max_retry_age, then failed.
          EXPECT_EQ(d.action, old ? Action::k_fail : Action::k_retry) << where;
          if (d.action == Action::k_retry) {
            EXPECT_GT(d.retry_at, k_t0) << where;
          }
        }
        EXPECT_EQ(d.slow_lane, std::string(c.name) == "4xx throttling") << where;
        EXPECT_FALSE(d.suppress && c.code / 100 != 5) << where;
      }
    }
  }
  EXPECT_EQ(cases, 8 * 5 * 3);
}

TEST(OutcomePolicy, RetryStepsRepeatWithJitterAndEndAtTheAge) {
  const OutcomePolicy p({{60, 300, 1800, 7200}, 3 * k_day});
  for (int attempt = 1; attempt <= 6; ++attempt) {
    const std::int64_t base = std::array<std::int64_t, 4>{60, 300, 1800, 7200}[std::min(attempt - 1, 3)];
    std::set<std::int64_t> seen;
    for (std::uint64_t salt = 0; salt < 50; ++salt) {
      const auto at = p.retry_at(k_t0, attempt, k_t0, salt);
      EXPECT_GE(at - k_t0, base - base / 10 - 1) << attempt;
      EXPECT_LE(at - k_t0, base + base / 10 + 1) << attempt;
      seen.insert(at);
    }
    EXPECT_GT(seen.size(), 5U) << "retries of one batch spread out";
  }
  EXPECT_EQ(p.retry_at(k_t0 + 3 * k_day, 9, k_t0, 1), 0) << "past max_retry_age: give up";
  EXPECT_EQ(p.retry_at(k_t0 + 3 * k_day - 100, 9, k_t0, 1), k_t0 + 3 * k_day) << "one last try at the limit";
}

}  // namespace
}  // namespace blindcast::delivery
