#include "campaign/sender.hpp"

#include <sys/stat.h>

#include <chrono>
#include <ctime>

#include <fmt/format.h>

#include "campaign/audience_session.hpp"
#include "campaign/guard_setup.hpp"
#include "campaign/halt.hpp"
#include "delivery/providers.hpp"
#include "delivery/transport.hpp"
#include "guard/privacy_guard.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/mask.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace blindcast::campaign {

namespace {

std::atomic<bool> g_stop{false};

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

Result<std::string> file_digest(const std::filesystem::path& path) {
  auto data = util::read_file(path);
  if (!data) return std::unexpected(data.error());
  return util::sha256_hex(*data);
}

// Quarantines `data` with `reason`; returns the path of the copy.
Result<std::filesystem::path> quarantine(const LoadedCampaign& campaign, std::int64_t line,
                                         const std::string& data, const std::string& reason) {
  const auto dir = campaign.state_dir() / "quarantine";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  ::chmod(dir.c_str(), 0700);
  const auto base = dir / fmt::format("{}-line{}", unix_now(), line);
  auto eml = base;
  eml += ".eml";
  auto txt = base;
  txt += ".reason.txt";
  if (auto w = util::write_file_atomic(eml, data, 0600); !w) return std::unexpected(w.error());
  if (auto w = util::write_file_atomic(txt, reason + "\n", 0600); !w) return std::unexpected(w.error());
  return eml;
}

store::RecipientState state_for(delivery::DeliveryKind kind) {
  switch (kind) {
    case delivery::DeliveryKind::k_sent: return store::RecipientState::k_sent;
    case delivery::DeliveryKind::k_deferred: return store::RecipientState::k_deferred;
    case delivery::DeliveryKind::k_bounced: return store::RecipientState::k_bounced;
    case delivery::DeliveryKind::k_failed: return store::RecipientState::k_failed;
  }
  return store::RecipientState::k_failed;
}

}  // namespace

void request_stop() { g_stop = true; }
bool stop_requested() { return g_stop.load(); }

Result<void> sync_audience(const LoadedCampaign& campaign, store::StateStore& store,
                           SendSummary& summary) {
  auto digest = file_digest(campaign.audience_path());
  if (!digest) return std::unexpected(digest.error());
  auto stored = store.get_meta("audience_digest");
  if (!stored) return std::unexpected(stored.error());
  if (*stored && **stored == *digest) return {};

  auto import = store.begin_import();
  if (!import) return std::unexpected(import.error());
  std::optional<Error> failure;
  audience::LoadOptions lo;
  lo.on_reject = [&](const audience::Rejection& r) {
    ++summary.rejected_rows;
    if (auto w = (*import)->reject(r.line, r.reason); !w && !failure) failure = w.error();
  };
  lo.on_duplicate = [&](std::int64_t, std::int64_t) { ++summary.duplicate_rows; };
  util::Diagnostics diags;
  auto session = open_audience(campaign, diags, lo);
  if (!session) return std::unexpected(session.error());
  audience::AudienceRow row;
  store::ImportRow ir;
  while (session->loader->next(row) && !failure) {
    ir.line = row.line;
    ir.email = row.email;
    const auto at = row.email.rfind('@');
    ir.domain = row.email.substr(at + 1);
    ir.key = util::to_lower_ascii(row.email.substr(0, at)) + "@" + ir.domain;
    ir.locale = row.locale;
    ir.fields = std::move(row.fields);
    if (auto w = (*import)->add(ir); !w) failure = w.error();
    ++summary.imported;
  }
  if (failure) return std::unexpected(*failure);
  auto removed = (*import)->commit();
  if (!removed) return std::unexpected(removed.error());
  if (*removed > 0) {
    util::log_warn(fmt::format("{} unsent recipients are no longer in audience.csv and will not be sent",
                               *removed));
  }
  if (auto w = store.set_meta("audience_digest", *digest); !w) return w;
  return store.append_event("import", "blindcast",
                            fmt::format("audience imported: {} rows, {} rejected, {} duplicates",
                                        summary.imported, summary.rejected_rows, summary.duplicate_rows));
}

Result<SendSummary> run_send(const LoadedCampaign& campaign, store::StateStore& store,
                             const SendOptions& options,
                             const std::function<void(const SendProgress&)>& on_progress) {
  SendSummary summary;
  const auto started = std::chrono::steady_clock::now();
  if (auto halt = read_halt(store); !halt) {
    return std::unexpected(halt.error());
  } else if (*halt) {
    const auto& h = **halt;
    if (h.kind == "guard") {
      return fail(fmt::format("campaign is halted by the privacy guard: {}; fix the content, then run "
                              "'blindcast release {}'", h.reason, campaign.dir.string()),
                  ExitCode::k_guard);
    }
    return fail(fmt::format("campaign is halted by {}: {}; run 'blindcast release {}' to continue",
                            h.by.empty() ? "an operator" : h.by, h.reason, campaign.dir.string()),
                ExitCode::k_halted);
  }
  if (auto s = sync_audience(campaign, store, summary); !s) return std::unexpected(s.error());
  auto recovered = store.recover_in_flight();
  if (!recovered) return std::unexpected(recovered.error());
  summary.recovered_in_flight = *recovered;
  if (*recovered > 0) {
    util::log_warn(fmt::format("{} recipients were in flight when the last run stopped; they are sent "
                               "again and counted as possible duplicates", *recovered));
  }

  const std::string url = options.transport_url.empty() ? campaign.config.transport.url : options.transport_url;
  if (url.empty()) {
    return fail("no transport: set [transport] url in campaign.toml or pass --transport URL");
  }
  auto transport = delivery::make_transport(url, campaign.dir.string(), campaign.config.id);
  if (!transport) return std::unexpected(transport.error());
  summary.transport = (*transport)->describe();

  auto index = std::make_shared<guard::AddressIndex>();
  if (auto r = store.for_each_address([&](std::string_view a) { index->add(a); }); !r) {
    return std::unexpected(r.error());
  }
  const guard::PrivacyGuard guard(index, guard_policy(campaign.config));

  util::Diagnostics diags;
  auto session = open_audience(campaign, diags, {});
  if (!session) return std::unexpected(session.error());
  if (util::error_count(diags) > 0) {
    return fail(fmt::format("the campaign has errors; run 'blindcast lint {}' ({})", campaign.dir.string(),
                            diags.front().str()));
  }
  MessageBuilder& builder = *session->builder;
  const std::string envelope_from = builder.envelope_from();

  if (auto e = store.append_event("stage_start", "blindcast",
                                  fmt::format("stage {} started on {}", options.stage, summary.transport));
      !e) {
    return std::unexpected(e.error());
  }

  auto counts = store.counts();
  if (!counts) return std::unexpected(counts.error());
  SendProgress& progress = summary.progress;
  progress.total = counts->total;

  std::int64_t last_id = 0;
  std::vector<delivery::OutgoingMessage> outgoing;
  std::vector<store::Outcome> outcomes;
  std::vector<std::int64_t> ids;
  std::vector<std::string> lanes;
  while (true) {
    if (stop_requested()) {
      return fail("interrupted; state is saved — run send again to continue", ExitCode::k_runtime);
    }
    if (auto halt = read_halt(store); !halt) {
      return std::unexpected(halt.error());
    } else if (*halt) {
      return fail(fmt::format("halted by {} while sending: {}", (*halt)->by.empty() ? "an operator" : (*halt)->by,
                              (*halt)->reason),
                  (*halt)->kind == "guard" ? ExitCode::k_guard : ExitCode::k_halted);
    }
    auto batch = store.next_batch(unix_now(), options.batch_size, last_id);
    if (!batch) return std::unexpected(batch.error());
    if (batch->empty()) break;
    last_id = batch->back().id;
    outgoing.clear();
    outcomes.clear();
    ids.clear();
    lanes.clear();
    for (auto& r : *batch) {
      const int name_col = session->loader->column_index("name");
      const std::string name = name_col >= 0 && static_cast<std::size_t>(name_col) < r.fields.size()
                                   ? r.fields[static_cast<std::size_t>(name_col)] : "";
      auto built = builder.build(r.fields, r.email, std::string(util::trim(name)), r.locale);
      if (!built) {
        outcomes.push_back({r.id, store::RecipientState::k_failed,
                            util::mask_addresses_in("cannot render: " + built.error()), 0});
        ++progress.failed_this_run;
        continue;
      }
      const std::string rcpt[] = {r.email};
      if (auto v = guard.check(built->data, {envelope_from, rcpt})) {
        const std::string reason = fmt::format("audience.csv line {}: {}", r.line, v->describe(false));
        auto q = quarantine(campaign, r.line, built->data, reason);
        HaltState h{"guard", reason, "privacy guard", unix_now(), content_hash(campaign.dir).value_or("")};
        if (auto w = write_halt(store, h); !w) return std::unexpected(w.error());
        (void)store.append_event("guard_violation", "privacy guard", reason);
        if (!outcomes.empty()) (void)store.record_outcomes(outcomes);
        return fail(fmt::format("privacy guard violation — nothing of this message was sent. {}. "
                                "The campaign is halted for every sender; the message is quarantined at {}. "
                                "Fix the content, then run 'blindcast release {}'.",
                                reason, q ? q->string() : std::string("(quarantine failed: ") + q.error().message + ")",
                                campaign.dir.string()),
                    ExitCode::k_guard);
      }
      ids.push_back(r.id);
      lanes.push_back(delivery::lane_for_domain(r.email.substr(r.email.rfind('@') + 1)));
      outgoing.push_back({r.id, fmt::format("{}-{}", options.stage, r.id), envelope_from, r.email,
                          std::move(built->data)});
    }
    if (!outcomes.empty()) {
      if (auto w = store.record_outcomes(outcomes); !w) return std::unexpected(w.error());
      outcomes.clear();
    }
    if (outgoing.empty()) continue;
    if (auto w = store.mark_in_flight(ids); !w) return std::unexpected(w.error());
    auto results = (*transport)->deliver(outgoing);
    if (!results) return std::unexpected(results.error());
    for (std::size_t i = 0; i < results->size(); ++i) {
      const auto& res = (*results)[i];
      outcomes.push_back({res.recipient_id, state_for(res.kind), util::mask_addresses_in(res.reply), 0});
      if (res.kind == delivery::DeliveryKind::k_sent) {
        ++progress.sent_this_run;
        ++progress.sent_by_lane[lanes[i]];
      } else {
        ++progress.failed_this_run;
      }
    }
    if (auto w = store.record_outcomes(outcomes); !w) return std::unexpected(w.error());
    progress.elapsed_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (on_progress) on_progress(progress);
  }
  progress.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  auto final_counts = store.counts();
  if (!final_counts) return std::unexpected(final_counts.error());
  summary.counts = *final_counts;
  (void)store.append_event("stage_end", "blindcast",
                           fmt::format("stage {} ended: {} sent this run, {} not delivered", options.stage,
                                       progress.sent_this_run, progress.failed_this_run));
  return summary;
}

}  // namespace blindcast::campaign
