#include "serve/intake.hpp"

#include <ctime>
#include <map>

#include <nlohmann/json.hpp>

#include "util/log.hpp"
#include "util/threads.hpp"

namespace blindcast::serve {

namespace {

constexpr std::size_t k_max_batch = 2000;
constexpr std::int64_t k_idempotency_seconds = 24 * 3600;

std::string error_body(const std::string& code, const std::string& message, const std::string& field) {
  return nlohmann::json{{"error", {{"code", code}, {"message", message}, {"field", field}}}}.dump();
}

}  // namespace

Intake::Intake(std::unique_ptr<store::ServiceStore> store, std::function<void()> on_stored)
    : m_store(std::move(store)), m_on_stored(std::move(on_stored)), m_thread([this] { run(); }) {}

Intake::~Intake() { stop(); }

void Intake::stop() {
  {
    std::lock_guard lock(m_mutex);
    if (m_stopping) return;
    m_stopping = true;
  }
  m_wake.notify_all();
  if (m_thread.joinable()) m_thread.join();
}

IntakeAnswer Intake::submit(IntakeItem item) {
  auto p = std::make_shared<Pending>();
  p->item = std::move(item);
  std::unique_lock lock(m_mutex);
  if (m_stopping) {
    return {503, error_body("shutting_down", "the service is stopping; send again to another node or in a moment", ""),
            false, false};
  }
  m_items.push_back(p);
  m_wake.notify_one();
  m_done.wait(lock, [&] { return p->done; });
  return p->answer;
}

void Intake::audit(store::ServiceAuditEvent event) {
  std::lock_guard lock(m_mutex);
  m_audit.push_back(std::move(event));
}

void Intake::expire_idempotency() {
  std::lock_guard lock(m_mutex);
  m_expire = true;
  m_wake.notify_one();
}

void Intake::run() {
  util::set_thread_name("bc-intake");
  while (true) {
    std::vector<std::shared_ptr<Pending>> batch;
    std::vector<store::ServiceAuditEvent> audit;
    bool expire = false;
    bool stopping = false;
    {
      std::unique_lock lock(m_mutex);
      m_wake.wait_for(lock, std::chrono::milliseconds(100), [&] { return m_stopping || !m_items.empty() || m_expire; });
      while (!m_items.empty() && batch.size() < k_max_batch) {
        batch.push_back(std::move(m_items.front()));
        m_items.pop_front();
      }
      audit.swap(m_audit);
      expire = m_expire;
      m_expire = false;
      stopping = m_stopping && m_items.empty();
    }
    if (expire) {
      if (auto r = m_store->expire_idempotency(static_cast<std::int64_t>(std::time(nullptr)) - k_idempotency_seconds);
          !r) {
        util::log_warn(r.error().message);
      }
    }
    if (!batch.empty() || !audit.empty()) write(batch, audit);
    if (stopping) return;
  }
}

void Intake::write(std::vector<std::shared_ptr<Pending>>& batch, std::vector<store::ServiceAuditEvent>& audit) {
  bool stored = false;
  const auto answer_all = [&](bool ok) {
    {
      std::lock_guard lock(m_mutex);
      for (auto& p : batch) {
        if (!ok) {
          p->answer = {503, error_body("store_unavailable",
                                       "the message could not be stored (nothing will be sent); try again", ""),
                       false, false};
        }
        p->done = true;
      }
    }
    m_done.notify_all();
  };
  if (auto b = m_store->begin_batch(); !b) {
    util::log_error(b.error().message);
    return answer_all(false);
  }
  // Keys seen in this batch: (key name, Idempotency-Key) -> the first item.
  std::map<std::pair<std::string, std::string>, Pending*> seen;
  const auto failed = [&](const Error& e) {
    util::log_error(e.message);
    m_store->rollback_batch();
    answer_all(false);
  };
  for (auto& p : batch) {
    auto& it = p->item;
    if (!it.idempotency_key.empty()) {
      const auto key = std::make_pair(it.key_name, it.idempotency_key);
      std::optional<store::IdempotencyRecord> first;
      if (const auto s = seen.find(key); s != seen.end()) {
        first = store::IdempotencyRecord{s->second->item.body_hash, s->second->answer.status, s->second->answer.body};
      } else {
        auto found = m_store->find_idempotency(it.key_name, it.idempotency_key);
        if (!found) return failed(found.error());
        first = std::move(*found);
      }
      if (first) {
        if (first->body_hash == it.body_hash) {
          p->answer = {first->status, first->response, true, false};
        } else {
          p->answer = {409,
                       error_body("idempotency_conflict",
                                  "this Idempotency-Key was used with another body in the last 24 hours; use a new key "
                                  "for a new message",
                                  "Idempotency-Key"),
                       false, false};
        }
        it.audit.detail += p->answer.replay ? " (idempotent replay)" : " (idempotency conflict)";
        audit.push_back(std::move(it.audit));
        continue;
      }
    }
    auto id = m_store->add_message(it.message);
    if (!id) return failed(id.error());
    p->answer = {202,
                 nlohmann::json{{"id", it.message.public_id},
                                {"status", store::message_state_name(it.message.state)}}
                     .dump(),
                 false, true};
    stored = stored || it.message.state == store::MessageState::k_queued;
    if (!it.idempotency_key.empty()) {
      if (auto w = m_store->put_idempotency(it.key_name, it.idempotency_key, {it.body_hash, 202, p->answer.body}); !w) {
        return failed(w.error());
      }
      seen[{it.key_name, it.idempotency_key}] = p.get();
    }
    audit.push_back(std::move(it.audit));
  }
  if (auto w = m_store->append_audit(audit); !w) return failed(w.error());
  if (auto c = m_store->commit_batch(); !c) return failed(c.error());
  answer_all(true);
  if (stored && m_on_stored) m_on_stored();
}

}  // namespace blindcast::serve
