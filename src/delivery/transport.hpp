// The seam between a sender and a way of delivering mail.
//
// Policy: a message carries exactly one recipient — there is no way to hand a
// transport a list of recipients for one message (SPEC §3 invariant 1, §5).
// The caller has already run the privacy guard on `data` and recorded the
// recipient as in flight before it submits the message.
//
// A transport is a stream: submit() hands messages over (from any thread),
// they start in the order given as soon as the transport can, and poll()
// (on the one delivery thread) returns each result as soon as it is known,
// in whatever order they finish, so one slow reply never holds up the rest.
// A result states the facts (reply, phase, whether it may have arrived);
// what they mean is delivery/outcome_policy's decision, nobody else's.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "delivery/outcome_policy.hpp"
#include "delivery/providers.hpp"
#include "delivery/yield_controller.hpp"
#include "smtp/data_traits.hpp"
#include "util/error.hpp"

namespace blindcast::delivery {

struct OutgoingMessage {
  std::int64_t recipient_id = 0;  // echoed in the result; unique among the messages under way
  std::string delivery_key;       // unique per (stage, recipient); makes retries idempotent where possible
  std::string envelope_from;
  std::string recipient;          // the one envelope recipient
  std::string data;               // exact bytes, CRLF line ends, already guarded
  std::string lane;               // provider lane (the sender shapes its rate)
  int lane_connections = 0;       // at most this many of the lane's messages on connections at once; 0: no cap
  std::optional<smtp::DataTraits> traits;  // smtp::scan_data(data), when the builder did it
  // 0 (transactional) goes before 1 (campaigns) in the same lane and
  // connections: a campaign delays it by the messages already on the wire.
  int priority = 1;
  std::uint32_t group = 0;        // stop_group() stops the messages of one group (a sender sharing the transport)
};

// What happened to one message, as the transport saw it.
struct DeliveryResult {
  std::int64_t recipient_id = 0;
  bool attempted = true;          // false: no byte of it reached a server (stopped, or a settings failure)
  bool settings_failure = false;  // with !attempted: AUTH refused, TLS required but absent
  int code = 0;                   // SMTP reply code; 0 when there was no reply
  std::string enhanced;           // RFC 3463 status when the server gave one
  std::string reply;              // the server's reply or the local reason
  Phase phase = Phase::k_data_end;
  bool maybe_delivered = false;   // lost after the end of DATA: a retry may duplicate it

  [[nodiscard]] bool sent() const { return attempted && code / 100 == 2; }
  // The result of a message that never started because sending was stopped.
  static DeliveryResult stopped(std::int64_t recipient_id = 0) {
    DeliveryResult r;
    r.recipient_id = recipient_id;
    r.attempted = false;
    r.phase = Phase::k_none;
    r.reply = "not attempted: sending was stopped";
    return r;
  }
  // The facts for delivery::OutcomePolicy (views into this result).
  [[nodiscard]] AttemptFacts facts() const {
    return {attempted, settings_failure, code, enhanced, reply, phase, maybe_delivered};
  }
};

struct TransportConfig {
  std::string url;                // maildir:PATH, smtp://HOST:PORT, smtps://HOST:PORT, mx:
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
  std::string resolver;           // mx: the DNS server, "HOST:PORT" ("" the system's)
  int mx_port = 25;               // mx: the port of every MX host
  int connections_per_destination = 10;  // mx: connections to one MX host set at most
  int mta_sts_port = 443;         // mx: the port of MTA-STS policy hosts
  std::string mta_sts_cache;      // mx: the file MTA-STS policies are kept in ("": memory only)
  YieldSettings yield;            // smtp, mx: campaigns (priority 1) yield to transactional mail (priority 0)
};

// What the yield controller does now (delivery/yield_controller.hpp).
struct YieldStatus {
  bool limiting = false;
  double rate = 0;            // campaign messages per second allowed; 0 while not limiting
  double full_rate = 0;       // the campaigns' measured speed without a limit
  double base_seconds = 0;    // the shortest recent transactional latency (submission to reply)
  double target_seconds = 0;  // a transactional message slower than this slows the campaigns
  std::uint64_t spells = 0;   // times campaigns began to yield
};

class Transport {
 public:
  virtual ~Transport() = default;
  // A short description for logs ("maildir:/path").
  [[nodiscard]] virtual std::string describe() const = 0;
  // Thread-safe: queues `messages` to start, in this order, as soon as possible.
  virtual void submit(std::vector<OutgoingMessage> messages) = 0;
  // On the delivery thread: works for up to `max_wait` (less once a result
  // is ready) and appends every result known by then. An Error means the
  // transport itself failed (cannot write) and nothing more can be sent.
  virtual Result<void> poll(std::chrono::milliseconds max_wait, std::vector<DeliveryResult>& results) = 0;
  // Thread-safe: messages submitted whose results poll() has not returned.
  [[nodiscard]] virtual std::size_t unfinished() const = 0;
  // Thread-safe: start no new message from now on; the queued ones come back
  // not attempted; messages already started finish.
  virtual void stop_starting() = 0;
  // Thread-safe: start no new message of `group` (OutgoingMessage::group);
  // its queued ones come back not attempted. A transport that cannot tell
  // groups apart stops everything.
  virtual void stop_group(std::uint32_t group) {
    (void)group;
    stop_starting();
  }
  // Thread-safe: from now on a message is started only while fewer than `n`
  // are on a connection or finished without confirm() (0, the default: no
  // limit). A message can reach a server twice only if a crash comes after
  // its end of DATA was written and before its outcome was recorded: this
  // bounds those, whatever the queue behind them holds.
  virtual void limit_unconfirmed(std::size_t n) { (void)n; }
  // Thread-safe: `n` more results returned by poll() are durably recorded.
  virtual void confirm(std::size_t n) { (void)n; }
  // Before the first poll(): from then on poll() calls `hook` (on the
  // delivery thread) with the recipients whose end of DATA is about to be
  // written, a group at a time, and writes none of them unless it returns
  // true: the caller has recorded that exactly these may arrive without
  // their reply being known. A transport whose messages cannot arrive twice
  // (idempotent()) may never call it. Returns true when it will call it.
  virtual bool on_data_end(std::function<bool(std::span<const std::int64_t>)> hook) {
    (void)hook;
    return false;
  }
  // True when the provider lanes' rates apply to what it delivers (it talks
  // to mail servers); a maildir writes files, which no provider throttles.
  [[nodiscard]] virtual bool paced() const { return true; }
  // True when delivering a message again replaces the earlier copy (a
  // maildir file keyed by the delivery key): nothing can arrive twice.
  [[nodiscard]] virtual bool idempotent() const { return false; }
  // Thread-safe: a transactional message is on its way (its request came
  // in): campaigns start yielding now, not once it reaches the transport.
  virtual void urgent_coming() {}
  // Thread-safe: what the yield controller does, for transports that have one.
  [[nodiscard]] virtual std::optional<YieldStatus> yield_status() const { return std::nullopt; }
};

// Creates the transport for `config`.
Result<std::unique_ptr<Transport>> make_transport(const TransportConfig& config);

// Submits `messages` and waits for all of their results, in the order given
// (for small jobs: the seed-list stage, benchmarks).
Result<std::vector<DeliveryResult>> deliver_all(Transport& transport, std::vector<OutgoingMessage> messages);

}  // namespace blindcast::delivery
