// The delivery thread's hand-over: batches run in order, each is offered to
// the transport before it can run, and the destructor stops new messages and
// settles every batch handed over.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "send/delivery_thread.hpp"

namespace blindcast::send {
namespace {

using delivery::DeliveryKind;
using delivery::DeliveryReport;
using delivery::OutgoingMessage;

// Records what the thread asks of it; deliver() waits until released.
class FakeTransport final : public delivery::Transport {
 public:
  [[nodiscard]] std::string describe() const override { return "fake"; }

  Result<DeliveryReport> deliver(std::span<const OutgoingMessage> messages) override {
    std::unique_lock lock(m_mutex);
    log.push_back("deliver " + messages.front().delivery_key);
    m_changed.notify_all();
    m_changed.wait(lock, [&] { return m_released > 0 || m_stopped; });
    if (m_released > 0) --m_released;
    DeliveryReport r;
    for (const auto& m : messages) {
      r.results.push_back({m.recipient_id, m_stopped ? DeliveryKind::k_not_attempted : DeliveryKind::k_sent,
                           m_stopped ? "not attempted" : "250 ok", false, "", 0});
    }
    return r;
  }
  void offer(std::span<const OutgoingMessage> next) override {
    std::lock_guard lock(m_mutex);
    log.push_back("offer " + next.front().delivery_key);
  }
  void stop_starting() override {
    std::lock_guard lock(m_mutex);
    log.push_back("stop");
    m_stopped = true;
    m_changed.notify_all();
  }

  void release() {
    std::lock_guard lock(m_mutex);
    ++m_released;
    m_changed.notify_all();
  }
  // Waits until `entry` is in the log.
  void await(const std::string& entry) {
    std::unique_lock lock(m_mutex);
    ASSERT_TRUE(m_changed.wait_for(lock, std::chrono::seconds(10), [&] {
      return std::find(log.begin(), log.end(), entry) != log.end();
    })) << entry;
  }
  std::vector<std::string> snapshot() {
    std::lock_guard lock(m_mutex);
    return log;
  }

  std::vector<std::string> log;

 private:
  std::mutex m_mutex;
  std::condition_variable m_changed;
  int m_released = 0;
  bool m_stopped = false;
};

std::vector<OutgoingMessage> batch(const std::string& key, std::int64_t first) {
  std::vector<OutgoingMessage> b(2);
  for (std::size_t i = 0; i < b.size(); ++i) {
    b[i].recipient_id = first + static_cast<std::int64_t>(i);
    b[i].delivery_key = key;
  }
  return b;
}

TEST(DeliveryThread, OffersTheNextBatchWhileOneRunsAndDeliversInOrder) {
  FakeTransport t;
  auto a = batch("a", 1);
  auto b = batch("b", 3);
  DeliveryThread thread(t);
  auto fa = thread.start(a);
  t.await("deliver a");
  auto fb = thread.start(b);  // a is still on the wire
  EXPECT_EQ(t.snapshot(), (std::vector<std::string>{"offer a", "deliver a", "offer b"}))
      << "b is offered to the transport before a has finished";
  t.release();
  auto ra = fa.get();
  ASSERT_TRUE(ra.has_value());
  EXPECT_EQ(ra->results.front().kind, DeliveryKind::k_sent);
  t.await("deliver b");
  t.release();
  auto rb = fb.get();
  ASSERT_TRUE(rb.has_value());
  EXPECT_EQ(rb->results.back().recipient_id, 4);
}

TEST(DeliveryThread, OnDestructionStopsNewMessagesAndSettlesWhatWasHandedOver) {
  FakeTransport t;
  auto a = batch("a", 1);
  auto b = batch("b", 3);
  std::future<Result<DeliveryReport>> fa;
  std::future<Result<DeliveryReport>> fb;
  {
    DeliveryThread thread(t);
    fa = thread.start(a);
    t.await("deliver a");
    fb = thread.start(b);
  }  // neither batch was released: the destructor must not hang or drop b
  const auto log = t.snapshot();
  ASSERT_GE(log.size(), 4U);
  EXPECT_EQ(log[3], "stop");
  EXPECT_EQ(log.back(), "deliver b") << "b was settled, not dropped";
  ASSERT_EQ(fb.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  auto rb = fb.get();
  ASSERT_TRUE(rb.has_value());
  EXPECT_EQ(rb->results.front().kind, DeliveryKind::k_not_attempted);
  EXPECT_TRUE(fa.get().has_value());
}

}  // namespace
}  // namespace blindcast::send
