// Builds and guards a batch of messages on worker threads (render, compose,
// privacy guard), one MessageBuilder per worker because renderers keep
// per-locale caches. The guard and its index are shared read-only.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "campaign/campaign.hpp"
#include "campaign/message_builder.hpp"
#include "delivery/providers.hpp"
#include "guard/privacy_guard.hpp"
#include "store/state_store.hpp"

namespace blindcast::campaign {

struct PreparedMessage {
  std::int64_t id = 0;
  std::int64_t line = 0;
  std::string email;
  std::string lane;
  int attempts = 0;                          // attempts before this one
  std::int64_t first_attempt_at = 0;
  std::string data;                          // the built bytes (kept on a violation, for quarantine)
  std::string render_error;
  std::optional<guard::Violation> violation;
};

class MessagePreparer {
 public:
  // Creates `workers` builders for `campaign` (each loads its own catalogs).
  static Result<std::unique_ptr<MessagePreparer>> create(const LoadedCampaign& campaign,
                                                         std::shared_ptr<const guard::PrivacyGuard> guard,
                                                         int workers);
  // Builds and guards `rows` in parallel; the result keeps their order.
  std::vector<PreparedMessage> prepare(const std::vector<store::StoredRecipient>& rows);

  [[nodiscard]] const std::string& envelope_from() const { return m_envelope_from; }
  ~MessagePreparer();
  MessagePreparer(const MessagePreparer&) = delete;
  MessagePreparer& operator=(const MessagePreparer&) = delete;

 private:
  struct Worker;
  MessagePreparer();
  std::vector<std::unique_ptr<Worker>> m_workers;
  std::shared_ptr<const guard::PrivacyGuard> m_guard;
  std::string m_envelope_from;
  int m_name_column = -1;
  std::unique_ptr<delivery::LaneTable> m_lanes;
};

}  // namespace blindcast::campaign
