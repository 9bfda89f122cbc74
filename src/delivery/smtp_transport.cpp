#include "delivery/smtp_transport.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <deque>
#include <map>
#include <set>
#include <mutex>
#include <condition_variable>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "delivery/mta_sts.hpp"
#include "delivery/mx_resolver.hpp"
#include "delivery/smtp_connection.hpp"
#include "util/log.hpp"
#include "util/threads.hpp"

namespace blindcast::delivery {

namespace {

constexpr int k_max_consecutive_failures = 3;

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

// Queued messages by lane, taken in turn: a lane whose messages came in a
// burst does not make another lane's wait behind them for a connection, and
// a lane never has more messages on connections than its cap (the engine
// shapes each lane's rate; the pool shares its connections fairly).
class LaneQueue {
 public:
  // `on_connections`: messages of each lane on connections, shared by every
  // queue of the pool (a lane's cap holds over all its destinations).
  explicit LaneQueue(std::map<std::string, int>& on_connections) : m_on(on_connections) {}
  void push_back(const std::string& lane, int cap, std::size_t slot, int priority) {
    Lane& l = lane_of(lane);
    l.cap = cap;
    l.queued[rank(priority)].push_back(slot);
    ++m_size;
  }
  // Puts back a message a connection took (it did not start).
  void put_back(const std::string& lane, std::size_t slot, int priority) {
    Lane& l = lane_of(lane);
    if (*l.on_connections > 0) --*l.on_connections;
    l.queued[rank(priority)].push_front(slot);
    ++m_size;
  }
  // Takes out every queued message `pred` chooses (appended to `out`).
  template <class Pred>
  void extract_if(Pred pred, std::vector<std::size_t>& out) {
    for (auto& l : m_lanes) {
      for (auto& q : l.queued) {
        const auto keep = std::stable_partition(q.begin(), q.end(), [&](std::size_t s) { return !pred(s); });
        for (auto it = keep; it != q.end(); ++it) out.push_back(*it);
        m_size -= static_cast<std::size_t>(q.end() - keep);
        q.erase(keep, q.end());
      }
    }
  }
  // A message a connection took has finished.
  void done(const std::string& lane) {
    Lane& l = lane_of(lane);
    if (*l.on_connections > 0) --*l.on_connections;
  }
  // The next message for a connection, from the lane after the one that went
  // last among those under their cap; nullopt when there is none.
  // Priority 0 (transactional) first, from any lane under its cap; then
  // priority 1 lane by lane in turn.
  std::optional<std::size_t> take(std::size_t ranks = k_ranks) {
    for (std::size_t r = 0; r < ranks; ++r) {
      for (std::size_t k = 0; k < m_lanes.size(); ++k) {
        m_turn = (m_turn + 1) % m_lanes.size();
        Lane& l = m_lanes[m_turn];
        if (l.queued[r].empty() || (l.cap > 0 && *l.on_connections >= l.cap)) continue;
        const std::size_t slot = l.queued[r].front();
        l.queued[r].pop_front();
        --m_size;
        ++*l.on_connections;
        return slot;
      }
    }
    return std::nullopt;
  }
  // Any queued message, whatever the caps (to end it without sending).
  std::optional<std::size_t> drop() {
    for (auto& l : m_lanes) {
      for (auto& q : l.queued) {
        if (q.empty()) continue;
        const std::size_t slot = q.front();
        q.pop_front();
        --m_size;
        return slot;
      }
    }
    return std::nullopt;
  }
  [[nodiscard]] bool empty() const { return m_size == 0; }
  // True when a campaign message (priority 1) is queued.
  [[nodiscard]] bool has_bulk() const {
    return std::any_of(m_lanes.begin(), m_lanes.end(), [](const Lane& l) { return !l.queued[1].empty(); });
  }
  [[nodiscard]] std::size_t size() const { return m_size; }

 private:
  static constexpr std::size_t k_ranks = 2;  // priorities 0 and 1
  static std::size_t rank(int priority) { return priority <= 0 ? 0 : 1; }
  struct Lane {
    std::string name;
    std::deque<std::size_t> queued[k_ranks];
    int cap = 0;
    int* on_connections = nullptr;  // in m_on
  };
  Lane& lane_of(const std::string& lane) {
    for (auto& l : m_lanes) {
      if (l.name == lane) return l;
    }
    return m_lanes.emplace_back(Lane{lane, {}, 0, &m_on[lane]});  // std::map: the address stays
  }
  std::map<std::string, int>& m_on;
  std::vector<Lane> m_lanes;  // a handful
  std::size_t m_turn = 0;
  std::size_t m_size = 0;
};

std::string host_name() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof buf - 1);
  std::string h(buf);
  return h.empty() ? "localhost" : h;
}

}  // namespace

struct SmtpTransport::Impl {
  asio::io_context io;
  // Without outstanding work an io_context stops, and a later run_one_for
  // returns at once without running new operations: keep it alive.
  asio::executor_work_guard<asio::io_context::executor_type> keep_alive = asio::make_work_guard(io);
  asio::ssl::context tls{asio::ssl::context::tls_client};
  ConnectionSettings base;  // what every connection shares (the session's settings)
  std::string description;
  int target = 8;           // connections at most, over every destination
  int per_destination = 0;  // connections to one destination at most (0: target)

  // Where connections go: the relay (one destination), or with mx: one per
  // MX host set, so that domains hosted by one provider share its pool. A
  // destination is the ConnectionOwner of its connections: it has its own
  // queue, the addresses to try in order (the next after a failure: MX
  // fallback), and its failures.
  struct Destination final : ConnectionOwner {
    Impl& pool;
    std::string name;
    std::deque<ConnectionSettings> endpoints;  // in the order to try (connections keep references)
    std::vector<int> preferences;              // of each endpoint's MX host
    std::size_t current = 0;                   // the first endpoint of the group new connections use
    std::size_t turn = 0;                      // round robin within that group
    LaneQueue queue;
    std::vector<std::shared_ptr<SmtpConnection>> connections;
    std::size_t in_progress = 0;
    int consecutive_failures = 0;
    std::string last_failure;
    // A server answered since the last connection failure. Until then one
    // connection at a time: a burst of connections to a dead MX host would
    // fail together and give the queue up before the next host was tried.
    bool proven = false;
    bool wake_posted = false;  // a wake-up of its idle connections is queued in the I/O loop

    Destination(Impl& p, std::string n) : pool(p), name(std::move(n)), queue(p.lane_on_connections) {}
    std::optional<std::size_t> next_message() override { return pool.next_message(*this); }
    void requeue(std::size_t slot) override { pool.requeue(*this, slot); }
    void result(std::size_t slot, const smtp::SessionEvent& e) override { pool.result(*this, slot, e); }
    void connection_failed(const ConnectionSettings& used, const std::string& detail, bool is_fatal) override {
      pool.connection_failed(*this, used, detail, is_fatal);
    }
    void connection_closed(SmtpConnection*) override {}
    smtp::Message message(std::size_t slot) override { return pool.message(slot); }
    bool may_end_data(std::size_t slot) override { return pool.may_end_data(slot); }
    // The endpoint for a new connection: in turn among those of equal
    // preference from `current` (RFC 5321 §5.1: spread over equal MX hosts).
    const ConnectionSettings& next_endpoint() {
      std::size_t group = 1;
      while (current + group < endpoints.size() && preferences[current + group] == preferences[current]) ++group;
      return endpoints[current + (turn++ % group)];
    }
    // Failures in a row before the queue is given up: every address once, at least three.
    [[nodiscard]] int give_up_after() const {
      return std::max<int>(k_max_consecutive_failures, static_cast<int>(endpoints.size()));
    }
  };
  std::map<std::string, int> lane_on_connections;  // every destination's LaneQueue counts here
  // Campaigns yield to transactional mail (delivery/yield_controller.hpp).
  YieldController yield;
  // What it does, for other threads (the service's /metrics): written after each tick.
  std::atomic<bool> yield_limiting{false};
  std::atomic<bool> urgent_hint{false};  // urgent_coming() was called (from a request's thread)
  std::atomic<double> yield_rate{0}, yield_full{0}, yield_base{0}, yield_target{0};
  std::atomic<std::uint64_t> yield_spells{0};
  std::uint64_t bulk_started = 0;  // campaign messages started
  std::size_t urgent_in_flight = 0;  // transactional messages submitted and not finished
  bool bulk_held = false;          // one waits for the controller: wake when it may go
  std::vector<std::chrono::steady_clock::time_point> queued_at;  // by slot: when a transactional message came
  std::map<std::string, std::unique_ptr<Destination>> destinations;
  Destination* relay = nullptr;  // smtp://, smtps://: the one destination
  // mx: the resolver and the port of every MX host. Lookups run on a
  // thread of their own (c-ares waits for answers; a slow DNS server must
  // not stop the connections): route() parks the messages of a domain not
  // known yet and asks; the answers come back through the I/O loop.
  std::unique_ptr<MxResolver> resolver;
  std::unique_ptr<MtaSts> sts;  // used on the bc-dns thread only, beside the resolver
  int mx_port = 25;
  std::thread dns_thread;
  std::mutex dns_mutex;
  std::condition_variable dns_wake;
  std::vector<std::string> dns_asked;  // domains to look up (under dns_mutex)
  bool dns_stop = false;               // (under dns_mutex)
  std::unordered_map<std::string, std::vector<std::size_t>> waiting_dns;  // domain -> parked slots

  void dns_loop() {
    while (true) {
      std::vector<std::string> batch;
      {
        std::unique_lock lock(dns_mutex);
        dns_wake.wait(lock, [&] { return dns_stop || !dns_asked.empty(); });
        if (dns_stop) return;
        batch.swap(dns_asked);
      }
      auto routes = resolver->resolve(batch);
      // MTA-STS: the policy of each domain that has MX hosts (a fetch, at
      // most once per policy id, on this thread).
      std::vector<std::optional<StsPolicy>> policies(batch.size());
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (sts && routes[i].kind == MxRoute::Kind::k_hosts) policies[i] = sts->policy_for(batch[i]);
      }
      asio::post(io, [this, batch = std::move(batch), routes = std::move(routes), policies = std::move(policies)] {
        for (std::size_t i = 0; i < batch.size(); ++i) settle_route(batch[i], routes[i], policies[i]);
      });
    }
  }

  // Messages submitted from other threads, not yet taken by the I/O thread.
  std::mutex inbox_mutex;
  std::vector<OutgoingMessage> inbox;
  std::atomic<bool> has_inbox{false};
  std::atomic<std::size_t> submitted{0};
  std::atomic<std::size_t> returned{0};
  std::atomic<bool> stop_requested{false};  // stop_starting(): sticky
  // stop_group(): the groups stopped (sticky), and whether poll() has
  // drained their queued messages since the last one was added.
  std::mutex group_mutex;
  std::set<std::uint32_t> stopped_groups;   // under group_mutex
  std::atomic<bool> any_group_stopped{false};
  std::atomic<bool> group_drain_due{false};

  bool group_stopped(std::uint32_t group) {
    if (!any_group_stopped.load(std::memory_order_relaxed)) return false;
    std::lock_guard lock(group_mutex);
    return stopped_groups.contains(group);
  }

  // Ends the queued messages of stopped groups, not attempted.
  void drain_groups() {
    const DeliveryResult r = DeliveryResult::stopped();
    std::vector<std::size_t> out;
    const auto stopped = [&](std::size_t slot) { return group_stopped(msg(slot).group); };
    for (auto& [key, d] : destinations) d->queue.extract_if(stopped, out);
    for (auto& [domain, parked] : waiting_dns) {
      const auto keep = std::stable_partition(parked.begin(), parked.end(), [&](std::size_t s) { return !stopped(s); });
      out.insert(out.end(), keep, parked.end());
      parked.erase(keep, parked.end());
    }
    for (const auto slot : out) finish(slot, r);
  }
  // The unconfirmed limit (limit_unconfirmed): a message's end of DATA is
  // written only while fewer than the limit are written and not confirmed
  // as recorded. `confirmed` counts the results confirm()ed (other threads);
  // the rest is the I/O thread's: which slots had their end of DATA
  // written, the same for each result returned by poll() and not yet
  // matched with a confirmation (in the order returned, which is the order
  // the journal records them), and how many ends of DATA are open.
  std::atomic<std::size_t> unconfirmed_limit{0};
  std::atomic<std::size_t> confirmed{0};
  std::size_t confirmed_seen = 0;
  std::vector<char> dotted;             // by slot
  std::vector<char> reached;            // by slot: a server took part of its transaction (put back after a loss)
  std::vector<char> ready_dotted;       // parallel to `ready`
  std::deque<char> returned_dotted;
  std::size_t dots_open = 0;
  std::atomic<bool> gated{false};       // a connection's body waits for confirmations
  // on_data_end(): bodies let go by the limit wait until the hook has
  // recorded them, a group per poll(). By slot: 1 waits for the hook, 2 may go.
  std::function<bool(std::span<const std::int64_t>)> data_end_hook;
  std::vector<char> announced;
  std::vector<std::size_t> to_announce;
  std::vector<std::int64_t> announce_ids;

  // Messages on the I/O thread, by slot: queued (not yet handed to a
  // connection) or in progress on one. A deque: a session in progress holds
  // views of its message's strings (smtp::Message), and a short recipient
  // lives inside its std::string, so adding a slot must never move the
  // others (a vector's growth did: the view then read the moved-from
  // string, its first byte zeroed, as the RCPT TO address).
  std::deque<std::optional<OutgoingMessage>> slots;
  std::vector<std::size_t> free_slots;
  std::vector<DeliveryResult> ready;  // results poll() has not returned yet

  std::string fatal;  // a settings failure: for the transport's life
  std::chrono::steady_clock::time_point last_tick{};
  // Reply pacing: replies counted since `sample_start`, and the measured mean
  // interval between two replies (zero: not measured yet).
  std::size_t replies = 0;
  std::chrono::steady_clock::time_point sample_start{};
  std::chrono::nanoseconds reply_interval{0};

  const OutgoingMessage& msg(std::size_t slot) { return *slots[slot]; }

  // Hands the result of `slot` back and frees the slot.
  void finish(std::size_t slot, DeliveryResult r) {
    if (msg(slot).priority <= 0 && urgent_in_flight > 0) --urgent_in_flight;
    r.recipient_id = msg(slot).recipient_id;
    ready.push_back(std::move(r));
    ready_dotted.push_back(dotted[slot]);
    dotted[slot] = 0;
    reached[slot] = 0;
    // A reply (a 421) can end a message whose body waits for the hook.
    if (announced[slot] == 1) std::erase(to_announce, slot);
    announced[slot] = 0;
    slots[slot].reset();
    free_slots.push_back(slot);
  }

  // Matches confirmations with the results they confirm.
  void settle() {
    const std::size_t c = confirmed.load(std::memory_order_acquire);
    while (confirmed_seen < c && !returned_dotted.empty()) {
      if (returned_dotted.front() != 0) --dots_open;
      returned_dotted.pop_front();
      ++confirmed_seen;
    }
  }

  bool may_end_data(std::size_t slot) {
    if (announced[slot] == 2) return true;  // counted when it was let go
    if (announced[slot] == 1) return false;  // waits for the hook
    // Transactional mail (priority 0) is recorded in flight by its own sender
    // and never waits for another sender's confirmations or end-of-DATA
    // records: a campaign's bookkeeping must not hold a password reset.
    if (msg(slot).priority <= 0) return true;
    const std::size_t limit = unconfirmed_limit.load(std::memory_order_relaxed);
    if (limit > 0) {
      settle();
      if (dots_open >= limit) {
        gated.store(true, std::memory_order_relaxed);
        return false;
      }
    }
    dotted[slot] = 1;
    ++dots_open;
    if (data_end_hook) {
      announced[slot] = 1;
      to_announce.push_back(slot);
      return false;
    }
    return true;
  }

  // Calls the data-end hook with the bodies waiting for it and lets them go
  // (on the next round of the I/O loop) once it has recorded them.
  void announce() {
    if (to_announce.empty()) return;
    announce_ids.clear();
    std::erase_if(to_announce, [&](std::size_t slot) { return !slots[slot] || announced[slot] != 1; });
    if (to_announce.empty()) return;
    for (const auto slot : to_announce) announce_ids.push_back(msg(slot).recipient_id);
    if (!data_end_hook(announce_ids)) return;  // they stay held; stopping drains them
    for (const auto slot : to_announce) announced[slot] = 2;
    to_announce.clear();
    each_connection([](SmtpConnection& c) { c.resume(); });
  }

  // Moves what other threads submitted into the queue.
  void take_inbox() {
    if (!has_inbox.load(std::memory_order_acquire)) return;
    std::vector<OutgoingMessage> taken;
    {
      std::lock_guard lock(inbox_mutex);
      taken.swap(inbox);
      has_inbox.store(false, std::memory_order_release);
    }
    for (auto& m : taken) {
      std::size_t slot;
      if (!free_slots.empty()) {
        slot = free_slots.back();
        free_slots.pop_back();
        dotted[slot] = 0;  // a new message: nothing of its own is let go yet
        reached[slot] = 0;
        announced[slot] = 0;
      } else {
        slot = slots.size();
        slots.emplace_back();
        dotted.push_back(0);
        reached.push_back(0);
        announced.push_back(0);
        queued_at.emplace_back();
      }
      if (m.priority <= 0) {
        queued_at[slot] = std::chrono::steady_clock::now();
        yield.urgent_submitted(queued_at[slot]);
        ++urgent_in_flight;
      }
      slots[slot] = std::move(m);
      if (relay != nullptr) {
        relay->queue.push_back(slots[slot]->lane, slots[slot]->lane_connections, slot, slots[slot]->priority);
      } else {
        routed.push_back(slot);
      }
    }
    if (!routed.empty()) route(routed);
  }

  std::vector<std::size_t> routed;  // mx: slots taken, to route
  // mx: where each domain's mail went, until its DNS answer expires (so
  // that a message to a known domain costs a hash lookup, not a route).
  struct Routed {
    Destination* destination = nullptr;
    std::chrono::steady_clock::time_point expires;
  };
  std::unordered_map<std::string, Routed> routed_domains;

  // mx: queues each slot at the destination of its domain's MX hosts, or
  // ends it when DNS says it cannot go anywhere (permanent) or not now.
  void route(std::vector<std::size_t>& taken) {
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::string> ask;
    for (const auto slot : taken) {
      const auto& rcpt = msg(slot).recipient;
      const auto at = rcpt.rfind('@');
      std::string domain = at == std::string::npos ? std::string() : rcpt.substr(at + 1);
      for (auto& c : domain) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (const auto it = routed_domains.find(domain); it != routed_domains.end() && it->second.expires > now) {
        queue_at(*it->second.destination, slot);
        continue;
      }
      auto& parked = waiting_dns[domain];
      if (parked.empty()) ask.push_back(domain);  // not asked yet
      parked.push_back(slot);
    }
    taken.clear();
    if (ask.empty()) return;
    {
      std::lock_guard lock(dns_mutex);
      for (auto& d : ask) dns_asked.push_back(std::move(d));
    }
    dns_wake.notify_one();
  }

  // The DNS answer for `domain`: its parked messages go to their
  // destination, or end (permanent: bounced; temporary: held).
  void settle_route(const std::string& domain, MxRoute r, const std::optional<StsPolicy>& policy) {
    const auto it = waiting_dns.find(domain);
    if (it == waiting_dns.end()) return;  // drained meanwhile (a stop)
    const std::vector<std::size_t> parked = std::move(it->second);
    waiting_dns.erase(it);
    // Every end here is the recipient's own domain's answer, in the envelope
    // phase: a 5xx bounces; a 451 is retried on the schedule and aged (a
    // domain whose DNS stays broken fails at max_retry_age), not held like a
    // relay that cannot be reached.
    const auto end_parked = [&](int code, const char* enhanced, const std::string& detail) {
      DeliveryResult res;
      res.code = code;
      res.enhanced = enhanced;
      res.phase = Phase::k_envelope;
      res.reply = fmt::format("{} {} {}", code, enhanced, detail);
      for (const auto slot : parked) finish(slot, res);
    };
    if (r.kind == MxRoute::Kind::k_null_mx) return end_parked(556, "5.1.10", r.detail);  // RFC 7505
    if (r.kind == MxRoute::Kind::k_no_domain) return end_parked(550, "5.1.2", r.detail);
    if (r.kind == MxRoute::Kind::k_no_hosts) return end_parked(550, "5.4.4", r.detail);
    if (r.kind == MxRoute::Kind::k_temporary) return end_parked(451, "4.4.3", r.detail);
    // MTA-STS enforce: only the MX hosts the policy names, over verified TLS.
    const bool enforce = policy && policy->mode == StsPolicy::Mode::k_enforce;
    if (enforce) {
      std::erase_if(r.hosts, [&](const MxHost& h) { return !sts_mx_matches(*policy, h.name); });
      if (r.hosts.empty()) {  // retried (the policy or the MX may change) and aged
        return end_parked(451, "4.7.5",
                          fmt::format("the MTA-STS policy of {} (enforce) names none of its MX hosts; not sent",
                                      domain));
      }
    }
    // Keyed by the hosts and their addresses: hosts that move to other
    // addresses make a new destination (the old one drains away).
    std::vector<std::string> names;
    for (const auto& h : r.hosts) {
      std::vector<std::string> addresses = h.addresses;
      std::sort(addresses.begin(), addresses.end());
      std::string n = h.name;
      for (const auto& a : addresses) n += " " + a;
      names.push_back(std::move(n));
    }
    std::sort(names.begin(), names.end());
    std::string key;
    for (const auto& n : names) key += (key.empty() ? "" : ",") + n;
    if (enforce) key = "mta-sts:" + key;  // verified TLS: never shared with plain delivery
    auto& d = destinations[key];
    if (!d) {
      d = std::make_unique<Destination>(*this, key);
      // Every IPv4 address (hosts in order) before any IPv6 one: a machine
      // without an IPv6 route would otherwise fail every other connection.
      for (const bool v6 : {false, true}) {
        for (const auto& h : r.hosts) {
          for (const auto& a : h.addresses) {
            asio::error_code ec;
            const auto address = asio::ip::make_address(a, ec);
            if (ec || address.is_v6() != v6) continue;
            ConnectionSettings cs = base;
            cs.endpoint = asio::ip::tcp::endpoint(address, static_cast<unsigned short>(mx_port));
            cs.host = h.name;
            cs.session.plaintext_auth_ok = false;
            if (enforce) {  // STARTTLS required, the certificate checked against the MX host name
              cs.verify = true;
              cs.session.tls = smtp::TlsPolicy::k_required;
            }
            d->endpoints.push_back(std::move(cs));
            d->preferences.push_back(h.preference + (v6 ? 1 << 16 : 0));  // its own groups, after
          }
        }
      }
    }
    if (d->endpoints.empty()) return end_parked(451, "4.4.3", "no usable address for the MX hosts " + key);
    for (const auto slot : parked) queue_at(*d, slot);
    routed_domains[domain] = {d.get(), std::chrono::steady_clock::now() + r.ttl};
  }

  // Queues `slot` at `d`. This may run inside another destination's
  // connection (taking from the inbox): `d`'s idle connections are woken by
  // the I/O loop right after, not at the next poll().
  void queue_at(Destination& d, std::size_t slot) {
    d.queue.push_back(msg(slot).lane, msg(slot).lane_connections, slot, msg(slot).priority);
    if (!d.wake_posted) {
      d.wake_posted = true;
      asio::post(io, [&d] {
        d.wake_posted = false;
        for (auto& c : d.connections) c->wake();
      });
    }
  }

  std::optional<std::size_t> next_message(Destination& d) {
    if (stop_requested.load(std::memory_order_relaxed) || !fatal.empty()) return std::nullopt;
    take_inbox();
    if (urgent_hint.load(std::memory_order_relaxed) && urgent_hint.exchange(false)) {
      yield.urgent_submitted(std::chrono::steady_clock::now());
    }
    while (true) {
      // Transactional mail first; while campaigns yield, a campaign's
      // message when the controller lets one start.
      std::optional<std::size_t> slot;
      if (!yield.limiting()) {
        slot = d.queue.take();
        if (slot && msg(*slot).priority > 0) ++bulk_started;
      } else {
        slot = d.queue.take(1);
        if (!slot && d.queue.has_bulk()) {
          if (yield.bulk_ready(std::chrono::steady_clock::now())) {
            slot = d.queue.take();
            if (slot && msg(*slot).priority > 0) {
              yield.bulk_taken();
              ++bulk_started;
            }
          } else {
            bulk_held = true;
          }
        }
      }
      if (!slot) return std::nullopt;
      if (group_stopped(msg(*slot).group)) {  // stopped since it was queued: it comes back not attempted
        d.queue.done(msg(*slot).lane);
        finish(*slot, DeliveryResult::stopped());
        continue;
      }
      ++d.in_progress;
      return *slot;
    }
  }

  // A message that goes back to the queue did not reach the end of DATA
  // (the session says so): if its body was let go, that never happened.
  void undot(std::size_t slot) {
    if (dotted[slot] != 0) {
      dotted[slot] = 0;
      if (dots_open > 0) --dots_open;
    }
    if (announced[slot] == 1) std::erase(to_announce, slot);
    announced[slot] = 0;
  }

  void requeue(Destination& d, std::size_t slot) {
    --d.in_progress;
    undot(slot);
    d.queue.put_back(msg(slot).lane, slot, msg(slot).priority);
  }

  void result(Destination& d, std::size_t slot, const smtp::SessionEvent& e) {
    --d.in_progress;
    ++replies;
    if (e.connection_lost && !e.maybe_delivered) {
      // Nothing of it reached the end of DATA: try it on another connection.
      ++d.consecutive_failures;
      d.last_failure = e.detail;
      undot(slot);
      reached[slot] = 1;  // an attempt: if the server stays away, it is retried and aged, not held
      d.queue.put_back(msg(slot).lane, slot, msg(slot).priority);
      return;
    }
    d.queue.done(msg(slot).lane);
    d.proven = true;
    if (msg(slot).priority <= 0 && !e.connection_lost) {
      // A server's reply to a transactional message: the controller's signal
      // (not the results the pool makes up itself, which take no time).
      const auto now = std::chrono::steady_clock::now();
      yield.urgent_replied(now, std::chrono::duration_cast<std::chrono::microseconds>(now - queued_at[slot]));
    }
    DeliveryResult r;
    r.code = e.connection_lost ? 0 : e.reply.code;
    r.enhanced = e.reply.enhanced;
    r.reply = e.connection_lost ? e.detail : e.reply.summary();
    r.phase = e.at_data_end ? Phase::k_data_end : Phase::k_envelope;
    r.maybe_delivered = e.maybe_delivered;
    if (e.outcome != smtp::Outcome::k_deferred) d.consecutive_failures = 0;
    finish(slot, std::move(r));
  }

  void connection_failed(Destination& d, const ConnectionSettings& used, const std::string& detail,
                         bool is_fatal) {
    ++d.consecutive_failures;
    d.last_failure = detail;
    d.proven = false;
    // The next connection tries the address after the one that failed (the
    // next MX host), unless the destination moved past it already (several
    // connections to it failing together move it once).
    for (std::size_t i = 0; i < d.endpoints.size(); ++i) {
      if (&d.endpoints[i] != &used) continue;
      if (i >= d.current && d.endpoints.size() > 1) {
        d.current = (i + 1) % d.endpoints.size();
        d.turn = 0;
      }
      break;
    }
    // A settings failure ends the transport when it is the relay's; with
    // mx: it is one destination's (an MTA-STS host without STARTTLS).
    if (is_fatal && fatal.empty() && relay != nullptr) fatal = detail;
  }

  smtp::Message message(std::size_t slot) {
    const auto& m = msg(slot);
    return smtp::Message{slot, m.envelope_from, m.recipient, m.data, m.traits};
  }

  // Every connection, of every destination.
  template <typename F>
  void each_connection(F&& f) {
    for (auto& [key, d] : destinations) {
      for (auto& c : d->connections) f(*c);
    }
  }

  std::size_t open_connections() {
    std::size_t n = 0;
    each_connection([&](SmtpConnection& c) { n += c.closed() ? 0 : 1; });
    return n;
  }

  void ensure_connections() {
    bool held = false;
    std::size_t total = 0;
    for (auto& [key, d] : destinations) {
      std::erase_if(d->connections, [](const auto& c) { return c->closed(); });
      for (auto& c : d->connections) {
        c->wake();
        c->resume();  // a body held by the unconfirmed limit
        held = held || c->held();
      }
      total += d->connections.size();
    }
    gated.store(held, std::memory_order_relaxed);
    // A destination with work and no room under `target`: idle connections
    // of destinations with nothing queued say QUIT and give way.
    if (total >= static_cast<std::size_t>(target) && destinations.size() > 1) {
      const bool starved = std::any_of(destinations.begin(), destinations.end(), [](const auto& e) {
        return !e.second->queue.empty() && e.second->connections.empty();
      });
      if (starved) {
        for (auto& [key, d] : destinations) {
          if (!d->queue.empty()) continue;
          for (auto& c : d->connections) {
            if (c->idle()) c->stop();
          }
        }
      }
    }
    for (auto& [key, d] : destinations) {
      const std::size_t cap = static_cast<std::size_t>(per_destination > 0 ? per_destination : target);
      const std::size_t want = std::min(d->proven ? cap : std::size_t{1}, d->queue.size() + d->in_progress);
      while (d->connections.size() < want && total < static_cast<std::size_t>(target) && fatal.empty() &&
             !stop_requested.load(std::memory_order_relaxed) && d->consecutive_failures < d->give_up_after()) {
        auto c = std::make_shared<SmtpConnection>(io, tls, *d, d->next_endpoint());
        d->connections.push_back(c);
        ++total;
        c->start();
      }
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
    each_connection([&](SmtpConnection& c) { busy += (!c.idle() && !c.closed() && !c.held()) ? 1 : 0; });
    if (busy < k_pace_min_busy) return;
    const auto wait = std::min<std::chrono::nanoseconds>(k_max_pace, reply_interval * (busy / k_pace_share));
    if (wait >= k_min_pace) std::this_thread::sleep_for(wait);
  }

  // Ends every queued message with `r` (its recipient filled in per message).
  // Hands back every queued message with `r`; one that a server already took
  // part of (its connection was lost before the end of DATA) as an attempt
  // in the envelope phase instead of a connect-phase `r`.
  void drain_queue(Destination& d, const DeliveryResult& r) {
    while (const auto taken = d.queue.drop()) {
      const std::size_t slot = *taken;
      DeliveryResult each = r;
      if (reached[slot] != 0 && r.phase == Phase::k_connect) each.phase = Phase::k_envelope;
      finish(slot, std::move(each));
    }
  }
  void drain_all(const DeliveryResult& r) {
    for (auto& [key, d] : destinations) drain_queue(*d, r);
    for (auto& [domain, parked] : waiting_dns) {
      for (const auto slot : parked) finish(slot, r);
    }
    waiting_dns.clear();
  }
};

SmtpTransport::SmtpTransport(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

SmtpTransport::~SmtpTransport() {
  if (m_impl->dns_thread.joinable()) {
    m_impl->resolver->interrupt();  // a lookup under way ends within 100 ms
    {
      std::lock_guard lock(m_impl->dns_mutex);
      m_impl->dns_stop = true;
    }
    m_impl->dns_wake.notify_one();
    m_impl->dns_thread.join();
  }
  // Say QUIT on idle connections, giving them a moment to go out.
  m_impl->each_connection([](SmtpConnection& c) { c.stop(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  m_impl->io.restart();
  while (m_impl->open_connections() > 0 && std::chrono::steady_clock::now() < deadline) {
    m_impl->io.run_for(std::chrono::milliseconds(50));
  }
}

Result<std::unique_ptr<SmtpTransport>> SmtpTransport::open(const TransportConfig& config) {
  const bool mx = config.url == "mx:";
  auto url = mx ? Result<ParsedUrl>(ParsedUrl{}) : parse_url(config.url);
  if (!url) return std::unexpected(url.error());
  auto impl = std::make_unique<Impl>();
  asio::error_code ec;
  // With mx: a transactional message's time to a reply is mostly the
  // recipient's own servers (DNS, the internet, their checks), different for
  // every domain: no signal of this machine's load. Campaigns do not yield.
  YieldSettings yield = config.yield;
  if (mx) yield.enabled = false;
  impl->yield = YieldController(yield);
  auto& s = impl->base;
  if (mx) {
    // Each recipient domain's MX hosts (SPEC §11); STARTTLS when offered,
    // certificates not checked (opportunistic, as MTAs do without MTA-STS).
    if (!config.username.empty()) {
      return fail("[transport] username is for a relay; mx: delivers to each domain's own servers, which take "
                  "no credentials: remove username and password_file, or use smtp://HOST:PORT");
    }
    if (config.tls == "required") {
      return fail("[transport] tls = \"required\" with mx: would refuse every MX host without STARTTLS; "
                  "leave tls unset (STARTTLS whenever offered)");
    }
    ResolverSettings rs;
    rs.server = config.resolver;
    auto resolver = MxResolver::create(rs);
    if (!resolver) return std::unexpected(resolver.error());
    impl->resolver = std::move(*resolver);
    impl->mx_port = config.mx_port > 0 ? config.mx_port : 25;
    impl->per_destination = config.connections_per_destination > 0 ? config.connections_per_destination : 10;
    StsSettings sts;
    sts.ca_file = config.ca_file;
    sts.port = config.mta_sts_port > 0 ? config.mta_sts_port : 443;
    sts.cache_path = config.mta_sts_cache;
    impl->sts = std::make_unique<MtaSts>(std::move(sts), *impl->resolver);
    // MX hosts under an MTA-STS policy are verified: the system's trust store.
    impl->tls.set_default_verify_paths(ec);
  } else {
    asio::ip::tcp::resolver resolver(impl->io);
    const auto endpoints = resolver.resolve(url->host, url->port, ec);
    if (ec || endpoints.empty()) {
      return fail(fmt::format("transport {}: cannot resolve {}: {}", config.url, url->host, ec.message()),
                  ExitCode::k_runtime);
    }
    s.endpoint = *endpoints.begin();
    s.host = url->host;
  }
  s.implicit_tls = url->implicit_tls;
  s.verify = url->implicit_tls || config.tls == "required";
  s.messages_per_connection = config.messages_per_connection > 0 ? config.messages_per_connection : 1000;
  s.session.helo_name = config.helo_name.empty() ? host_name() : config.helo_name;
  s.session.tls = config.tls == "required" ? smtp::TlsPolicy::k_required : smtp::TlsPolicy::k_opportunistic;
  s.session.tls_active = url->implicit_tls;
  s.session.plaintext_auth_ok = s.endpoint.address().is_loopback();
  s.session.timeout_override = config.timeout_seconds;
  s.session.hold_body = true;  // see may_end_data
  if (!config.username.empty()) s.session.credentials = smtp::Credentials{config.username, config.password};
  impl->target = config.connections > 0 ? config.connections : 20;
  if (!mx) {
    auto relay = std::make_unique<Impl::Destination>(*impl, url->host);
    relay->endpoints.push_back(s);
    relay->preferences.push_back(0);
    relay->proven = true;  // a relay is known to answer: all connections at once
    impl->relay = relay.get();
    impl->destinations[url->host] = std::move(relay);
  }
  // The system's CA bundle takes tens of milliseconds to load: only when
  // certificates are checked (opportunistic STARTTLS does not check them).
  if (s.verify) impl->tls.set_default_verify_paths(ec);
  if (!config.ca_file.empty()) {
    impl->tls.load_verify_file(config.ca_file, ec);
    if (ec) return fail(fmt::format("[transport] ca_file {}: {}", config.ca_file, ec.message()));
  }
  impl->tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  if (mx) {
    Impl* p = impl.get();
    impl->dns_thread = std::thread([p] {
      util::set_thread_name("bc-dns");
      p->dns_loop();
    });
  }
  impl->description = mx ? fmt::format("mx: ({} connections, {} per destination{})", impl->target,
                                       impl->per_destination,
                                       config.resolver.empty() ? "" : ", resolver " + config.resolver)
                        : fmt::format("{} ({} connections{})", config.url, impl->target,
                                      s.verify ? ", TLS verified" : "");
  return std::unique_ptr<SmtpTransport>(new SmtpTransport(std::move(impl)));
}

std::string SmtpTransport::describe() const { return m_impl->description; }

void SmtpTransport::submit(std::vector<OutgoingMessage> messages) {
  Impl& p = *m_impl;
  if (messages.empty()) return;
  // With two messages a connection or more still to go, the connections
  // take these from the inbox as they finish: no need to wake the loop.
  // Transactional mail (priority 0) always wakes it: it must not wait for a
  // connection to finish before it is even queued.
  const bool urgent = std::any_of(messages.begin(), messages.end(), [](const auto& m) { return m.priority <= 0; });
  const bool busy = !urgent && p.submitted.load() - p.returned.load() >= 2 * static_cast<std::size_t>(p.target);
  p.submitted.fetch_add(messages.size());
  {
    std::lock_guard lock(p.inbox_mutex);
    if (p.inbox.empty()) {
      p.inbox = std::move(messages);
    } else {
      for (auto& m : messages) p.inbox.push_back(std::move(m));
    }
    p.has_inbox.store(true, std::memory_order_release);
  }
  if (!busy) asio::post(p.io, [] {});  // wakes a poll() waiting for replies
}

std::optional<YieldStatus> SmtpTransport::yield_status() const {
  const Impl& p = *m_impl;
  return YieldStatus{p.yield_limiting.load(std::memory_order_relaxed), p.yield_rate.load(std::memory_order_relaxed),
                     p.yield_full.load(std::memory_order_relaxed), p.yield_base.load(std::memory_order_relaxed),
                     p.yield_target.load(std::memory_order_relaxed), p.yield_spells.load(std::memory_order_relaxed)};
}

void SmtpTransport::urgent_coming() {
  // Seen by the next connection that asks for a message (a running
  // campaign asks all the time); nothing to wake otherwise.
  m_impl->urgent_hint.store(true, std::memory_order_relaxed);
}

std::size_t SmtpTransport::unfinished() const { return m_impl->submitted.load() - m_impl->returned.load(); }

void SmtpTransport::stop_starting() {
  m_impl->stop_requested.store(true);
  asio::post(m_impl->io, [] {});
}

void SmtpTransport::stop_group(std::uint32_t group) {
  {
    std::lock_guard lock(m_impl->group_mutex);
    m_impl->stopped_groups.insert(group);
  }
  m_impl->any_group_stopped.store(true);
  m_impl->group_drain_due.store(true);
  asio::post(m_impl->io, [] {});
}

void SmtpTransport::limit_unconfirmed(std::size_t n) {
  m_impl->unconfirmed_limit.store(n);
  asio::post(m_impl->io, [] {});
}

bool SmtpTransport::on_data_end(std::function<bool(std::span<const std::int64_t>)> hook) {
  m_impl->data_end_hook = std::move(hook);
  return true;
}

void SmtpTransport::confirm(std::size_t n) {
  if (n == 0) return;
  m_impl->confirmed.fetch_add(n, std::memory_order_release);
  // Connections held by the limit go on at the next poll: wake it.
  if (m_impl->gated.load(std::memory_order_relaxed)) asio::post(m_impl->io, [] {});
}

Result<void> SmtpTransport::poll(std::chrono::milliseconds max_wait, std::vector<DeliveryResult>& results) {
  Impl& p = *m_impl;
  if (p.sample_start == std::chrono::steady_clock::time_point{}) p.sample_start = std::chrono::steady_clock::now();
  p.take_inbox();
  if (p.group_drain_due.exchange(false)) p.drain_groups();
  if (p.stop_requested.load()) p.drain_all(DeliveryResult::stopped());
  if (!p.fatal.empty()) {
    DeliveryResult r;
    r.attempted = false;
    r.settings_failure = true;
    r.phase = Phase::k_none;
    r.reply = "not attempted: " + p.fatal;
    p.drain_all(r);
  }
  for (auto& [key, d] : p.destinations) {
    if (d->consecutive_failures >= d->give_up_after() && d->in_progress == 0 && !d->queue.empty()) {
      // The server cannot be reached (every address of the destination
      // tried): every queued message waits for a retry.
      DeliveryResult r;
      r.code = 451;
      r.enhanced = "4.4.1";
      // A relay that cannot be reached holds its recipients; a recipient's
      // own MX hosts that cannot be reached retry and age it.
      r.phase = p.relay != nullptr ? Phase::k_connect : Phase::k_envelope;
      r.reply = "451 4.4.1 " + d->last_failure;
      p.drain_queue(*d, r);
      d->consecutive_failures = 0;  // the next submitted messages try again
    }
  }
  p.ensure_connections();
  if (p.ready.empty()) {
    const auto before = std::chrono::steady_clock::now();
    p.pace(before);
    std::chrono::microseconds wait_us = max_wait;
    if (p.bulk_held) {
      // Held campaign messages go when the controller lets the next one.
      const auto due = std::chrono::ceil<std::chrono::microseconds>(p.yield.next_bulk(before) - before);
      wait_us = std::clamp(due, std::chrono::microseconds(100), wait_us);
      p.bulk_held = false;
    }
    p.io.run_one_for(wait_us);
    p.io.poll();  // whatever else is ready, before the connections are looked at again
  }
  p.announce();
  const auto now = std::chrono::steady_clock::now();
  p.yield.tick(now, p.bulk_started, p.relay != nullptr && p.relay->queue.has_bulk(), p.urgent_in_flight);
  p.yield_limiting.store(p.yield.limiting(), std::memory_order_relaxed);
  p.yield_rate.store(p.yield.rate(), std::memory_order_relaxed);
  p.yield_full.store(p.yield.full_rate(), std::memory_order_relaxed);
  p.yield_base.store(static_cast<double>(p.yield.base_us()) / 1e6, std::memory_order_relaxed);
  p.yield_target.store(static_cast<double>(p.yield.target_us()) / 1e6, std::memory_order_relaxed);
  p.yield_spells.store(p.yield.spells(), std::memory_order_relaxed);
  if (now - p.last_tick > std::chrono::milliseconds(100)) {
    p.last_tick = now;
    p.each_connection([&](SmtpConnection& c) { c.check_deadline(now); });
  }
  p.returned.fetch_add(p.ready.size());
  for (auto& r : p.ready) results.push_back(std::move(r));
  p.ready.clear();
  if (p.unconfirmed_limit.load(std::memory_order_relaxed) > 0) {
    p.returned_dotted.insert(p.returned_dotted.end(), p.ready_dotted.begin(), p.ready_dotted.end());
  } else {
    p.dots_open = 0;  // nobody confirms without a limit: keep no record to match
  }
  p.ready_dotted.clear();
  return {};
}

}  // namespace blindcast::delivery
