// The HTTP server's threads: cpp-httplib serves each connection on a thread
// of its task queue for as long as the connection lasts, so a fixed pool of
// N threads is stalled by N slow clients (slowloris). This queue keeps
// `floor` threads and starts another whenever every thread is busy, up to
// `ceiling` connections served at once; beyond that, connections wait their
// turn. A slow client then costs one mostly idle thread, not the service.
// (Each read is still bounded by [http] read_timeout, and a request's
// headers by the library's 8 KB limit.)
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>

namespace blindcast::serve {

class ConnectionPool final : public httplib::TaskQueue {
 public:
  ConnectionPool(std::size_t floor, std::size_t ceiling);
  ~ConnectionPool() override;
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  void enqueue(std::function<void()> fn) override;
  void shutdown() override;

 private:
  void work();

  const std::size_t m_ceiling;
  std::mutex m_mutex;
  std::condition_variable m_wake;
  std::deque<std::function<void()>> m_jobs;
  std::vector<std::thread> m_threads;
  std::size_t m_idle = 0;
  bool m_stopping = false;
};

}  // namespace blindcast::serve
