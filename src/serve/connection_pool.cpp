#include "serve/connection_pool.hpp"

#include "util/threads.hpp"

namespace blindcast::serve {

ConnectionPool::ConnectionPool(std::size_t floor, std::size_t ceiling) : m_ceiling(std::max(ceiling, floor)) {
  std::lock_guard lock(m_mutex);
  for (std::size_t i = 0; i < floor; ++i) m_threads.emplace_back([this] { work(); });
}

ConnectionPool::~ConnectionPool() { shutdown(); }

void ConnectionPool::enqueue(std::function<void()> fn) {
  {
    std::lock_guard lock(m_mutex);
    m_jobs.push_back(std::move(fn));
    // Every thread busy (and none about to take it): one more, up to the ceiling.
    if (m_idle < m_jobs.size() && m_threads.size() < m_ceiling) m_threads.emplace_back([this] { work(); });
  }
  m_wake.notify_one();
}

void ConnectionPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
    threads.swap(m_threads);
  }
  m_wake.notify_all();
  for (auto& t : threads) t.join();
}

void ConnectionPool::work() {
  util::set_thread_name("bc-http");
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock lock(m_mutex);
      ++m_idle;
      m_wake.wait(lock, [&] { return m_stopping || !m_jobs.empty(); });
      --m_idle;
      if (m_jobs.empty()) return;  // stopping, and nothing left to serve
      job = std::move(m_jobs.front());
      m_jobs.pop_front();
    }
    job();
  }
}

}  // namespace blindcast::serve
