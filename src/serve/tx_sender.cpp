#include "serve/tx_sender.hpp"

#include <ctime>

#include <fmt/format.h>

#include "util/log.hpp"
#include "util/mask.hpp"
#include "util/strings.hpp"
#include "util/threads.hpp"
#include "util/utf8.hpp"

namespace blindcast::serve {

namespace {

constexpr auto k_due_check = std::chrono::milliseconds(250);  // deferred messages come due
constexpr std::size_t k_max_reply = 2048;

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::int64_t now_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TxSender::TxSender(std::unique_ptr<store::ServiceStore> store, std::unique_ptr<delivery::Transport> transport,
                   delivery::OutcomePolicy policy, Metrics& metrics, std::size_t window)
    : m_store(std::move(store)),
      m_transport(std::move(transport)),
      m_policy(std::move(policy)),
      m_metrics(metrics),
      m_window(std::max<std::size_t>(window, 1)) {}

TxSender::~TxSender() { stop(std::chrono::seconds(0)); }

std::string TxSender::describe() const { return m_transport->describe(); }

void TxSender::start() { m_thread = std::thread([this] { run(); }); }

void TxSender::wake() {
  {
    std::lock_guard lock(m_mutex);
    m_due = true;
  }
  m_wake.notify_one();
}

void TxSender::stop(std::chrono::seconds drain) {
  {
    std::lock_guard lock(m_mutex);
    if (!m_stopping.load()) m_drain_until = std::chrono::steady_clock::now() + drain;
    m_stopping = true;
  }
  m_wake.notify_one();
  if (m_thread.joinable()) m_thread.join();
}

void TxSender::run() {
  util::set_thread_name("bc-tx");
  auto last_check = std::chrono::steady_clock::now() - k_due_check;
  std::vector<delivery::DeliveryResult> results;
  bool stopped_starting = false;
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (m_stopping.load()) {
      if (!stopped_starting) {
        m_transport->stop_starting();
        stopped_starting = true;
      }
      if (m_flying.empty() || now >= m_drain_until) break;
    }
    bool due = false;
    {
      std::lock_guard lock(m_mutex);
      due = m_due || now - last_check >= k_due_check;
      m_due = false;
    }
    // A store that failed is tried again after the backoff: first what
    // was settled meanwhile, then new claims.
    const bool store_due = now >= m_retry_at;
    while (store_due && !m_unrecorded.empty() && record(m_unrecorded.front())) {
      m_unrecorded.erase(m_unrecorded.begin());
    }
    if (due && store_due && m_unrecorded.empty() && !m_stopping.load() && m_flying.size() < m_window) {
      last_check = now;
      auto claimed = m_store->claim_due(now_seconds(), m_window - m_flying.size());
      if (claimed) store_answered();
      if (!claimed) {
        store_failed(claimed.error().message);
      } else if (!claimed->empty()) {
        std::vector<delivery::OutgoingMessage> out;
        out.reserve(claimed->size());
        for (auto& m : *claimed) {
          out.push_back({m.id, fmt::format("tx-{}", m.id), m.envelope_from, m.recipient, std::move(m.data), m.lane, 0,
                         std::nullopt});
          m.data.clear();
          m_flying[m.id] = std::move(m);
        }
        m_transport->submit(std::move(out));
      }
    }
    results.clear();
    if (m_flying.empty()) {
      std::unique_lock lock(m_mutex);
      m_wake.wait_for(lock, std::chrono::milliseconds(50), [&] { return m_due || m_stopping.load(); });
      continue;
    }
    auto polled = m_transport->poll(std::chrono::milliseconds(2), results);
    if (!polled) {
      util::log_error(polled.error().message);
      m_healthy = false;
      break;
    }
    if (!results.empty()) settle(results);
  }
  while (!m_unrecorded.empty() && record(m_unrecorded.front())) m_unrecorded.erase(m_unrecorded.begin());
  // What is still on the wire after the drain, or whose outcome the store
  // did not take, stays `sending` in the store: the next start counts it as
  // possibly delivered and sends it again.
  std::size_t unrecorded = 0;
  for (const auto& u : m_unrecorded) unrecorded += u.outcomes.size();
  if (unrecorded > 0) {
    util::log_warn(fmt::format("{} transactional outcome(s) could not be recorded; those messages are sent again "
                               "at the next start (possibly twice)",
                               unrecorded));
  }
  if (!m_flying.empty()) {
    util::log_warn(fmt::format("{} transactional message(s) still on the wire after the drain; they are sent again "
                               "at the next start (possibly twice)",
                               m_flying.size()));
  }
}

void TxSender::settle(std::vector<delivery::DeliveryResult>& results) {
  Settled settled;
  settled.results = results.size();
  auto& outcomes = settled.outcomes;
  auto& done = settled.done;
  outcomes.reserve(results.size());
  const std::int64_t now = now_seconds();
  for (auto& r : results) {
    const auto it = m_flying.find(r.recipient_id);
    if (it == m_flying.end()) continue;
    const store::DueMessage& m = it->second;
    const auto d = m_policy.decide(r.facts(), {m.attempts, m.first_attempt_at}, now,
                                   static_cast<std::uint64_t>(r.recipient_id));
    std::string reply = util::mask_addresses_in(d.reason);
    reply.resize(util::utf8_prefix_length(reply, k_max_reply));
    store::MessageOutcome o{r.recipient_id, store::MessageState::k_sent, reply, 0, d.counts_attempt && r.attempted,
                            d.possible_duplicate};
    std::string outcome = "sent";
    switch (d.action) {
      case delivery::Action::k_sent: break;
      case delivery::Action::k_not_attempted:
        o.state = store::MessageState::k_queued;
        o.next_attempt_at = d.retry_at;
        outcome = "not_attempted";
        break;
      case delivery::Action::k_retry:
        o.state = store::MessageState::k_deferred;
        o.next_attempt_at = d.retry_at;
        outcome = "deferred";
        break;
      case delivery::Action::k_bounce:
        o.state = store::MessageState::k_bounced;
        outcome = "bounced";
        break;
      case delivery::Action::k_fail:
        o.state = store::MessageState::k_failed;
        outcome = "failed";
        break;
    }
    done.push_back({m.stream, m.lane, outcome, m.recipient, reply, m.created_at,
                    d.action == delivery::Action::k_bounce && d.suppress});
    outcomes.push_back(std::move(o));
    m_flying.erase(it);
  }
  // Behind outcomes not recorded yet, or while the store is given time.
  if (!m_unrecorded.empty() || std::chrono::steady_clock::now() < m_retry_at || !record(settled)) {
    m_unrecorded.push_back(std::move(settled));
  }
}

bool TxSender::record(Settled& settled) {
  if (auto w = m_store->record_outcomes(settled.outcomes); !w) {
    store_failed(w.error().message);
    return false;
  }
  store_answered();
  m_transport->confirm(settled.results);
  const std::int64_t now = now_seconds();
  const std::int64_t now_ms = now_millis();
  for (const auto& d : settled.done) {
    m_metrics.message(d.stream, d.lane, d.outcome);
    if (d.outcome == "sent") m_metrics.latency(d.stream, static_cast<double>(now_ms - d.created_at) / 1000.0);
    if (d.suppress) {
      // A hard bounce: the organisation never mails this address again.
      if (auto s = m_store->org_list().suppress(
              {util::to_lower_ascii(d.recipient), "hard bounce: " + d.reason, "all", d.stream, now}); !s) {
        util::log_warn(s.error().message);
      }
    }
  }
  return true;
}

void TxSender::store_failed(const std::string& error) {
  const auto now = std::chrono::steady_clock::now();
  if (m_backoff.count() == 0) {
    // The first failure of a spell is logged; the retries are not.
    util::log_error(fmt::format("{}; transactional sending pauses and tries the store again every few seconds "
                                "(accepted messages wait in it)",
                                error));
    m_failing_since = now;
    m_backoff = std::chrono::seconds(1);
  } else {
    m_backoff = std::min(m_backoff * 2, std::chrono::seconds(30));
  }
  m_retry_at = now + m_backoff;
  m_healthy = false;
}

void TxSender::store_answered() {
  if (m_backoff.count() == 0) return;
  util::log_info(fmt::format("transactional sending resumes: the store answers again after {} s",
                             std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                              m_failing_since)
                                 .count()));
  m_backoff = std::chrono::seconds(0);
  m_retry_at = {};
  m_healthy = true;
}

}  // namespace blindcast::serve
