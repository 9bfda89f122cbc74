// The service's delivery of transactional messages: takes due messages from
// the service store, records them `sending` (synced) before any byte goes
// to the transport, and records each outcome as delivery/outcome_policy
// decides it (2xx sent; 4xx deferred with the retry schedule; 5xx bounced,
// and the address joins the organisation's suppression list).
//
// One thread ("bc-tx"). The intake wakes it when it stored messages, so a
// message waits for no timer: its latency is the intake's commit, the claim's
// commit and the relay's reply. On stop() it starts nothing new, lets what is
// on the wire finish for up to `drain` and records it; messages not started
// stay queued in the store.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "delivery/outcome_policy.hpp"
#include "delivery/transport.hpp"
#include "serve/metrics.hpp"
#include "store/service_store.hpp"

namespace blindcast::serve {

class TxSender {
 public:
  TxSender(std::unique_ptr<store::ServiceStore> store, std::unique_ptr<delivery::Transport> transport,
           delivery::OutcomePolicy policy, Metrics& metrics, std::size_t window);
  ~TxSender();
  TxSender(const TxSender&) = delete;
  TxSender& operator=(const TxSender&) = delete;

  // Starts the thread.
  void start();
  // New messages are due (from the intake).
  void wake();
  // Stops starting messages; waits up to `drain` for those on the wire.
  void stop(std::chrono::seconds drain);
  // False while the store fails (sending pauses and is retried, every 1 s
  // at first, then up to every 30 s) and once the transport failed (healthz).
  [[nodiscard]] bool healthy() const { return m_healthy.load(); }
  [[nodiscard]] std::string describe() const;

 private:
  // Outcomes decided from the transport's results, recorded in one write.
  struct Settled {
    struct Done {
      std::string stream, lane, outcome, recipient, reason;
      std::int64_t created_at = 0;
      bool suppress = false;
    };
    std::vector<store::MessageOutcome> outcomes;
    std::vector<Done> done;
    std::size_t results = 0;  // the transport's results they answer (confirmed once recorded)
  };

  void run();
  void settle(std::vector<delivery::DeliveryResult>& results);
  // Records `s` (then confirms, counts and suppresses); false when the store failed.
  bool record(Settled& s);
  void store_failed(const std::string& error);
  void store_answered();

  std::unique_ptr<store::ServiceStore> m_store;
  std::unique_ptr<delivery::Transport> m_transport;
  const delivery::OutcomePolicy m_policy;
  Metrics& m_metrics;
  const std::size_t m_window;
  std::mutex m_mutex;
  std::condition_variable m_wake;
  bool m_due = true;
  std::atomic<bool> m_stopping{false};
  std::atomic<bool> m_healthy{true};
  std::chrono::steady_clock::time_point m_drain_until{};
  std::unordered_map<std::int64_t, store::DueMessage> m_flying;  // the thread's own
  // While the store fails: outcomes not recorded yet (recorded, in order,
  // before anything new is claimed), and when to try the store again.
  std::vector<Settled> m_unrecorded;
  std::chrono::steady_clock::time_point m_retry_at{};
  std::chrono::seconds m_backoff{0};
  std::chrono::steady_clock::time_point m_failing_since{};
  std::thread m_thread;
};

}  // namespace blindcast::serve
