// init, lint, preview, plan: the commands that never send.
#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "campaign/example.hpp"
#include "campaign/secrets.hpp"
#include "check/lint.hpp"
#include "check/plan.hpp"
#include "check/preview.hpp"
#include "send/stages.hpp"
#include "cli/context.hpp"
#include "util/strings.hpp"

namespace blindcast::cli {

int cmd_init(const CommonOptions& opts, const std::string& dkim_domain) {
  if (dkim_domain.empty()) {
    if (auto w = campaign::write_example_campaign(opts.dir); !w) return report(w.error());
    if (opts.json) print_json({{"created", opts.dir}});
  } else {
    if (auto w = campaign::write_example_campaign(opts.dir, dkim_domain); !w) return report(w.error());
    // The records come from the keys as the campaign loads them: what
    // lint and send will sign with.
    util::Diagnostics diags;
    auto loaded = campaign::load_campaign(opts.dir, diags);
    if (!loaded) return report(Error{"the campaign just written does not load", ExitCode::k_runtime});
    auto secrets = campaign::load_campaign_secrets(*loaded);
    if (!secrets) return report(secrets.error());
    const auto records = secrets->dkim->dns_records();
    nlohmann::json rj = nlohmann::json::array();
    std::printf("Publish these DNS TXT records before the first send (DKIM, RFC 6376 and RFC 8463):\n");
    for (const auto& r : records) {
      // A zone file's strings hold at most 255 characters: a 2048-bit key is split.
      std::string quoted;
      for (std::size_t at = 0; at < r.value.size(); at += 255) {
        quoted += fmt::format("{}\"{}\"", at == 0 ? "" : " ", r.value.substr(at, 255));
      }
      std::printf("  %s. IN TXT %s\n", r.name.c_str(), quoted.c_str());
      rj.push_back({{"name", r.name}, {"value", r.value}});
    }
    std::printf("Keys (unencrypted PEM, mode 0600): %s/secrets/dkim-rsa.pem, dkim-ed25519.pem; unsubscribe key: "
                "secrets/unsubscribe.key. Never commit secrets/ (the .gitignore keeps it out).\n"
                "Serve the list_unsubscribe URL in campaign.toml before sending: mailbox providers POST to it when a "
                "recipient clicks unsubscribe (RFC 8058).\n",
                opts.dir.c_str());
    if (opts.json) print_json({{"created", opts.dir}, {"dkim_records", rj}});
  }
  std::printf("Created an example campaign in %s\n", opts.dir.c_str());
  std::printf("Next: blindcast lint %s && blindcast preview %s --out %s/out/preview\n", opts.dir.c_str(),
              opts.dir.c_str(), opts.dir.c_str());
  return 0;
}

int cmd_lint(const CommonOptions& opts, long long sample) {
  check::LintOptions lo;
  if (sample > 0) lo.sample = sample;
  const auto report_ = check::lint_campaign(opts.dir, lo);
  const auto errors = util::error_count(report_.diags);
  if (report_.loaded && sample <= 0 && !report_.content_hash.empty()) {
    // A full lint is one of the gates of the full stage: remember it for this content.
    if (auto store = open_store(opts, StoreUse::k_default)) {
      (void)send::record_lint_result(**store, report_.content_hash,
                                         errors == 0 && report_.guard_violations == 0,
                                         errors + static_cast<std::size_t>(report_.guard_violations));
    } else if (!opts.state.empty()) {
      say(util::LogLevel::k_warn,
          fmt::format("blindcast: warning: --state {} does not exist (a typo?): this lint is not recorded for the "
                      "full stage's gate; only 'blindcast send' creates a state store",
                      opts.state));
    } else {
      say(util::LogLevel::k_warn, "blindcast: warning: this lint is not recorded for the full stage's gate: " +
                                      store.error().message);
    }
  }
  const auto warnings = report_.diags.size() - errors;
  if (opts.json) {
    nlohmann::json j;
    j["errors"] = errors;
    j["warnings"] = warnings;
    j["findings"] = nlohmann::json::array();
    for (const auto& d : report_.diags) {
      j["findings"].push_back({{"file", d.file}, {"line", d.line},
                               {"severity", d.severity == util::Severity::k_error ? "error" : "warning"},
                               {"message", d.message}});
    }
    j["recipients"] = report_.stats.accepted;
    j["rejected"] = report_.stats.rejected;
    j["duplicates"] = report_.stats.duplicates;
    j["rendered"] = report_.rendered;
    j["guard_violations"] = report_.guard_violations;
    j["content_hash"] = report_.content_hash;
    j["locales"] = report_.locales;
    j["dkim_records"] = nlohmann::json::array();
    for (const auto& r : report_.dkim_records) j["dkim_records"].push_back({{"name", r.name}, {"value", r.value}});
    print_json(j);
  } else {
    print_diagnostics(report_.diags);
    if (report_.suppressed_findings > 0) {
      say(util::LogLevel::k_warn,
          fmt::format("... and {} more row findings (see 'blindcast status' after import)",
                      report_.suppressed_findings),
          {{"more_findings", report_.suppressed_findings}});
    }
    std::printf("lint: %zu error(s), %zu warning(s)\n", errors, warnings);
    if (report_.loaded) {
      std::printf("audience: %s recipients, %s rejected, %s duplicates, %zu locales\n",
                  util::with_commas(report_.stats.accepted).c_str(),
                  util::with_commas(report_.stats.rejected).c_str(),
                  util::with_commas(report_.stats.duplicates).c_str(), report_.locales.size());
      std::printf("guard: %s messages rendered and checked, %s violations\n",
                  util::with_commas(report_.rendered).c_str(),
                  util::with_commas(report_.guard_violations).c_str());
    }
    for (const auto& r : report_.dkim_records) {
      std::printf("dkim: publish TXT at %s: %s\n", r.name.c_str(), r.value.c_str());
    }
    std::printf("content hash: %s\n", report_.content_hash.c_str());
  }
  if (report_.guard_violations > 0) return static_cast<int>(ExitCode::k_usage);
  return errors > 0 ? static_cast<int>(ExitCode::k_usage) : 0;
}

int cmd_preview(const CommonOptions& opts, const std::string& out, const std::string& recipient) {
  util::Diagnostics diags;
  auto files = check::write_previews(opts.dir, out, recipient, diags);
  print_diagnostics(diags);
  if (!files) return report(files.error());
  bool blocked = false;
  nlohmann::json j = nlohmann::json::array();
  for (const auto& f : *files) {
    if (opts.json) {
      j.push_back({{"file", f.path.string()},
                   {"html", f.html.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.html.string())},
                   {"locale", f.locale},
                   {"line", f.line},
                   {"guard", f.guard_violation.empty() ? "pass" : f.guard_violation}});
    } else {
      std::printf("%s  [%s, audience.csv line %ld] %s\n", f.path.string().c_str(), f.locale.c_str(), f.line,
                  f.subject.c_str());
    }
    if (!f.guard_violation.empty()) {
      blocked = true;
      say(util::LogLevel::k_error,
          fmt::format("{}: the privacy guard would block this message: {}", f.path.string(), f.guard_violation),
          {{"file", f.path.string()}, {"guard", f.guard_violation}});
    }
  }
  if (opts.json) print_json(j);
  return blocked ? static_cast<int>(ExitCode::k_guard) : 0;
}

int cmd_plan(const CommonOptions& opts) {
  util::Diagnostics diags;
  auto plan = check::make_plan(opts.dir, diags);
  if (!plan) {
    print_diagnostics(diags);
    return report(plan.error());
  }
  if (opts.json) {
    nlohmann::json j;
    j["recipients"] = plan->recipients;
    j["rejected"] = plan->rejected;
    j["duplicates"] = plan->duplicates;
    j["eta_seconds"] = plan->total_seconds;
    j["locales"] = plan->locales;
    j["lanes"] = nlohmann::json::array();
    for (const auto& l : plan->lanes) {
      j["lanes"].push_back({{"lane", l.lane}, {"recipients", l.recipients}, {"rate_per_second", l.rate_per_second},
                            {"connections", l.connections}, {"eta_seconds", l.seconds}});
    }
    print_json(j);
    return 0;
  }
  std::printf("%-12s %12s %12s %6s %10s\n", "lane", "recipients", "rate", "conns", "duration");
  for (const auto& l : plan->lanes) {
    const std::string rate = l.rate_per_second > 0 ? fmt::format("{:.0f}/min", l.rate_per_second * 60) : "unshaped";
    std::printf("%-12s %12s %14s %6d %10s\n", l.lane.c_str(), util::with_commas(l.recipients).c_str(), rate.c_str(),
                l.connections,
                util::format_duration(static_cast<std::int64_t>(l.seconds + 0.5)).c_str());
  }
  std::printf("\n%-12s %12s\n", "locale", "recipients");
  for (const auto& [loc, n] : plan->locales) {
    std::printf("%-12s %12s\n", loc.c_str(), util::with_commas(n).c_str());
  }
  std::printf("\ntotal: %s recipients (%s rejected, %s duplicates); estimated time %s (lanes run in parallel)\n",
              util::with_commas(plan->recipients).c_str(), util::with_commas(plan->rejected).c_str(),
              util::with_commas(plan->duplicates).c_str(),
              util::format_duration(static_cast<std::int64_t>(plan->total_seconds + 0.5)).c_str());
  if (!plan->dominant_lane.empty()) {
    const auto& l = plan->lanes.front();
    std::printf("warning: %s sets the pace: %s at %.0f/min -> %s; raise [shaping.%s] rate if your "
                "reputation with it allows\n",
                l.lane.c_str(), util::with_commas(l.recipients).c_str(), l.rate_per_second * 60,
                util::format_duration(static_cast<std::int64_t>(l.seconds + 0.5)).c_str(), l.lane.c_str());
  }
  return 0;
}

}  // namespace blindcast::cli
