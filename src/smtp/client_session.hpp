// An SMTP client session as a pure state machine (RFC 5321, RFC 2920
// PIPELINING, RFC 3207 STARTTLS, RFC 4954 AUTH PLAIN/LOGIN, RFC 1870 SIZE,
// RFC 6152 8BITMIME, RFC 6531 SMTPUTF8).
//
// Bytes in, commands and events out: the session owns no socket, timer or
// thread. A driver feeds it the server's bytes (receive), writes what
// take_output() returns, performs the TLS handshake when asked (k_start_tls
// then tls_established), arms a timer for timeout_seconds() and reports
// timed_out() or connection_lost(). Every reply sequence is therefore a unit
// test without a network.
//
// Why hand-written rather than a library (libcurl, libesmtp): per-reply
// control is the point — exactly one RCPT per transaction by construction,
// pipelined MAIL/RCPT/DATA, a 421 at any moment, and knowing precisely whether
// a lost connection happened before or after the end of DATA (which decides
// between "retry" and "retry, possible duplicate").
//
// Policy: a message carries one recipient. Credentials are only sent over TLS,
// or in clear to a loopback peer when the driver says so. A 421 reply closes
// the session. Outcomes by reply class: 2xx sent, 4xx deferred, 5xx bounced;
// what a deferral means for the lane (throttling) is decided by delivery/.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/data_traits.hpp"
#include "smtp/reply.hpp"

namespace blindcast::smtp {

struct Credentials {
  std::string username;
  std::string password;
};

enum class TlsPolicy { k_never, k_opportunistic, k_required };

struct SessionConfig {
  std::string helo_name = "localhost";
  TlsPolicy tls = TlsPolicy::k_opportunistic;
  bool tls_active = false;          // implicit TLS (smtps://) is already on
  bool plaintext_auth_ok = false;   // the peer is a loopback address
  std::optional<Credentials> credentials;
  int timeout_override = 0;         // seconds for every phase; 0 = RFC 5321 §4.5.3.2 values
  // After the server's 354, wait for release_body() before writing the
  // message and its end of DATA (k_body_wanted): the driver decides when a
  // message may become "possibly delivered".
  bool hold_body = false;
};

struct Capabilities {
  bool esmtp = false;
  bool pipelining = false;
  bool starttls = false;
  bool auth_plain = false;
  bool auth_login = false;
  bool smtputf8 = false;
  bool eightbitmime = false;
  bool enhanced_codes = false;
  std::uint64_t size_limit = 0;     // 0 = none advertised
};

struct Message {
  std::uint64_t tag = 0;            // the caller's id, echoed in the result
  std::string_view mail_from;
  std::string_view rcpt;            // exactly one recipient
  std::string_view data;            // CRLF message; must outlive the transaction
  std::optional<DataTraits> traits; // scan_data(data) if the caller has it; else the session scans
};

enum class Outcome { k_sent, k_deferred, k_bounced };

struct SessionEvent {
  enum class Kind {
    k_ready,         // idle: submit() the next message or quit()
    k_can_pipeline,  // end of DATA written and PIPELINING offered: submit() the next one now, or wait for k_ready
    k_body_wanted,   // (hold_body) the server said 354 for message `tag`: call release_body() when it may go
    k_start_tls,     // do the TLS handshake, then call tls_established()
    k_result,     // a message finished (see outcome)
    k_failed,     // the session cannot be used (see detail; fatal = settings problem)
    k_closed,     // the connection is finished; close the socket
  };
  Kind kind = Kind::k_ready;
  std::uint64_t tag = 0;
  Outcome outcome = Outcome::k_sent;
  Reply reply;
  std::string detail;
  bool maybe_delivered = false;     // lost after the end of DATA was written
  bool fatal = false;
  bool connection_lost = false;     // the result comes from a broken connection, not a reply
  bool at_data_end = false;         // the reply to (or the loss after) the end of DATA; else MAIL, RCPT or DATA
};

enum class State {
  k_greeting, k_ehlo, k_helo, k_starttls, k_tls_handshake, k_auth, k_auth_login_user,
  k_auth_login_pass, k_ready, k_transaction, k_data_body, k_rset, k_quit, k_closed,
};

// The one table of states: name, what it means for a person, default timeout.
struct StateInfo {
  State state;
  const char* name;
  const char* phrase;
  int timeout_seconds;
};
const StateInfo& state_info(State state);

class ClientSession {
 public:
  explicit ClientSession(SessionConfig config);

  // Feeds bytes received from the server.
  void receive(std::string_view bytes);
  // Starts `message`; valid after k_ready, and after k_can_pipeline (RFC 2920
  // §3.1: the next MAIL may follow the end of DATA without waiting).
  void submit(const Message& message);
  // (hold_body) Writes the message waiting after its 354, and its end of DATA.
  void release_body();
  // Ends the session politely (QUIT) when idle, at once otherwise.
  void quit();
  // The driver finished the TLS handshake asked for by k_start_tls.
  void tls_established();
  // The phase timer for the current state expired.
  void timed_out();
  // The connection broke (read or write error, EOF).
  void connection_lost(std::string_view why);

  // Bytes to write to the server, cleared by the call.
  std::string take_output();
  // Events since the last call, in order.
  std::vector<SessionEvent> take_events();

  [[nodiscard]] State state() const { return m_state; }
  [[nodiscard]] int timeout_seconds() const;
  [[nodiscard]] const Capabilities& capabilities() const { return m_caps; }
  [[nodiscard]] bool tls_active() const { return m_config.tls_active; }
  [[nodiscard]] bool busy() const { return m_message.has_value() || m_finishing.has_value(); }
  [[nodiscard]] bool body_held() const { return m_body_held; }

 private:
  enum class Expect { k_mail, k_rcpt, k_data, k_dot, k_dot_discard, k_rset };

  void on_reply(const Reply& reply);
  void on_transaction_reply(const Reply& reply);
  void after_capabilities();
  void start_auth();
  void become_ready();
  void send(std::string_view line);
  void send_mail();
  void send_rcpt();
  void send_data();
  // Writes the message after 354, dot-stuffed, with its end of DATA.
  void send_body();
  // Ends a refused transaction (RFC 5321 §4.1.1.5).
  void send_rset();
  void finish(Outcome outcome, const Reply& reply, std::string detail = {});
  void finish_slot(std::optional<Message>& slot, Outcome outcome, const Reply& reply, std::string detail,
                   bool connection_lost, bool maybe_delivered);
  void fail(std::string detail, bool fatal, const Reply* reply = nullptr);
  void close(std::string detail);
  void parse_ehlo(const Reply& reply);

  SessionConfig m_config;
  State m_state = State::k_greeting;
  Capabilities m_caps;
  ReplyParser m_parser;
  std::string m_out;
  std::vector<SessionEvent> m_events;
  std::optional<Message> m_message;     // the transaction in progress
  std::optional<Message> m_finishing;   // end of DATA written, final reply pending
  std::deque<Expect> m_expect;
  std::optional<Reply> m_failure;   // first failing reply of the current transaction
  bool m_mail_ok = false;
  bool m_body_held = false;         // 354 received, release_body() not yet called
};

// Appends `data` to `out` dot-stuffed (RFC 5321 §4.5.2), ending with CRLF "." CRLF.
// With traits from scan_data(data) that say no line starts with '.', the
// bytes are copied without looking for lines.
void append_data_with_terminator(std::string& out, std::string_view data, const DataTraits& traits = DataTraits());

}  // namespace blindcast::smtp
