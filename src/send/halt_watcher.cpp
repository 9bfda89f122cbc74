#include "send/halt_watcher.hpp"

#include <chrono>

#include "send/halt.hpp"
#include "store/pg_store.hpp"

namespace blindcast::send {

HaltWatcher::HaltWatcher(std::string state_path, int interval_ms) {
  m_thread = std::thread([this, path = std::move(state_path), interval_ms] {
    // A halt cannot be written while the database is away; this thread
    // must not hold the send's end up waiting for it.
    store::fail_fast_on_outages();
    auto store = store::open_state_store(path);
    while (!m_done.load()) {
      if (store) {
        auto h = read_halt(**store);
        if (h && *h) m_halted = true;
        // A node sharing the campaign keeps its lease while it waits on a
        // slow server or a slow lane (its work threads renew it too).
        (void)(*store)->keep_alive();
      }
      if (store && (*store)->signals_halts()) {
        // Woken at once by a halt on any node (LISTEN/NOTIFY); the poll
        // above is the guarantee when a notification is lost.
        // An error (the database away) returns at once: the poll's pause
        // then, not a busy loop of reconnections.
        if (auto w = (*store)->wait_for_halt_signal(interval_ms); w) continue;
      }
      for (int waited = 0; waited < interval_ms && !m_done.load(); waited += 25) {
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
      }
    }
  });
}

HaltWatcher::~HaltWatcher() {
  m_done = true;
  if (m_thread.joinable()) m_thread.join();
}

}  // namespace blindcast::send
