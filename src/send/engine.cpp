#include "send/engine.hpp"

#include <algorithm>
#include <cmath>
#include <atomic>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "delivery/lane_shaper.hpp"
#include "store/outcome_log.hpp"
#include "util/log.hpp"
#include "util/mask.hpp"
#include "util/threads.hpp"
#include "util/utf8.hpp"

namespace blindcast::send {

namespace {

using Clock = std::chrono::steady_clock;
using compose::PreparedMessage;
using delivery::Action;
using delivery::DeliveryResult;
using store::RecipientState;

constexpr int k_priorities = 2;               // 0: transactional, 1: campaigns
constexpr int k_campaign_priority = 1;
constexpr auto k_recheck = std::chrono::seconds(10);  // an exhausted lane is read again (retries due)
constexpr std::size_t k_min_stock = 32;
// Outcomes are in the outcome log (and confirmed) before the journal sees
// them: a commit records them in the store, lands flights and records the
// next flight every k_cycle; a commit that records a flight is synced.
constexpr auto k_cycle = std::chrono::milliseconds(8);  // results gathered into one commit, at most
constexpr auto k_sync = std::chrono::milliseconds(8);   // messages wait for their flight's sync, at most

constexpr std::size_t k_max_reply = 2048;  // bytes of a reply recorded
// Nodes sharing a store reserve a shaped lane's sends from it this many
// seconds of the lane's rate at a time (store::Journal::reserve_sends).
constexpr double k_grant_seconds = 0.25;
// How often such a node asks the store again for its share of each capped
// lane's connections (store::Journal::share_connections).
constexpr auto k_share_every = std::chrono::milliseconds(200);

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

}  // namespace

struct Engine::Impl {
  Impl(const campaign::LoadedCampaign& c, store::Journal& r, store::StateStore& w, delivery::Transport& t,
       compose::MessagePreparer& p, guard::SendLedger& l, const delivery::LaneTable& table,
       delivery::OutcomePolicy pol, EngineSettings s)
      : campaign(c),
        reader(r),
        writer(w),
        transport(t),
        preparer(p),
        ledger(l),
        policy(std::move(pol)),
        settings(std::move(s)),
        cluster_paced(w.paces_cluster()),
        shaper(table.lanes(), settings.throttle_quiet_seconds, Clock::now(), /*cap_in_progress=*/false) {
    for (const auto& d : table.lanes()) {
      rate_of[d.name] = d.rate_per_second;
      if (d.rate_per_second > 0) cap_of[d.name] = std::max(d.connections, 1);
    }
  }

  const campaign::LoadedCampaign& campaign;
  store::Journal& reader;
  store::StateStore& writer;
  delivery::Transport& transport;
  compose::MessagePreparer& preparer;
  guard::SendLedger& ledger;
  const delivery::OutcomePolicy policy;
  const EngineSettings settings;
  std::map<std::string, double> rate_of;  // configured messages/s per lane; 0 = unshaped
  std::map<std::string, int> cap_of;      // shaped lanes: messages on connections at once (the transport caps)
  // Several nodes share the store: a shaped lane's sends are also reserved
  // from it, so the lane's rate holds for all of them together.
  const bool cluster_paced;
  struct Grant {
    std::int64_t left = 0;              // reserved, not started
    Clock::time_point next_ask{};       // after a short grant: when to ask again
  };
  std::map<std::string, Grant> grants;  // the journal thread's (read by select() under `mutex`)
  // Several nodes: how many of each capped lane's messages this node may
  // have on connections (its share of the cluster's slots), set by the
  // journal thread every k_share_every under `mutex`. A lane with none is
  // neither claimed nor started here (it waits for a slot).
  std::map<std::string, int> usable;
  Clock::time_point shared_at{};

  // ---- shared between the threads, under `mutex`
  std::mutex mutex;
  std::condition_variable feeder_wake;
  std::condition_variable journal_wake;
  struct Lane {
    std::deque<PreparedMessage> ready[k_priorities];  // built and guarded, waiting for their turn
    std::size_t building = 0;                          // handed to the builders
    std::int64_t cursor = 0;                           // the last id read from the store
    bool exhausted = false;                            // nothing due after `cursor` ...
    Clock::time_point exhausted_at{};                  // ... since then
    [[nodiscard]] std::size_t ready_count() const { return ready[0].size() + ready[1].size(); }
  };
  std::map<std::string, Lane> lanes;
  std::unordered_set<std::int64_t> in_hand;  // read from the store, outcome not recorded yet
  // Recipients whose outcome a recent commit recorded (id -> commit number):
  // a read of the store that began before that commit still shows them due.
  std::unordered_map<std::int64_t, std::uint64_t> released;
  std::deque<std::pair<std::uint64_t, std::int64_t>> released_order;  // (commit, id), oldest first
  std::uint64_t commits = 0;
  std::vector<store::Outcome> local_outcomes;  // render failures: recorded by the journal thread
  struct Settled;
  std::vector<Settled> results;               // from the delivery thread, decided and logged
  bool stop = false;
  bool feeding_done = false;
  std::atomic<bool> journal_done{false};  // set under `mutex`; the delivery thread reads it without
  bool transport_gone = false;  // poll() failed, or results cannot be logged: no more will come
  std::atomic<bool> log_failed{false};  // an end-of-DATA record could not be appended
  EngineResult outcome;  // reason, detail, violation
  SendProgress progress;  // the journal thread's (read by run() after it ends)

  // Stops starting messages, for `reason` (the first reason wins). Under `mutex`.
  void stop_for(StopReason reason, std::string detail = {}) {
    if (!stop) {
      stop = true;
      outcome.reason = reason;
      outcome.detail = std::move(detail);
      transport.stop_starting();
    }
    journal_wake.notify_all();
    feeder_wake.notify_all();
  }

  // ---- the journal thread's own
  struct InFlight {
    std::int64_t flight = 0;
    std::string lane;
    std::string email;
    int attempts = 0;
    std::int64_t first_attempt_at = 0;
    std::uint64_t ledger_key = 0;
  };
  // A result with what it means, as recorded in the outcome log.
  struct Settled {
    DeliveryResult result;
    delivery::Decision decision;
    store::Outcome outcome;
  };
  store::OutcomeLog* outcome_log = nullptr;
  // Messages whose end-of-DATA record is in the outcome log and whose result
  // is not (recipient -> flight), under `mutex`.
  std::unordered_map<std::int64_t, std::int64_t> data_ended;
  delivery::LaneShaper shaper;
  // By recipient id. The journal thread adds and removes (under `mutex`);
  // the delivery thread reads (under `mutex`) to decide a result.
  std::unordered_map<std::int64_t, InFlight> flying;
  std::unordered_map<std::int64_t, std::size_t> open_members;  // flight -> members without an outcome
  std::vector<std::int64_t> landed;
  std::vector<PreparedMessage> unsynced;  // recorded in flight, the record not yet synced
  Clock::time_point last_sync{};
  Clock::time_point started = Clock::now();
  Clock::time_point last_progress{};
  Clock::time_point last_meta{};
  Clock::time_point last_recover{};
  Clock::time_point last_commit{};
  std::deque<std::pair<Clock::time_point, std::int64_t>> rate_samples;  // (time, sent so far)
  std::string last_lane;  // round-robin position
  Clock::time_point last_accepted = Clock::now();  // the last 2xx, or the start
  // The last connection failure (masked) since a server last answered, and
  // when the failures began; empty once any server answers anything.
  std::string unreachable;
  Clock::time_point failing_since{};

  std::size_t stock_for(const std::string& lane) const {
    const auto it = rate_of.find(lane);
    double rate = it == rate_of.end() ? 0 : it->second;
    if (rate <= 0) return settings.stock_unshaped;
    if (cluster_paced) {
      if (const auto cap = cap_of.find(lane); cap != cap_of.end()) {
        const auto u = usable.find(lane);
        if (u == usable.end() || u->second <= 0) return 0;  // no connection slot here: leave its work to the others
        rate = rate * u->second / cap->second;  // this node's part of the lane
      }
    }
    return std::max<std::size_t>(k_min_stock, static_cast<std::size_t>(rate * settings.stock_seconds));
  }

  // ---- feeder (the caller's thread)
  void feed(const std::function<bool()>& stopped) {
    std::size_t round = 0;
    while (true) {
      if (stopped()) {
        std::lock_guard lock(mutex);
        stop_for(StopReason::k_stopped);
      }
      {
        std::lock_guard lock(mutex);
        if (stop) return;
      }
      bool worked = take_built();
      const std::int64_t now = unix_now();
      const auto clock_now = Clock::now();
      // Stock each lane, starting at a different one each round.
      std::vector<std::string> names;
      {
        std::lock_guard lock(mutex);
        for (auto& [name, lane] : lanes) {
          if (lane.exhausted && clock_now - lane.exhausted_at >= k_recheck) {
            lane.exhausted = false;  // retries may be due: read it again from the start
            lane.cursor = 0;
          }
          names.push_back(name);
        }
      }
      if (!names.empty()) std::rotate(names.begin(), names.begin() + static_cast<long>(round++ % names.size()), names.end());
      for (const auto& name : names) {
        std::size_t want = 0;
        std::int64_t cursor = 0;
        std::uint64_t seen_commits = 0;
        {
          std::lock_guard lock(mutex);
          Lane& lane = lanes[name];
          const std::size_t have = lane.ready_count() + lane.building;
          const std::size_t stock = stock_for(name);
          if (lane.exhausted || have >= stock) continue;
          want = std::min(settings.claim, stock - have);
          cursor = lane.cursor;
          seen_commits = commits;
        }
        auto rows = reader.next_for_lane(name, now, want, cursor, settings.canary_only);
        if (!rows) {
          std::lock_guard lock(mutex);
          stop_for(StopReason::k_failure, rows.error().message);
          return;
        }
        std::vector<store::StoredRecipient> fresh;
        {
          std::lock_guard lock(mutex);
          Lane& lane = lanes[name];
          if (rows->size() < want) {
            lane.exhausted = true;
            lane.exhausted_at = clock_now;
          }
          if (!rows->empty()) lane.cursor = rows->back().id;
          for (auto& r : *rows) {
            if (in_hand.contains(r.id)) continue;
            // Its outcome was recorded after this read began: the row read is older.
            if (const auto rel = released.find(r.id); rel != released.end() && rel->second > seen_commits) continue;
            in_hand.insert(r.id);
            fresh.push_back(std::move(r));
          }
          lane.building += fresh.size();
          while (!released_order.empty() && released_order.front().first <= seen_commits) {
            const auto [commit, id] = released_order.front();
            if (const auto rel = released.find(id); rel != released.end() && rel->second == commit) released.erase(rel);
            released_order.pop_front();
          }
        }
        if (!fresh.empty()) {
          preparer.submit(std::move(fresh));
          worked = true;
        }
      }
      // Finished for this run when nothing is due, in hand or waiting.
      bool idle = false;
      {
        std::lock_guard lock(mutex);
        idle = in_hand.empty() && std::all_of(lanes.begin(), lanes.end(), [](const auto& l) {
                 return l.second.exhausted && l.second.building == 0 && l.second.ready_count() == 0;
               });
      }
      if (idle && preparer.pending() == 0) {
        auto retry = reader.next_retry_at(settings.canary_only);
        if (!retry) {
          std::lock_guard lock(mutex);
          stop_for(StopReason::k_failure, retry.error().message);
          return;
        }
        if (!*retry) {
          std::lock_guard lock(mutex);
          feeding_done = true;
          journal_wake.notify_all();
          return;
        }
        // Deferred recipients wait for their retry: sleep until then (or a stop).
        while (unix_now() < **retry && !stopped()) {
          std::unique_lock lock(mutex);
          if (stop) return;
          feeder_wake.wait_for(lock, std::chrono::milliseconds(100));
        }
        std::lock_guard lock(mutex);
        for (auto& [name, lane] : lanes) {
          lane.exhausted = false;
          lane.cursor = 0;
        }
        continue;
      }
      if (!worked) {
        if (preparer.pending() > 0) {
          preparer.wait_ready(std::chrono::milliseconds(20));
        } else {
          std::unique_lock lock(mutex);
          feeder_wake.wait_for(lock, std::chrono::milliseconds(20));
        }
      }
    }
  }

  // Moves built batches into their lanes; true when there was one.
  bool take_built() {
    bool any = false;
    while (preparer.pending() > 0) {
      auto batch = preparer.try_take();
      if (!batch) break;
      any = true;
      std::lock_guard lock(mutex);
      for (auto& m : *batch) {
        Lane& lane = lanes[m.lane];
        if (lane.building > 0) --lane.building;
        if (!m.render_error.empty()) {
          local_outcomes.push_back({m.id, RecipientState::k_failed,
                                    util::mask_addresses_in(std::string(store::k_render_failure) + m.render_error), 0, false, false, 0,
                                    false});
          continue;
        }
        if (m.violation) {
          if (!stop) {
            outcome.violation = m.violation;
            outcome.violation_line = m.line;
            outcome.violation_data = std::move(m.data);
            stop_for(StopReason::k_guard);
          }
          continue;
        }
        lane.ready[k_campaign_priority].push_back(std::move(m));
      }
      journal_wake.notify_all();
    }
    return any;
  }

  // ---- the journal thread
  void journal() {
    util::set_thread_name("bc-journal");
    while (true) {
      std::vector<Settled> got;
      std::vector<store::Outcome> local;
      int sealed_turn = -1;  // the outcome log's turn this commit empties
      bool stopping = false;
      bool finishing = false;
      {
        std::unique_lock lock(mutex);
        journal_wake.wait_for(lock, next_wait(), [&] {
          return !results.empty() || !local_outcomes.empty() || stop || (feeding_done && flying.empty()) ||
                 can_select();
        });
        // Group commit by time: a commit is a transaction and wakes every
        // thread, so results gather for up to k_cycle after the last commit
        // (they are in the outcome log already, and confirmed), unless
        // something waits for this one: the transport running out of
        // messages while some are ready, the end of the stage, or a stop.
        const auto urgent = [&] {
          return stop || feeding_done ||
                 (transport.unfinished() < settings.window / 4 && (can_select() || !unsynced.empty()));
        };
        const auto since = Clock::now() - last_commit;
        if (since < k_cycle && !urgent()) journal_wake.wait_for(lock, k_cycle - since, urgent);
        got.swap(results);
        // Every outcome logged so far is in `got` (the delivery thread logs
        // and hands over under `mutex`): the turn sealed now is emptied once
        // this commit has them.
        if (!got.empty()) {
          sealed_turn = outcome_log->seal();
          // The sealed turn is emptied after this commit: the end-of-DATA
          // records of messages still awaiting their reply go on in the other.
          if (!carry_data_ends()) sealed_turn = -1;
        }
        local.swap(local_outcomes);
        stopping = stop;
        finishing = feeding_done;
      }
      const auto now_clock = Clock::now();
      const std::int64_t now = unix_now();
      std::vector<store::Outcome> outcomes = std::move(local);
      std::vector<std::int64_t> recorded;  // ids whose outcome this commit records
      for (const auto& o : outcomes) recorded.push_back(o.id);
      std::vector<std::uint64_t> not_delivered;
      for (auto& x : got) settle(x, now_clock, outcomes, recorded, not_delivered);
      if (now_clock - last_recover > std::chrono::milliseconds(100)) {
        last_recover = now_clock;
        for (const auto& line : shaper.recover(now_clock)) util::log_info(line);
      }
      // The next messages, lane by lane in turn, within the window (the
      // outcomes settled above are in the outcome log: their slots are free).
      std::vector<PreparedMessage> selected;
      if (!stopping && !reserve_grants(now_clock)) stopping = true;
      if (!stopping) selected = select(now_clock);
      if (!selected.empty() && !admit(selected, now)) {
        for (const auto& m : selected) shaper.release(m.lane);
        selected.clear();
        stopping = true;
      }
      if (stopping && !unsynced.empty()) {
        // Recorded in flight, never handed over: due again.
        for (const auto& m : unsynced) {
          if (auto x = decide(DeliveryResult::stopped(m.id), now)) settle(*x, now_clock, outcomes, recorded, not_delivered);
        }
        unsynced.clear();
      }
      // Messages recorded in flight reach the transport only once that
      // record is synced, so that not even a power loss forgets a message
      // that may have been delivered. A sync comes every k_sync, or at once
      // when the transport runs short; the commits in between are written
      // but not synced (a killed process keeps them).
      const bool waiting = !selected.empty() || !unsynced.empty();
      const bool sync = waiting && (now_clock - last_sync >= k_sync || finishing ||
                                    transport.unfinished() < settings.window / 4);
      if (!outcomes.empty() || !selected.empty() || !landed.empty() || sync) {
        std::vector<std::int64_t> ids;
        ids.reserve(selected.size());
        for (const auto& m : selected) ids.push_back(m.id);
        auto flight = writer.record_and_mark(outcomes, landed, ids, sync);
        if (!flight) {
          // Nothing more is sent: what was marked before stays in flight
          // in the store and is recovered by the next run.
          std::lock_guard lock(mutex);
          stop_for(StopReason::k_failure, flight.error().message);
          for (const auto& m : selected) in_hand.erase(m.id);
          journal_done = true;
          journal_wake.notify_all();
          return;
        }
        landed.clear();
        last_commit = Clock::now();
        if (sealed_turn >= 0) {
          if (auto r = outcome_log->release(sealed_turn); !r) util::log_warn(r.error().message);
        }
        // Released on the guard's ledger once the store says they are due
        // again: a crash in between leaves them counted, never uncounted.
        if (!not_delivered.empty()) {
          std::string error;
          ledger.release(not_delivered, now, error);
          if (!error.empty()) util::log_warn(error);
        }
        bool drained = false;
        {
          std::lock_guard lock(mutex);
          ++commits;
          for (const auto id : recorded) {
            in_hand.erase(id);
            released[id] = commits;
            released_order.emplace_back(commits, id);
          }
          drained = in_hand.empty();
        }
        // The feeder sleeps until a lane runs low (select) or the last
        // outcome is in (it may be finished): a wake-up per commit would cost
        // a context switch per millisecond.
        if (drained) feeder_wake.notify_all();
        if (!selected.empty()) enter_flight(std::move(selected), *flight);
        if (sync) {
          last_sync = last_commit;
          hand_over();
        }
      }
      if (!unreachable.empty() && now_clock - failing_since >= settings.give_up_after &&
          now_clock - last_accepted >= settings.give_up_after) {
        std::lock_guard lock(mutex);
        stop_for(StopReason::k_settings,
                 fmt::format("no message accepted for {}s ([transport] give_up_after) and the relay cannot be "
                             "reached: {}; the recipients stay pending",
                             settings.give_up_after.count(), unreachable));
      }
      report(now_clock, now, false);
      bool done = false;
      {
        std::lock_guard lock(mutex);
        const bool queues_empty = std::all_of(lanes.begin(), lanes.end(),
                                              [](const auto& l) { return l.second.ready_count() == 0; });
        done = results.empty() && local_outcomes.empty() &&
               (transport_gone || (flying.empty() && (stop || (finishing && queues_empty && in_hand.empty()))));
        if (done) journal_done = true;
      }
      if (done) {
        if (cluster_paced && !cap_of.empty()) share_connections(true);
        report(now_clock, now, true);
        journal_wake.notify_all();
        feeder_wake.notify_all();
        return;
      }
    }
  }

  // How long the journal may sleep: until a shaped lane's next token, at most 20 ms.
  std::chrono::milliseconds next_wait() const {
    if (!unsynced.empty()) {  // their sync is due k_sync after the last one
      const auto due = std::chrono::duration_cast<std::chrono::milliseconds>(last_sync + k_sync - Clock::now());
      return std::clamp(due, std::chrono::milliseconds(1), std::chrono::milliseconds(k_sync));
    }
    return std::chrono::milliseconds(flying.empty() ? 20 : 5);
  }

  // True when a message could be selected now (under `mutex`).
  bool can_select() {
    if (stop || flying.size() >= settings.window) return false;
    const auto now = Clock::now();
    for (const auto& [name, lane] : lanes) {
      if (lane.ready_count() > 0 && granted(name) && shaper.wait_for(name, 0, now) <= 0) return true;
    }
    return false;
  }

  // Whether `lane` may start a message as far as the cluster goes.
  bool granted(const std::string& lane) const {
    if (!cluster_paced) return true;
    if (cap_of.contains(lane)) {
      const auto u = usable.find(lane);
      if (u == usable.end() || shaper.in_progress(lane) >= u->second) return false;
    }
    const auto rate = rate_of.find(lane);
    if (rate == rate_of.end() || rate->second <= 0) return true;
    const auto g = grants.find(lane);
    return g != grants.end() && g->second.left > 0;
  }

  // Asks the store for this node's share of each capped lane's connections
  // (journal thread). A lane is wanted while it has work here: not read to
  // its end, messages built or being built, or messages under way.
  // `leaving`: the run is over; every slot goes back.
  bool share_connections(bool leaving) {
    std::vector<std::pair<std::string, bool>> lanes_wanted;
    {
      std::lock_guard lock(mutex);
      for (const auto& [name, cap] : cap_of) {
        const auto l = lanes.find(name);
        const bool wanted = !leaving && l != lanes.end() &&
                            (!l->second.exhausted || l->second.ready_count() > 0 || l->second.building > 0 ||
                             shaper.in_progress(name) > 0);
        lanes_wanted.emplace_back(name, wanted);
      }
    }
    for (const auto& [name, wanted] : lanes_wanted) {
      auto share = writer.share_connections(name, cap_of.at(name), wanted, leaving ? 0 : shaper.in_progress(name));
      std::lock_guard lock(mutex);
      if (!share) {
        if (!leaving) stop_for(StopReason::k_failure, share.error().message);
        return false;
      }
      usable[name] = *share;
    }
    return true;
  }

  // Reserves sends of the shaped lanes with messages ready from the shared
  // store, k_grant_seconds of each lane's rate at a time (journal thread).
  bool reserve_grants(Clock::time_point now) {
    if (!cluster_paced) return true;
    if (!cap_of.empty() && now - shared_at >= k_share_every) {
      shared_at = now;
      if (!share_connections(false)) return false;
    }
    std::vector<std::pair<std::string, std::int64_t>> ask;
    {
      std::lock_guard lock(mutex);
      for (const auto& [name, lane] : lanes) {
        const auto rate = rate_of.find(name);
        if (rate == rate_of.end() || rate->second <= 0 || lane.ready_count() == 0) continue;
        const auto chunk = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(rate->second * k_grant_seconds)));
        Grant& g = grants[name];
        if (g.left * 2 >= chunk || now < g.next_ask) continue;
        ask.emplace_back(name, chunk - g.left);
      }
    }
    // Lanes this node's shaper slowed after throttling replies: the
    // cluster slows them too.
    std::map<std::string, double> slowed;
    if (!ask.empty()) {
      for (const auto& l : shaper.status(now, unix_now())) {
        if (l.configured_rate > 0 && l.rate < l.configured_rate) slowed[l.name] = l.rate;
      }
    }
    for (const auto& [name, want] : ask) {
      const double rate = rate_of[name];
      const auto s = slowed.find(name);
      auto got = writer.reserve_sends(name, rate, want, s == slowed.end() ? 0.0 : s->second);
      std::lock_guard lock(mutex);
      if (!got) {
        stop_for(StopReason::k_failure, got.error().message);
        return false;
      }
      Grant& g = grants[name];
      g.left += *got;
      // Short of what was asked: the other nodes have the lane's budget; ask
      // again when the missing sends would be due.
      const double wait = *got < want ? std::max(0.02, static_cast<double>(want - *got) / rate) : 0.0;
      g.next_ask = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait));
    }
    return true;
  }

  std::vector<PreparedMessage> select(Clock::time_point now) {
    std::vector<PreparedMessage> out;
    std::lock_guard lock(mutex);
    std::size_t free = settings.window > flying.size() ? settings.window - flying.size() : 0;
    if (free == 0 || lanes.empty()) return out;
    bool low = false;  // a lane fell under half its stock
    // Priority 0 first; within a priority, one message per lane per turn,
    // starting after the lane that went last.
    for (int prio = 0; prio < k_priorities && free > 0; ++prio) {
      std::vector<Lane*> order;
      std::vector<std::string> names;
      auto start = lanes.upper_bound(last_lane);
      for (std::size_t i = 0; i < lanes.size(); ++i, ++start) {
        if (start == lanes.end()) start = lanes.begin();
        if (!start->second.ready[prio].empty()) {
          order.push_back(&start->second);
          names.push_back(start->first);
        }
      }
      std::vector<bool> blocked(order.size(), false);
      bool progress_made = true;
      while (free > 0 && progress_made) {
        progress_made = false;
        for (std::size_t i = 0; i < order.size() && free > 0; ++i) {
          if (blocked[i] || order[i]->ready[prio].empty()) continue;
          if (!granted(names[i]) || !shaper.try_acquire(names[i], now)) {
            blocked[i] = true;
            continue;
          }
          if (cluster_paced) {
            if (const auto g = grants.find(names[i]); g != grants.end() && g->second.left > 0) --g->second.left;
          }
          out.push_back(std::move(order[i]->ready[prio].front()));
          order[i]->ready[prio].pop_front();
          last_lane = names[i];
          --free;
          progress_made = true;
          if (order[i]->ready_count() + order[i]->building < stock_for(names[i]) / 2) low = true;
        }
      }
    }
    if (low) feeder_wake.notify_all();  // a lane to stock again
    return out;
  }

  // Admits `selected` on the guard's ledger; false (and the engine stopped) on a limit.
  bool admit(std::vector<PreparedMessage>& selected, std::int64_t now) {
    std::vector<std::uint64_t> keys;
    keys.reserve(selected.size());
    for (const auto& m : selected) keys.push_back(m.ledger_key);
    std::string error;
    std::size_t which = 0;
    auto v = ledger.admit(keys, now, error, &which);
    std::lock_guard lock(mutex);
    if (v) {
      outcome.violation = std::move(v);
      outcome.violation_line = selected[which].line;
      outcome.violation_data = std::move(selected[which].data);
      stop_for(StopReason::k_limit);
    } else if (!error.empty()) {
      stop_for(StopReason::k_failure, error + "; nothing more is sent");
    } else {
      return true;
    }
    for (const auto& m : selected) in_hand.erase(m.id);  // never recorded: still due in the store
    return false;
  }

  // Notes `selected` as recorded in flight `flight`; they wait in
  // `unsynced` until the record is synced.
  void enter_flight(std::vector<PreparedMessage> selected, std::int64_t flight) {
    open_members[flight] = selected.size();
    std::lock_guard lock(mutex);
    for (auto& m : selected) {
      flying[m.id] = InFlight{flight, m.lane, m.email, m.attempts, m.first_attempt_at, m.ledger_key};
      unsynced.push_back(std::move(m));
    }
    progress.in_flight = static_cast<std::int64_t>(flying.size());
  }

  // Hands the messages whose flight record is now synced to the transport.
  void hand_over() {
    if (unsynced.empty()) return;
    std::vector<delivery::OutgoingMessage> out;
    out.reserve(unsynced.size());
    for (auto& m : unsynced) {
      const auto cap = cap_of.find(m.lane);
      out.push_back({m.id, fmt::format("{}-{}", settings.stage, m.id),
                     m.envelope_from.empty() ? preparer.envelope_from() : m.envelope_from, m.email,
                     std::move(m.data), m.lane, cap == cap_of.end() ? 0 : cap->second, m.traits});
    }
    unsynced.clear();
    transport.submit(std::move(out));
  }

  // What one result means (the outcome policy's decision) and the outcome
  // to record; nullopt for a message not in flight (cannot happen). Under
  // `mutex` or on the journal thread (which alone changes `flying`).
  std::optional<Settled> decide(DeliveryResult r, std::int64_t now) const {
    const auto it = flying.find(r.recipient_id);
    if (it == flying.end()) return std::nullopt;
    const InFlight& f = it->second;
    Settled x;
    x.decision = policy.decide(r.facts(), {f.attempts, f.first_attempt_at}, now,
                               static_cast<std::uint64_t>(r.recipient_id));
    const auto& d = x.decision;
    // A server chooses how long its reply is (up to 256 lines of 4 KB): what
    // is recorded is the start of it.
    std::string reason = util::mask_addresses_in(d.reason);
    reason.resize(util::utf8_prefix_length(reason, k_max_reply));
    x.outcome = store::Outcome{r.recipient_id, RecipientState::k_sent, std::move(reason), 0,
                               d.possible_duplicate, d.counts_attempt, f.flight, d.suppress};
    switch (d.action) {
      case Action::k_sent: break;
      case Action::k_not_attempted:
        x.outcome.state = RecipientState::k_pending;
        x.outcome.next_attempt_at = d.retry_at;  // held after a failed connection
        break;
      case Action::k_retry:
        x.outcome.state = RecipientState::k_deferred;
        x.outcome.next_attempt_at = d.retry_at;
        break;
      case Action::k_bounce: x.outcome.state = RecipientState::k_bounced; break;
      case Action::k_fail: x.outcome.state = RecipientState::k_failed; break;
    }
    x.result = std::move(r);
    return x;
  }

  // Takes a decided result into account (counters, lanes, flights) and adds
  // its outcome to those the next commit records. The journal thread's.
  void settle(Settled& x, Clock::time_point now_clock, std::vector<store::Outcome>& outcomes,
              std::vector<std::int64_t>& recorded, std::vector<std::uint64_t>& not_delivered) {
    const DeliveryResult& r = x.result;
    const auto& d = x.decision;
    InFlight f;
    {
      std::lock_guard lock(mutex);
      const auto it = flying.find(r.recipient_id);
      if (it == flying.end()) return;  // not ours (cannot happen)
      f = std::move(it->second);
      flying.erase(it);
    }
    shaper.release(f.lane);
    switch (d.action) {
      case Action::k_sent:
        ++progress.sent_this_run;
        ++progress.sent_by_lane[f.lane];
        last_accepted = now_clock;
        break;
      case Action::k_not_attempted:
        if (r.attempted && r.phase == delivery::Phase::k_connect) {
          if (unreachable.empty()) failing_since = now_clock;
          unreachable = x.outcome.reply;
        }
        break;
      case Action::k_retry: ++progress.deferred_by_lane[f.lane]; break;
      case Action::k_bounce:
        ++progress.failed_this_run;
        ++progress.bounced_by_lane[f.lane];
        break;
      case Action::k_fail: ++progress.failed_this_run; break;
    }
    // A server that answered anything (a 4xx, a slow lane) is reachable.
    if (r.attempted && r.phase != delivery::Phase::k_connect && r.code != 0) unreachable.clear();
    if (d.action != Action::k_sent) progress.last_reply = x.outcome.reply;
    if (d.slow_lane) {
      if (auto line = shaper.throttled(f.lane, now_clock)) util::log_warn(*line);
    }
    if (d.stop_transport) {
      std::lock_guard lock(mutex);
      stop_for(StopReason::k_settings, r.reply);
    }
    if (d.action != Action::k_sent && !d.possible_duplicate) not_delivered.push_back(f.ledger_key);
    if (auto m = open_members.find(f.flight); m != open_members.end() && --m->second == 0) {
      landed.push_back(f.flight);
      open_members.erase(m);
    }
    recorded.push_back(r.recipient_id);
    outcomes.push_back(std::move(x.outcome));
  }

  // Progress for the caller and for `status` in another shell.
  void report(Clock::time_point now_clock, std::int64_t now, bool final) {
    const bool call = on_progress && (final || now_clock - last_progress >= std::chrono::milliseconds(100));
    const bool write = !final && now_clock - last_meta >= std::chrono::seconds(1);
    if (!call && !write && !final) return;
    SendProgress p;
    {
      progress.elapsed_seconds = std::chrono::duration<double>(now_clock - started).count();
      progress.in_flight = static_cast<std::int64_t>(flying.size());
      rate_samples.emplace_back(now_clock, progress.sent_this_run);
      while (rate_samples.size() > 2 && now_clock - rate_samples.front().first > std::chrono::seconds(5)) {
        rate_samples.pop_front();
      }
      const double span = std::chrono::duration<double>(now_clock - rate_samples.front().first).count();
      progress.recent_rate = span > 0.5 ? static_cast<double>(progress.sent_this_run - rate_samples.front().second) / span
                                        : (progress.elapsed_seconds > 0 ? static_cast<double>(progress.sent_this_run) /
                                                                              progress.elapsed_seconds
                                                                        : 0);
      for (const auto& l : shaper.status(now_clock, now)) {
        progress.rate_by_lane[l.name] = l.rate;
        progress.configured_by_lane[l.name] = l.configured_rate;
      }
      p = progress;
    }
    if (call) {
      last_progress = now_clock;
      on_progress(p);
    }
    // For `status` in another shell: at most once a second (each write is a
    // transaction of its own).
    if (write) {
      last_meta = now_clock;
      const std::int64_t remaining = std::max<std::int64_t>(0, p.total - p.done - p.sent_this_run);
      nlohmann::json lanes_json = nlohmann::json::object();
      for (const auto& [name, rate] : p.rate_by_lane) {
        lanes_json[name] = {{"rate_per_second", rate}, {"configured_per_second", p.configured_by_lane[name]}};
      }
      (void)writer.set_meta("progress", nlohmann::json{{"stage", settings.stage},
                                                       {"at", now},
                                                       {"sent_this_run", p.sent_this_run},
                                                       {"rate_per_second", p.recent_rate},
                                                       {"eta_seconds", p.recent_rate > 0 ? remaining / p.recent_rate : -1.0},
                                                       {"in_flight", p.in_flight},
                                                       {"by_lane", p.sent_by_lane},
                                                       {"lanes", lanes_json}}
                                            .dump());
    }
  }

  // The transport's data-end hook (on the delivery thread, inside poll()):
  // records that these recipients' ends of DATA are about to be written.
  bool record_data_ends(std::span<const std::int64_t> ids) {
    const std::int64_t now = unix_now();
    std::lock_guard lock(mutex);
    std::vector<store::LogRecord> records;
    records.reserve(ids.size());
    for (const auto id : ids) {
      const auto it = flying.find(id);
      const std::int64_t flight = it == flying.end() ? 0 : it->second.flight;
      records.push_back(store::data_end_record(id, flight, now));
      data_ended[id] = flight;
    }
    if (auto w = outcome_log->append(records); !w) {
      stop_for(StopReason::k_failure, w.error().message);
      log_failed = true;  // these bodies stay held: the delivery thread gives up
      return false;
    }
    return true;
  }

  // Appends the end-of-DATA records still open to the active turn of the
  // outcome log (under `mutex`); false when it cannot (sending stops).
  bool carry_data_ends() {
    if (data_ended.empty()) return true;
    const std::int64_t now = unix_now();
    std::vector<store::LogRecord> records;
    records.reserve(data_ended.size());
    for (const auto& [id, flight] : data_ended) {
      records.push_back(store::data_end_record(id, flight, now));
    }
    if (auto w = outcome_log->append(records); !w) {
      stop_for(StopReason::k_failure, w.error().message);
      return false;
    }
    return true;
  }

  // ---- the delivery thread
  // Decides each result as it comes, appends its outcome to the outcome log
  // and confirms it to the transport at once: the limit on unconfirmed ends
  // of DATA then waits for a write(2), not for another thread's transaction.
  // The journal thread records the outcomes in the store behind it.
  void deliver() {
    util::set_thread_name("bc-deliver");
    std::vector<DeliveryResult> got;
    std::vector<store::LogRecord> logged;
    while (true) {
      if (journal_done.load()) return;
      got.clear();
      auto r = transport.poll(std::chrono::milliseconds(10), got);
      if (r && got.empty() && !log_failed.load()) continue;
      std::lock_guard lock(mutex);
      if (!r) {
        stop_for(StopReason::k_failure, r.error().message);
        // The transport is gone: what it held stays in flight in the store
        // (the next run counts it as possibly delivered); the journal
        // records what came back before and ends.
        transport_gone = true;
        journal_wake.notify_all();
        return;
      }
      const bool first = results.empty();
      const std::int64_t now = unix_now();
      logged.clear();
      for (auto& x : got) {
        auto settled = decide(std::move(x), now);
        if (!settled) continue;
        data_ended.erase(settled->outcome.id);
        logged.push_back({store::LogRecord::Kind::k_outcome, now, settled->outcome});
        results.push_back(std::move(*settled));
      }
      auto w = log_failed ? Result<void>() : outcome_log->append(logged);
      if (!w || log_failed) {
        // The outcome log cannot be written: nothing more is confirmed, so
        // no more ends of DATA. The journal records these results in the
        // store if it still can and ends without waiting for the rest
        // (what is held stays in flight in the store: the next run
        // recovers it).
        if (!w) stop_for(StopReason::k_failure, w.error().message);
        transport_gone = true;
        journal_wake.notify_all();
        return;
      }
      transport.confirm(got.size());
      // Wake the journal only when it would act: the first results since
      // its last commit (it then gathers more for up to k_cycle), or when
      // the transport runs short of work. A wake-up per poll would cost a
      // context switch every few hundred microseconds.
      if (first || transport.unfinished() < settings.window / 4) journal_wake.notify_all();
    }
  }

  std::function<void(const SendProgress&)> on_progress;
};

Engine::Engine(const campaign::LoadedCampaign& campaign, store::Journal& reader, store::StateStore& writer,
               delivery::Transport& transport, compose::MessagePreparer& preparer, guard::SendLedger& ledger,
               const delivery::LaneTable& lanes, delivery::OutcomePolicy policy, EngineSettings settings)
    : m_impl(std::make_unique<Impl>(campaign, reader, writer, transport, preparer, ledger, lanes, std::move(policy),
                                    std::move(settings))) {}

Engine::~Engine() = default;

EngineResult Engine::run(const std::function<bool()>& stopped,
                         const std::function<void(const SendProgress&)>& on_progress) {
  Impl& p = *m_impl;
  p.on_progress = on_progress;
  // The lanes with recipients due now, and how many: the progress's "todo".
  auto due = p.reader.due_by_lane(unix_now(), p.settings.canary_only);
  if (!due) {
    EngineResult r;
    r.reason = StopReason::k_failure;
    r.detail = due.error().message;
    return r;
  }
  {
    std::lock_guard lock(p.mutex);
    for (const auto& b : *due) {
      p.lanes[b.lane];
      p.progress.todo_by_lane[b.lane] = b.due;
    }
    // Lanes with deferred recipients only are read when their retries are due.
    for (const auto& [name, rate] : p.rate_of) p.lanes[name];
    p.started = Clock::now();
    p.last_accepted = p.started;
    p.progress.total = p.settings.total;
    p.progress.done = p.settings.done;
  }
  auto log = p.writer.outcome_log();
  if (!log) {
    EngineResult r;
    r.reason = StopReason::k_failure;
    r.detail = log.error().message;
    return r;
  }
  p.outcome_log = *log;
  p.outcome_log->set_records_data_ends(
      p.transport.on_data_end([&p](std::span<const std::int64_t> ids) { return p.record_data_ends(ids); }));
  p.transport.limit_unconfirmed(p.settings.unconfirmed);
  std::thread journal([&p] { p.journal(); });
  std::thread delivery([&p] { p.deliver(); });
  p.feed(stopped);
  {
    // The feeder is done (finished, or stopped): wait for the journal to
    // record every outcome of what was handed over.
    std::unique_lock lock(p.mutex);
    while (!p.journal_done) {
      if (!p.stop && stopped()) p.stop_for(StopReason::k_stopped);
      p.feeder_wake.wait_for(lock, std::chrono::milliseconds(50));
    }
  }
  journal.join();
  delivery.join();
  // Built messages that never went out stay due in the store.
  EngineResult r = std::move(p.outcome);
  r.progress = p.progress;
  return r;
}

}  // namespace blindcast::send
