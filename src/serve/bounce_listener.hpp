// The service's bounce receiver (SPEC §9, server.toml [bounces] listen): an
// SMTP server that accepts mail for the bounce domain only — recipients
// bounce+TOKEN@DOMAIN, and postmaster@, abuse@ and fbl@DOMAIN for feedback
// reports — and relays nothing. Each message is parsed (bounce::parse) and
// applied (send::BounceIngester) before the 250 that ends its DATA, so a
// report the client saw accepted is recorded; a store that cannot be
// written answers 451 and the client keeps the report.
//
// Limits: `max_message_bytes` (552 beyond, SIZE advertised), `rate`
// messages per minute per client address (421 beyond), `max_connections`
// sessions at once and 10 per client address (421 beyond), 1,000-octet
// command lines, 100 recipients, 60 s of silence, 30 s for a reply the
// client does not read, 10 minutes a session. Only CR LF . CR LF ends the
// data. STARTTLS with the server's tls_cert_file/tls_key_file. Stopping
// shuts every session's socket down, so no client holds the service up.
//
// Hand-written rather than a library: no SMTP server library is packaged
// for C++ in Debian, and this one needs only the commands above.
#pragma once

#include <memory>

#include "serve/metrics.hpp"
#include "serve/server_config.hpp"
#include "util/error.hpp"

namespace blindcast::serve {

class BounceListener {
 public:
  // Binds (an Error when the address is in use or not this machine's).
  static Result<std::unique_ptr<BounceListener>> start(const ServerConfig& config, Metrics& metrics);
  ~BounceListener();  // stops: no new sessions; sessions in progress end
  BounceListener(const BounceListener&) = delete;
  BounceListener& operator=(const BounceListener&) = delete;

  [[nodiscard]] int port() const;

  struct Impl;

 private:
  explicit BounceListener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace blindcast::serve
