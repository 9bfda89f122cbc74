#include "delivery/shared_transport.hpp"

#include <deque>

#include "util/threads.hpp"

namespace blindcast::delivery {

class SharedTransport::Channel final : public Transport {
 public:
  Channel(SharedTransport& shared, int priority, std::uint32_t group)
      : m_shared(shared), m_priority(priority), m_group(group) {}
  ~Channel() override { m_shared.detach(*this, m_group); }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  [[nodiscard]] std::string describe() const override { return m_shared.describe(); }

  void submit(std::vector<OutgoingMessage> messages) override {
    if (messages.empty()) return;
    for (auto& m : messages) {
      m.priority = m_priority;
      m.group = m_group;
    }
    m_submitted.fetch_add(messages.size());
    if (m_stopped.load()) {
      // Stopped before they were handed over: they come back not attempted.
      std::lock_guard lock(m_shared.m_mutex);
      for (const auto& m : messages) results.push_back(DeliveryResult::stopped(m.recipient_id));
      ready.notify_all();
      return;
    }
    m_shared.submit(*this, std::move(messages));
  }

  Result<void> poll(std::chrono::milliseconds max_wait, std::vector<DeliveryResult>& out) override {
    std::unique_lock lock(m_shared.m_mutex);
    ready.wait_for(lock, max_wait, [&] { return !results.empty() || m_shared.m_failed.load(); });
    if (results.empty() && m_shared.m_failed.load()) return fail(m_shared.m_failure, ExitCode::k_runtime);
    m_returned += results.size();
    for (auto& r : results) out.push_back(std::move(r));
    results.clear();
    return {};
  }

  [[nodiscard]] std::size_t unfinished() const override {
    std::lock_guard lock(m_shared.m_mutex);
    return m_submitted.load() - m_returned;
  }

  void stop_starting() override {
    m_stopped = true;
    m_shared.m_transport->stop_group(m_group);
  }

  void limit_unconfirmed(std::size_t n) override {
    {
      std::lock_guard lock(m_shared.m_mutex);
      limit = n;
    }
    m_shared.relimit();
  }

  void confirm(std::size_t n) override { m_shared.m_transport->confirm(n); }

  bool on_data_end(std::function<bool(std::span<const std::int64_t>)> h) override {
    std::lock_guard lock(m_shared.m_mutex);
    hook = std::move(h);
    return true;
  }

  [[nodiscard]] bool paced() const override { return m_shared.m_transport->paced(); }
  [[nodiscard]] bool idempotent() const override { return m_shared.m_transport->idempotent(); }

  // Under the shared mutex.
  std::deque<DeliveryResult> results;
  std::condition_variable ready;
  std::function<bool(std::span<const std::int64_t>)> hook;
  std::size_t limit = 0;

 private:
  SharedTransport& m_shared;
  const int m_priority;
  const std::uint32_t m_group;
  std::atomic<std::size_t> m_submitted{0};
  std::size_t m_returned = 0;  // under the shared mutex
  std::atomic<bool> m_stopped{false};
};

SharedTransport::SharedTransport(std::unique_ptr<Transport> transport) : m_transport(std::move(transport)) {
  m_transport->on_data_end([this](std::span<const std::int64_t> ids) { return data_end(ids); });
  m_pump = std::thread([this] { pump(); });
}

SharedTransport::~SharedTransport() {
  m_stopping = true;
  if (m_pump.joinable()) m_pump.join();
}

std::unique_ptr<Transport> SharedTransport::channel(int priority) {
  std::unique_ptr<Channel> c;
  {
    std::lock_guard lock(m_mutex);
    c = std::make_unique<Channel>(*this, priority, m_next_group++);
    m_channels.push_back(c.get());
  }
  relimit();
  return c;
}

void SharedTransport::detach(Channel& c, std::uint32_t group) {
  // Nothing of a sender that is gone starts any more; what it left on the
  // wire finishes, and the pump confirms its results (nobody records them).
  m_transport->stop_group(group);
  {
    std::lock_guard lock(m_mutex);
    std::erase(m_channels, &c);
    for (auto& [id, owner] : m_owner) {
      if (owner.channel == &c) owner.channel = nullptr;
    }
  }
  relimit();
}

void SharedTransport::relimit() {
  std::size_t total = 0;
  {
    std::lock_guard lock(m_mutex);
    for (const auto* c : m_channels) total += c->limit > 0 ? c->limit : k_unlimited_share;
  }
  m_transport->limit_unconfirmed(total);
}

void SharedTransport::submit(Channel& c, std::vector<OutgoingMessage> messages) {
  {
    std::lock_guard lock(m_mutex);
    for (auto& m : messages) {
      const std::int64_t global = m_next_id++;
      m_owner[global] = Owner{&c, m.recipient_id};
      m.recipient_id = global;
    }
  }
  m_transport->submit(std::move(messages));
}

bool SharedTransport::data_end(std::span<const std::int64_t> ids) {
  // Grouped by channel, each hook with its own ids (on the pump thread).
  std::map<Channel*, std::vector<std::int64_t>> by_channel;
  std::vector<std::pair<Channel*, std::function<bool(std::span<const std::int64_t>)>>> hooks;
  {
    std::lock_guard lock(m_mutex);
    for (const auto id : ids) {
      const auto it = m_owner.find(id);
      if (it != m_owner.end()) by_channel[it->second.channel].push_back(it->second.local_id);
    }
    for (auto& [c, local] : by_channel) hooks.emplace_back(c, c == nullptr ? nullptr : c->hook);
  }
  bool ok = true;
  for (auto& [c, hook] : hooks) {
    if (c != nullptr && hook && !hook(by_channel[c])) ok = false;
  }
  return ok;
}

void SharedTransport::pump() {
  util::set_thread_name("bc-shared");
  std::vector<DeliveryResult> got;
  while (!m_stopping.load()) {
    got.clear();
    auto r = m_transport->poll(std::chrono::milliseconds(20), got);
    std::lock_guard lock(m_mutex);
    if (!r) {
      m_failure = r.error().message;
      m_failed = true;
      for (auto* c : m_channels) c->ready.notify_all();
      return;
    }
    std::size_t orphans = 0;
    for (auto& res : got) {
      const auto it = m_owner.find(res.recipient_id);
      if (it == m_owner.end()) continue;
      Channel* c = it->second.channel;
      res.recipient_id = it->second.local_id;
      m_owner.erase(it);
      if (c == nullptr) {  // its sender is gone
        ++orphans;
        continue;
      }
      c->results.push_back(std::move(res));
      c->ready.notify_all();
    }
    if (orphans > 0) m_transport->confirm(orphans);
  }
}

}  // namespace blindcast::delivery
