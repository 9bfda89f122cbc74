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
  void set_stop_check(std::function<bool()> check) override;

  struct Impl;

 private:
  explicit SmtpTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace blindcast::delivery
