#include "serve/sessions.hpp"

#include <algorithm>

#include "util/base64.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace blindcast::serve {

bool Sessions::expired(const Session& s, Clock::time_point now) const {
  return now - s.last_used > m_idle || now - s.created > m_lifetime;
}

NewSession Sessions::create(const std::string& key_id, const std::string& name) {
  NewSession made{util::base64url(util::random_bytes(32)), util::base64url(util::random_bytes(32))};
  const auto now = Clock::now();
  std::lock_guard lock(m_mutex);
  if (m_sessions.size() >= k_max_sessions) {
    std::erase_if(m_sessions, [&](const auto& kv) { return expired(kv.second, now); });
    if (m_sessions.size() >= k_max_sessions) {
      // Still full: the session used longest ago goes.
      auto oldest = std::min_element(m_sessions.begin(), m_sessions.end(), [](const auto& a, const auto& b) {
        return a.second.last_used < b.second.last_used;
      });
      m_sessions.erase(oldest);
    }
  }
  m_sessions[util::sha256(made.cookie)] = Session{key_id, name, made.csrf, now, now};
  return made;
}

std::optional<Session> Sessions::find(std::string_view cookie) {
  if (cookie.empty() || cookie.size() > 128) return std::nullopt;
  const auto id = util::sha256(cookie);
  const auto now = Clock::now();
  std::lock_guard lock(m_mutex);
  const auto it = m_sessions.find(id);
  if (it == m_sessions.end()) return std::nullopt;
  if (expired(it->second, now)) {
    m_sessions.erase(it);
    return std::nullopt;
  }
  it->second.last_used = now;
  return it->second;
}

void Sessions::end(std::string_view cookie) {
  std::lock_guard lock(m_mutex);
  m_sessions.erase(util::sha256(cookie));
}

bool Sessions::sign_in_allowed(const std::string& client) {
  std::lock_guard lock(m_mutex);
  const auto it = m_failures.find(client);
  if (it == m_failures.end()) return true;
  if (Clock::now() - it->second.second > k_failure_window) {
    m_failures.erase(it);
    return true;
  }
  return it->second.first < k_max_failures;
}

void Sessions::sign_in_failed(const std::string& client) {
  const auto now = Clock::now();
  std::lock_guard lock(m_mutex);
  if (m_failures.size() > 100000) m_failures.clear();  // a flood of addresses: forget, do not grow
  auto& [count, since] = m_failures[client];
  if (count == 0 || now - since > k_failure_window) {
    count = 0;
    since = now;
  }
  ++count;
}

std::string cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const auto semi = header.find(';');
    std::string_view part = util::trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    const auto eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    if (util::trim(part.substr(0, eq)) == name) return std::string(util::trim(part.substr(eq + 1)));
  }
  return {};
}

}  // namespace blindcast::serve
