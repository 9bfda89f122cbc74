#include "serve/dashboard.hpp"

#include <algorithm>

#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace blindcast::serve {

void set_page_headers(httplib::Response& res, bool tls) {
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                 "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
                 "require-trusted-types-for 'script'; trusted-types 'none'");
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
  const std::string content = util::sha256(key_id + '\n' + html);
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(m_mutex);
  const auto drop = [&](std::map<std::string, Entry>::iterator it) {
    m_bytes -= it->second.html.size();
    std::erase_if(m_by_content, [&](const auto& kv) { return kv.second == it->first; });
    m_entries.erase(it);
  };
  for (auto it = m_entries.begin(); it != m_entries.end();) {
    auto next = std::next(it);
    if (now - it->second.at > k_lifetime) drop(it);
    it = next;
  }
  if (const auto known = m_by_content.find(content); known != m_by_content.end()) {
    m_entries[known->second].at = now;  // the same HTML for the same key: its token lives on
    return known->second;
  }
  while (!m_entries.empty() &&
         (m_entries.size() >= k_max_entries || m_bytes + html.size() > k_max_bytes)) {
    drop(std::min_element(m_entries.begin(), m_entries.end(),
                          [](const auto& a, const auto& b) { return a.second.at < b.second.at; }));
  }
  const std::string token = util::to_hex(util::random_bytes(16));
  m_bytes += html.size();
  m_by_content[content] = token;
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
