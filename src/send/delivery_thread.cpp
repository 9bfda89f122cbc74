#include "send/delivery_thread.hpp"

#include "util/threads.hpp"

namespace blindcast::send {

DeliveryThread::DeliveryThread(delivery::Transport& transport)
    : m_transport(transport), m_thread([this] { run(); }) {}

DeliveryThread::~DeliveryThread() {
  m_transport.stop_starting();
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
  // Offered before the task can run: deliver() then finds it among the
  // offers, and never starts it a second time.
  m_transport.offer(batch);
  {
    std::lock_guard lock(m_mutex);
    m_tasks.push_back(std::move(task));
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
      m_wake.wait(lock, [&] { return m_stopping || !m_tasks.empty(); });
      if (m_tasks.empty()) return;  // stopping with nothing in hand
      task = std::move(m_tasks.front());
      m_tasks.pop_front();
    }
    task();
  }
}

}  // namespace blindcast::send
