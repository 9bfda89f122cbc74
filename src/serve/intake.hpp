// The intake's writer: makes accepted messages durable before the API
// answers 202 (SPEC §8), many requests per synced commit (group commit).
//
// HTTP threads hand an item over and wait; the writer thread takes what has
// gathered, and in ONE transaction checks each Idempotency-Key (the same key
// with the same body gets the first answer; with another body, 409), stores
// the new messages, their idempotency records and the audit rows, commits
// (synchronous=FULL), and only then answers them all. Concurrent retries of
// one key are serialised here, so exactly one message is stored. Audit rows
// of other requests ride along with the next commit (at most 100 ms later).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/service_store.hpp"

namespace blindcast::serve {

struct IntakeItem {
  std::string key_name;
  std::string idempotency_key;  // empty: none
  std::string body_hash;
  store::NewMessage message;
  store::ServiceAuditEvent audit;
};

struct IntakeAnswer {
  int status = 202;
  std::string body;     // JSON
  bool replay = false;  // the first answer to this Idempotency-Key
  bool stored = false;  // a new message was stored
};

class Intake {
 public:
  // `store`: the writer's own connection; `on_stored` is called (on the
  // writer thread) after a commit that stored new messages.
  Intake(std::unique_ptr<store::ServiceStore> store, std::function<void()> on_stored);
  ~Intake();
  Intake(const Intake&) = delete;
  Intake& operator=(const Intake&) = delete;

  // Stores `item` durably (or finds its first answer); blocks until then.
  IntakeAnswer submit(IntakeItem item);
  // Appends `event` to the audit log with the next commit.
  void audit(store::ServiceAuditEvent event);
  // Forgets idempotency keys older than a day (called now and then).
  void expire_idempotency();
  // Writes what is pending and stops the thread.
  void stop();

 private:
  struct Pending {
    IntakeItem item;
    IntakeAnswer answer;
    bool done = false;
  };
  void run();
  void write(std::vector<std::shared_ptr<Pending>>& batch, std::vector<store::ServiceAuditEvent>& audit);

  std::unique_ptr<store::ServiceStore> m_store;
  std::function<void()> m_on_stored;
  std::mutex m_mutex;
  std::condition_variable m_wake;
  std::condition_variable m_done;
  std::deque<std::shared_ptr<Pending>> m_items;
  std::vector<store::ServiceAuditEvent> m_audit;
  bool m_expire = false;
  bool m_stopping = false;
  std::thread m_thread;
};

}  // namespace blindcast::serve
