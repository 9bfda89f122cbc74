// One transport shared by several senders (SPEC §8: `serve` sends the
// transactional streams and the campaigns it runs through the same lanes and
// connections, transactional first).
//
// Each sender gets a Channel: a Transport of its own with a priority (0 for
// transactional mail, 1 for campaigns). A channel numbers its messages in
// its own id space; the shared transport gives each a global id, submits it
// to the one underlying transport with the channel's priority and group,
// and a pump thread polls the underlying transport and hands every result
// back to its channel (whose poll() waits for it). What a channel does is
// its own: stop_starting() stops its group only; its end-of-DATA hook sees
// its own ids; confirm() and limit_unconfirmed() add up to the underlying
// transport's (a channel without a limit counts for k_unlimited_share).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "delivery/transport.hpp"

namespace blindcast::delivery {

class SharedTransport {
 public:
  // What a channel without its own limit of unconfirmed messages adds to the
  // underlying transport's.
  static constexpr std::size_t k_unlimited_share = 64;

  explicit SharedTransport(std::unique_ptr<Transport> transport);
  ~SharedTransport();
  SharedTransport(const SharedTransport&) = delete;
  SharedTransport& operator=(const SharedTransport&) = delete;

  // A new sender's channel: its messages go with `priority`.
  std::unique_ptr<Transport> channel(int priority);
  [[nodiscard]] std::string describe() const { return m_transport->describe(); }
  // False once the underlying transport failed (poll() returned an error).
  [[nodiscard]] bool healthy() const { return !m_failed.load(); }
  [[nodiscard]] std::optional<YieldStatus> yield_status() const { return m_transport->yield_status(); }
  void urgent_coming() { m_transport->urgent_coming(); }

  class Channel;

 private:
  friend class Channel;
  struct Owner {
    Channel* channel;  // null once the channel is gone
    std::int64_t local_id;
  };
  void pump();
  void submit(Channel& c, std::vector<OutgoingMessage> messages);
  void detach(Channel& c, std::uint32_t group);
  void relimit();
  bool data_end(std::span<const std::int64_t> ids);

  std::unique_ptr<Transport> m_transport;
  std::mutex m_mutex;  // the maps, the channels' queues
  std::unordered_map<std::int64_t, Owner> m_owner;  // global id -> channel and its id
  std::vector<Channel*> m_channels;
  std::int64_t m_next_id = 1;
  std::uint32_t m_next_group = 1;
  std::atomic<bool> m_stopping{false};
  std::atomic<bool> m_failed{false};
  std::string m_failure;
  std::thread m_pump;
};

}  // namespace blindcast::delivery
