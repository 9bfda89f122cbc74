// One SMTP connection: a socket (plain or TLS) driving a smtp::ClientSession.
// Internal to the SMTP transport; see smtp_transport.hpp for the policy.
#pragma once

#include <array>
#include <chrono>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "smtp/client_session.hpp"

namespace blindcast::delivery {

struct ConnectionSettings;

// What a connection asks of its pool.
class ConnectionOwner {
 public:
  virtual ~ConnectionOwner() = default;
  // The next message for a ready connection, or nullopt (the index into the batch).
  virtual std::optional<std::size_t> next_message() = 0;
  // Returns message `index` to the queue (nothing of it was sent).
  virtual void requeue(std::size_t index) = 0;
  // Records the outcome of message `index`.
  virtual void result(std::size_t index, const smtp::SessionEvent& event) = 0;
  // The connection using `used` failed before or outside a message (`fatal`:
  // a settings problem).
  virtual void connection_failed(const ConnectionSettings& used, const std::string& detail, bool fatal) = 0;
  // The connection is finished.
  virtual void connection_closed(class SmtpConnection* connection) = 0;
  // The message bytes and envelope for `index`.
  virtual smtp::Message message(std::size_t index) = 0;
  // True when message `index` may have its body and end of DATA written now
  // (then counted as written); false: ask again on resume().
  virtual bool may_end_data(std::size_t index) = 0;
};

struct ConnectionSettings {
  asio::ip::tcp::endpoint endpoint;
  std::string host;           // for SNI and certificate checks
  bool implicit_tls = false;
  bool verify = false;
  smtp::SessionConfig session;
  int messages_per_connection = 1000;
};

class SmtpConnection : public std::enable_shared_from_this<SmtpConnection> {
 public:
  SmtpConnection(asio::io_context& io, asio::ssl::context& tls, ConnectionOwner& owner,
                 const ConnectionSettings& settings);
  // Connects and starts the session.
  void start();
  // Offers work to an idle connection.
  void wake();
  // Writes a body that waits for may_end_data(), if it may go now.
  void resume();
  // Ends the session (QUIT when idle).
  void stop();
  // Ends the current phase when its deadline has passed (called by the pool's tick).
  void check_deadline(std::chrono::steady_clock::time_point now);
  [[nodiscard]] bool idle() const { return m_idle; }
  [[nodiscard]] bool closed() const { return m_closed; }
  // True while a body waits for may_end_data() (no reply is coming).
  [[nodiscard]] bool held() const { return m_body_waiting.has_value() && m_session.body_held(); }
  [[nodiscard]] int delivered() const { return m_delivered; }

 private:
  void read();
  void received(std::size_t n);  // TLS: n bytes arrived in the read buffer
  void pump();
  void flush();
  void handle(const smtp::SessionEvent& event);
  // Submits the next queued message, if any; returns false when there is none.
  bool submit_next();
  void start_tls();
  void arm_timer();
  void lost(const std::string& why);
  void finish();

  asio::ip::tcp::socket m_socket;
  asio::ssl::context& m_tls_context;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> m_tls;
  // Phase deadline; checked by the pool's tick instead of a timer per reply,
  // which would cost a timerfd system call for every command.
  std::chrono::steady_clock::time_point m_deadline = std::chrono::steady_clock::time_point::max();
  ConnectionOwner& m_owner;
  const ConnectionSettings& m_settings;
  smtp::ClientSession m_session;
  std::array<char, 16384> m_read_buffer{};
  std::string m_pending;   // bytes waiting to be written
  std::string m_writing;   // bytes being written
  std::vector<std::size_t> m_active;  // messages handed to the session and not finished (at most two)
  smtp::State m_deadline_state = smtp::State::k_closed;
  bool m_idle = false;
  bool m_closed = false;
  bool m_handshaking = false;
  bool m_stopping = false;
  std::optional<std::size_t> m_body_waiting;  // a message whose body waits for may_end_data()
  int m_delivered = 0;
};

}  // namespace blindcast::delivery
