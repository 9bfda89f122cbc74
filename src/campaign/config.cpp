#include "campaign/config.hpp"
#include "campaign/settings_tables.hpp"

#include <algorithm>

#include <set>

#include <fmt/format.h>

#include "mail/address.hpp"
#include "util/strings.hpp"
#include "util/toml_file.hpp"

namespace blindcast::campaign {

namespace {

constexpr const char* k_file = "campaign.toml";

long line_of(const toml::node& node) { return static_cast<long>(node.source().begin.line); }

// A DKIM selector (RFC 6376 §3.1): dot-separated labels of 1 to 63 letters,
// digits, '-' or '_', no '-' at either end. (Domains go through
// mail::domain_to_ascii, which also takes internationalized names.)
bool is_selector(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (const auto label : util::split(name, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (const char c : label) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      if (!ok) return false;
    }
  }
  return true;
}

void error(util::Diagnostics& d, long line, std::string msg) {
  d.push_back({k_file, line, util::Severity::k_error, std::move(msg)});
}

// Connections to one relay or provider lane at most: more is an attack on
// the receiver, not a setting (mailbox providers allow a few dozen).
constexpr std::int64_t k_max_connections = 500;

const std::vector<std::string> k_top_level = {"id", "from", "reply_to", "default_locale", "list_unsubscribe",
                                              "transport", "dkim", "stages", "shaping", "delivery", "unsubscribe", "bounces",
                                              "guard", "kind", "security"};

// Every key of `t` must be one of `known`: a typo would otherwise leave a
// setting at its default (an approval gate at 1) without a word.
void reject_unknown(const toml::table& t, const std::set<std::string>& known,
                  const std::string& where, util::Diagnostics& d) {
  static const std::set<std::string> k_secret_words = {"password", "pass", "secret", "key",
                                                       "api_key", "token", "private_key"};
  for (const auto& [k, node] : t) {
    const std::string key(k.str());
    if (known.contains(key)) continue;
    if (k_secret_words.contains(key)) {
      // Name the *_file setting this table really has, when it has one.
      std::string file_setting = key + "_file";
      for (const auto& k2 : known) {
        if (k2.ends_with("_file") && k2 != "ca_file") file_setting = k2;
      }
      error(d, line_of(node),
            fmt::format("'{}{}' holds a secret inline; put it in a file under secrets/ (mode 0600) "
                        "and name it with '{}{}'",
                        where, key, where, file_setting));
      continue;
    }
    const std::vector<std::string> names(known.begin(), known.end());
    const auto meant = util::closest_match(key, names);
    const auto top = where.empty() ? std::string() : util::closest_match(key, k_top_level);
    if (!meant.empty()) {
      error(d, line_of(node), fmt::format("unknown setting '{}{}'; did you mean '{}{}'?", where, key, where, meant));
    } else if (!top.empty()) {
      error(d, line_of(node), fmt::format("unknown setting '{}{}'; did you mean the top-level '{}'? (top-level "
                                          "settings go before the first [section])",
                                          where, key, top));
    } else {
      error(d, line_of(node),
            fmt::format("unknown setting '{}{}'; the settings of {} are: {}", where, key,
                        where.empty() ? std::string("campaign.toml's top level")
                                      : "[" + where.substr(0, where.size() - 1) + "]",
                        fmt::join(names, ", ")));
    }
  }
}

std::optional<std::string> get_string(const toml::table& t, const char* key, const std::string& where,
                                      util::Diagnostics& d) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return std::nullopt;
  if (const auto* s = n->as_string()) return s->get();
  error(d, line_of(*n), fmt::format("'{}{}' must be a string", where, key));
  return std::nullopt;
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

void load_canary(const toml::node& node, CanarySettings& c, util::Diagnostics& d) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    error(d, line_of(node), "'stages.canary' must be a table like { size = \"1%\", min = 100 }");
    return;
  }
  reject_unknown(*t, {"size", "min", "wait", "max_bounce_rate", "max_deferral_rate", "max_complaint_rate"}, "stages.canary.", d);
  if (const auto* n = t->get("size")) {
    if (const auto* s = n->as_string()) {
      std::string v(util::trim(s->get()));
      if (v.ends_with('%')) {
        v.pop_back();
        try {
          c.size_fraction = std::stod(v) / 100.0;
        } catch (...) {
          c.size_fraction = -1;
        }
        if (!(c.size_fraction > 0 && c.size_fraction <= 1)) {  // NaN too
          error(d, line_of(*n), "'stages.canary.size' must be a percentage like \"1%\" or a count");
        }
      } else {
        error(d, line_of(*n), "'stages.canary.size' must be a percentage like \"1%\" or a count like 500");
      }
    } else if (const auto* i = n->as_integer()) {
      c.size_count = i->get();
      if (c.size_count <= 0 || c.size_count > 10'000'000) {
        error(d, line_of(*n), "'stages.canary.size' must be a count from 1 to 10000000, or a percentage like \"1%\"");
      }
    }
  }
  if (const auto* n = t->get("min")) {
    const auto* i = n->as_integer();
    if (i != nullptr && i->get() >= 1 && i->get() <= 10'000'000) c.min = i->get();
    else error(d, line_of(*n), "'stages.canary.min' must be a whole number from 1 to 10000000");
  }
  if (const auto* n = t->get("wait")) {
    const auto* s = n->as_string();
    const auto secs = s != nullptr ? util::parse_duration_seconds(s->get()) : std::nullopt;
    if (secs) c.wait_seconds = *secs;
    else error(d, line_of(*n), "'stages.canary.wait' must be a duration like \"30m\" or \"2h\"");
  }
  for (const char* key : {"max_bounce_rate", "max_deferral_rate", "max_complaint_rate"}) {
    if (const auto* n = t->get(key)) {
      const auto v = n->value<double>();
      if (!v || !(*v >= 0 && *v <= 1)) {  // NaN too
        error(d, line_of(*n), fmt::format("'stages.canary.{}' must be a number from 0 to 1", key));
      } else if (std::string_view(key) == "max_bounce_rate") {
        c.max_bounce_rate = *v;
      } else if (std::string_view(key) == "max_complaint_rate") {
        c.max_complaint_rate = *v;
      } else {
        c.max_deferral_rate = *v;
      }
    }
  }
}

// An address pattern for [guard] allow: one '@', address characters and '*'.
bool valid_allow_pattern(std::string_view p) {
  const auto at = p.find('@');
  if (at == std::string_view::npos || at == 0 || p.find('@', at + 1) != std::string_view::npos || at + 1 == p.size()) {
    return false;
  }
  for (char c : p) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 32 || c == '"' || c == '(' || c == ')' || c == ',' || c == ':' || c == ';' || c == '<' || c == '>' ||
        c == '[' || c == ']' || c == '\\') {
      return false;
    }
  }
  return true;
}

void load_guard(const toml::node& node, GuardSettings& g, util::Diagnostics& d) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    error(d, line_of(node), "'guard' must be a table: [guard]");
    return;
  }
  reject_unknown(*t, {"strict", "allow", "own_columns", "max_rate"}, "guard.", d);
  if (const auto* n = t->get("strict")) {
    if (const auto* b = n->as_boolean()) g.strict = b->get();
    else error(d, line_of(*n), "'guard.strict' must be true or false");
  }
  auto strings = [&](const char* key, std::vector<std::string>& into) {
    const auto* n = t->get(key);
    if (n == nullptr) return;
    const auto* arr = n->as_array();
    if (arr == nullptr) {
      error(d, line_of(*n), fmt::format("'guard.{}' must be a list of strings", key));
      return;
    }
    for (const auto& el : *arr) {
      if (const auto* str = el.as_string()) {
        into.push_back(str->get());
      } else {
        error(d, line_of(el), fmt::format("'guard.{}' must be a list of strings", key));
      }
    }
  };
  strings("allow", g.allow);
  for (const auto& p : g.allow) {
    if (!valid_allow_pattern(p)) {
      error(d, line_of(*t->get("allow")),
            fmt::format("'guard.allow' entry '{}' is not an address pattern: write an address, or '*' for any "
                        "run of characters in it, e.g. \"*@example.com\"", p));
    } else if (p.substr(p.find('@') + 1).find_first_not_of("*.") == std::string::npos) {
      error(d, line_of(*t->get("allow")),
            fmt::format("'guard.allow' entry '{}' allows every domain; name the domains that may appear (or set "
                        "strict = false to turn strict mode off)", p));
    }
  }
  strings("own_columns", g.own_columns);
  for (auto& c : g.own_columns) c = util::to_lower_ascii(c);
  if (const auto* n = t->get("max_rate")) {
    const auto* str = n->as_string();
    const auto r = str != nullptr ? delivery::parse_rate(str->get()) : std::nullopt;
    if (r) {
      g.max_rate = *r;
    } else {
      error(d, line_of(*n), "'guard.max_rate' must be a rate like \"500/s\" or \"20000/min\" (at most 1000000/s)");
    }
  }
}

// The top-level keys: the campaign's name, who it is from and whom replies
// reach, the default locale.
void load_identity(const toml::table& root, CampaignConfig& cfg, util::Diagnostics& d) {
  if (auto id = get_string(root, "id", "", d)) {
    cfg.id = *id;
    if (!valid_id(cfg.id)) {
      error(d, line_of(*root.get("id")),
            "'id' must be 1-128 characters of letters, digits, '.', '_' or '-'");
    }
  } else if (root.get("id") == nullptr) {
    error(d, 1, "missing 'id' (a stable campaign name such as \"index-change-2026-11\")");
  }
  if (auto from = get_string(root, "from", "", d)) {
    cfg.from_text = *from;
    auto mb = mail::parse_mailbox(*from);
    if (mb) {
      cfg.from = std::move(*mb);
    } else {
      error(d, line_of(*root.get("from")), fmt::format("'from' is not a valid mailbox: {}", mb.error()));
    }
  } else if (root.get("from") == nullptr) {
    error(d, 1, "missing 'from' (e.g. from = \"Example <noreply@example.com>\")");
  }
  if (auto rt = get_string(root, "reply_to", "", d)) {
    auto mb = mail::parse_mailbox(*rt);
    if (mb) cfg.reply_to = std::move(*mb);
    else error(d, line_of(*root.get("reply_to")), fmt::format("'reply_to' is not a valid mailbox: {}", mb.error()));
  }
  if (auto loc = get_string(root, "default_locale", "", d)) cfg.default_locale = *loc;
  if (auto kind = get_string(root, "kind", "", d)) {
    if (*kind == "transactional") cfg.transactional = true;
    else if (*kind != "campaign") {
      error(d, line_of(*root.get("kind")),
            fmt::format("'kind' must be \"campaign\" (the default) or \"transactional\" (a stream sent by "
                        "'blindcast serve'), not \"{}\"", *kind));
    }
  }
  if (const auto* sec = root.get("security")) {
    if (const auto* b = sec->as_boolean()) cfg.security = b->get();
    else error(d, line_of(*sec), "'security' must be true or false");
    if (!cfg.transactional) {
      error(d, line_of(*sec), "'security' applies to transactional streams only (kind = \"transactional\")");
    }
  }
}

// list_unsubscribe (RFC 2369 / 8058): an https URL (one-click), a mailto URL,
// or both. `out` is set only when the setting is usable.
void load_list_unsubscribe(const toml::node& lu, std::vector<std::string>& out, util::Diagnostics& d) {
  std::vector<std::string> urls;
  if (const auto* one = lu.as_string()) {
    urls.push_back(one->get());
  } else if (const auto* many = lu.as_array()) {
    for (const auto& el : *many) {
      if (const auto* str = el.as_string()) urls.push_back(str->get());
    }
  }
  const auto https = std::count_if(urls.begin(), urls.end(), [](const auto& u) { return u.starts_with("https://"); });
  const auto mailto = std::count_if(urls.begin(), urls.end(), [](const auto& u) { return u.starts_with("mailto:"); });
  if (urls.empty() || urls.size() > 2 || https > 1 || mailto > 1 ||
      static_cast<std::size_t>(https + mailto) != urls.size()) {
    error(d, line_of(lu),
          "'list_unsubscribe' must be an https URL, a mailto URL, or a list of one of each, e.g. "
          "[\"https://example.com/u/{{unsubscribe_token}}\", \"mailto:unsubscribe@example.com\"]");
    return;
  }
  for (const auto& u : urls) {
    if (u.find_first_of("\r\n") != std::string::npos) {
      error(d, line_of(lu), "'list_unsubscribe' must not contain a line break");
    }
  }
  out = std::move(urls);
}

// [transport]
void load_transport(const toml::node& node, TransportSettings& tr, util::Diagnostics& d) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    error(d, line_of(node), "'transport' must be a table: [transport]");
    return;
  }
  reject_unknown(*t, {"url", "tls", "username", "password_file", "ca_file", "connections", "give_up_after",
                    "messages_per_connection", "timeout", "helo_name", "resolver", "mx_port",
                    "connections_per_destination", "mta_sts_port"},
               "transport.", d);
  if (auto v = get_string(*t, "url", "transport.", d)) tr.url = *v;
  if (auto v = get_string(*t, "tls", "transport.", d)) {
    tr.tls = *v;
    if (*v != "required" && *v != "opportunistic") {
      error(d, line_of(*t->get("tls")), "'transport.tls' must be \"required\" or \"opportunistic\"");
    }
  }
  if (auto v = get_string(*t, "username", "transport.", d)) tr.username = *v;
  if (auto v = get_string(*t, "password_file", "transport.", d)) tr.password_file = *v;
  if (auto v = get_string(*t, "ca_file", "transport.", d)) tr.ca_file = *v;
  if (auto v = get_string(*t, "helo_name", "transport.", d)) tr.helo_name = *v;
  if (auto v = get_string(*t, "resolver", "transport.", d)) tr.resolver = *v;
  const std::pair<const char*, int*> counts[] = {{"connections", &tr.connections},
                                                 {"messages_per_connection", &tr.messages_per_connection},
                                                 {"connections_per_destination", &tr.connections_per_destination},
                                                 {"mx_port", &tr.mx_port},
                                                 {"mta_sts_port", &tr.mta_sts_port}};
  for (const auto& [key, into] : counts) {
    if (const auto* kn = t->get(key)) {
      const auto v = kn->value<std::int64_t>();
      const std::string_view k(key);
      const std::int64_t most = k == "messages_per_connection"              ? 100000
                                : k == "mx_port" || k == "mta_sts_port" ? 65535
                                                                        : k_max_connections;
      if (!v || *v < 1 || *v > most) {
        error(d, line_of(*kn), fmt::format("'transport.{}' must be a whole number from 1 to {}", key, most));
      } else {
        *into = static_cast<int>(*v);
      }
    }
  }
  if (const auto* gn = t->get("give_up_after")) {
    const auto* str = gn->as_string();
    const auto secs = str != nullptr ? util::parse_duration_seconds(str->get()) : std::nullopt;
    if (secs && *secs >= 1 && *secs <= 7 * 86400) tr.give_up_after_seconds = *secs;
    else error(d, line_of(*gn), "'transport.give_up_after' must be a duration like \"5m\" (from 1s to 7d)");
  }
  if (const auto* tn = t->get("timeout")) {
    const auto* str = tn->as_string();
    const auto secs = str != nullptr ? util::parse_duration_seconds(str->get()) : std::nullopt;
    if (secs && *secs > 0 && *secs <= 3600) tr.timeout_seconds = static_cast<int>(*secs);
    else error(d, line_of(*tn), "'transport.timeout' must be a duration like \"30s\" or \"5m\" (at most 1h)");
  }
}

// One [shaping.<lane>] table; nullopt when it is not a table. Settings it
// leaves out stay 0 (the built-in lane's value applies).
std::optional<delivery::LaneDefaults> load_lane(std::string_view name, const toml::node& node, util::Diagnostics& d) {
  const std::string where = fmt::format("shaping.{}.", name);
  const auto* lt = node.as_table();
  if (lt == nullptr) {
    error(d, line_of(node), fmt::format("'shaping.{}' must be a table", name));
    return std::nullopt;
  }
  reject_unknown(*lt, {"domains", "mx", "rate", "burst", "connections", "messages_per_connection"}, where, d);
  delivery::LaneDefaults lane;
  lane.name = std::string(name);
  lane.rate_per_second = 0;
  lane.connections = 0;
  lane.messages_per_connection = 0;
  if (const auto* dn = lt->get("domains")) {
    if (const auto* arr = dn->as_array()) {
      for (const auto& el : *arr) {
        if (const auto* str = el.as_string()) lane.domains.push_back(util::to_lower_ascii(str->get()));
      }
    } else {
      error(d, line_of(*dn), fmt::format("'{}domains' must be a list like [\"example.com\"]", where));
    }
  }
  if (const auto* mn = lt->get("mx")) {
    const auto* arr = mn->as_array();
    bool ok = arr != nullptr;
    if (arr != nullptr) {
      for (const auto& el : *arr) {
        const auto* str = el.as_string();
        std::string host = str != nullptr ? util::to_lower_ascii(str->get()) : std::string();
        while (!host.empty() && host.back() == '.') host.pop_back();
        const std::string_view rest = std::string_view(host).starts_with("*.") ? std::string_view(host).substr(2) : host;
        if (rest.empty() || rest.find('*') != std::string_view::npos || rest.find('.') == std::string_view::npos) {
          ok = false;
          break;
        }
        lane.mx.push_back(host);
      }
    }
    if (!ok) {
      error(d, line_of(*mn), fmt::format("'{}mx' must be a list of MX host names, exact or \"*.\" and a domain, "
                                         "like [\"*.google.com\"]",
                                         where));
    }
  }
  if (auto rate = get_string(*lt, "rate", where, d)) {
    if (auto r = delivery::parse_rate(*rate)) lane.rate_per_second = *r;
    else error(d, line_of(*lt->get("rate")), fmt::format("'{}rate' must look like \"600/min\", \"10/s\" or \"20000/h\" "
                                                          "(above 0, at most 1000000/s)", where));
  }
  for (const char* key : {"burst", "connections", "messages_per_connection"}) {
    if (const auto* kn = lt->get(key)) {
      const auto v = kn->value<std::int64_t>();
      const std::int64_t most = std::string_view(key) == "connections" ? k_max_connections : 100000;
      if (!v || *v < 1 || *v > most) {
        error(d, line_of(*kn), fmt::format("'{}{}' must be a whole number from 1 to {}", where, key, most));
        continue;
      }
      const int iv = static_cast<int>(*v);
      if (std::string_view(key) == "burst") lane.burst = iv;
      else if (std::string_view(key) == "connections") lane.connections = iv;
      else lane.messages_per_connection = iv;
    }
  }
  return lane;
}

// [shaping]: one table per lane. Ignored when it is not a table.
void load_shaping(const toml::node& node, std::vector<delivery::LaneDefaults>& lanes, util::Diagnostics& d) {
  const auto* t = node.as_table();
  if (t == nullptr) return;
  for (const auto& [lane_name, lane_node] : *t) {
    if (auto lane = load_lane(lane_name.str(), lane_node, d)) lanes.push_back(std::move(*lane));
  }
}

// [unsubscribe]. Ignored when it is not a table.
void load_unsubscribe(const toml::node& node, std::string& secret_file, util::Diagnostics& d) {
  const auto* t = node.as_table();
  if (t == nullptr) return;
  reject_unknown(*t, {"secret_file"}, "unsubscribe.", d);
  secret_file = get_string(*t, "secret_file", "unsubscribe.", d).value_or("");
}

// [bounces]: the VERP return path's domain and the key of its tokens.
// Ignored when it is not a table.
void load_bounces(const toml::node& node, std::optional<BounceSettings>& out, util::Diagnostics& d,
                  bool receiver_keys = false) {
  const auto* t = node.as_table();
  if (t == nullptr) return;
  // The receiver's settings belong to server.toml (a campaign has no listener).
  if (receiver_keys) {
    reject_unknown(*t, {"domain", "secret_file", "listen", "max_message_bytes", "rate", "max_connections"}, "bounces.",
                   d);
  } else {
    reject_unknown(*t, {"domain", "secret_file"}, "bounces.", d);
  }
  BounceSettings b;
  b.domain = util::to_lower_ascii(get_string(*t, "domain", "bounces.", d).value_or(""));
  b.secret_file = get_string(*t, "secret_file", "bounces.", d).value_or("");
  if (b.domain.empty() || b.secret_file.empty()) {
    error(d, line_of(node), "[bounces] needs domain (where bounces are received, e.g. \"bounces.example.com\") and "
                            "secret_file (the key of VERP tokens: head -c 32 /dev/urandom > secrets/bounce.key)");
    return;
  }
  const bool ascii_name = std::all_of(b.domain.begin(), b.domain.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
  if (!ascii_name || b.domain.find('.') == std::string::npos || b.domain.front() == '.' || b.domain.back() == '.') {
    error(d, line_of(node), fmt::format("'bounces.domain' is '{}', not a domain name; give the ASCII (A-label) name "
                                        "bounces are received at, e.g. \"bounces.example.com\"",
                                        b.domain));
    return;
  }
  out = std::move(b);
}

// [delivery]: the retry schedule and the throttle's quiet time. Ignored when
// it is not a table.
void load_delivery(const toml::node& node, DeliverySettings& s, util::Diagnostics& d) {
  const auto* t = node.as_table();
  if (t == nullptr) return;
  reject_unknown(*t, {"retry", "max_retry_age", "throttle_quiet"}, "delivery.", d);
  if (const auto* q = t->get("throttle_quiet")) {
    const auto* str = q->as_string();
    const auto secs = str != nullptr ? util::parse_duration_seconds(str->get()) : std::nullopt;
    if (secs && *secs > 0) s.throttle_quiet_seconds = *secs;
    else error(d, line_of(*q), "'delivery.throttle_quiet' must be a duration like \"60s\"");
  }
  if (const auto* r = t->get("retry")) {
    const auto* arr = r->as_array();
    std::vector<std::int64_t> steps;
    bool ok = arr != nullptr && !arr->empty();
    if (arr != nullptr) {
      for (const auto& el : *arr) {
        const auto* str = el.as_string();
        const auto secs = str != nullptr ? util::parse_duration_seconds(str->get()) : std::nullopt;
        if (secs && *secs > 0) steps.push_back(*secs);
        else ok = false;
      }
    }
    if (ok) s.retry_seconds = steps;
    else error(d, line_of(*r), "'delivery.retry' must be a list of durations like [\"1m\", \"5m\", \"30m\", \"2h\"]");
  }
  if (const auto* m = t->get("max_retry_age")) {
    const auto* str = m->as_string();
    const auto secs = str != nullptr ? util::parse_duration_seconds(str->get()) : std::nullopt;
    if (secs && *secs > 0) s.max_retry_age_seconds = *secs;
    else error(d, line_of(*m), "'delivery.max_retry_age' must be a duration like \"3d\"");
  }
}

// [dkim]: the signing domain and one selector per key. Ignored when it is not
// a table; otherwise set, even when it has errors.
void load_dkim(const toml::node& node, std::optional<DkimSettings>& out, util::Diagnostics& d) {
  const auto* t = node.as_table();
  if (t == nullptr) return;
  reject_unknown(*t, {"domain", "selector", "key_file"}, "dkim.", d);
  DkimSettings dk;
  dk.domain = get_string(*t, "domain", "dkim.", d).value_or("");
  auto strings = [&](const char* key, std::vector<std::string>& into) {
    const auto* kn = t->get(key);
    if (kn == nullptr) return;
    if (const auto* one = kn->as_string()) {
      into.push_back(one->get());
    } else if (const auto* many = kn->as_array()) {
      for (const auto& el : *many) {
        if (const auto* str = el.as_string()) into.push_back(str->get());
      }
    } else {
      error(d, line_of(*kn), fmt::format("'dkim.{}' must be a string or a list of strings", key));
    }
  };
  strings("selector", dk.selectors);
  strings("key_file", dk.key_files);
  if (dk.selectors.size() == 1) dk.selectors.resize(dk.key_files.size(), dk.selectors.front());
  if (dk.selectors.size() != dk.key_files.size()) {
    error(d, line_of(node), "[dkim] needs one selector per key_file (or one selector for a single key)");
  }
  if (dk.domain.empty() || dk.selectors.empty() || dk.key_files.empty()) {
    error(d, line_of(node), "[dkim] needs domain, selector and key_file");
  } else if (auto ascii = mail::domain_to_ascii(dk.domain)) {
    dk.domain = std::move(*ascii);  // lower-case A-label form, as d= needs
  } else {
    error(d, line_of(*t->get("domain")),
          fmt::format("'dkim.domain' is '{}', not a domain name ({}), e.g. \"example.com\"", dk.domain,
                      ascii.error()));
  }
  for (const auto& sel : dk.selectors) {
    if (!is_selector(sel)) {
      error(d, line_of(*t->get("selector")),
            fmt::format("'dkim.selector' '{}' is not a DNS name (letters, digits, '-', '_' and '.'): it is "
                        "published as SELECTOR._domainkey.DOMAIN, e.g. \"s2026\"", sel));
    }
  }
  out = dk;
}

// [stages]: the seed list, the canary, how many approvals a send needs.
// Ignored when it is not a table.
void load_stages(const toml::node& node, CampaignConfig& cfg, util::Diagnostics& d) {
  const auto* t = node.as_table();
  if (t == nullptr) return;
  reject_unknown(*t, {"test", "canary", "approvals_required"}, "stages.", d);
  if (const auto* tn = t->get("test")) {
    if (const auto* arr = tn->as_array()) {
      for (const auto& el : *arr) {
        const auto* s = el.as_string();
        auto addr = s != nullptr ? mail::parse_address(s->get())
                                 : std::expected<mail::Address, std::string>(std::unexpected("not a string"));
        if (addr) cfg.test_addresses.push_back(addr->str());
        else error(d, line_of(el), fmt::format("'stages.test' entry is not a valid address: {}", addr.error()));
      }
    } else {
      error(d, line_of(*tn), "'stages.test' must be a list of addresses");
    }
  }
  if (const auto* cn = t->get("canary")) load_canary(*cn, cfg.canary, d);
  if (const auto* an = t->get("approvals_required")) {
    if (const auto* i = an->as_integer(); i != nullptr && i->get() >= 0) cfg.approvals_required = i->get();
    else error(d, line_of(*an), "'stages.approvals_required' must be a whole number >= 0");
  }
}

}  // namespace

std::optional<CampaignConfig> load_config(const std::filesystem::path& dir, util::Diagnostics& d) {
  const auto path = dir / k_file;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    error(d, 0, fmt::format("not found in {}; run 'blindcast init {}' to create an example campaign",
                            dir.string(), dir.string()));
    return std::nullopt;
  }
  auto parsed = util::parse_toml_file(path, k_file, d);
  if (!parsed) return std::nullopt;
  const toml::table& root = *parsed;
  CampaignConfig cfg;
  const std::size_t errors_before = util::error_count(d);

  reject_unknown(root, std::set<std::string>(k_top_level.begin(), k_top_level.end()), "", d);
  // Sections in this order: their findings are reported in it.
  load_identity(root, cfg, d);
  if (const auto* n = root.get("list_unsubscribe")) load_list_unsubscribe(*n, cfg.list_unsubscribe, d);
  if (const auto* n = root.get("transport")) load_transport(*n, cfg.transport, d);
  if (const auto* n = root.get("shaping")) load_shaping(*n, cfg.shaping, d);
  if (const auto* n = root.get("unsubscribe")) load_unsubscribe(*n, cfg.unsubscribe_secret_file, d);
  if (const auto* n = root.get("delivery")) load_delivery(*n, cfg.delivery, d);
  if (const auto* n = root.get("bounces")) load_bounces(*n, cfg.bounces, d);
  if (const auto* n = root.get("dkim")) load_dkim(*n, cfg.dkim, d);
  if (const auto* n = root.get("stages")) load_stages(*n, cfg, d);
  if (const auto* n = root.get("guard")) load_guard(*n, cfg.guard, d);
  if (util::error_count(d) > errors_before && (cfg.id.empty() || cfg.from_text.empty())) {
    return std::nullopt;
  }
  return cfg;
}

}  // namespace blindcast::campaign

namespace blindcast::campaign {

void read_transport_table(const toml::node& node, TransportSettings& out, util::Diagnostics& diags) {
  load_transport(node, out, diags);
}

void read_bounces_table(const toml::node& node, std::optional<BounceSettings>& out, util::Diagnostics& diags) {
  load_bounces(node, out, diags, true);
}

void read_dkim_table(const toml::node& node, std::optional<DkimSettings>& out, util::Diagnostics& diags) {
  load_dkim(node, out, diags);
}

void read_shaping_tables(const toml::node& node, std::vector<delivery::LaneDefaults>& out, util::Diagnostics& diags) {
  load_shaping(node, out, diags);
}

void rename_findings(util::Diagnostics& diags, std::size_t first, const std::string& file) {
  for (std::size_t i = first; i < diags.size(); ++i) {
    if (diags[i].file == k_file) diags[i].file = file;
  }
}

}  // namespace blindcast::campaign
