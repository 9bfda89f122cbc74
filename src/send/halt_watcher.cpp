#include "send/halt_watcher.hpp"

#include <chrono>

#include "send/halt.hpp"

namespace blindcast::send {

HaltWatcher::HaltWatcher(std::string state_path, int interval_ms) {
  m_thread = std::thread([this, path = std::move(state_path), interval_ms] {
    auto store = store::open_sqlite_store(path);
    while (!m_done.load()) {
      if (store) {
        auto h = read_halt(**store);
        if (h && *h) m_halted = true;
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
