// The send engine: takes recipients from per-lane queues, has them built and
// guarded, records them in flight in small group commits, hands them to the
// transport, and records each outcome as the outcome policy decides it.
//
// Threads (two cores are the rule, not the exception):
//  - the feeder (the caller's thread) keeps each lane stocked with built
//    messages: it reads due recipients of that lane from the store (by id,
//    never in audience order across lanes), has the builders build and guard
//    them, and stops a lane's reading when enough wait for it (its rate for
//    a few seconds); a throttled lane's backlog therefore never holds up
//    another lane. Deferred recipients come back when their retry is due.
//  - the journal thread owns the lanes' shaping (delivery::LaneShaper: each
//    lane's rate, burst and connection cap) and the in-flight window. Each
//    cycle (every millisecond or so, as results arrive) it decides the
//    outcomes that came back (delivery::OutcomePolicy), picks the next
//    messages lane by lane in turn — a lane only when its bucket has a token
//    and it is under its cap — admits them on the guard's ledger, and
//    records outcomes and the new flight in ONE transaction before it hands
//    the new messages to the transport, then confirms the recorded results
//    to the transport. At most `window` messages are in flight (recorded in
//    flight, outcome not recorded): after a crash those and nothing else
//    are "possibly delivered". Of them, the transport starts a message only
//    while fewer than `unconfirmed` are on a connection or finished without
//    a confirmation: those and nothing else can actually arrive twice.
//  - the delivery thread polls the transport and passes each result back
//    the moment it is known, so one slow reply holds up nothing.
//  - the builders (compose::MessagePreparer), at a lower priority.
//
// Priorities: each lane holds a queue per priority (0 first); the campaign's
// messages are priority 1, so a transactional stream at priority 0 sharing a
// lane and the connections goes first.
//
// The engine stops starting messages on a halt, a signal, a guard violation
// (the feeder's builders found one), a limit of the guard's ledger, a
// settings failure of the transport or a store write error; it then waits
// for the messages already handed over, records their outcomes, and returns
// why it stopped. Nothing is handed over that is not recorded in flight.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "campaign/campaign.hpp"
#include "compose/message_preparer.hpp"
#include "delivery/outcome_policy.hpp"
#include "delivery/providers.hpp"
#include "delivery/transport.hpp"
#include "guard/privacy_guard.hpp"
#include "guard/send_ledger.hpp"
#include "store/state_store.hpp"

namespace blindcast::send {

struct SendProgress {
  std::int64_t total = 0;           // recipients of the stage
  std::int64_t done = 0;            // finished before this run
  std::int64_t sent_this_run = 0;
  std::int64_t failed_this_run = 0;
  double elapsed_seconds = 0;
  double recent_rate = 0;           // messages/s over the last few seconds
  std::int64_t in_flight = 0;       // recorded in flight, outcome not recorded
  std::string last_reply;           // the last reply that was not a 2xx (masked)
  std::map<std::string, std::int64_t> sent_by_lane;
  std::map<std::string, std::int64_t> deferred_by_lane;
  std::map<std::string, std::int64_t> bounced_by_lane;
  std::map<std::string, double> rate_by_lane;       // shaped lanes: current rate (messages/s)
  std::map<std::string, double> configured_by_lane; // shaped lanes: configured rate (messages/s)
  std::map<std::string, std::int64_t> todo_by_lane; // due when this run started
};

struct EngineSettings {
  std::string stage = "full";
  bool canary_only = false;
  std::size_t window = 80;          // messages recorded in flight at most (outcome not recorded)
  std::size_t unconfirmed = 40;     // of them, on a connection or finished but not recorded (0: no limit;
                                    // Transport::limit_unconfirmed): what a crash can deliver twice
  std::size_t claim = 500;          // recipients read from the store at a time, per lane
  std::size_t stock_unshaped = 4000;  // built messages kept ready for an unshaped lane
  double stock_seconds = 3;         // ... for a shaped lane: its rate for this long (at least 32)
  int throttle_quiet_seconds = 60;
  // No message accepted for this long while the connections fail: the relay
  // is unreachable; the send stops (k_settings) with the reason.
  std::chrono::seconds give_up_after{300};
  std::int64_t total = 0;           // recipients of the stage (for progress)
  std::int64_t done = 0;            // of them finished before this run
};

enum class StopReason {
  k_finished,          // every recipient of the stage has its outcome (or waits past this run)
  k_stopped,           // a halt or a signal
  k_guard,             // a privacy guard violation (see violation)
  k_limit,             // a limit of the guard's ledger (see violation)
  k_settings,          // the transport cannot send with these settings (see detail)
  k_failure,           // the store or the transport failed (see detail)
};

struct EngineResult {
  StopReason reason = StopReason::k_finished;
  std::string detail;               // for k_settings and k_failure
  std::optional<guard::Violation> violation;  // for k_guard and k_limit
  std::int64_t violation_line = 0;  // the audience line of the message
  std::string violation_data;       // the message, for quarantine
  SendProgress progress;
};

class Engine {
 public:
  // `reader` is the caller's store (read on this thread); `writer` a second
  // connection to the same store for the journal thread.
  Engine(const campaign::LoadedCampaign& campaign, store::Journal& reader, store::StateStore& writer,
         delivery::Transport& transport, compose::MessagePreparer& preparer, guard::SendLedger& ledger,
         const delivery::LaneTable& lanes, delivery::OutcomePolicy policy, EngineSettings settings);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs until the stage is finished or the engine stops; `stopped` is
  // polled (halt, signals); `on_progress` is called at most every 100 ms,
  // from the journal thread.
  EngineResult run(const std::function<bool()>& stopped,
                   const std::function<void(const SendProgress&)>& on_progress);

  struct Impl;

 private:
  std::unique_ptr<Impl> m_impl;
};

}  // namespace blindcast::send
