#include "serve/bounce_listener.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bounce/report.hpp"
#include "bounce/verp.hpp"
#include "send/bounce_ingest.hpp"
#include "store/pg_store.hpp"
#include "store/service_store.hpp"
#include "util/log.hpp"
#include "util/mask.hpp"
#include "util/secret_file.hpp"
#include "util/strings.hpp"
#include "util/threads.hpp"

namespace blindcast::serve {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t k_max_line = 1000;
constexpr std::size_t k_max_recipients = 100;
constexpr int k_idle_ms = 60'000;
// A whole session, however it trickles: a client that sends a byte a minute
// holds its slot this long at most.
constexpr int k_session_seconds = 600;
// Writes that block this long (a client that does not read its replies) end the session.
constexpr int k_send_timeout_seconds = 30;
// Sessions one client address may hold at once.
constexpr int k_sessions_per_client = 10;

// One client connection: plain, then TLS after STARTTLS.
class Conn {
 public:
  explicit Conn(int fd) : m_fd(fd) {}
  ~Conn() {  // the descriptor is the session's owner's to close
    if (m_ssl != nullptr) {
      SSL_shutdown(m_ssl);
      SSL_free(m_ssl);
    }
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  bool write(std::string_view text) {
    while (!text.empty()) {
      const int n = m_ssl != nullptr ? SSL_write(m_ssl, text.data(), static_cast<int>(text.size()))
                                     : static_cast<int>(::send(m_fd, text.data(), text.size(), MSG_NOSIGNAL));
      if (n <= 0) return false;
      text.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  bool reply(std::string_view line) { return write(std::string(line) + "\r\n"); }

  // Reads one line (without CRLF). False on EOF, error, idleness or the
  // session's deadline; `too_long` when the line passed `limit` (the rest of
  // it is read and dropped); `crlf` whether it ended with CR LF (not a bare LF).
  bool read_line(std::string& line, std::size_t limit, bool& too_long, bool* crlf = nullptr) {
    line.clear();
    too_long = false;
    while (true) {
      const auto nl = m_buffer.find('\n', m_pos);
      if (nl != std::string::npos) {
        std::size_t end = nl;
        const bool cr = end > m_pos && m_buffer[end - 1] == '\r';
        if (crlf != nullptr) *crlf = cr;
        if (cr) --end;
        if (!too_long) line.assign(m_buffer, m_pos, end - m_pos);
        if (line.size() > limit) {
          too_long = true;
          line.clear();
        }
        m_pos = nl + 1;
        if (m_pos > 65536) {
          m_buffer.erase(0, m_pos);
          m_pos = 0;
        }
        return true;
      }
      if (m_buffer.size() - m_pos > limit + 2) {  // drop what is past the limit, keep looking for its end
        too_long = true;
        m_buffer.erase(0, m_buffer.size());
        m_pos = 0;
      }
      if (!fill()) return false;
    }
  }

  bool start_tls(SSL_CTX* ctx) {
    if (m_pos != m_buffer.size()) return false;  // commands pipelined past STARTTLS: refused (RFC 3207 §5)
    m_ssl = SSL_new(ctx);
    if (m_ssl == nullptr) return false;
    SSL_set_fd(m_ssl, m_fd);
    return SSL_accept(m_ssl) == 1;
  }
  [[nodiscard]] bool tls() const { return m_ssl != nullptr; }

 private:
  bool fill() {
    if (Clock::now() > m_deadline) return false;
    if (m_ssl == nullptr || SSL_pending(m_ssl) == 0) {
      pollfd p{m_fd, POLLIN, 0};
      if (::poll(&p, 1, k_idle_ms) <= 0) return false;
    }
    char chunk[16384];
    const int n = m_ssl != nullptr ? SSL_read(m_ssl, chunk, sizeof chunk)
                                   : static_cast<int>(::recv(m_fd, chunk, sizeof chunk, 0));
    if (n <= 0) return false;
    if (m_pos > 0 && m_pos == m_buffer.size()) {
      m_buffer.clear();
      m_pos = 0;
    }
    m_buffer.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int m_fd;
  Clock::time_point m_deadline = Clock::now() + std::chrono::seconds(k_session_seconds);
  SSL* m_ssl = nullptr;
  std::string m_buffer;
  std::size_t m_pos = 0;
};

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

// The address inside "<...>" of a MAIL/RCPT argument, and what follows it.
bool angle_address(std::string_view arg, std::string& address, std::string& rest) {
  arg = util::trim(arg);
  if (arg.empty() || arg.front() != '<') return false;
  const auto close = arg.find('>');
  if (close == std::string_view::npos) return false;
  address = std::string(arg.substr(1, close - 1));
  rest = std::string(util::trim(arg.substr(close + 1)));
  return true;
}

}  // namespace

struct BounceListener::Impl {
  const ServerConfig& config;
  const BounceListenerSettings& settings;
  Metrics& metrics;
  int listen_fd = -1;
  int port = 0;
  std::atomic<bool> stopping{false};
  std::thread acceptor;
  SSL_CTX* tls = nullptr;

  std::mutex store_mutex;  // the store and the ingester are used by one session at a time
  std::unique_ptr<store::ServiceStore> store;
  std::unique_ptr<send::BounceIngester> ingester;

  struct Session {
    int fd = -1;              // closed (and -1) under sessions_mutex, so stop() never shuts a reused descriptor
    std::string client;
    std::atomic<bool> done{false};
    std::thread thread;
  };
  std::mutex sessions_mutex;
  std::list<std::unique_ptr<Session>> sessions;
  std::map<std::string, int> per_client;                                // open sessions by client address
  std::map<std::string, std::pair<double, Clock::time_point>> buckets;  // client address -> tokens, last refill

  Impl(const ServerConfig& c, Metrics& m) : config(c), settings(*c.bounces), metrics(m) {}

  ~Impl() {
    if (tls != nullptr) SSL_CTX_free(tls);
  }

  // Takes one message from `client`'s allowance; false when it has none.
  bool take_token(const std::string& client) {
    std::lock_guard lock(sessions_mutex);
    const auto now = Clock::now();
    auto [it, fresh] = buckets.try_emplace(client, settings.rate, now);
    auto& [tokens, last] = it->second;
    if (!fresh) {
      tokens = std::min(settings.rate,
                        tokens + std::chrono::duration<double>(now - last).count() * settings.rate / 60.0);
      last = now;
    }
    if (tokens < 1) return false;
    tokens -= 1;
    if (buckets.size() > 10000) buckets.clear();  // a flood of addresses: forget, rather than grow
    return true;
  }

  // Whether `address` is one this listener takes, and its token ("" for
  // postmaster@, abuse@, fbl@).
  bool accepts(const std::string& address, std::string& token) const {
    const auto at = address.rfind('@');
    if (at == std::string::npos) return false;
    if (util::to_lower_ascii(address.substr(at + 1)) != settings.verp.domain) return false;
    const std::string local = util::to_lower_ascii(address.substr(0, at));
    if (local == "postmaster" || local == "abuse" || local == "fbl") {
      token.clear();
      return true;
    }
    token = bounce::token_of_address(address);
    return !token.empty();
  }

  // Applies one message; the reply that ends its DATA.
  std::string deliver(const std::string& data, const std::vector<std::string>& tokens) {
    const auto report = bounce::parse(data);
    std::lock_guard lock(store_mutex);
    std::vector<std::string> applied = tokens;
    if (applied.empty()) applied.emplace_back();
    for (const auto& token : applied) {
      auto r = ingester->apply(report, data, token);
      if (!r) {
        util::log_error(fmt::format("bounce receiver: cannot record a report: {}", r.error().message));
        return "451 4.3.0 cannot record the report now; try again later";
      }
      metrics.bounce_report(r->outcome);
      util::log_fields(util::LogLevel::k_info,
                       fmt::format("bounce receiver: {} {}: {}", bounce::to_string(report.type), r->outcome, r->detail),
                       nlohmann::json{{"event", "bounce"}, {"type", std::string(bounce::to_string(report.type))},
                                      {"outcome", r->outcome}, {"scope", r->scope}});
    }
    return "250 2.0.0 report received";
  }

  void session(int fd, std::string client) {
    util::set_thread_name("bc-bounces");
    Conn conn(fd);  // `fd` is closed by the caller
    const std::string& domain = settings.verp.domain;
    if (!conn.reply(fmt::format("220 {} ESMTP blindcast bounce receiver (no relay)", domain))) return;
    bool greeted = false;
    bool have_mail = false;
    std::vector<std::string> tokens;
    std::size_t rcpts = 0;
    std::string line;
    bool too_long = false;
    while (!stopping && conn.read_line(line, k_max_line, too_long)) {
      if (too_long) {
        if (!conn.reply("500 5.5.2 line too long")) return;
        continue;
      }
      const auto space = line.find(' ');
      const std::string verb = upper(line.substr(0, space));
      const std::string arg = space == std::string::npos ? std::string() : line.substr(space + 1);
      if (verb == "EHLO" || verb == "HELO") {
        greeted = true;
        have_mail = false;
        tokens.clear();
        rcpts = 0;
        if (verb == "HELO") {
          if (!conn.reply(fmt::format("250 {}", domain))) return;
          continue;
        }
        std::string r = fmt::format("250-{}\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-PIPELINING\r\n", domain,
                                    settings.max_message_bytes);
        if (tls != nullptr && !conn.tls()) r += "250-STARTTLS\r\n";
        r += "250 ENHANCEDSTATUSCODES";
        if (!conn.reply(r)) return;
      } else if (verb == "STARTTLS") {
        if (tls == nullptr || conn.tls()) {
          if (!conn.reply("502 5.5.1 STARTTLS not available")) return;
          continue;
        }
        if (!conn.reply("220 2.0.0 ready to start TLS")) return;
        if (!conn.start_tls(tls)) return;
        greeted = false;
        have_mail = false;
        tokens.clear();
        rcpts = 0;
      } else if (verb == "MAIL") {
        std::string address, rest;
        if (!greeted) {
          if (!conn.reply("503 5.5.1 EHLO first")) return;
        } else if (have_mail) {
          if (!conn.reply("503 5.5.1 MAIL already given")) return;
        } else if (upper(arg).rfind("FROM:", 0) != 0 || !angle_address(arg.substr(5), address, rest)) {
          if (!conn.reply("501 5.5.4 syntax: MAIL FROM:<address>")) return;
        } else {
          const auto size_at = upper(rest).find("SIZE=");
          if (size_at != std::string::npos &&
              std::strtoull(rest.c_str() + size_at + 5, nullptr, 10) > settings.max_message_bytes) {
            if (!conn.reply(fmt::format("552 5.3.4 message larger than {} bytes", settings.max_message_bytes))) return;
            continue;
          }
          if (!take_token(client)) {
            conn.reply("421 4.7.0 too many messages from your address; try again later");
            metrics.bounce_report("rate_limited");
            return;
          }
          have_mail = true;
          if (!conn.reply("250 2.1.0 ok")) return;
        }
      } else if (verb == "RCPT") {
        std::string address, rest, token;
        if (!have_mail) {
          if (!conn.reply("503 5.5.1 MAIL first")) return;
        } else if (upper(arg).rfind("TO:", 0) != 0 || !angle_address(arg.substr(3), address, rest)) {
          if (!conn.reply("501 5.5.4 syntax: RCPT TO:<address>")) return;
        } else if (rcpts >= k_max_recipients) {
          if (!conn.reply("452 4.5.3 too many recipients")) return;
        } else if (!accepts(address, token)) {
          if (!conn.reply(fmt::format("550 5.7.1 {} is not a bounce address of {}: this server relays nothing",
                                      util::mask_address(address), domain))) {
            return;
          }
        } else {
          ++rcpts;
          if (!token.empty()) tokens.push_back(token);
          if (!conn.reply("250 2.1.5 ok")) return;
        }
      } else if (verb == "DATA") {
        if (!have_mail || rcpts == 0) {
          if (!conn.reply("503 5.5.1 RCPT first")) return;
          continue;
        }
        if (!conn.reply("354 end with <CRLF>.<CRLF>")) return;
        std::string data;
        bool over = false;
        std::string l;
        bool long_line = false;
        bool ended = false;
        bool crlf = true;
        bool after_crlf = true;  // the DATA command's line ended with CR LF
        while (conn.read_line(l, settings.max_message_bytes + 1, long_line, &crlf)) {
          if (long_line) {
            over = true;
            after_crlf = crlf;
            continue;
          }
          // Only CR LF . CR LF ends the data: a bare LF around the dot (the
          // pattern of SMTP smuggling) is content.
          if (l == "." && crlf && after_crlf) {
            ended = true;
            break;
          }
          after_crlf = crlf;
          if (!over) {
            const std::string_view text = l.starts_with('.') ? std::string_view(l).substr(1) : std::string_view(l);
            if (data.size() + text.size() + 2 > settings.max_message_bytes) {
              over = true;
              data.clear();
            } else {
              data.append(text).append("\r\n");
            }
          }
        }
        if (!ended) return;
        const std::string r = over ? fmt::format("552 5.3.4 message larger than {} bytes", settings.max_message_bytes)
                                   : deliver(data, tokens);
        have_mail = false;
        tokens.clear();
        rcpts = 0;
        if (!conn.reply(r)) return;
      } else if (verb == "RSET") {
        have_mail = false;
        tokens.clear();
        rcpts = 0;
        if (!conn.reply("250 2.0.0 ok")) return;
      } else if (verb == "NOOP") {
        if (!conn.reply("250 2.0.0 ok")) return;
      } else if (verb == "VRFY") {
        if (!conn.reply("252 2.5.2 cannot verify")) return;
      } else if (verb == "QUIT") {
        conn.reply("221 2.0.0 bye");
        return;
      } else {
        if (!conn.reply("502 5.5.2 command not recognised")) return;
      }
    }
  }

  // Joins the sessions that ended (under sessions_mutex).
  void reap() {
    for (auto it = sessions.begin(); it != sessions.end();) {
      if ((*it)->done) {
        (*it)->thread.join();
        it = sessions.erase(it);
      } else {
        ++it;
      }
    }
  }

  void refuse(int fd, std::string_view reply) {
    (void)::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
    ::close(fd);
  }

  void accept_loop() {
    util::set_thread_name("bc-bounces");
    while (!stopping) {
      pollfd p{listen_fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, 200);
      {
        std::lock_guard lock(sessions_mutex);
        reap();
      }
      if (ready <= 0) continue;
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
      if (fd < 0) continue;
      char host[INET6_ADDRSTRLEN] = {0};
      if (peer.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&peer)->sin_addr, host, sizeof host);
      } else {
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr, host, sizeof host);
      }
      // Reads time out on their own (poll); writes and the TLS handshake
      // need the socket's timeouts.
      const timeval send_timeout{k_send_timeout_seconds, 0};
      const timeval read_timeout{k_idle_ms / 1000, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &read_timeout, sizeof read_timeout);
      std::lock_guard lock(sessions_mutex);
      if (static_cast<int>(sessions.size()) >= settings.max_connections) {
        refuse(fd, "421 4.7.0 too many connections; try again later\r\n");
        continue;
      }
      const std::string client(host);
      if (per_client[client] >= k_sessions_per_client) {
        refuse(fd, "421 4.7.0 too many connections from your address; try again later\r\n");
        continue;
      }
      auto entry = std::make_unique<Session>();
      entry->fd = fd;
      entry->client = client;
      Session* raw = entry.get();
      try {
        raw->thread = std::thread([this, raw] {
          this->session(raw->fd, raw->client);
          std::lock_guard l(sessions_mutex);
          ::close(raw->fd);
          raw->fd = -1;
          if (--per_client[raw->client] <= 0) per_client.erase(raw->client);
          raw->done = true;
        });
      } catch (const std::system_error& e) {  // out of threads or memory: refuse this one, keep serving
        util::log_error(fmt::format("bounce receiver: cannot start a session: {}", e.what()));
        refuse(fd, "421 4.3.2 cannot take more now; try again later\r\n");
        continue;
      }
      ++per_client[client];
      sessions.push_back(std::move(entry));
    }
  }

  // Ends every session: their sockets are shut down (a blocked read or
  // write returns at once), then their threads joined.
  void stop_sessions() {
    {
      std::lock_guard lock(sessions_mutex);
      for (auto& each : sessions) {
        if (each->fd >= 0) ::shutdown(each->fd, SHUT_RDWR);
      }
    }
    while (true) {
      std::unique_ptr<Session> one;
      {
        std::lock_guard lock(sessions_mutex);
        if (sessions.empty()) return;
        one = std::move(sessions.front());
        sessions.pop_front();
      }
      one->thread.join();
    }
  }
};

Result<std::unique_ptr<BounceListener>> BounceListener::start(const ServerConfig& config, Metrics& metrics) {
  auto impl = std::make_unique<Impl>(config, metrics);
  const auto& s = *config.bounces;
  auto secret = util::read_secret_file(s.verp.secret_file, s.verp.secret_file);
  if (!secret) return std::unexpected(secret.error());
  if (secret->reveal().size() < 16) {
    return fail(fmt::format("[bounces] secret_file {}: the key of VERP tokens needs at least 16 random bytes",
                            s.verp.secret_file));
  }
  auto key = std::make_shared<const bounce::VerpKey>(secret->reveal());
  auto opened = store::open_service_store(config.state.string());
  if (!opened) return std::unexpected(opened.error());
  impl->store = std::move(*opened);
  store::ServiceStore* st = impl->store.get();
  impl->ingester = std::make_unique<send::BounceIngester>(
      st->org_list(), key,
      [st](std::string_view id) -> Result<std::optional<send::BounceIngester::MessageTarget>> {
        auto m = st->message(id);
        if (!m) return std::unexpected(m.error());
        if (!*m) return std::optional<send::BounceIngester::MessageTarget>();
        return std::optional<send::BounceIngester::MessageTarget>(
            send::BounceIngester::MessageTarget{(*m)->recipient, (*m)->lane, (*m)->stream});
      });
  if (!config.tls_cert_file.empty()) {
    impl->tls = SSL_CTX_new(TLS_server_method());
    if (impl->tls == nullptr ||
        SSL_CTX_use_certificate_chain_file(impl->tls, config.tls_cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(impl->tls, config.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return fail(fmt::format("tls_cert_file {} / tls_key_file {}: cannot be used for the bounce receiver's STARTTLS",
                              config.tls_cert_file.string(), config.tls_key_file.string()));
    }
    SSL_CTX_set_min_proto_version(impl->tls, TLS1_2_VERSION);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(s.listen_port);
  const std::string host = s.listen_host == "localhost" ? "127.0.0.1" : s.listen_host;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
    return fail(fmt::format("[bounces] listen = \"{}:{}\": not a numeric address of this machine", s.listen_host,
                            s.listen_port));
  }
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  const bool bound = fd >= 0 && ::bind(fd, found->ai_addr, found->ai_addrlen) == 0 && ::listen(fd, 128) == 0;
  ::freeaddrinfo(found);
  if (!bound) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return fail(fmt::format("[bounces] cannot listen on {}:{}: {}; change 'bounces.listen' in {}", s.listen_host,
                            s.listen_port, why, config.file.string()),
                ExitCode::k_runtime);
  }
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  impl->port = ntohs(local.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&local)->sin_port
                                                : reinterpret_cast<sockaddr_in6*>(&local)->sin6_port);
  impl->listen_fd = fd;
  Impl* raw = impl.get();
  impl->acceptor = std::thread([raw] { raw->accept_loop(); });
  return std::unique_ptr<BounceListener>(new BounceListener(std::move(impl)));
}

BounceListener::BounceListener(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

BounceListener::~BounceListener() {
  m_impl->stopping = true;
  if (m_impl->acceptor.joinable()) m_impl->acceptor.join();
  ::close(m_impl->listen_fd);
  m_impl->stop_sessions();
}

int BounceListener::port() const { return m_impl->port; }

}  // namespace blindcast::serve
