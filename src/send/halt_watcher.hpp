// Watches the campaign's halt flag from a thread of its own, on its own
// connection to the state store, so a running send notices `halt` within a
// second even while a long batch is being delivered.
#pragma once

#include <atomic>
#include <string>
#include <thread>

namespace blindcast::send {

class HaltWatcher {
 public:
  // Starts polling the store at `state_path` every `interval_ms`.
  explicit HaltWatcher(std::string state_path, int interval_ms = 250);
  ~HaltWatcher();
  HaltWatcher(const HaltWatcher&) = delete;
  HaltWatcher& operator=(const HaltWatcher&) = delete;

  // True once a halt was seen.
  [[nodiscard]] bool halted() const { return m_halted.load(); }

 private:
  std::atomic<bool> m_halted{false};
  std::atomic<bool> m_done{false};
  std::thread m_thread;
};

}  // namespace blindcast::send
