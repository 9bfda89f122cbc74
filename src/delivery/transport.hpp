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
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "delivery/providers.hpp"
#include "smtp/data_traits.hpp"
#include "util/error.hpp"

namespace blindcast::delivery {

struct OutgoingMessage {
  std::int64_t recipient_id = 0;
  std::string delivery_key;   // unique per (stage, recipient); makes retries idempotent where possible
  std::string envelope_from;
  std::string recipient;      // the one envelope recipient
  std::string data;           // exact bytes, CRLF line ends, already guarded
  std::string lane;           // provider lane, for shaping
  std::optional<smtp::DataTraits> traits;  // smtp::scan_data(data), when the builder did it
};

enum class DeliveryKind {
  k_sent,
  k_deferred,       // try again later
  k_bounced,        // permanent failure
  k_failed,         // local failure that retrying will not fix
  k_not_attempted,  // no byte of it was sent (the transport stopped first)
};

struct DeliveryResult {
  std::int64_t recipient_id = 0;
  DeliveryKind kind = DeliveryKind::k_sent;
  std::string reply;             // server reply or local reason
  bool maybe_delivered = false;  // lost after the end of DATA: a retry may duplicate it
  std::string enhanced;          // RFC 3463 code when the server gave one
  int code = 0;                  // SMTP reply code, 0 when local
  std::int64_t retry_at = 0;     // k_not_attempted by shaping: when the lane can take it
};

struct LaneStatus {
  std::string name;
  double configured_rate = 0;  // messages per second
  double rate = 0;             // now, after throttling
  std::int64_t throttled_at = 0;
};

struct DeliveryReport {
  std::vector<DeliveryResult> results;  // one per message, same order
  std::string fatal;                    // non-empty: settings problem, stop sending (e.g. AUTH refused)
  std::vector<LaneStatus> lanes;        // shaping state after this batch (SMTP only)
};

struct TransportConfig {
  std::string url;                // maildir:PATH, smtp://HOST:PORT, smtps://HOST:PORT
  std::string base_dir;           // relative maildir paths start here
  std::string campaign_id;
  std::string tls;                // "", "opportunistic" or "required"
  std::string ca_file;            // trust anchors for TLS verification; default: the system's
  std::string username;
  std::string password;           // from password_file, never from settings or environment
  int connections = 20;
  int messages_per_connection = 1000;
  int timeout_seconds = 0;        // 0: RFC 5321 defaults per phase
  std::string helo_name;          // default: this host's name
  std::vector<LaneDefaults> lanes;       // shaping per provider lane (SMTP); empty = no shaping
  int throttle_quiet_seconds = 60;         // after a throttling reply, how long before speeding up again
};

class Transport {
 public:
  virtual ~Transport() = default;
  // A short description for logs ("maildir:/path").
  [[nodiscard]] virtual std::string describe() const = 0;
  // Delivers `messages`, one result per message in the same order. An Error
  // means the transport itself failed (cannot write); the report's `fatal`
  // means the settings are wrong and sending must stop.
  virtual Result<DeliveryReport> deliver(std::span<const OutgoingMessage> messages) = 0;
  // Called from another thread while a deliver() runs: `next` is what the
  // next deliver() call will get (it must stay alive until that call
  // returns). A transport may start it as soon as the running batch's
  // messages are all handed out. Default: ignored.
  virtual void offer(std::span<const OutgoingMessage> next) { (void)next; }
  // Thread-safe: start no new message from now on (every later deliver()
  // reports its messages not attempted); messages already started finish.
  virtual void stop_starting() {}
  // Sets a check polled while delivering: when it returns true no new message
  // is started (halt, Ctrl-C); messages already started finish.
  virtual void set_stop_check(std::function<bool()> check) { (void)check; }
};

// Creates the transport for `config`.
Result<std::unique_ptr<Transport>> make_transport(const TransportConfig& config);

}  // namespace blindcast::delivery
