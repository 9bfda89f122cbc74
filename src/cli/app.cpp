#include "cli/app.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <string_view>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "send/sender.hpp"
#include "cli/context.hpp"
#include "util/log.hpp"

namespace blindcast::cli {

namespace {

void on_signal(int) {
  send::request_stop();
  // A second signal ends the process at once (the store stays consistent).
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

void add_common(CLI::App* cmd, CommonOptions& o, bool needs_dir = true) {
  if (needs_dir) cmd->add_option("DIR", o.dir, "campaign directory")->required();
  cmd->add_option("--state", o.state,
                  "state store: a file (default DIR/.blindcast/state.db) or postgresql://USER@HOST:PORT/DB"
                  "?passfile=PATH&sslmode=verify-full");
  cmd->add_option("--transport", o.transport, "transport URL, overrides campaign.toml");
  cmd->add_flag("--json", o.json, "machine-readable output");
  cmd->add_option("--log-format", o.log_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  cmd->add_flag("--show-addresses", o.show_addresses, "print recipient addresses unmasked");
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"blindcast — send important email to a whole user base, one recipient per message"};
  app.set_version_flag("--version", std::string("blindcast ") + BLINDCAST_VERSION);
  app.require_subcommand(1);
  CommonOptions o;
  long long sample = 0;
  std::string out, recipient, stage, reason, by;

  auto* init = app.add_subcommand("init", "write a working example campaign into DIR");
  add_common(init, o);
  std::string dkim_domain;
  auto* dkim_option = init->add_option("--dkim", dkim_domain,
                   "send for DOMAIN: generate DKIM keys (RSA-2048, Ed25519) and the unsubscribe key, print the DNS "
                   "records to publish");
  auto* lint = app.add_subcommand("lint", "check everything that can be checked without sending");
  add_common(lint, o);
  lint->add_option("--sample", sample, "render and guard about N rows instead of all");
  auto* preview = app.add_subcommand("preview", "write the exact bytes that would be sent (.eml)");
  add_common(preview, o);
  preview->add_option("--out", out, "output directory")->required();
  preview->add_option("--recipient", recipient, "preview only this recipient's message");
  auto* plan = app.add_subcommand("plan", "recipients per provider and locale, shaping and ETA");
  add_common(plan, o);
  auto* send = app.add_subcommand("send", "run one stage; running it again continues where it stopped");
  add_common(send, o);
  send->add_option("--stage", stage, "test, canary or full")->required()
      ->check(CLI::IsMember({"test", "canary", "full"}));
  bool force = false;
  send->add_flag("--force", force, "open closed gates of the full stage (recorded; needs --reason)");
  send->add_option("--reason", reason, "why the gates are forced (recorded in the audit log)");
  bool retry_failed = false;
  send->add_flag("--retry-failed", retry_failed,
                 "make every failed recipient due again first (rows that could not be built are retried by "
                 "themselves once the content changes; bounced ones never are)");
  auto* approve = app.add_subcommand("approve", "approve the campaign's current content");
  add_common(approve, o);
  approve->add_option("--by", by, "who approves (recorded with the content hash)")->required();
  std::string content_hash;
  approve->add_option("--content-hash", content_hash,
                      "approve only this content (the hash lint, preview and status print); refused when the files "
                      "changed since");
  auto* status = app.add_subcommand("status", "counts per state, halts, last errors and the audit log");
  add_common(status, o);
  bool audit = false;
  status->add_flag("--audit", audit, "show the whole audit log");
  auto* halt = app.add_subcommand("halt", "stop every sender of this campaign");
  add_common(halt, o);
  halt->add_option("--reason", reason, "why (recorded in the audit log)")->required();
  halt->add_option("--by", by, "who halts (default: the login name)");
  auto* release = app.add_subcommand("release", "lift a halt");
  add_common(release, o);
  release->add_option("--by", by, "who releases (default: the login name)");
  auto* suppress = app.add_subcommand("suppress", "the organisation's suppression list, shared by every campaign using "
                                                  "the same state store (bounces and complaints join it)");
  suppress->require_subcommand(1);
  std::string file, address;
  auto* sup_import = suppress->add_subcommand("import", "add the addresses in FILE (one per line, or a CSV's first column)");
  add_common(sup_import, o);
  sup_import->add_option("FILE", file, "file of addresses")->required();
  std::string sup_reason;
  sup_import->add_option("--reason", sup_reason, "why they are suppressed (default: imported from FILE)");
  auto* sup_list = suppress->add_subcommand("list", "show the suppression list");
  add_common(sup_list, o);
  auto* sup_remove = suppress->add_subcommand("remove", "take ADDRESS off the suppression list");
  add_common(sup_remove, o);
  sup_remove->add_option("ADDRESS", address, "the address")->required();
  // Generated documentation (hidden from --help: the build installs their output).
  auto* manpage = app.add_subcommand("manpage", "print the man page (troff), generated from these definitions");
  manpage->group("");
  std::string shell;
  auto* completion = app.add_subcommand("completion", "print the shell completion script for SHELL (bash or zsh)");
  completion->group("");
  completion->add_option("SHELL", shell, "bash or zsh")->required()->check(CLI::IsMember({"bash", "zsh"}));
  std::string config_path = "server.toml";
  auto* serve = app.add_subcommand("serve", "run the service: HTTP API, transactional streams, campaigns (SPEC §8)");
  serve->add_option("--config", config_path, "server.toml")->required();
  serve->add_option("--log-format", o.log_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  auto* keys = app.add_subcommand("keys", "the service's API keys: one per tool, named, least privilege");
  keys->require_subcommand(1);
  std::string key_name;
  std::vector<std::string> key_scopes, key_cidrs;
  auto* keys_create = keys->add_subcommand("create", "make a key (printed once; the store keeps its hash)");
  keys_create->add_option("NAME", key_name, "the tool it is for, e.g. auth-service")->required();
  keys_create->add_option("--scope", key_scopes, "send, read, campaigns, approve, admin (comma-separated or repeated)")
      ->required();
  keys_create->add_option("--cidr", key_cidrs, "networks it may be used from, e.g. 10.1.2.0/24")->required();
  keys_create->add_option("--config", config_path, "server.toml")->required();
  keys_create->add_flag("--json", o.json, "machine-readable output");
  auto* keys_list = keys->add_subcommand("list", "show the keys (names, scopes, networks; never the keys)");
  keys_list->add_option("--config", config_path, "server.toml")->required();
  keys_list->add_flag("--json", o.json, "machine-readable output");
  auto* keys_revoke = keys->add_subcommand("revoke", "revoke a key (refused by a running service within a second)");
  keys_revoke->add_option("NAME", key_name, "the key's name")->required();
  keys_revoke->add_option("--config", config_path, "server.toml")->required();
  // Returned mail: bounces, complaints, auto-replies (SPEC §9).
  auto* bounces = app.add_subcommand("bounces", "read returned mail: bounces, complaints, auto-replies");
  bounces->require_subcommand(1);
  std::vector<std::string> bounce_paths;
  auto* bounces_inspect =
      bounces->add_subcommand("inspect", "classify each message in FILE (a message or an mbox) or DIR, change nothing");
  bounces_inspect->add_option("FILE", bounce_paths, "message files, mbox files or directories")->required();
  bounces_inspect->add_flag("--json", o.json, "one JSON object per message");
  bounces_inspect->add_flag("--show-addresses", o.show_addresses, "print recipient addresses unmasked");
  std::string bounce_config;
  auto* bounces_ingest = bounces->add_subcommand(
      "ingest", "apply bounces and complaints in FILE, MBOX or DIR to the suppression list (verified tokens only)");
  bounces_ingest->add_option("FILE", bounce_paths, "message files, mbox files or directories (a Maildir)")->required();
  bounces_ingest->add_option("--state", o.state,
                             "the state store the campaigns sent from (a file or postgresql://...)");
  bounces_ingest->add_option("--config", bounce_config, "server.toml: the service's store and its [bounces] key");
  bounces_ingest->add_flag("--json", o.json, "one JSON object per message");
  bounces_ingest->add_option("--log-format", o.log_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  auto* demo = app.add_subcommand("demo", "create a sample campaign and run it end to end");
  add_common(demo, o, false);
  demo->add_option("DIR", o.dir, "where to create it (default ./blindcast-demo)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const auto given = [&](std::string_view a, std::string_view b) {
      for (int i = 1; i + 1 < argc; ++i) {
        if (std::string_view(argv[i]) == a && std::string_view(argv[i + 1]) == b) return true;
      }
      for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == std::string(a) + "=" + std::string(b)) return true;
      }
      return false;
    };
    int rc = 0;
    if (e.get_exit_code() != 0 && given("--log-format", "json")) {
      util::set_log_format(util::LogFormat::k_json);
      util::log_fields(util::LogLevel::k_error, std::string("blindcast: ") + e.what(),
                       {{"code", static_cast<int>(ExitCode::k_usage)}});
      rc = e.get_exit_code();
    } else {
      rc = app.exit(e);
    }
    if (rc != 0 && std::any_of(argv + 1, argv + argc, [](const char* a) { return std::string_view(a) == "--json"; })) {
      std::printf("%s\n", nlohmann::json{{"error", {{"code", static_cast<int>(ExitCode::k_usage)},
                                                     {"message", e.what()}, {"file", nullptr}, {"line", nullptr}}}}
                                  .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                                  .c_str());
    }
    return rc == 0 ? 0 : static_cast<int>(ExitCode::k_usage);
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // keep stdout and stderr lines in order
  util::set_log_format(o.log_format == "json" ? util::LogFormat::k_json : util::LogFormat::k_text);
  if (o.json) begin_json_output(o.log_format == "json");
  // A send stops starting messages on the first signal and records what is
  // on the wire; every other command ends at once, as a signal's default
  // does (what they write is a transaction or an atomic file rename).
  if (*send || *demo) {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
  }
  std::signal(SIGPIPE, SIG_IGN);

  const auto dispatch = [&]() -> int {
    try {
      // Every command but init and demo acts on an existing campaign: a path
      // that is not one is refused before anything is read or created.
      if (*manpage) return cmd_manpage(app);
      if (*completion) return cmd_completion(app, shell);
      if (*serve) return cmd_serve(config_path);
      if (*keys_create) return cmd_keys_create(config_path, key_name, key_scopes, key_cidrs, o.json);
      if (*keys_list) return cmd_keys_list(config_path, o.json);
      if (*keys_revoke) return cmd_keys_revoke(config_path, key_name);
      if (*bounces_inspect) return cmd_bounces_inspect(bounce_paths, o.json, o.show_addresses);
      if (*bounces_ingest) return cmd_bounces_ingest(bounce_paths, o.state, bounce_config, o.json);
      if (!*init && !*demo) {
        if (auto ok = require_campaign(o); !ok) return report(ok.error());
      }
      if (*init) {
        if (dkim_option->count() > 0 && dkim_domain.empty()) {
          return report(Error{"--dkim needs the domain you send from (it was given empty)"});
        }
        return cmd_init(o, dkim_domain);
      }
      if (*lint) return cmd_lint(o, sample);
      if (*preview) return cmd_preview(o, out, recipient);
      if (*plan) return cmd_plan(o);
      if (*send) return cmd_send(o, stage, force, reason, retry_failed);
      if (*approve) return cmd_approve(o, by, content_hash);
      if (*status) return cmd_status(o, audit);
      if (*halt) return cmd_halt(o, reason, by);
      if (*release) return cmd_release(o, by);
      if (*demo) return cmd_demo(o);
      if (*sup_import) return cmd_suppress_import(o, file, sup_reason);
      if (*sup_list) return cmd_suppress_list(o);
      if (*sup_remove) return cmd_suppress_remove(o, address);
    } catch (const std::exception& e) {
      return report(Error{fmt::format("internal error: {}", e.what()), ExitCode::k_runtime});
    }
    return static_cast<int>(ExitCode::k_usage);
  };
  const int rc = dispatch();
  // Every command prints one JSON document with --json; one that has no
  // result of its own says which command ended how.
  if (o.json && !json_printed()) {
    std::string name;
    for (const auto* c = &app; !c->get_subcommands().empty(); c = c->get_subcommands().front()) {
      name += (name.empty() ? "" : " ") + c->get_subcommands().front()->get_name();
    }
    print_json({{"command", name}, {"exit_code", rc}});
  }
  return rc;
}

}  // namespace blindcast::cli
