// serve, keys: the service and its API keys (SPEC §8).
#include <cstdio>
#include <ctime>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/context.hpp"
#include "serve/api_keys.hpp"
#include "serve/server_config.hpp"
#include "serve/service.hpp"
#include "store/pg_store.hpp"
#include "store/service_store.hpp"

namespace blindcast::cli {

namespace {

// Reads server.toml; prints its findings; nullopt (after reporting) when unusable.
std::optional<serve::ServerConfig> server_config(const std::string& path, int& rc) {
  util::Diagnostics diags;
  auto config = serve::load_server_config(path, diags);
  print_diagnostics(diags);
  if (!config) {
    rc = report(Error{fmt::format("{} has errors; nothing was started", path)});
    return std::nullopt;
  }
  return config;
}

Result<std::unique_ptr<store::ServiceStore>> open_service_store(const serve::ServerConfig& c) {
  std::error_code ec;
  std::filesystem::create_directories(c.node_dir, ec);
  return store::open_service_store(c.state.string());
}

std::string when(std::int64_t t) { return fmt::format("{:%Y-%m-%d %H:%M:%S}Z", fmt::gmtime(static_cast<std::time_t>(t))); }

}  // namespace

int cmd_serve(const std::string& config_path) {
  int rc = 0;
  auto config = server_config(config_path, rc);
  if (!config) return rc;
  auto r = serve::run_service(*config);
  if (!r) return report(r.error());
  return 0;
}

int cmd_keys_create(const std::string& config_path, const std::string& name, const std::vector<std::string>& scopes,
                    const std::vector<std::string>& cidrs, bool json) {
  int rc = 0;
  auto config = server_config(config_path, rc);
  if (!config) return rc;
  // "--scope send,read" and "--scope send --scope read" both work.
  std::vector<std::string> flat;
  for (const auto& s : scopes) {
    std::size_t i = 0;
    while (i <= s.size()) {
      const auto j = s.find(',', i);
      const auto part = s.substr(i, j == std::string::npos ? std::string::npos : j - i);
      if (!part.empty()) flat.push_back(part);
      if (j == std::string::npos) break;
      i = j + 1;
    }
  }
  auto key = serve::make_key(name, flat, cidrs);
  if (!key) return report(key.error());
  auto store = open_service_store(*config);
  if (!store) return report(store.error());
  if (auto w = (*store)->add_key(key->record); !w) return report(w.error());
  store::ServiceAuditEvent e{static_cast<std::int64_t>(std::time(nullptr)), name, "local", "keys create",
                             fmt::format("scopes {}; networks {}", fmt::join(key->record.scopes, " "),
                                         fmt::join(key->record.cidrs, " "))};
  (void)(*store)->append_audit(std::span<const store::ServiceAuditEvent>(&e, 1));
  if (json) {
    print_json({{"name", name}, {"key", key->key}, {"scopes", key->record.scopes}, {"cidrs", key->record.cidrs}});
  } else {
    std::printf("%s\n", key->key.c_str());
    std::fprintf(stderr,
                 "blindcast: key '%s' (scopes %s; from %s) created. It is shown this once: the store keeps only its "
                 "hash. Give it to the tool in a file with mode 0600, never in an environment variable.\n",
                 name.c_str(), fmt::format("{}", fmt::join(key->record.scopes, ",")).c_str(),
                 fmt::format("{}", fmt::join(key->record.cidrs, " ")).c_str());
  }
  return 0;
}

int cmd_keys_list(const std::string& config_path, bool json) {
  int rc = 0;
  auto config = server_config(config_path, rc);
  if (!config) return rc;
  auto store = open_service_store(*config);
  if (!store) return report(store.error());
  auto keys = (*store)->keys();
  if (!keys) return report(keys.error());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& k : *keys) {
    out.push_back({{"name", k.name}, {"id", k.key_id}, {"scopes", k.scopes}, {"cidrs", k.cidrs},
                   {"created_at", k.created_at}, {"revoked_at", k.revoked_at == 0 ? nlohmann::json(nullptr) : nlohmann::json(k.revoked_at)}});
    if (!json) {
      std::printf("%-20s bc_%s_…  %-28s %-30s created %s%s\n", k.name.c_str(), k.key_id.c_str(),
                  fmt::format("{}", fmt::join(k.scopes, ",")).c_str(), fmt::format("{}", fmt::join(k.cidrs, " ")).c_str(),
                  when(k.created_at).c_str(), k.revoked_at == 0 ? "" : (", REVOKED " + when(k.revoked_at)).c_str());
    }
  }
  if (json) print_json({{"keys", out}});
  return 0;
}

int cmd_keys_revoke(const std::string& config_path, const std::string& name) {
  int rc = 0;
  auto config = server_config(config_path, rc);
  if (!config) return rc;
  auto store = open_service_store(*config);
  if (!store) return report(store.error());
  auto revoked = (*store)->revoke_key(name);
  if (!revoked) return report(revoked.error());
  if (!*revoked) return report(Error{fmt::format("no key named '{}' is in force ('blindcast keys list' shows them)", name)});
  store::ServiceAuditEvent e{static_cast<std::int64_t>(std::time(nullptr)), name, "local", "keys revoke", ""};
  (void)(*store)->append_audit(std::span<const store::ServiceAuditEvent>(&e, 1));
  std::printf("revoked key '%s'; a running service refuses it within a second\n", name.c_str());
  return 0;
}

}  // namespace blindcast::cli
