#include "delivery/mta_sts.hpp"

#include <curl/curl.h>
#include <sys/stat.h>

#include <cctype>
#include <charconv>
#include <ctime>
#include <fstream>
#include <mutex>
#include <sstream>

#include <fmt/format.h>

#include "util/log.hpp"
#include "util/strings.hpp"

namespace blindcast::delivery {

namespace {

constexpr std::int64_t k_max_age_limit = 31557600;  // RFC 8461 §3.2
constexpr std::size_t k_max_policy_bytes = 64 * 1024;

std::string lower(std::string_view s) { return util::to_lower_ascii(s); }

// The id of a TXT record "v=STSv1; id=20160831085700Z;", or "" when it is not one.
std::string sts_id(std::string_view txt) {
  std::string version;
  std::string id;
  for (auto field : util::split(txt, ';')) {
    field = util::trim(field);
    const auto eq = field.find('=');
    if (eq == std::string_view::npos) continue;
    const auto key = util::trim(field.substr(0, eq));
    const auto value = util::trim(field.substr(eq + 1));
    if (key == "v") version = value;
    if (key == "id") id = value;
  }
  if (version != "STSv1" || id.empty() || id.size() > 32) return {};
  for (const char c : id) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0) return {};
  }
  return id;
}

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
  auto* body = static_cast<std::string*>(out);
  if (body->size() + size * n > k_max_policy_bytes) return 0;  // too long: the transfer fails
  body->append(data, size * n);
  return size * n;
}

}  // namespace

std::optional<StsPolicy> parse_sts_policy(std::string_view text, std::string& error) {
  StsPolicy p;
  std::string version;
  std::string mode;
  bool have_age = false;
  for (auto line : util::split(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (util::trim(line).empty()) continue;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      error = fmt::format("not a 'key: value' line: {}", line.substr(0, 60));
      return std::nullopt;
    }
    const auto key = util::trim(line.substr(0, colon));
    const auto value = util::trim(line.substr(colon + 1));
    if (key == "version") version = value;
    else if (key == "mode") mode = value;
    else if (key == "mx") p.mx.push_back(lower(value));
    else if (key == "max_age") {
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), p.max_age);
      have_age = ec == std::errc() && end == value.data() + value.size() && p.max_age >= 0 &&
                 p.max_age <= k_max_age_limit;
    }
  }
  if (version != "STSv1") error = "version is not STSv1";
  else if (mode == "enforce") p.mode = StsPolicy::Mode::k_enforce;
  else if (mode == "testing") p.mode = StsPolicy::Mode::k_testing;
  else if (mode == "none") p.mode = StsPolicy::Mode::k_none;
  else error = "mode is not enforce, testing or none";
  if (error.empty() && !have_age) error = "max_age is missing or not a number of seconds up to 31557600";
  if (error.empty() && p.mode != StsPolicy::Mode::k_none && p.mx.empty()) error = "no mx line";
  if (!error.empty()) return std::nullopt;
  return p;
}

bool sts_mx_matches(const StsPolicy& policy, std::string_view host) {
  const std::string h = lower(host);
  for (const auto& pattern : policy.mx) {
    if (pattern.starts_with("*.")) {
      const std::string_view suffix = std::string_view(pattern).substr(1);  // ".example.com"
      if (h.size() > suffix.size() && h.ends_with(suffix)) {
        const std::string_view label = std::string_view(h).substr(0, h.size() - suffix.size());
        if (label.find('.') == std::string_view::npos) return true;  // exactly one label
      }
    } else if (h == pattern) {
      return true;
    }
  }
  return false;
}

MtaSts::MtaSts(StsSettings settings, MxResolver& resolver) : m_settings(std::move(settings)), m_resolver(resolver) {
  static std::once_flag curl_ready;
  std::call_once(curl_ready, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  load();
}

std::optional<StsPolicy> MtaSts::policy_for(const std::string& domain) {
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  std::optional<StsPolicy> cached;
  if (const auto it = m_cache.find(domain); it != m_cache.end() && it->second.fetched_at + it->second.max_age > now) {
    cached = it->second;
  }
  const auto txt = m_resolver.txt("_mta-sts." + domain);
  std::string id;
  if (txt) {
    for (const auto& record : *txt) {
      if (auto found = sts_id(record); !found.empty()) id = found;
    }
  }
  // No record (or the DNS failed): the policy in force stays (§5.1).
  if (id.empty()) return cached;
  if (cached && cached->id == id) return cached;
  std::string error;
  auto fresh = fetch(domain, id, error);
  if (!fresh) {
    util::log_warn(fmt::format("MTA-STS: the policy of {} could not be fetched ({}); {}", domain, error,
                               cached ? "the one in force stays" : "delivering without one"));
    return cached;
  }
  fresh->id = id;
  fresh->fetched_at = now;
  m_cache[domain] = *fresh;
  save();
  return fresh;
}

std::optional<StsPolicy> MtaSts::fetch(const std::string& domain, const std::string& id, std::string& error) {
  (void)id;
  const std::string host = "mta-sts." + domain;
  const auto addresses = m_resolver.addresses(host);
  if (addresses.empty()) {
    error = host + " has no address";
    return std::nullopt;
  }
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    error = "cannot start libcurl";
    return std::nullopt;
  }
  const std::string url = fmt::format("https://{}:{}/.well-known/mta-sts.txt", host, m_settings.port);
  const std::string pin = fmt::format("{}:{}:{}", host, m_settings.port,
                                      addresses.front().find(':') != std::string::npos ? "[" + addresses.front() + "]"
                                                                                         : addresses.front());
  curl_slist* resolve = curl_slist_append(nullptr, pin.c_str());
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);  // §3.3: no redirects
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!m_settings.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, m_settings.ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  char* type = nullptr;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
  const std::string content_type = type != nullptr ? lower(type) : std::string();
  curl_easy_cleanup(curl);
  curl_slist_free_all(resolve);
  if (rc != CURLE_OK) {
    error = curl_easy_strerror(rc);
    return std::nullopt;
  }
  if (status != 200) {
    error = fmt::format("HTTP {}", status);
    return std::nullopt;
  }
  if (!content_type.starts_with("text/plain")) {
    error = "not text/plain";
    return std::nullopt;
  }
  return parse_sts_policy(body, error);
}

// The cache file: one policy a line, tab-separated: domain, id, fetched_at,
// max_age, mode, mx patterns (comma-separated).
void MtaSts::load() {
  if (m_settings.cache_path.empty()) return;
  std::ifstream in(m_settings.cache_path);
  std::string line;
  while (std::getline(in, line)) {
    const auto f = util::split(line, '\t');
    if (f.size() != 6) continue;
    StsPolicy p;
    p.id = std::string(f[1]);
    const auto a = std::from_chars(f[2].data(), f[2].data() + f[2].size(), p.fetched_at);
    const auto b = std::from_chars(f[3].data(), f[3].data() + f[3].size(), p.max_age);
    if (a.ec != std::errc() || b.ec != std::errc()) continue;
    p.mode = f[4] == "enforce" ? StsPolicy::Mode::k_enforce
             : f[4] == "testing" ? StsPolicy::Mode::k_testing
                                 : StsPolicy::Mode::k_none;
    for (const auto mx : util::split(f[5], ',')) {
      if (!mx.empty()) p.mx.emplace_back(mx);
    }
    m_cache[std::string(f[0])] = std::move(p);
  }
}

void MtaSts::save() const {
  if (m_settings.cache_path.empty()) return;
  const std::string tmp = m_settings.cache_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [domain, p] : m_cache) {
      std::string mx;
      for (const auto& m : p.mx) mx += (mx.empty() ? "" : ",") + m;
      const char* mode = p.mode == StsPolicy::Mode::k_enforce   ? "enforce"
                         : p.mode == StsPolicy::Mode::k_testing ? "testing"
                                                                : "none";
      out << domain << '\t' << p.id << '\t' << p.fetched_at << '\t' << p.max_age << '\t' << mode << '\t' << mx
          << '\n';
    }
    if (!out) return;
  }
  ::chmod(tmp.c_str(), 0600);
  std::rename(tmp.c_str(), m_settings.cache_path.c_str());
}

}  // namespace blindcast::delivery
