// The thread that talks to the network for a whole send.
//
// Batches are handed over in order; the caller records the previous batch's
// outcomes and prepares the next while one is on the wire. A batch started
// while another is still being delivered waits behind it, and is offered to
// the transport (Transport::offer) so that its messages can go out as soon
// as the running batch's last ones are handed over: the connections do not
// drain at every batch boundary. One long-lived thread instead of one per
// batch: no thread start per batch, and the scheduler keeps seeing the same
// thread. Builders run at a lower priority (util::lower_thread_priority), so
// when this thread wakes it gets a core at once.
#pragma once

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <span>
#include <thread>

#include "delivery/transport.hpp"
#include "util/error.hpp"

namespace blindcast::send {

class DeliveryThread {
 public:
  explicit DeliveryThread(delivery::Transport& transport);
  // Tells the transport to start no new message, settles every batch handed
  // over (their futures become ready), then joins.
  ~DeliveryThread();
  DeliveryThread(const DeliveryThread&) = delete;
  DeliveryThread& operator=(const DeliveryThread&) = delete;

  // Delivers `batch` after the batches started before it; `batch` must stay
  // alive until its future is ready.
  std::future<Result<delivery::DeliveryReport>> start(std::span<const delivery::OutgoingMessage> batch);

 private:
  void run();

  delivery::Transport& m_transport;
  std::mutex m_mutex;
  std::condition_variable m_wake;
  std::deque<std::packaged_task<Result<delivery::DeliveryReport>()>> m_tasks;
  bool m_stopping = false;
  std::thread m_thread;  // last: starts after the members it uses exist
};

}  // namespace blindcast::send
