// Builds and guards batches of messages on worker threads (render, compose,
// privacy guard), one MessageBuilder per worker because renderers keep
// per-locale caches. The guard and its index are shared read-only.
//
// The workers live as long as the preparer and take whole batches from a
// queue, so batches the sender will need next are built while the current
// one is delivered: preparing never waits for sending, nor sending for it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <optional>
#include <string>
#include <vector>

#include "campaign/campaign.hpp"
#include "compose/guard_setup.hpp"
#include "compose/message_builder.hpp"
#include "delivery/providers.hpp"
#include "guard/privacy_guard.hpp"
#include "smtp/data_traits.hpp"
#include "store/state_store.hpp"

namespace blindcast::compose {

struct PreparedMessage {
  std::int64_t id = 0;
  std::int64_t line = 0;
  std::string email;
  std::string lane;
  int attempts = 0;                          // attempts before this one
  std::int64_t first_attempt_at = 0;
  std::string data;                          // the built bytes (kept on a violation, for quarantine)
  std::string envelope_from;                 // MAIL FROM (a VERP return path with [bounces])
  std::string render_error;
  std::optional<guard::Violation> violation;
  smtp::DataTraits traits;                   // of `data`, scanned here while it is in this core's cache
  std::uint64_t ledger_key = 0;              // guard::SendLedger::key(email), computed by the builder
};

class MessagePreparer {
 public:
  // Creates `workers` builders for `campaign` (each loads its own catalogs).
  static Result<std::unique_ptr<MessagePreparer>> create(const campaign::LoadedCampaign& campaign,
                                                         std::shared_ptr<const CampaignGuard> guard,
                                                         int workers);
  // Queues `rows` to be built and guarded; returns at once.
  void submit(std::vector<store::StoredRecipient> rows);
  // The oldest submitted batch, built, in the order of its rows; waits for it.
  // Call only while pending() > 0.
  std::vector<PreparedMessage> take();
  // The oldest submitted batch when it is built; nullopt when none is ready.
  std::optional<std::vector<PreparedMessage>> try_take();
  // Waits up to `timeout` for the oldest batch to be built; true when it is.
  bool wait_ready(std::chrono::milliseconds timeout);
  // Batches submitted and not yet taken.
  [[nodiscard]] std::size_t pending() const { return m_submitted - m_taken; }

  [[nodiscard]] const std::string& envelope_from() const { return m_envelope_from; }
  ~MessagePreparer();
  MessagePreparer(const MessagePreparer&) = delete;
  MessagePreparer& operator=(const MessagePreparer&) = delete;

 private:
  struct Worker;
  struct Job {
    std::vector<store::StoredRecipient> rows;
    std::vector<PreparedMessage> out;
    bool done = false;
  };
  MessagePreparer();
  void run(Worker& w);
  void build(Worker& w, const std::vector<store::StoredRecipient>& rows, std::vector<PreparedMessage>& out);
  std::vector<std::unique_ptr<Worker>> m_workers;
  std::vector<std::thread> m_threads;
  std::mutex m_mutex;
  std::condition_variable m_work_ready;
  std::condition_variable m_job_done;
  std::deque<std::shared_ptr<Job>> m_todo;   // not started
  std::deque<std::shared_ptr<Job>> m_jobs;   // every job not taken, oldest first
  std::uint64_t m_submitted = 0;
  std::uint64_t m_taken = 0;
  bool m_stopping = false;
  std::shared_ptr<const CampaignGuard> m_guard;
  std::string m_envelope_from;
  int m_name_column = -1;
  std::unique_ptr<delivery::LaneTable> m_lanes;  // for rows without a stored lane
};

}  // namespace blindcast::compose
