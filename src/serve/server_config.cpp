#include "serve/server_config.hpp"

#include <glob.h>

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "campaign/settings_tables.hpp"
#include "util/strings.hpp"
#include "util/toml_file.hpp"

namespace blindcast::serve {

namespace {

constexpr const char* k_file = "server.toml";

void error(util::Diagnostics& d, const toml::node* n, std::string msg) {
  const long line = n == nullptr ? 0 : static_cast<long>(n->source().begin.line);
  d.push_back({k_file, line, util::Severity::k_error, std::move(msg)});
}

void warn(util::Diagnostics& d, const toml::node* n, std::string msg) {
  const long line = n == nullptr ? 0 : static_cast<long>(n->source().begin.line);
  d.push_back({k_file, line, util::Severity::k_warning, std::move(msg)});
}

void reject_unknown(const toml::table& t, const std::vector<std::string>& known, const std::string& where,
                    util::Diagnostics& d) {
  for (const auto& [k, node] : t) {
    const std::string key(k.str());
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    const std::string near = util::closest_match(key, known);
    error(d, &node,
          fmt::format("unknown setting '{}{}'{}; the settings here are: {}", where, key,
                      near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near), fmt::join(known, ", ")));
  }
}

std::optional<std::string> get_string(const toml::table& t, const char* key, const std::string& where,
                                      util::Diagnostics& d) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return std::nullopt;
  if (const auto* s = n->as_string()) return s->get();
  error(d, n, fmt::format("'{}{}' must be a string", where, key));
  return std::nullopt;
}

template <class T>
void get_number(const toml::table& t, const char* key, const std::string& where, T low, T high, T& out,
                util::Diagnostics& d) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return;
  double v = 0;
  if (const auto* i = n->as_integer()) v = static_cast<double>(i->get());
  else if (const auto* f = n->as_floating_point()) v = f->get();
  else {
    error(d, n, fmt::format("'{}{}' must be a number", where, key));
    return;
  }
  if (!(v >= static_cast<double>(low) && v <= static_cast<double>(high))) {
    error(d, n, fmt::format("'{}{}' must be between {} and {}", where, key, low, high));
    return;
  }
  out = static_cast<T>(v);
}

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  const std::filesystem::path path(p);
  return path.is_absolute() ? path : base / path;
}

bool split_listen(const std::string& text, std::string& host, int& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string p = text.substr(colon + 1);
  if (p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  port = std::stoi(p);
  return port >= 0 && port <= 65535;
}

}  // namespace

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

std::optional<ServerConfig> load_server_config(const std::filesystem::path& path, util::Diagnostics& d) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    d.push_back({path.string(), 0, util::Severity::k_error,
                 "not found; write a server.toml (see README, \"blindcast serve\") and pass it with --config"});
    return std::nullopt;
  }
  auto parsed = util::parse_toml_file(path, k_file, d);
  if (!parsed) return std::nullopt;
  const toml::table& root = *parsed;
  const std::size_t errors_before = util::error_count(d);
  ServerConfig c;
  c.file = path;
  c.base = std::filesystem::absolute(path, ec).parent_path();
  c.state = c.base / "state" / "blindcast.db";
  c.streams = c.base / "streams";
  reject_unknown(root,
                 {"listen", "state", "campaigns", "streams", "public_url", "tls_cert_file", "tls_key_file",
                  "insecure_http", "http", "transport", "dkim", "shaping", "unsubscribe", "bounces", "intake",
                  "priority", "drain_seconds"},
                 "", d);
  if (auto v = get_string(root, "listen", "", d)) {
    if (!split_listen(*v, c.listen_host, c.listen_port)) {
      error(d, root.get("listen"), fmt::format("'listen' must be HOST:PORT (e.g. \"127.0.0.1:8025\"), not \"{}\"", *v));
    }
  }
  if (auto v = get_string(root, "state", "", d)) {
    if (v->starts_with("postgresql://") || v->starts_with("postgres://")) {
      c.state = *v;  // a libpq URI: not a path (its password only from its passfile, SPEC §6)
    } else if (v->starts_with("postgresql:") || v->starts_with("postgres:")) {
      error(d, root.get("state"), fmt::format("'state' must be a file path or a URI postgresql://USER@HOST:PORT/DB "
                                              "(add ?passfile=PATH for the password), not \"{}\"", *v));
    } else {
      c.state = resolve(c.base, *v);
    }
  }
  c.node_dir = c.state.string().starts_with("postgres") && c.state.string().find("://") != std::string::npos
                   ? c.base / "state"
                   : c.state.parent_path();
  if (const auto* n = root.get("campaigns")) {
    const auto* arr = n->as_array();
    if (arr == nullptr) error(d, n, "'campaigns' must be a list of directories or patterns, e.g. [\"campaigns/*\"]");
    for (std::size_t i = 0; arr != nullptr && i < arr->size(); ++i) {
      const auto* s = (*arr)[i].as_string();
      if (s == nullptr) {
        error(d, &(*arr)[i], "'campaigns' must hold strings");
        continue;
      }
      const std::string pattern = resolve(c.base, s->get()).string();
      glob_t g{};
      if (::glob(pattern.c_str(), GLOB_ONLYDIR | GLOB_NOSORT, nullptr, &g) == 0) {
        for (std::size_t k = 0; k < g.gl_pathc; ++k) {
          if (std::filesystem::is_regular_file(std::filesystem::path(g.gl_pathv[k]) / "campaign.toml", ec)) {
            c.campaigns.emplace_back(g.gl_pathv[k]);
          }
        }
      }
      ::globfree(&g);
    }
    std::sort(c.campaigns.begin(), c.campaigns.end());
    c.campaigns.erase(std::unique(c.campaigns.begin(), c.campaigns.end()), c.campaigns.end());
  }
  if (auto v = get_string(root, "streams", "", d)) c.streams = resolve(c.base, *v);
  if (auto v = get_string(root, "public_url", "", d)) {
    c.public_url = *v;
    if (!v->starts_with("https://") && !v->starts_with("http://")) {
      error(d, root.get("public_url"), "'public_url' must be an https URL, e.g. \"https://mail.example.com\"");
    }
  }
  if (auto v = get_string(root, "tls_cert_file", "", d)) c.tls_cert_file = resolve(c.base, *v);
  if (auto v = get_string(root, "tls_key_file", "", d)) c.tls_key_file = resolve(c.base, *v);
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    error(d, root.get(c.tls_cert_file.empty() ? "tls_key_file" : "tls_cert_file"),
          "TLS needs both 'tls_cert_file' and 'tls_key_file'");
  }
  if (const auto* n = root.get("insecure_http")) {
    if (const auto* b = n->as_boolean()) c.insecure_http = b->get();
    else error(d, n, "'insecure_http' must be true or false");
  }
  get_number<std::int64_t>(root, "drain_seconds", "", 1, 300, c.drain_seconds, d);
  if (c.tls_cert_file.empty() && !is_loopback_host(c.listen_host) && !c.insecure_http) {
    error(d, root.get("listen"),
          fmt::format("'listen' = \"{}\" is not a loopback address and there is no TLS: API keys would cross the "
                      "network in clear. Set tls_cert_file and tls_key_file, or write insecure_http = true if a "
                      "TLS proxy in front of it is the only way in",
                      c.listen_host));
  }
  if (const auto* n = root.get("http")) {
    if (const auto* t = n->as_table()) {
      reject_unknown(*t, {"threads", "max_connections", "read_timeout"}, "http.", d);
      get_number(*t, "threads", "http.", 2, 1024, c.http_threads, d);
      get_number(*t, "max_connections", "http.", 2, 100000, c.max_connections, d);
      get_number(*t, "read_timeout", "http.", 1, 300, c.read_timeout_seconds, d);
    } else {
      error(d, n, "'http' must be a table: [http]");
    }
  }
  if (const auto* n = root.get("priority")) {
    if (const auto* t = n->as_table()) {
      reject_unknown(*t, {"campaigns_yield", "latency_factor", "campaign_floor"}, "priority.", d);
      if (const auto* y = t->get("campaigns_yield")) {
        if (const auto* b = y->as_boolean()) c.priority.enabled = b->get();
        else error(d, y, "'priority.campaigns_yield' must be true or false");
      }
      get_number(*t, "latency_factor", "priority.", 1.5, 100.0, c.priority.target_factor, d);
      get_number(*t, "campaign_floor", "priority.", 0.01, 1.0, c.priority.floor_share, d);
    } else {
      error(d, n, "'priority' must be a table: [priority]");
    }
  }
  if (const auto* n = root.get("intake")) {
    if (const auto* t = n->as_table()) {
      reject_unknown(*t, {"max_body_bytes", "rate", "burst", "max_queued"}, "intake.", d);
      get_number<std::size_t>(*t, "max_body_bytes", "intake.", 1024, 10 * 1024 * 1024, c.intake.max_body_bytes, d);
      get_number(*t, "rate", "intake.", 0.1, 1000000.0, c.intake.rate, d);
      get_number(*t, "burst", "intake.", 1.0, 1000000.0, c.intake.burst, d);
      get_number<std::int64_t>(*t, "max_queued", "intake.", 1, 100000000, c.intake.max_queued, d);
    } else {
      error(d, n, "'intake' must be a table: [intake]");
    }
  }
  const std::size_t shared_from = d.size();
  if (const auto* n = root.get("transport")) {
    campaign::read_transport_table(*n, c.transport, d);
    c.has_transport = true;
  }
  if (const auto* n = root.get("dkim")) campaign::read_dkim_table(*n, c.dkim, d);
  if (const auto* n = root.get("shaping")) campaign::read_shaping_tables(*n, c.shaping, d);
  campaign::rename_findings(d, shared_from, k_file);
  if (c.dkim) {
    for (auto& f : c.dkim->key_files) f = resolve(c.base, f).string();
  }
  if (!c.transport.password_file.empty()) c.transport.password_file = resolve(c.base, c.transport.password_file).string();
  if (!c.transport.ca_file.empty()) c.transport.ca_file = resolve(c.base, c.transport.ca_file).string();
  if (c.transport.url.starts_with("maildir:")) {
    c.transport.url = "maildir:" + resolve(c.base, c.transport.url.substr(8)).string();
  }
  if (const auto* n = root.get("unsubscribe")) {
    if (const auto* t = n->as_table()) {
      reject_unknown(*t, {"secret_file"}, "unsubscribe.", d);
      if (auto v = get_string(*t, "secret_file", "unsubscribe.", d)) c.unsubscribe_secret_file = resolve(c.base, *v);
    } else {
      error(d, n, "'unsubscribe' must be a table: [unsubscribe]");
    }
  }
  if (const auto* n = root.get("bounces")) {
    if (const auto* t = n->as_table()) {
      const std::size_t from = d.size();
      std::optional<campaign::BounceSettings> verp;
      campaign::read_bounces_table(*n, verp, d);
      campaign::rename_findings(d, from, k_file);
      if (verp) {
        BounceListenerSettings b;
        b.verp = std::move(*verp);
        b.verp.secret_file = resolve(c.base, b.verp.secret_file).string();
        if (auto v = get_string(*t, "listen", "bounces.", d)) {
          if (!split_listen(*v, b.listen_host, b.listen_port)) {
            error(d, t->get("listen"),
                  fmt::format("'bounces.listen' must be HOST:PORT (e.g. \"127.0.0.1:2526\"), not \"{}\"", *v));
          }
        }
        if (b.listen_host.empty()) {
          warn(d, n, "[bounces] has no listen: this node receives no bounces over SMTP (they can be applied with "
                     "'blindcast bounces ingest')");
        }
        get_number<std::size_t>(*t, "max_message_bytes", "bounces.", 1024, 100 * 1024 * 1024, b.max_message_bytes, d);
        get_number(*t, "rate", "bounces.", 0.1, 1000000.0, b.rate, d);
        get_number(*t, "max_connections", "bounces.", 1, 10000, b.max_connections, d);
        c.bounces = std::move(b);
      }
    } else {
      error(d, n, "'bounces' must be a table: [bounces]");
    }
  }
  if (!c.has_transport || c.transport.url.empty()) {
    error(d, root.get("transport"), "[transport] url is required (e.g. url = \"smtp://127.0.0.1:25\")");
  }
  if (util::error_count(d) > errors_before) return std::nullopt;
  return c;
}

}  // namespace blindcast::serve
