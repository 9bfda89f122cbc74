// The seam between the sender and a way of delivering mail.
//
// Policy: a message carries exactly one recipient — there is no way to hand a
// transport a list of recipients for one message (SPEC §3 invariant 1, §5).
// The caller has already run the privacy guard on `data` and recorded the
// recipient as in flight before calling deliver(). Transports report one
// result per message, in order; a transport-wide failure (cannot write, cannot
// connect) is an Error and nothing after it is reported as sent.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace blindcast::delivery {

struct OutgoingMessage {
  std::int64_t recipient_id = 0;
  std::string delivery_key;   // unique per (stage, recipient); makes retries idempotent where possible
  std::string envelope_from;
  std::string recipient;      // the one envelope recipient
  std::string data;           // exact bytes, CRLF line ends, already guarded
};

enum class DeliveryKind { k_sent, k_deferred, k_bounced, k_failed };

struct DeliveryResult {
  std::int64_t recipient_id = 0;
  DeliveryKind kind = DeliveryKind::k_sent;
  std::string reply;  // server reply or local reason
};

class Transport {
 public:
  virtual ~Transport() = default;
  // A short description for logs ("maildir:/path").
  [[nodiscard]] virtual std::string describe() const = 0;
  // Delivers `messages`, one result per message in the same order.
  virtual Result<std::vector<DeliveryResult>> deliver(std::span<const OutgoingMessage> messages) = 0;
};

// Creates the transport for `url` ("maildir:PATH", relative to `base_dir`).
Result<std::unique_ptr<Transport>> make_transport(const std::string& url, const std::string& base_dir,
                                                  const std::string& campaign_id);

}  // namespace blindcast::delivery
