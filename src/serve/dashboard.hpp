// The dashboard's server side beyond the API it calls: its files, the
// headers that lock them down, and the short-lived store of rendered HTML
// previews that the page shows in a sandboxed iframe.
//
// The page's Content-Security-Policy allows scripts, styles, fetches and
// frames from this origin only: no inline script or style, no CDN, nothing
// from elsewhere. A preview's HTML is served with `sandbox` (no scripts, no
// forms, an opaque origin) and `default-src 'none'` (no network: remote
// images and trackers in a template do not load), inline styles allowed.
#pragma once

#include <httplib.h>

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace blindcast::serve {

inline constexpr const char* k_session_cookie = "bc_session";

// Headers of the page and its files.
void set_page_headers(httplib::Response& res, bool tls);
// Headers of a preview's HTML.
void set_preview_headers(httplib::Response& res);

// Rendered HTML previews by random token, each readable only by the key that
// asked for it, for ten minutes.
class PreviewCache {
 public:
  static constexpr std::size_t k_max_entries = 256;
  static constexpr std::chrono::minutes k_lifetime{10};
  std::string put(std::string html, const std::string& key_id);
  std::optional<std::string> get(const std::string& token, const std::string& key_id);

 private:
  struct Entry {
    std::string html;
    std::string key_id;
    std::chrono::steady_clock::time_point at;
  };
  std::mutex m_mutex;
  std::map<std::string, Entry> m_entries;
};

}  // namespace blindcast::serve
