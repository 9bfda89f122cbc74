// SMTP delivery: a pool of connections to one server (the `smtp://` or
// `smtps://` URL), or with `mx:` to each recipient domain's MX hosts (one
// pool per MX host set, SPEC §11), each connection driving a
// smtp::ClientSession over standalone Asio with OpenSSL for TLS.
//
// Policy:
// - `connections` concurrent connections, each carrying many messages (up to
//   `messages_per_connection`, then a new connection), kept open between
//   batches; one recipient per message;
// - STARTTLS when offered; `tls = "required"` refuses a server without it;
//   `smtps://` starts with TLS. The certificate and host name are verified
//   whenever TLS is required or implicit (system trust store or `ca_file`);
// - credentials only over TLS, or in clear to a loopback address;
// - per-phase timeouts from the session's state table;
// - a connection lost before the end of DATA returns its message to the
//   queue; lost after it, the message is "no reply, maybe delivered";
// - submitted messages join one queue; a connection takes the next as soon as
//   it can (with PIPELINING, right behind the previous end of DATA), and each
//   result goes back on its own as soon as it is known;
// - with limit_unconfirmed(n), a connection takes a message only while fewer
//   than n are on connections or finished but not confirmed as recorded:
//   what a crash can deliver twice stays under n however fast the server is;
// - a settings failure (AUTH refused, TLS required but absent) stays for the
//   transport's life: every queued and later message comes back not
//   attempted, marked as a settings failure;
// - three connection failures in a row with nothing delivered in between
//   (with mx:, at least one per address of the destination) end every queued
//   message with "451 4.4.1" and the reason (the outcome policy schedules
//   their retry); the next messages try again;
// - mx: a domain whose DNS says it takes no mail (null MX, NXDOMAIN, no
//   addresses) ends its message with a 5xx at once; DNS that cannot answer
//   ends it with "451 4.4.3" in the connect phase (held, not aged). The
//   lookups run on a thread of their own; a message waits for its domain's.
#pragma once

#include <functional>
#include <memory>

#include "delivery/transport.hpp"

namespace blindcast::delivery {

class SmtpTransport final : public Transport {
 public:
  // Resolves the server in `config` and prepares the pool (connects lazily).
  static Result<std::unique_ptr<SmtpTransport>> open(const TransportConfig& config);
  ~SmtpTransport() override;
  SmtpTransport(const SmtpTransport&) = delete;
  SmtpTransport& operator=(const SmtpTransport&) = delete;

  [[nodiscard]] std::string describe() const override;
  void submit(std::vector<OutgoingMessage> messages) override;
  Result<void> poll(std::chrono::milliseconds max_wait, std::vector<DeliveryResult>& results) override;
  [[nodiscard]] std::size_t unfinished() const override;
  void stop_starting() override;
  void stop_group(std::uint32_t group) override;
  void limit_unconfirmed(std::size_t n) override;
  void confirm(std::size_t n) override;
  bool on_data_end(std::function<bool(std::span<const std::int64_t>)> hook) override;
  [[nodiscard]] std::optional<YieldStatus> yield_status() const override;
  void urgent_coming() override;

  struct Impl;

 private:
  explicit SmtpTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace blindcast::delivery
