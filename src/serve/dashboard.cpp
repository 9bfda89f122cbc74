#include "serve/dashboard.hpp"

#include <algorithm>

#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace blindcast::serve {

void set_page_headers(httplib::Response& res, bool tls) {
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                 "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cross-Origin-Opener-Policy", "same-origin");
  res.set_header("Cross-Origin-Resource-Policy", "same-origin");
  res.set_header("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()");
  res.set_header("Cache-Control", "no-cache");
  if (tls) res.set_header("Strict-Transport-Security", "max-age=31536000");
}

void set_preview_headers(httplib::Response& res) {
  res.set_header("Content-Security-Policy",
                 "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
                 "frame-ancestors 'self'; base-uri 'none'; form-action 'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cache-Control", "no-store");
}

std::string PreviewCache::put(std::string html, const std::string& key_id) {
  const std::string token = util::to_hex(util::random_bytes(16));
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(m_mutex);
  std::erase_if(m_entries, [&](const auto& kv) { return now - kv.second.at > k_lifetime; });
  while (m_entries.size() >= k_max_entries) {
    m_entries.erase(std::min_element(m_entries.begin(), m_entries.end(),
                                     [](const auto& a, const auto& b) { return a.second.at < b.second.at; }));
  }
  m_entries[token] = Entry{std::move(html), key_id, now};
  return token;
}

std::optional<std::string> PreviewCache::get(const std::string& token, const std::string& key_id) {
  std::lock_guard lock(m_mutex);
  const auto it = m_entries.find(token);
  if (it == m_entries.end() || it->second.key_id != key_id ||
      std::chrono::steady_clock::now() - it->second.at > k_lifetime) {
    return std::nullopt;
  }
  return it->second.html;
}

}  // namespace blindcast::serve
