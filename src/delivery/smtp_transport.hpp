// SMTP delivery: a pool of connections to one server (the `smtp://` or
// `smtps://` URL), each driving a smtp::ClientSession over standalone Asio
// with OpenSSL for TLS.
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
//   queue; lost after it, the message is "deferred, maybe delivered";
// - batches overlap: a batch offered (offer()) while another is delivered is
//   started as soon as the other's messages are all handed out, so the
//   connections do not drain and idle at every batch boundary; deliver()
//   still returns one batch's results, when all of them are known;
// - a settings failure stays for the transport's life: later batches are
//   reported not attempted;
// - three connection failures in a row with nothing delivered in between
//   defer the rest of the batch with the reason; a settings failure (AUTH
//   refused, TLS required but absent) stops the batch and is reported as fatal.
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
  Result<DeliveryReport> deliver(std::span<const OutgoingMessage> messages) override;
  void offer(std::span<const OutgoingMessage> next) override;
  void stop_starting() override;
  void set_stop_check(std::function<bool()> check) override;

  struct Impl;

 private:
  explicit SmtpTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace blindcast::delivery
