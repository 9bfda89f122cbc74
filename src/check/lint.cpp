#include "check/lint.hpp"

#include <algorithm>
#include <unordered_set>

#include <fmt/format.h>

#include "compose/audience_session.hpp"
#include "compose/guard_setup.hpp"
#include "compose/samples.hpp"
#include "mail/alignment.hpp"

namespace blindcast::check {

namespace {
constexpr const char* k_audience = "audience.csv";
}

LintReport lint_campaign(const std::filesystem::path& dir, const LintOptions& options) {
  LintReport report;
  auto& diags = report.diags;
  auto campaign = campaign::load_campaign(dir, diags);
  if (auto h = campaign::content_hash(dir)) report.content_hash = *h;
  if (!campaign) return report;
  report.loaded = true;

  std::size_t rejected_shown = 0, dup_shown = 0, row_errors_shown = 0;
  auto row_finding = [&](std::size_t& shown, util::Diagnostic d) {
    if (shown++ < options.max_row_findings) {
      diags.push_back(std::move(d));
    } else {
      ++report.suppressed_findings;
    }
  };

  audience::LoadOptions lo;
  lo.on_reject = [&](const audience::Rejection& r) {
    row_finding(rejected_shown, {k_audience, static_cast<long>(r.line), util::Severity::k_warning,
                                 "row rejected, it will not be sent: " + r.reason});
  };
  lo.on_duplicate = [&](std::int64_t line, std::int64_t first) {
    row_finding(dup_shown, {k_audience, static_cast<long>(line), util::Severity::k_warning,
                            fmt::format("duplicate of line {}; dropped", first)});
  };
  auto session = compose::open_audience(*campaign, diags, lo);
  if (!session) {
    diags.push_back({k_audience, 0, util::Severity::k_error, session.error().message});
    return report;
  }

  // Pass 1: validate every row, collect locales and the guard's index.
  auto index = std::make_shared<guard::AddressIndex>();
  audience::AudienceRow row;
  while (session->loader->next(row)) {
    index->add(row.email);
    ++report.locales[row.locale];
  }
  report.stats = session->loader->stats();
  if (const auto& fatal = session->loader->fatal()) {
    diags.push_back({k_audience, static_cast<long>(session->loader->fatal_line()), util::Severity::k_error, *fatal});
    return report;
  }

  auto& renderer = session->builder->renderer();
  // What Gmail and Yahoo require of bulk senders (2024 rules): DKIM, aligned
  // with From, and one-click unsubscribe (RFC 8058).
  const auto& cfg = campaign->config;
  if (!cfg.dkim) {
    diags.push_back({"campaign.toml", 0, util::Severity::k_warning,
                     "no [dkim]: large mailbox providers reject or junk bulk mail without DKIM; add [dkim] with "
                     "domain, selector and key_file"});
  } else {
    if (const auto& signer = session->builder->secrets().dkim) {
      report.dkim_records = signer->dns_records();
    }
    const std::string& from_domain = cfg.from.address.domain;
    if (!mail::dmarc_relaxed_aligned(from_domain, cfg.dkim->domain)) {
      diags.push_back({"campaign.toml", 0, util::Severity::k_warning,
                       fmt::format("the From domain '{}' does not align with the DKIM domain '{}': DMARC needs "
                                   "both under one organizational domain (e.g. example.com and mail.example.com)",
                                   from_domain, cfg.dkim->domain)});
    }
  }
  if (std::none_of(cfg.list_unsubscribe.begin(), cfg.list_unsubscribe.end(),
                   [](const std::string& url) { return url.starts_with("https://"); })) {
    diags.push_back({"campaign.toml", 0, util::Severity::k_warning,
                     "no one-click unsubscribe: set list_unsubscribe to an https URL (RFC 8058), e.g. "
                     "\"https://example.com/u/{{unsubscribe_token}}\""});
  }
  if (renderer.unsubscribe_uses_column("email")) {
    diags.push_back({"campaign.toml", 0, util::Severity::k_error,
                     "list_unsubscribe must not carry the bare address ({{email}}): use {{unsubscribe_token}} "
                     "with [unsubscribe] secret_file"});
  }
  if (renderer.uses_unsubscribe_token() && cfg.unsubscribe_secret_file.empty()) {
    diags.push_back({"campaign.toml", 0, util::Severity::k_error,
                     "{{unsubscribe_token}} is used but [unsubscribe] secret_file is not set; put a random key in "
                     "a file under secrets/ (chmod 600) and name it there"});
  }
  std::vector<std::string> locales = {campaign->config.default_locale};
  for (const auto& [loc, n] : report.locales) {
    if (loc != campaign->config.default_locale) locales.push_back(loc);
  }
  renderer.check_locales(locales, diags);
  if (util::error_count(diags) > 0) return report;  // rendering would only repeat them

  // Pass 2: build and guard every (or every k-th) message.
  const std::int64_t accepted = report.stats.accepted;
  const std::int64_t stride =
      options.sample && *options.sample > 0 && accepted > *options.sample
          ? (accepted + *options.sample - 1) / *options.sample
          : 1;
  util::Diagnostics repeated;  // binding findings were reported by the first pass
  auto second = compose::open_audience(*campaign, repeated, audience::LoadOptions{});
  if (!second) return report;
  auto guard = compose::CampaignGuard::create(*campaign, index, second->columns);
  if (!guard) {
    diags.push_back({"campaign.toml", 0, util::Severity::k_error, guard.error().message});
    return report;
  }
  std::int64_t n = 0;
  std::unordered_set<const render::CatalogMessage*> blank_reported;
  while (second->loader->next(row)) {
    if (n++ % stride != 0) continue;
    auto built = second->builder->build(row.fields, row.email, row.name, row.locale);
    if (!built) {
      row_finding(row_errors_shown, {k_audience, static_cast<long>(row.line), util::Severity::k_error,
                                     "cannot render this row: " + built.error()});
      continue;
    }
    ++report.rendered;
    for (const auto* msg : built->blank_messages) {
      // Once per message: the first row it came out blank for.
      if (!blank_reported.insert(msg).second) continue;
      diags.push_back({msg->file(), msg->line(), util::Severity::k_warning,
                       fmt::format("message '{}' renders blank for audience.csv line {} (locale '{}'): a value, or "
                                   "a plural or select branch, gives it no text",
                                   msg->key(), row.line, row.locale)});
    }
    if (auto v = guard->check(built->data, row.email, row.fields)) {
      ++report.guard_violations;
      row_finding(row_errors_shown, {k_audience, static_cast<long>(row.line), util::Severity::k_error,
                                     "privacy guard: " + v->describe()});
    }
  }
  // samples.csv: synthetic rows the test stage sends; guarded like the audience.
  auto samples = compose::read_samples(*campaign, second->columns);
  if (!samples) {
    diags.push_back({"samples.csv", 0, util::Severity::k_error, samples.error().message});
    return report;
  }
  for (const auto& c : samples->missing_columns) {
    diags.push_back({"samples.csv", 1, util::Severity::k_warning,
                     fmt::format("no column '{}' (audience.csv has one): the test stage shows it empty", c)});
  }
  for (const auto& s : samples->rows) {
    auto built = second->builder->build(s.fields, s.email, "", s.locale);
    if (!built) {
      diags.push_back({"samples.csv", static_cast<long>(s.line), util::Severity::k_error,
                       "cannot render this row: " + built.error()});
      continue;
    }
    if (auto v = guard->check(built->data, s.email, s.fields)) {
      ++report.guard_violations;
      diags.push_back({"samples.csv", static_cast<long>(s.line), util::Severity::k_error,
                       "privacy guard: " + v->describe()});
    }
  }
  return report;
}

}  // namespace blindcast::check
