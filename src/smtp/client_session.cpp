#include "smtp/client_session.hpp"

#include "util/base64.hpp"
#include "util/utf8.hpp"

#include <array>
#include <cstdint>
#include <cstring>

namespace blindcast::smtp {

namespace {

// RFC 5321 §4.5.3.2 timeouts: greeting 5 min, MAIL/RCPT 5 min, DATA 2 min,
// data block 3 min, final dot 10 min.
constexpr std::array<StateInfo, 14> k_states = {{
    {State::k_greeting, "greeting", "waiting for the server's greeting", 300},
    {State::k_ehlo, "ehlo", "introducing ourselves (EHLO)", 300},
    {State::k_helo, "helo", "introducing ourselves (HELO, the server does not speak ESMTP)", 300},
    {State::k_starttls, "starttls", "asking for TLS (STARTTLS)", 120},
    {State::k_tls_handshake, "tls_handshake", "negotiating TLS", 120},
    {State::k_auth, "auth", "authenticating", 120},
    {State::k_auth_login_user, "auth_login_user", "authenticating (user name)", 120},
    {State::k_auth_login_pass, "auth_login_pass", "authenticating (password)", 120},
    {State::k_ready, "ready", "idle, ready for the next message", 300},
    {State::k_transaction, "transaction", "sending the envelope (MAIL, RCPT, DATA) -- nothing delivered yet", 300},
    {State::k_data_body, "data_body",
     "sending end of data -- the message may be delivered, and may be sent more than once", 600},
    {State::k_rset, "rset", "resetting after a refused message", 120},
    {State::k_quit, "quit", "saying goodbye (QUIT)", 30},
    {State::k_closed, "closed", "connection closed", 0},
}};

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

Reply local_reply(int code, std::string text) {
  Reply r;
  r.code = code;
  r.lines.push_back(std::move(text));
  return r;
}

}  // namespace

const StateInfo& state_info(State state) { return k_states[static_cast<std::size_t>(state)]; }

void append_data_with_terminator(std::string& out, std::string_view data, const DataTraits& traits) {
  out.reserve(out.size() + data.size() + data.size() / 64 + 8);
  if (!data.empty() && data.front() == '.') out += '.';
  std::size_t pos = 0;
  while (traits.dot_lines()) {
    const std::size_t hit = data.find("\r\n.", pos);
    if (hit == std::string_view::npos) break;
    out.append(data.substr(pos, hit + 2 - pos));
    out += '.';  // the line starts with '.', so double it
    pos = hit + 2;
  }
  out.append(data.substr(pos));
  if (data.size() < 2 || data.substr(data.size() - 2) != "\r\n") out += "\r\n";
  out += ".\r\n";
}

ClientSession::ClientSession(SessionConfig config) : m_config(std::move(config)) {}

int ClientSession::timeout_seconds() const {
  if (m_state == State::k_closed) return 0;
  return m_config.timeout_override > 0 ? m_config.timeout_override : state_info(m_state).timeout_seconds;
}

std::string ClientSession::take_output() {
  std::string out;
  out.swap(m_out);
  return out;
}

std::vector<SessionEvent> ClientSession::take_events() {
  std::vector<SessionEvent> out;
  out.swap(m_events);
  return out;
}

void ClientSession::send(std::string_view line) {
  m_out.append(line);
  m_out += "\r\n";
}

void ClientSession::receive(std::string_view bytes) {
  if (m_state == State::k_closed) return;
  std::vector<Reply> replies;
  const auto error = m_parser.feed(bytes, replies);
  for (const auto& r : replies) {
    if (m_state == State::k_closed) return;
    on_reply(r);
  }
  if (error && m_state != State::k_closed) close("the server sent something that is not an SMTP reply: " + *error);
}

void ClientSession::finish_slot(std::optional<Message>& slot, Outcome outcome, const Reply& reply,
                                std::string detail, bool connection_lost, bool maybe_delivered) {
  if (!slot) return;
  SessionEvent e;
  e.kind = SessionEvent::Kind::k_result;
  e.tag = slot->tag;
  e.outcome = outcome;
  e.reply = reply;
  e.detail = std::move(detail);
  e.connection_lost = connection_lost;
  e.maybe_delivered = maybe_delivered;
  e.at_data_end = &slot == &m_finishing;
  m_events.push_back(std::move(e));
  if (&slot == &m_message) m_body_held = false;  // a held body is never written now
  slot.reset();
}

void ClientSession::finish(Outcome outcome, const Reply& reply, std::string detail) {
  finish_slot(m_message, outcome, reply, std::move(detail), false, false);
}

void ClientSession::fail(std::string detail, bool fatal, const Reply* reply) {
  SessionEvent e;
  e.kind = SessionEvent::Kind::k_failed;
  e.detail = std::move(detail);
  e.fatal = fatal;
  if (reply != nullptr) e.reply = *reply;
  m_events.push_back(std::move(e));
  if (m_state != State::k_greeting && m_state != State::k_tls_handshake) {
    send("QUIT");
    m_state = State::k_quit;
  } else {
    close("");
  }
}

void ClientSession::close(std::string detail) {
  const std::string why = detail.empty() ? "connection closed" : detail;
  // The message whose end of DATA was written may have been delivered.
  finish_slot(m_finishing, Outcome::k_deferred, local_reply(451, why),
              std::string(state_info(State::k_data_body).phrase) + ": " + why, true, true);
  if (m_message) {
    const bool after_dot = m_state == State::k_data_body;
    finish_slot(m_message, Outcome::k_deferred, local_reply(451, why),
                std::string(state_info(m_state).phrase) + ": " + why, true, after_dot);
  }
  m_expect.clear();
  m_state = State::k_closed;
  SessionEvent c;
  c.kind = SessionEvent::Kind::k_closed;
  c.detail = std::move(detail);
  m_events.push_back(std::move(c));
}

void ClientSession::connection_lost(std::string_view why) {
  if (m_state == State::k_closed) return;
  if (m_state == State::k_quit) {
    close("");
    return;
  }
  close(std::string(why));
}

void ClientSession::timed_out() {
  if (m_state == State::k_closed) return;
  close(std::string("no reply in time while ") + state_info(m_state).phrase);
}

void ClientSession::quit() {
  if (m_state == State::k_closed || m_state == State::k_quit) return;
  if (m_state == State::k_ready) {
    send("QUIT");
    m_state = State::k_quit;
    return;
  }
  close("quit while busy");
}

void ClientSession::tls_established() {
  if (m_state != State::k_tls_handshake) return;
  m_config.tls_active = true;
  m_caps = Capabilities{};  // RFC 3207 §4.2: forget what was learned before TLS
  send("EHLO " + m_config.helo_name);
  m_state = State::k_ehlo;
}

void ClientSession::parse_ehlo(const Reply& reply) {
  m_caps = Capabilities{};
  m_caps.esmtp = true;
  for (std::size_t i = 1; i < reply.lines.size(); ++i) {
    const std::string line = upper(reply.lines[i]);
    const auto sp = line.find(' ');
    const std::string key = line.substr(0, sp);
    const std::string args = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (key == "PIPELINING") m_caps.pipelining = true;
    if (key == "STARTTLS") m_caps.starttls = true;
    if (key == "SMTPUTF8") m_caps.smtputf8 = true;
    if (key == "8BITMIME") m_caps.eightbitmime = true;
    if (key == "ENHANCEDSTATUSCODES") m_caps.enhanced_codes = true;
    if (key == "SIZE" && !args.empty()) {
      try {
        m_caps.size_limit = std::stoull(args);
      } catch (...) {
        m_caps.size_limit = 0;
      }
    }
    if (key == "AUTH" || key == "AUTH=PLAIN" || key == "AUTH=LOGIN") {
      if (key == "AUTH=PLAIN" || (" " + args + " ").find(" PLAIN ") != std::string::npos) m_caps.auth_plain = true;
      if (key == "AUTH=LOGIN" || (" " + args + " ").find(" LOGIN ") != std::string::npos) m_caps.auth_login = true;
    }
  }
}

void ClientSession::after_capabilities() {
  if (!m_config.tls_active && m_config.tls != TlsPolicy::k_never && m_caps.starttls) {
    send("STARTTLS");
    m_state = State::k_starttls;
    return;
  }
  if (!m_config.tls_active && m_config.tls == TlsPolicy::k_required) {
    fail("the server does not offer STARTTLS and the settings require TLS", true);
    return;
  }
  start_auth();
}

void ClientSession::start_auth() {
  if (!m_config.credentials) {
    become_ready();
    return;
  }
  if (!m_config.tls_active && !m_config.plaintext_auth_ok) {
    fail("refusing to send credentials over an unencrypted connection to a non-loopback server; "
         "use smtps:// or a server that offers STARTTLS",
         true);
    return;
  }
  const auto& c = *m_config.credentials;
  if (m_caps.auth_plain) {
    send("AUTH PLAIN " + util::base64(std::string(1, '\0') + c.username + std::string(1, '\0') + c.password));
    m_state = State::k_auth;
  } else if (m_caps.auth_login) {
    send("AUTH LOGIN");
    m_state = State::k_auth_login_user;
  } else {
    fail("the server does not offer AUTH PLAIN or LOGIN, but credentials are configured", true);
  }
}

void ClientSession::become_ready() {
  m_state = State::k_ready;
  m_events.push_back(SessionEvent{SessionEvent::Kind::k_ready, 0, Outcome::k_sent, {}, {}, false, false, false});
}

void ClientSession::send_mail() {
  std::string cmd = "MAIL FROM:<" + std::string(m_message->mail_from) + ">";
  if (m_caps.size_limit > 0) cmd += " SIZE=" + std::to_string(m_message->data.size());
  if (m_caps.eightbitmime && m_message->traits->eight_bit()) cmd += " BODY=8BITMIME";
  if (m_caps.smtputf8 && (!util::is_ascii(m_message->mail_from) || !util::is_ascii(m_message->rcpt))) {
    cmd += " SMTPUTF8";
  }
  send(cmd);
  m_expect.push_back(Expect::k_mail);
}

void ClientSession::send_rcpt() {
  send("RCPT TO:<" + std::string(m_message->rcpt) + ">");
  m_expect.push_back(Expect::k_rcpt);
}

void ClientSession::send_rset() {
  send("RSET");
  m_expect.push_back(Expect::k_rset);
  m_state = State::k_rset;
}

void ClientSession::send_data() {
  send("DATA");
  m_expect.push_back(Expect::k_data);
}

void ClientSession::send_body() {
  append_data_with_terminator(m_out, m_message->data, *m_message->traits);
  m_expect.push_back(Expect::k_dot);
  m_state = State::k_data_body;
  m_finishing = std::move(m_message);
  m_message.reset();
  if (m_caps.pipelining) {
    m_events.push_back(SessionEvent{SessionEvent::Kind::k_can_pipeline, 0, Outcome::k_sent, {}, {}, false, false, false});
  }
}

void ClientSession::release_body() {
  if (!m_body_held || !m_message || m_state != State::k_transaction) return;
  m_body_held = false;
  send_body();
}

void ClientSession::submit(const Message& message) {
  const bool pipelined_after_dot = m_state == State::k_data_body && m_finishing && !m_message && m_caps.pipelining;
  if ((m_state != State::k_ready && !pipelined_after_dot) || m_message) return;
  m_message = message;
  if (!m_message->traits) m_message->traits = scan_data(message.data);
  m_failure.reset();
  m_mail_ok = false;
  if (m_caps.size_limit > 0 && message.data.size() > m_caps.size_limit) {
    finish(Outcome::k_bounced, local_reply(552, "5.3.4 message is larger than the server accepts (SIZE " +
                                                    std::to_string(m_caps.size_limit) + ")"));
    if (!pipelined_after_dot) become_ready();
    return;
  }
  if ((!util::is_ascii(message.mail_from) || !util::is_ascii(message.rcpt)) && !m_caps.smtputf8) {
    finish(Outcome::k_bounced, local_reply(553, "5.6.7 non-ASCII address and the server lacks SMTPUTF8"));
    if (!pipelined_after_dot) become_ready();
    return;
  }
  m_state = State::k_transaction;
  send_mail();
  if (m_caps.pipelining) {  // RFC 2920: MAIL, RCPT and DATA in one write
    send_rcpt();
    send_data();
  }
}

void ClientSession::on_reply(const Reply& reply) {
  if (reply.code == 421 && m_state != State::k_quit) {
    // RFC 5321 §3.8: the server is closing the channel.
    finish_slot(m_finishing, Outcome::k_deferred, reply,
                "the server closed the connection (421) before confirming this message", false, true);
    if (m_message) finish(Outcome::k_deferred, reply, "the server closed the connection (421)");
    if (m_state == State::k_greeting || m_state == State::k_ehlo || m_state == State::k_helo) {
      SessionEvent e;
      e.kind = SessionEvent::Kind::k_failed;
      e.reply = reply;
      e.detail = "the server refused the session: " + reply.summary();
      m_events.push_back(std::move(e));
    }
    close("the server closed the connection: " + reply.summary());
    return;
  }
  switch (m_state) {
    case State::k_greeting:
      if (reply.code == 220) {
        send("EHLO " + m_config.helo_name);
        m_state = State::k_ehlo;
      } else {
        fail("the server refused the session: " + reply.summary(), false, &reply);
      }
      return;
    case State::k_ehlo:
      if (reply.positive()) {
        parse_ehlo(reply);
        after_capabilities();
      } else {
        send("HELO " + m_config.helo_name);
        m_state = State::k_helo;
      }
      return;
    case State::k_helo:
      if (reply.positive()) {
        m_caps = Capabilities{};
        after_capabilities();
      } else {
        fail("the server refused HELO: " + reply.summary(), false, &reply);
      }
      return;
    case State::k_starttls:
      if (reply.code == 220) {
        m_state = State::k_tls_handshake;
        m_events.push_back(SessionEvent{SessionEvent::Kind::k_start_tls, 0, Outcome::k_sent, {}, {}, false, false, false});
      } else if (m_config.tls == TlsPolicy::k_required) {
        fail("STARTTLS was refused and the settings require TLS: " + reply.summary(), true, &reply);
      } else {
        start_auth();
      }
      return;
    case State::k_auth:
      if (reply.code == 235) {
        become_ready();
      } else {
        fail("authentication refused: " + reply.summary(), reply.permanent(), &reply);
      }
      return;
    case State::k_auth_login_user:  // 334 asks for the user name (RFC 4954 §4, LOGIN)
    case State::k_auth_login_pass:  // 334 asks for the password
      if (reply.code == 334) {
        const auto& c = *m_config.credentials;
        const bool user = m_state == State::k_auth_login_user;
        send(util::base64(user ? c.username : c.password));
        m_state = user ? State::k_auth_login_pass : State::k_auth;
      } else {
        fail("authentication refused: " + reply.summary(), reply.permanent(), &reply);
      }
      return;
    case State::k_transaction:
    case State::k_data_body:
    case State::k_rset:
      on_transaction_reply(reply);
      return;
    case State::k_quit:
      close("");
      return;
    case State::k_ready:
    case State::k_tls_handshake:
    case State::k_closed:
      close("unexpected reply " + reply.summary());
      return;
  }
}

void ClientSession::on_transaction_reply(const Reply& reply) {
  if (m_expect.empty()) {
    close("unexpected reply " + reply.summary());
    return;
  }
  const Expect what = m_expect.front();
  m_expect.pop_front();
  switch (what) {
    case Expect::k_mail:
      if (reply.positive()) {
        m_mail_ok = true;
        if (!m_caps.pipelining) send_rcpt();
      } else {
        m_failure = reply;
        if (!m_caps.pipelining) {
          finish(reply.permanent() ? Outcome::k_bounced : Outcome::k_deferred, reply);
          become_ready();
        }
      }
      return;
    case Expect::k_rcpt:
      if (reply.positive()) {
        if (!m_caps.pipelining) send_data();
      } else {
        if (!m_failure) m_failure = reply;
        if (!m_caps.pipelining) {
          finish(reply.permanent() ? Outcome::k_bounced : Outcome::k_deferred, reply);
          send("RSET");
          m_expect.push_back(Expect::k_rset);
          m_state = State::k_rset;
        }
      }
      return;
    case Expect::k_data:
      if (reply.code == 354) {
        if (m_failure) {
          // RFC 2920 §3.1: the server accepted DATA although the envelope
          // failed; end it at once with an empty body.
          m_out += ".\r\n";
          m_expect.push_back(Expect::k_dot_discard);
          return;
        }
        if (m_config.hold_body) {
          m_body_held = true;
          m_events.push_back(SessionEvent{SessionEvent::Kind::k_body_wanted, m_message->tag, Outcome::k_sent, {}, {},
                                          false, false, false});
          return;
        }
        send_body();
        return;
      }
      {
        const Reply& cause = m_failure ? *m_failure : reply;
        finish(cause.permanent() ? Outcome::k_bounced : Outcome::k_deferred, cause);
      }
      if (m_mail_ok || m_failure) {
        send_rset();
      } else {
        become_ready();
      }
      return;
    case Expect::k_dot:
      finish_slot(m_finishing,
                  reply.positive() ? Outcome::k_sent : reply.permanent() ? Outcome::k_bounced : Outcome::k_deferred,
                  reply, {}, false, false);
      // The next transaction may already be under way (pipelined after the dot).
      if (!m_message) become_ready();
      return;
    case Expect::k_dot_discard: {
      const Reply& cause = *m_failure;
      finish(cause.permanent() ? Outcome::k_bounced : Outcome::k_deferred, cause);
      send_rset();
      return;
    }
    case Expect::k_rset:
      if (reply.positive()) {
        become_ready();
      } else {
        send("QUIT");
        m_state = State::k_quit;
      }
      return;
  }
}

}  // namespace blindcast::smtp
