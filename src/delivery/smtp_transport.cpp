#include "delivery/smtp_transport.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "delivery/lane_shaper.hpp"
#include "delivery/reply_policy.hpp"
#include "delivery/smtp_connection.hpp"
#include "util/log.hpp"

namespace blindcast::delivery {

namespace {

constexpr int k_max_consecutive_failures = 3;
// A message its lane cannot start within this many seconds goes back to the
// store with the time it can, so a slow lane never holds up a batch.
constexpr double k_shaping_horizon = 2.0;

// Reply pacing (see Impl::pace). A busy server answers the connections one at
// a time, and each answer would wake the delivery thread on its own: a sleep
// and a wake-up cost more CPU than handling the reply, and on a machine whose
// cores the server shares that CPU is taken from the server. With enough
// messages in flight the server has work queued, so the thread waits until
// about a quarter of the busy connections have been answered and handles
// them in one pass. Never longer than k_max_pace: a slow or remote server
// only sees its replies handled a fraction of a millisecond later.
constexpr std::size_t k_pace_min_busy = 4;
constexpr std::size_t k_pace_share = 4;  // wait for about 1/4 of the busy connections' replies
constexpr auto k_max_pace = std::chrono::microseconds(300);
constexpr auto k_min_pace = std::chrono::microseconds(20);
// Replies over which the interval between replies is measured.
constexpr std::size_t k_pace_sample = 64;

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

struct ParsedUrl {
  bool implicit_tls = false;
  std::string host;
  std::string port;
};

Result<ParsedUrl> parse_url(const std::string& url) {
  ParsedUrl p;
  std::string rest;
  if (url.starts_with("smtps://")) {
    p.implicit_tls = true;
    rest = url.substr(8);
  } else {
    rest = url.substr(7);
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('@') != std::string::npos) {
    return fail(fmt::format("transport url '{}': put credentials in [transport] username and password_file, "
                            "not in the URL", url.substr(0, url.find("://") + 3) + "..."));
  }
  if (!rest.empty() && rest.front() == '[') {  // [::1]:2525
    const auto close = rest.find(']');
    if (close == std::string::npos) return fail(fmt::format("transport url '{}': unclosed '['", url));
    p.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') p.port = rest.substr(close + 2);
  } else {
    const auto colon = rest.rfind(':');
    p.host = rest.substr(0, colon);
    if (colon != std::string::npos) p.port = rest.substr(colon + 1);
  }
  if (p.host.empty()) return fail(fmt::format("transport url '{}' has no host", url));
  if (p.port.empty()) p.port = p.implicit_tls ? "465" : "25";
  return p;
}

std::string host_name() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof buf - 1);
  std::string h(buf);
  return h.empty() ? "localhost" : h;
}

}  // namespace

struct SmtpTransport::Impl final : ConnectionOwner {
  asio::io_context io;
  // Without outstanding work an io_context stops, and a later run_one_for
  // returns at once without running new operations: keep it alive.
  asio::executor_work_guard<asio::io_context::executor_type> keep_alive = asio::make_work_guard(io);
  asio::ssl::context tls{asio::ssl::context::tls_client};
  ConnectionSettings settings;
  std::string description;
  int target = 8;
  std::vector<std::shared_ptr<SmtpConnection>> connections;
  std::function<bool()> stop_check;
  std::unique_ptr<LaneShaper> shaper;  // null: no shaping

  // Batches under way: the one deliver() was called with, and the next one
  // when it was offered and taken while the first one's last messages were
  // still in progress. Messages are named by tokens: batch serial << 32 | index.
  struct Active {
    std::uint64_t serial = 0;
    std::span<const OutgoingMessage> batch;
    std::vector<std::optional<DeliveryResult>> results;
    std::size_t done = 0;
  };
  std::deque<Active> active;
  std::uint64_t next_serial = 1;
  std::deque<std::size_t> queue;  // tokens not yet handed to a connection
  std::size_t in_progress = 0;
  // Batches offered by the sending thread (offer()), taken in order by the
  // delivery loop when its queue runs dry.
  std::mutex offer_mutex;
  std::deque<std::span<const OutgoingMessage>> offers;
  std::atomic<bool> has_offer{false};
  std::atomic<bool> stop_requested{false};  // stop_starting(): sticky
  int consecutive_failures = 0;
  std::string last_failure;
  std::string fatal;
  bool stopping = false;
  std::chrono::steady_clock::time_point last_tick{};
  // Reply pacing: replies counted since `sample_start`, and the measured mean
  // interval between two replies (zero: not measured yet).
  std::size_t replies = 0;
  std::chrono::steady_clock::time_point sample_start{};
  std::chrono::nanoseconds reply_interval{0};

  static std::size_t token(std::uint64_t serial, std::size_t index) {
    return static_cast<std::size_t>((serial << 32) | index);
  }
  Active& slot(std::size_t t) {
    const std::uint64_t serial = static_cast<std::uint64_t>(t) >> 32;
    for (auto& a : active) {
      if (a.serial == serial) return a;
    }
    std::abort();  // a token outlived its batch: a bug, never bad input
  }
  static std::size_t index_of(std::size_t t) { return t & 0xFFFFFFFFu; }
  const OutgoingMessage& msg(std::size_t t) { return slot(t).batch[index_of(t)]; }

  void set(std::size_t t, DeliveryResult r) {
    Active& a = slot(t);
    auto& cell = a.results[index_of(t)];
    if (cell) return;
    cell = std::move(r);
    ++a.done;
  }

  std::optional<std::size_t> next_message() override {
    if (stopping || !fatal.empty()) return std::nullopt;
    if (queue.empty() && has_offer.load(std::memory_order_acquire)) take_offers();
    if (queue.empty()) return std::nullopt;
    if (!shaper) {
      const std::size_t i = queue.front();
      queue.pop_front();
      ++in_progress;
      return i;
    }
    // The first queued message whose lane may start one now.
    const auto now = LaneShaper::Clock::now();
    std::vector<std::string_view> blocked;
    for (auto it = queue.begin(); it != queue.end(); ++it) {
      const std::string& lane = msg(*it).lane;
      if (std::find(blocked.begin(), blocked.end(), lane) != blocked.end()) continue;
      if (shaper->try_acquire(lane, now)) {
        const std::size_t i = *it;
        queue.erase(it);
        ++in_progress;
        return i;
      }
      blocked.push_back(lane);
    }
    return std::nullopt;
  }

  void requeue(std::size_t index) override {
    --in_progress;
    if (shaper) shaper->release(msg(index).lane);
    queue.push_front(index);
  }

  void result(std::size_t index, const smtp::SessionEvent& e) override {
    --in_progress;
    ++replies;
    if (shaper) {
      shaper->release(msg(index).lane);
      if (!e.connection_lost &&
          classify_reply(e.reply.code, e.reply.enhanced, e.reply.summary()).throttling) {
        if (auto line = shaper->throttled(msg(index).lane, LaneShaper::Clock::now())) util::log_warn(*line);
      }
    }
    if (e.connection_lost && !e.maybe_delivered) {
      // Nothing of it reached the end of DATA: try it on another connection.
      ++consecutive_failures;
      last_failure = e.detail;
      queue.push_front(index);
      return;
    }
    DeliveryResult r;
    r.recipient_id = msg(index).recipient_id;
    r.reply = e.reply.summary();
    r.code = e.connection_lost ? 0 : e.reply.code;
    r.enhanced = e.reply.enhanced;
    r.maybe_delivered = e.maybe_delivered;
    switch (e.outcome) {
      case smtp::Outcome::k_sent:
        r.kind = DeliveryKind::k_sent;
        consecutive_failures = 0;
        break;
      case smtp::Outcome::k_deferred:
        r.kind = DeliveryKind::k_deferred;
        if (e.connection_lost) r.reply = e.detail;
        break;
      case smtp::Outcome::k_bounced:
        r.kind = DeliveryKind::k_bounced;
        consecutive_failures = 0;
        break;
    }
    set(index, std::move(r));
  }

  void connection_failed(const std::string& detail, bool is_fatal) override {
    ++consecutive_failures;
    last_failure = detail;
    if (is_fatal && fatal.empty()) fatal = detail;
  }

  void connection_closed(SmtpConnection*) override {}

  smtp::Message message(std::size_t index) override {
    const auto& m = msg(index);
    return smtp::Message{index, m.envelope_from, m.recipient, m.data, m.traits};
  }

  // Starts `messages` as a batch under way: its messages join the queue,
  // except those whose lane cannot start them soon (they go back to the
  // store with the time it can, rounded down: early, the bucket holds them;
  // late, the lane would idle).
  void admit(std::span<const OutgoingMessage> messages) {
    Active& a = active.emplace_back();
    a.serial = next_serial++;
    a.batch = messages;
    a.results.assign(messages.size(), std::nullopt);
    const auto now = LaneShaper::Clock::now();
    std::map<std::string, std::size_t> position;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const std::size_t t = token(a.serial, i);
      if (shaper) {
        const double wait = shaper->wait_for(messages[i].lane, position[messages[i].lane]++, now);
        if (wait > k_shaping_horizon) {
          set(t, DeliveryResult{messages[i].recipient_id, DeliveryKind::k_not_attempted,
                                fmt::format("lane {} is at its rate; due in {:.0f}s", messages[i].lane, wait), false,
                                "", 0, unix_now() + static_cast<std::int64_t>(std::floor(wait))});
          continue;
        }
      }
      queue.push_back(t);
    }
  }

  // Admits the offered batches, oldest first.
  void take_offers() {
    std::deque<std::span<const OutgoingMessage>> taken;
    {
      std::lock_guard lock(offer_mutex);
      taken.swap(offers);
      has_offer.store(false, std::memory_order_release);
    }
    for (const auto& b : taken) admit(b);
  }

  std::size_t open_connections() const {
    std::size_t n = 0;
    for (const auto& c : connections) n += c->closed() ? 0 : 1;
    return n;
  }

  void ensure_connections() {
    std::erase_if(connections, [](const auto& c) { return c->closed(); });
    for (auto& c : connections) c->wake();
    const std::size_t want = std::min<std::size_t>(static_cast<std::size_t>(target), queue.size() + in_progress);
    while (connections.size() < want && fatal.empty() && !stopping &&
           consecutive_failures < k_max_consecutive_failures) {
      auto c = std::make_shared<SmtpConnection>(io, tls, *this, settings);
      connections.push_back(c);
      c->start();
    }
  }

  // Waits a little before looking for replies again when enough connections
  // are busy that the server has work queued (see k_max_pace).
  void pace(std::chrono::steady_clock::time_point now) {
    if (replies >= k_pace_sample) {
      reply_interval = (now - sample_start) / replies;
      replies = 0;
      sample_start = now;
    }
    if (reply_interval.count() == 0) return;
    std::size_t busy = 0;
    for (const auto& c : connections) busy += (!c->idle() && !c->closed()) ? 1 : 0;
    if (busy < k_pace_min_busy) return;
    const auto wait = std::min<std::chrono::nanoseconds>(k_max_pace, reply_interval * (busy / k_pace_share));
    if (wait >= k_min_pace) std::this_thread::sleep_for(wait);
  }

  void drain_queue(DeliveryKind kind, const std::string& reply) {
    while (!queue.empty()) {
      const std::size_t t = queue.front();
      queue.pop_front();
      set(t, DeliveryResult{msg(t).recipient_id, kind, reply, false, "", 0});
    }
  }
};

SmtpTransport::SmtpTransport(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

SmtpTransport::~SmtpTransport() {
  // Say QUIT on idle connections, giving them a moment to go out.
  for (auto& c : m_impl->connections) c->stop();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  m_impl->io.restart();
  while (m_impl->open_connections() > 0 && std::chrono::steady_clock::now() < deadline) {
    m_impl->io.run_for(std::chrono::milliseconds(50));
  }
}

Result<std::unique_ptr<SmtpTransport>> SmtpTransport::open(const TransportConfig& config) {
  auto url = parse_url(config.url);
  if (!url) return std::unexpected(url.error());
  auto impl = std::make_unique<Impl>();
  asio::error_code ec;
  asio::ip::tcp::resolver resolver(impl->io);
  const auto endpoints = resolver.resolve(url->host, url->port, ec);
  if (ec || endpoints.empty()) {
    return fail(fmt::format("transport {}: cannot resolve {}: {}", config.url, url->host, ec.message()),
                ExitCode::k_runtime);
  }
  auto& s = impl->settings;
  s.endpoint = *endpoints.begin();
  s.host = url->host;
  s.implicit_tls = url->implicit_tls;
  s.verify = url->implicit_tls || config.tls == "required";
  s.messages_per_connection = config.messages_per_connection > 0 ? config.messages_per_connection : 1000;
  s.session.helo_name = config.helo_name.empty() ? host_name() : config.helo_name;
  s.session.tls = config.tls == "required" ? smtp::TlsPolicy::k_required : smtp::TlsPolicy::k_opportunistic;
  s.session.tls_active = url->implicit_tls;
  s.session.plaintext_auth_ok = s.endpoint.address().is_loopback();
  s.session.timeout_override = config.timeout_seconds;
  if (!config.username.empty()) s.session.credentials = smtp::Credentials{config.username, config.password};
  impl->target = config.connections > 0 ? config.connections : 20;
  // The system's CA bundle takes tens of milliseconds to load: only when
  // certificates are checked (opportunistic STARTTLS does not check them).
  if (s.verify) impl->tls.set_default_verify_paths(ec);
  if (!config.ca_file.empty()) {
    impl->tls.load_verify_file(config.ca_file, ec);
    if (ec) return fail(fmt::format("[transport] ca_file {}: {}", config.ca_file, ec.message()));
  }
  impl->tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  impl->description = fmt::format("{} ({} connections{})", config.url, impl->target,
                                  s.verify ? ", TLS verified" : "");
  if (!config.lanes.empty()) {
    impl->shaper = std::make_unique<LaneShaper>(config.lanes, config.throttle_quiet_seconds, LaneShaper::Clock::now());
  }
  return std::unique_ptr<SmtpTransport>(new SmtpTransport(std::move(impl)));
}

std::string SmtpTransport::describe() const { return m_impl->description; }

void SmtpTransport::set_stop_check(std::function<bool()> check) { m_impl->stop_check = std::move(check); }

void SmtpTransport::offer(std::span<const OutgoingMessage> next) {
  Impl& p = *m_impl;
  std::lock_guard lock(p.offer_mutex);
  p.offers.push_back(next);
  p.has_offer.store(true, std::memory_order_release);
}

void SmtpTransport::stop_starting() { m_impl->stop_requested.store(true); }

Result<DeliveryReport> SmtpTransport::deliver(std::span<const OutgoingMessage> messages) {
  Impl& p = *m_impl;
  p.consecutive_failures = 0;
  p.replies = 0;
  p.sample_start = std::chrono::steady_clock::now();
  p.io.restart();
  // A stop asked for between batches holds from the first message on.
  p.stopping = p.stop_requested.load() || (p.stop_check && p.stop_check());
  // The batch may be under way already: offered, and taken while the one
  // before it finished. Offers are taken in order, so it is then the oldest.
  const auto is_this = [&](const Impl::Active& a) {
    return a.batch.data() == messages.data() && a.batch.size() == messages.size();
  };
  if (std::none_of(p.active.begin(), p.active.end(), is_this)) {
    // Not taken yet: take the offers in order (this batch is among them), or
    // start it now if it was never offered.
    if (p.has_offer.load(std::memory_order_acquire)) p.take_offers();
    if (std::none_of(p.active.begin(), p.active.end(), is_this)) p.admit(messages);
  }
  const std::uint64_t serial = std::find_if(p.active.begin(), p.active.end(), is_this)->serial;
  const auto current = [&]() -> Impl::Active& { return p.slot(Impl::token(serial, 0)); };

  auto last_check = std::chrono::steady_clock::now();
  while (current().done < messages.size()) {
    if (p.stop_check && std::chrono::steady_clock::now() - last_check > std::chrono::milliseconds(200)) {
      last_check = std::chrono::steady_clock::now();
      if (!p.stopping && p.stop_check()) p.stopping = true;
    }
    if (!p.stopping && p.stop_requested.load()) p.stopping = true;
    if (!p.fatal.empty()) p.drain_queue(DeliveryKind::k_not_attempted, "not attempted: " + p.fatal);
    if (p.stopping) p.drain_queue(DeliveryKind::k_not_attempted, "not attempted: sending was stopped");
    if (p.consecutive_failures >= k_max_consecutive_failures && p.in_progress == 0) {
      p.drain_queue(DeliveryKind::k_deferred, "451 4.4.1 " + p.last_failure);
    }
    p.ensure_connections();
    if (current().done >= messages.size()) break;
    // With shaping, look again often: a lane's next token may be due any moment.
    p.io.run_one_for(std::chrono::milliseconds(p.shaper ? 10 : 100));
    p.io.poll();  // whatever else is ready, before the connections are looked at again
    const auto now = std::chrono::steady_clock::now();
    if (now - p.last_tick > std::chrono::milliseconds(100)) {
      p.last_tick = now;
      for (auto& c : p.connections) c->check_deadline(now);
      if (p.shaper) {
        for (const auto& line : p.shaper->recover(now)) util::log_info(line);
      }
    }
    if (current().done < messages.size()) p.pace(now);
  }
  DeliveryReport report;
  // A settings failure (AUTH refused) stays: later batches are not attempted.
  report.fatal = p.fatal;
  if (p.shaper) report.lanes = p.shaper->status(LaneShaper::Clock::now(), unix_now());
  report.results.reserve(messages.size());
  for (auto& r : current().results) report.results.push_back(std::move(*r));
  std::erase_if(p.active, [&](const Impl::Active& a) { return a.serial == serial; });
  return report;
}

}  // namespace blindcast::delivery
