// The thread that talks to the network for a whole send.
//
// Batches are handed over one at a time; the caller records the previous
// batch's outcomes and prepares the next while this one is on the wire. One
// long-lived thread instead of one per batch: no thread start per batch, and
// the scheduler keeps seeing the same thread, which wakes for every reply.
// Builders run at a lower priority (util::lower_thread_priority), so when
// this thread wakes it gets a core at once.
#pragma once

#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <span>
#include <thread>

#include "delivery/transport.hpp"
#include "util/error.hpp"

namespace blindcast::campaign {

class DeliveryThread {
 public:
  explicit DeliveryThread(delivery::Transport& transport);
  ~DeliveryThread();  // finishes the batch in hand, then joins
  DeliveryThread(const DeliveryThread&) = delete;
  DeliveryThread& operator=(const DeliveryThread&) = delete;

  // Starts delivering `batch`, which must stay alive until the future is
  // ready. Call again only after the previous future is ready.
  std::future<Result<delivery::DeliveryReport>> start(std::span<const delivery::OutgoingMessage> batch);

 private:
  void run();

  delivery::Transport& m_transport;
  std::mutex m_mutex;
  std::condition_variable m_wake;
  std::optional<std::packaged_task<Result<delivery::DeliveryReport>()>> m_task;
  bool m_stopping = false;
  std::thread m_thread;  // last: starts after the members it uses exist
};

}  // namespace blindcast::campaign
