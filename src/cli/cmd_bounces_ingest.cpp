// bounces ingest FILE|DIR|MBOX... --state PATH | --config server.toml:
// applies returned mail to the organisation's list (SPEC §9). Hard bounces
// and complaints whose VERP token verifies suppress the address the token
// names; soft bounces are counted (and turn hard by the rule in
// store/org_list.hpp); everything else changes nothing. Ingesting the same
// report again changes nothing either.
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bounce/report.hpp"
#include "cli/context.hpp"
#include "cli/returned_mail.hpp"
#include "send/bounce_ingest.hpp"
#include "serve/server_config.hpp"
#include "store/pg_store.hpp"
#include "store/service_store.hpp"
#include "store/sqlite_org_list.hpp"
#include "util/mask.hpp"
#include "util/secret_file.hpp"

namespace blindcast::cli {

int cmd_bounces_ingest(const std::vector<std::string>& paths, const std::string& state, const std::string& config_path,
                       bool json) {
  if (state.empty() == config_path.empty()) {
    return report(Error{"give the state store the bounces apply to: --state PATH (a campaign's store, or one shared "
                        "by several), or --config server.toml (the service's)"});
  }
  std::unique_ptr<store::OrgList> org_only;
  std::unique_ptr<store::ServiceStore> service;
  store::OrgList* org = nullptr;
  std::shared_ptr<const bounce::VerpKey> service_key;
  send::BounceIngester::MessageLookup messages;
  if (!config_path.empty()) {
    util::Diagnostics diags;
    const auto config = serve::load_server_config(config_path, diags);
    print_diagnostics(diags);
    if (!config) return report(Error{fmt::format("{}: cannot be used; nothing was ingested", config_path)});
    auto opened = store::open_service_store(config->state.string());
    if (!opened) return report(opened.error());
    service = std::move(*opened);
    org = &service->org_list();
    if (config->bounces) {
      auto secret = util::read_secret_file(config->bounces->verp.secret_file, config->bounces->verp.secret_file);
      if (!secret) return report(secret.error());
      service_key = std::make_shared<const bounce::VerpKey>(secret->reveal());
    }
    store::ServiceStore* st = service.get();
    messages = [st](std::string_view id) -> Result<std::optional<send::BounceIngester::MessageTarget>> {
      auto m = st->message(id);
      if (!m) return std::unexpected(m.error());
      if (!*m) return std::optional<send::BounceIngester::MessageTarget>();
      return std::optional<send::BounceIngester::MessageTarget>(
          send::BounceIngester::MessageTarget{(*m)->recipient, (*m)->lane, (*m)->stream});
    };
  } else {
    std::error_code ec;
    if (store::is_postgres(state)) {
      auto opened = store::open_postgres_org_list(state);
      if (!opened) return report(opened.error());
      org_only = std::move(*opened);
      org = org_only.get();
    } else if (!std::filesystem::exists(state, ec)) {
      return report(Error{fmt::format("--state {}: no state store there; nothing was ingested (bounces apply to the "
                                      "store the campaigns sent from)",
                                      state)});
    } else {
      auto opened = store::open_sqlite_org_list(state);
      if (!opened) return report(opened.error());
      org_only = std::move(*opened);
      org = org_only.get();
    }
  }
  send::BounceIngester ingester(*org, service_key, messages);
  std::map<std::string, std::int64_t> outcomes;
  std::optional<Error> failed;
  const int rc = for_each_returned_message(paths, [&](const std::string& file, int message, std::string_view raw) {
    const auto parsed = bounce::parse(raw);
    auto r = ingester.apply(parsed, raw);
    if (!r) {
      failed = r.error();
      return false;
    }
    ++outcomes[r->outcome];
    const std::string where = message > 0 ? fmt::format("{}#{}", file, message) : file;
    if (json) {
      nlohmann::json j{{"file", file}, {"type", bounce::to_string(parsed.type)}, {"outcome", r->outcome},
                       {"detail", r->detail}};
      if (message > 0) j["message"] = message;
      if (!r->scope.empty()) j["scope"] = r->scope;
      print_json_line(j);
    } else {
      std::printf("%s: %s %s: %s\n", where.c_str(), std::string(bounce::to_string(parsed.type)).c_str(),
                  r->outcome.c_str(), r->detail.c_str());
    }
    return true;
  });
  if (failed) return report(*failed);
  std::string summary;
  for (const auto& [outcome, n] : outcomes) summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", n, outcome);
  say(util::LogLevel::k_info, fmt::format("bounces: {}", summary.empty() ? "no messages" : summary),
      nlohmann::json(outcomes));
  return rc;
}

}  // namespace blindcast::cli
