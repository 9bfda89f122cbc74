#include "campaign/test_stage.hpp"

#include <map>

#include <fmt/format.h>

#include "campaign/audience_session.hpp"
#include "campaign/guard_setup.hpp"
#include "util/mask.hpp"

namespace blindcast::campaign {

Result<TestStageResult> run_test_stage(const LoadedCampaign& campaign, store::StateStore& store,
                                       const SendOptions& options) {
  if (auto h = check_not_halted(store, campaign); !h) return std::unexpected(h.error());
  const auto& seeds = campaign.config.test_addresses;
  if (seeds.empty()) {
    return fail("[stages] test is empty: list the internal addresses that receive the test stage, e.g. "
                "test = [\"ops@example.com\"]");
  }
  SendSummary import;
  if (auto s = sync_audience(campaign, store, import); !s) return std::unexpected(s.error());

  util::Diagnostics diags;
  auto session = open_audience(campaign, diags, {});
  if (!session) return std::unexpected(session.error());
  if (util::error_count(diags) > 0) return fail("the campaign has errors: " + diags.front().str());
  const int email_col = session->loader->column_index("email");
  std::map<std::string, audience::AudienceRow> by_locale;
  audience::AudienceRow row;
  while (session->loader->next(row)) {
    if (!by_locale.contains(row.locale)) by_locale.emplace(row.locale, row);
  }
  if (by_locale.empty()) return fail("the audience has no valid rows to build test messages from");

  auto index = index_from_store(store);
  if (!index) return std::unexpected(index.error());
  auto guard = CampaignGuard::create(campaign, *index, session->columns);
  if (!guard) return std::unexpected(guard.error());
  const std::string url = options.transport_url.empty() ? campaign.config.transport.url : options.transport_url;
  auto tconfig = transport_config(campaign, url);
  if (!tconfig) return std::unexpected(tconfig.error());
  auto transport = delivery::make_transport(*tconfig);
  if (!transport) return std::unexpected(transport.error());

  std::vector<delivery::OutgoingMessage> outgoing;
  std::vector<std::string> labels;
  std::int64_t n = 0;
  for (const auto& [locale, sample] : by_locale) {
    const std::string shown = locale.empty() ? "default" : locale;
    for (const auto& seed : seeds) {
      auto fields = sample.fields;
      fields[static_cast<std::size_t>(email_col)] = seed;
      BuildOptions o;
      o.subject_prefix = fmt::format("[TEST {}] ", shown);
      auto built = session->builder->build(fields, seed, "", sample.locale, o);
      if (!built) return fail(fmt::format("audience.csv:{}: cannot render: {}", sample.line, built.error()));
      if (auto v = guard->check(built->data, seed, fields)) {
        return std::unexpected(guard_halt(campaign, store, sample.line, built->data, *v));
      }
      ++n;
      outgoing.push_back({n, fmt::format("test-{}", n), session->builder->envelope_from(), seed, std::move(built->data), "", std::nullopt});
      labels.push_back(fmt::format("{} -> {}", shown, util::mask_address(seed)));
    }
  }
  auto report = (*transport)->deliver(outgoing);
  if (!report) return std::unexpected(report.error());
  TestStageResult result;
  for (std::size_t i = 0; i < report->results.size(); ++i) {
    const auto& r = report->results[i];
    const bool ok = r.kind == delivery::DeliveryKind::k_sent;
    (ok ? result.sent : result.failed)++;
    result.lines.push_back(fmt::format("{}: {}", labels[i], ok ? "sent" : util::mask_addresses_in(r.reply)));
  }
  if (!report->fatal.empty()) return fail("sending stopped: " + util::mask_addresses_in(report->fatal), ExitCode::k_runtime);
  auto hash = content_hash(campaign.dir);
  if (hash) (void)store.set_meta("test_hash", *hash);
  (void)store.append_event("stage_test", "blindcast",
                           fmt::format("test stage: {} locales x {} addresses: {} sent, {} not delivered",
                                       by_locale.size(), seeds.size(), result.sent, result.failed));
  return result;
}

}  // namespace blindcast::campaign
