#include "send/seed_stage.hpp"

#include <map>

#include <fmt/format.h>

#include "compose/audience_session.hpp"
#include "compose/guard_setup.hpp"
#include "delivery/mx_lanes.hpp"
#include "send/audience_import.hpp"
#include "send/halt.hpp"
#include "util/mask.hpp"
#include "util/strings.hpp"

namespace blindcast::send {

namespace {

// One test message: the catalog it shows and the row it is built from.
struct TestRow {
  std::string locale;               // the row's locale
  std::vector<std::string> fields;  // in audience.csv's column order
  std::string source;               // "samples.csv line 3" / "placeholders for audience.csv line 12"
};

// The catalog a row of `locale` reads (its most specific one).
std::string catalog_of(const campaign::LoadedCampaign& campaign, const std::string& locale) {
  const auto chain = campaign.catalogs->chain(locale);
  return chain.empty() ? campaign.config.default_locale : chain.front()->tag;
}

}  // namespace

Result<SeedStageResult> run_seed_stage(const campaign::LoadedCampaign& campaign, store::StateStore& store,
                                       const SendOptions& options) {
  if (auto h = check_not_halted(store, campaign); !h) return std::unexpected(h.error());
  const auto& seeds = campaign.config.test_addresses;
  if (seeds.empty()) {
    return fail("[stages] test is empty: list the internal addresses that receive the test stage, e.g. "
                "test = [\"ops@example.com\"]");
  }
  ImportSummary import;
  // The lanes as the full stage places them (by MX host with mx:), so that
  // the stages do not undo each other's placement.
  const std::string url = options.transport_url.empty() ? campaign.config.transport.url : options.transport_url;
  auto mx_lanes = delivery::lane_resolver(url, campaign.config.transport.resolver,
                                          delivery::LaneTable(campaign.config.shaping));
  if (!mx_lanes) return std::unexpected(mx_lanes.error());
  if (auto s = sync_audience(campaign, store, import, mx_lanes->get()); !s) return std::unexpected(s.error());

  util::Diagnostics diags;
  auto session = compose::open_audience(campaign, diags, {});
  if (!session) return std::unexpected(session.error());
  if (util::error_count(diags) > 0) return fail("the campaign has errors: " + diags.front().str());
  const int email_col = session->loader->column_index("email");
  const int locale_col = session->loader->column_index("locale");
  auto sample_rows = compose::read_samples(campaign, session->columns);
  if (!sample_rows) return std::unexpected(sample_rows.error());
  std::map<std::string, TestRow> samples;  // the first sample of each catalog
  for (auto& s : sample_rows->rows) {
    samples.try_emplace(catalog_of(campaign, s.locale),
                        TestRow{s.locale, std::move(s.fields), fmt::format("samples.csv line {}", s.line)});
  }

  // One row per catalog the audience uses: a sample, or placeholders.
  std::map<std::string, TestRow> rows;
  audience::AudienceRow row;
  while (session->loader->next(row)) {
    const std::string catalog = catalog_of(campaign, row.locale);
    if (rows.contains(catalog)) continue;
    if (auto s = samples.find(catalog); s != samples.end()) {
      rows.emplace(catalog, s->second);
      continue;
    }
    TestRow t{row.locale, {}, fmt::format("placeholders for audience.csv line {}", row.line)};
    for (std::size_t i = 0; i < row.fields.size(); ++i) {
      t.fields.push_back(static_cast<int>(i) == locale_col ? row.fields[i] : compose::placeholder_of(row.fields[i]));
    }
    rows.emplace(catalog, std::move(t));
  }  if (session->loader->fatal()) return fail(session->loader->fatal_error());

  if (rows.empty()) return fail("the audience has no valid rows to build test messages from");

  auto index = compose::index_from_store(store);
  if (!index) return std::unexpected(index.error());
  auto guard = compose::CampaignGuard::create(campaign, *index, session->columns);
  if (!guard) return std::unexpected(guard.error());
  auto tconfig = transport_config(campaign, url);
  if (!tconfig) return std::unexpected(tconfig.error());
  auto transport = delivery::make_transport(*tconfig);
  if (!transport) return std::unexpected(transport.error());

  std::vector<delivery::OutgoingMessage> outgoing;
  std::vector<std::string> labels;
  std::int64_t n = 0;
  for (const auto& [catalog, t] : rows) {
    for (const auto& seed : seeds) {
      auto fields = t.fields;
      fields[static_cast<std::size_t>(email_col)] = seed;
      compose::BuildOptions o;
      o.subject_prefix = fmt::format("[TEST {}] ", catalog);
      auto built = session->builder->build(fields, seed, "", t.locale, o);
      if (!built) return fail(fmt::format("{}: cannot render: {}", t.source, built.error()));
      if (auto v = guard->check(built->data, seed, fields)) {
        return std::unexpected(guard_halt(campaign, store, 0, built->data, *v));
      }
      ++n;
      outgoing.push_back({n, fmt::format("test-{}", n), session->builder->envelope_from(), seed, std::move(built->data), "", 0, std::nullopt});
      labels.push_back(fmt::format("{} ({}) -> {}", catalog, t.source, util::mask_address(seed)));
    }
  }
  auto results = delivery::deliver_all(**transport, std::move(outgoing));
  if (!results) return std::unexpected(results.error());
  SeedStageResult result;
  std::string settings_failure;
  for (std::size_t i = 0; i < results->size(); ++i) {
    const auto& r = (*results)[i];
    (r.sent() ? result.sent : result.failed)++;
    if (r.settings_failure && settings_failure.empty()) settings_failure = r.reply;
    result.lines.push_back(fmt::format("{}: {}", labels[i], r.sent() ? "sent" : util::mask_addresses_in(r.reply)));
  }
  if (!settings_failure.empty()) {
    return fail("sending stopped: " + util::mask_addresses_in(settings_failure), ExitCode::k_runtime);
  }
  auto hash = campaign::content_hash(campaign.dir);
  if (hash) (void)store.set_meta("test_hash", *hash);
  (void)store.append_event("stage_test", "blindcast",
                           fmt::format("test stage: {} catalogs x {} addresses: {} sent, {} not delivered",
                                       rows.size(), seeds.size(), result.sent, result.failed));
  return result;
}

}  // namespace blindcast::send
