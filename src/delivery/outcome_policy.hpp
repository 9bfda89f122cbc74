// What the outcome of one delivery attempt means, decided in one place
// (SPEC §5): sent, retry at a time, bounce (and whether to suppress the
// address), fail, or "not attempted"; and whether the lane must slow down
// or the transport stop. Every sender of blindcast (the campaign engine
// now; transactional streams and other nodes next) asks this module, and
// only this module. Pure logic on the facts a transport reports.
//
//  not attempted (stopped, or a settings failure) -> pending again, no attempt counted;
//                  a settings failure (AUTH refused, TLS required but absent) also stops the transport
//  2xx                                   -> sent
//  5xx                                   -> bounced; the address is suppressed when the status says the
//                                           mailbox is bad (5.1.x, 5.2.1, or no enhanced code), not for
//                                           policy or content refusals (5.7.x, 5.3.x, 5.6.x) nor a full
//                                           mailbox (5.2.2): those say nothing lasting about the address
//  4xx, or no reply (connection lost, timeout)
//                                        -> retry on the [delivery] retry schedule (the last step repeats,
//                                           ±10% jitter per recipient); past max_retry_age since the first
//                                           attempt, failed
//  lost after the end of DATA            -> as 4xx, and counted as a possible duplicate
//  throttling: 421, any 4.7.x, Yahoo's "[TSnn]", Microsoft's "(S3150)"-style codes, "rate limit",
//              "too many", "throttl", "slow down", "try again later"
//                                        -> also slow the lane down (4xx only)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace blindcast::delivery {

// Where in the SMTP dialogue the attempt ended.
enum class Phase {
  k_none,      // never started (not attempted)
  k_connect,   // connecting, greeting, EHLO, STARTTLS, AUTH
  k_envelope,  // MAIL or RCPT
  k_data,      // DATA and the message body
  k_data_end,  // the final reply to the end of DATA
};

// What the transport saw.
struct AttemptFacts {
  bool attempted = true;         // false: no byte of it reached the server
  bool settings_failure = false; // with !attempted: AUTH refused, TLS required but absent
  int code = 0;                  // reply code; 0: no reply (connection lost, timeout)
  std::string_view enhanced;     // RFC 3463 status ("4.7.0") or empty
  std::string_view text;         // the reply's text or the local reason
  Phase phase = Phase::k_data_end;
  bool maybe_delivered = false;  // lost after the end of DATA was written
};

// The recipient's history: attempts before this one and the first one's time.
struct AttemptHistory {
  int attempts_before = 0;
  std::int64_t first_attempt_at = 0;  // unix seconds; 0: this is the first
};

struct RetrySchedule {
  std::vector<std::int64_t> steps_seconds = {60, 300, 1800, 7200};
  std::int64_t max_age_seconds = 3 * 86400;
  // A recipient whose message never reached a server (the connection or its
  // greeting failed) waits this long, unaged: the relay's outage is not the
  // recipient's, and the send gives up on the relay instead ([transport]
  // give_up_after).
  std::int64_t connect_hold_seconds = 60;
};

enum class Action { k_sent, k_retry, k_bounce, k_fail, k_not_attempted };

struct Decision {
  Action action = Action::k_sent;
  std::int64_t retry_at = 0;     // for k_retry: unix seconds; for k_not_attempted: held until then (0: not held)
  bool suppress = false;         // for k_bounce: the address is put on the suppression list
  bool slow_lane = false;        // a throttling reply: the lane slows down
  bool stop_transport = false;   // a settings failure: nothing more can be sent
  bool counts_attempt = true;    // the attempt counts (attempts, first_attempt_at)
  bool possible_duplicate = false;
  std::string reason;            // what a person reads in status ("gave up after max_retry_age: ...")
};

// True when a 4xx reply with `code`, `enhanced` and `text` asks the sender to slow down.
bool is_throttling(int code, std::string_view enhanced, std::string_view text);

class OutcomePolicy {
 public:
  explicit OutcomePolicy(RetrySchedule schedule = {}) : m_schedule(std::move(schedule)) {}

  // Decides what `facts` mean for a recipient with `history`, at `now`;
  // `salt` (the recipient's id) spreads retries of one batch apart.
  [[nodiscard]] Decision decide(const AttemptFacts& facts, const AttemptHistory& history, std::int64_t now,
                                std::uint64_t salt) const;

  // When to retry after attempt number `attempts` (1 = the first) of a
  // sequence that began at `first_attempt_at`; 0 when it is given up.
  [[nodiscard]] std::int64_t retry_at(std::int64_t now, int attempts, std::int64_t first_attempt_at,
                                      std::uint64_t salt) const;

 private:
  RetrySchedule m_schedule;
};

}  // namespace blindcast::delivery
