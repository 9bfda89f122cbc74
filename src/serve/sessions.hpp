// Dashboard sessions: an API key signed in from a browser. The browser holds
// a random session id in an HttpOnly, SameSite=Strict cookie; the page holds
// a per-session CSRF token that every state-changing request must echo in
// the X-CSRF-Token header (a synchronizer token: a cross-site form can send
// the cookie in old browsers, never the header).
//
// Sessions live in this process's memory (a restart signs everyone out) and
// are found by the SHA-256 of their id (a memory dump shows no cookie). A
// session names its key by public id: every request checks the key as it is
// now, so a revoked key's sessions end within a second and a key's networks
// bind its sessions too. Sessions end after `idle` without a request and
// `lifetime` after sign-in, whichever comes first.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace blindcast::serve {

struct Session {
  std::string key_id;  // the API key that signed in (its public id)
  std::string name;    // the key's name, the person in the audit log
  std::string csrf;    // the token state-changing requests echo
  std::chrono::steady_clock::time_point created;
  std::chrono::steady_clock::time_point last_used;
};

struct NewSession {
  std::string cookie;  // the session id, for Set-Cookie only
  std::string csrf;
};

class Sessions {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t k_max_sessions = 10000;
  static constexpr int k_max_failures = 10;  // failed sign-ins per client per window
  static constexpr std::chrono::minutes k_failure_window{5};

  explicit Sessions(std::chrono::seconds idle = std::chrono::minutes(30),
                    std::chrono::seconds lifetime = std::chrono::hours(12))
      : m_idle(idle), m_lifetime(lifetime) {}

  NewSession create(const std::string& key_id, const std::string& name);
  // The session of `cookie` (touched), or nothing when unknown or expired.
  std::optional<Session> find(std::string_view cookie);
  void end(std::string_view cookie);

  // Sign-in throttling per client address: false while it failed too often.
  bool sign_in_allowed(const std::string& client);
  void sign_in_failed(const std::string& client);

  [[nodiscard]] std::chrono::seconds lifetime() const { return m_lifetime; }

 private:
  bool expired(const Session& s, Clock::time_point now) const;

  std::chrono::seconds m_idle;
  std::chrono::seconds m_lifetime;
  std::mutex m_mutex;
  std::unordered_map<std::string, Session> m_sessions;  // by SHA-256 of the id
  std::map<std::string, std::pair<int, Clock::time_point>> m_failures;  // client -> (count, window start)
};

// The value of cookie `name` in a Cookie header, or "".
std::string cookie_value(std::string_view header, std::string_view name);

}  // namespace blindcast::serve
