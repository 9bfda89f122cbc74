#include "campaign/delivery_thread.hpp"

#include "util/threads.hpp"

namespace blindcast::campaign {

DeliveryThread::DeliveryThread(delivery::Transport& transport)
    : m_transport(transport), m_thread([this] { run(); }) {}

DeliveryThread::~DeliveryThread() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_wake.notify_one();
  m_thread.join();
}

std::future<Result<delivery::DeliveryReport>> DeliveryThread::start(
    std::span<const delivery::OutgoingMessage> batch) {
  std::packaged_task<Result<delivery::DeliveryReport>()> task([this, batch] { return m_transport.deliver(batch); });
  auto result = task.get_future();
  {
    std::lock_guard lock(m_mutex);
    m_task = std::move(task);
  }
  m_wake.notify_one();
  return result;
}

void DeliveryThread::run() {
  util::set_thread_name("bc-deliver");
  while (true) {
    std::packaged_task<Result<delivery::DeliveryReport>()> task;
    {
      std::unique_lock lock(m_mutex);
      m_wake.wait(lock, [&] { return m_stopping || m_task.has_value(); });
      if (!m_task) return;  // stopping with nothing in hand
      task = std::move(*m_task);
      m_task.reset();
    }
    task();
  }
}

}  // namespace blindcast::campaign
