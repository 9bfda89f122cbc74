#include "send/sender.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <thread>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "compose/guard_setup.hpp"
#include "compose/message_preparer.hpp"
#include "audience/audience_loader.hpp"
#include "bounce/verp.hpp"
#include "delivery/mx_lanes.hpp"
#include "delivery/providers.hpp"
#include "send/audience_import.hpp"
#include "send/halt.hpp"
#include "send/halt_watcher.hpp"
#include "send/stages.hpp"
#include "store/pg_store.hpp"
#include "util/log.hpp"
#include "util/mask.hpp"
#include "util/secret_file.hpp"

namespace blindcast::send {

namespace {

std::atomic<bool> g_stop{false};

// CPUs this process may run on (its affinity mask, which containers and
// taskset narrow), not every CPU of the machine.
int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::thread::hardware_concurrency());
}

// What a run knows before it sends: the journal brought up to date.
struct Prepared {
  std::int64_t total = 0;
  std::int64_t done = 0;
  // Recipients the last run handed over that certainly did not receive
  // their message (the outcome log says so): released on the guard's
  // ledger, which counted them as sent when they were admitted.
  std::vector<std::int64_t> not_delivered;
};

// Recovers what a crash left in flight, imports the audience, applies the
// suppression list and, for the canary, chooses its sample.
Result<Prepared> prepare_journal(const campaign::LoadedCampaign& campaign, store::StateStore& store,
                                 bool canary_only, bool retry_failed, SendSummary& summary,
                                 delivery::MxResolver* mx_lanes) {
  // First what a crash left: the outcome log and open flights (the rows
  // then say what was delivered before the audience and suppressions apply).
  std::vector<std::int64_t> not_delivered;
  auto recovered = store.recover_in_flight(&not_delivered);
  if (!recovered) return std::unexpected(recovered.error());
  summary.recovered_in_flight = *recovered;
  if (*recovered > 0) {
    util::log_warn(fmt::format("{} recipients were in flight when the last run stopped; they are sent "
                               "again and counted as possible duplicates",
                               *recovered));
  }
  if (!not_delivered.empty()) {
    util::log_info(fmt::format("{} recipients handed over in the last run certainly did not receive it "
                               "(never reached the end of DATA, or refused); the guard's ledger stops counting them",
                               not_delivered.size()));
  }
  ImportSummary imported;
  if (auto s = sync_audience(campaign, store, imported, mx_lanes); !s) return std::unexpected(s.error());
  summary.imported = imported.imported;
  summary.rejected_rows = imported.rejected_rows;
  summary.duplicate_rows = imported.duplicate_rows;
  auto suppressed = store.apply_suppressions();
  if (!suppressed) return std::unexpected(suppressed.error());
  if (*suppressed > 0) {
    util::log_info(fmt::format("{} recipients are on the suppression list and will not be sent", *suppressed));
  }
  // A row whose message could not be built is tried again once the content
  // changed (the template, catalog or audience row was fixed); with
  // --retry-failed every failed recipient is, on purpose.
  auto hash = campaign::content_hash(campaign.dir);
  if (!hash) return std::unexpected(hash.error());
  auto last = store.get_meta("send_content_hash");
  if (!last) return std::unexpected(last.error());
  if (retry_failed || (*last && **last != *hash)) {
    auto requeued = store.requeue_failed(retry_failed);
    if (!requeued) return std::unexpected(requeued.error());
    summary.requeued = *requeued;
    if (*requeued > 0) {
      const auto what = retry_failed ? fmt::format("{} failed recipients are due again (--retry-failed)", *requeued)
                                     : fmt::format("{} rows that could not be built are tried again: the content "
                                                   "changed",
                                                   *requeued);
      util::log_info(what);
      if (auto e = store.append_event("requeue", "blindcast", what); !e) return std::unexpected(e.error());
    }
  }
  if (auto w = store.set_meta("send_content_hash", *hash); !w) return std::unexpected(w.error());
  Prepared p;
  p.not_delivered = std::move(not_delivered);
  if (canary_only) {
    auto size = prepare_canary(campaign, store);
    if (!size) return std::unexpected(size.error());
    util::log_info(fmt::format("canary: {} recipients", *size));
    auto st = store.canary_stats();
    if (!st) return std::unexpected(st.error());
    p.total = st->size;
    p.done = st->size - st->unfinished;
    return p;
  }
  auto counts = store.counts();
  if (!counts) return std::unexpected(counts.error());
  using S = store::RecipientState;
  p.total = counts->total;
  p.done = counts->of(S::k_sent) + counts->of(S::k_bounced) + counts->of(S::k_failed) + counts->of(S::k_removed) +
           counts->of(S::k_suppressed);
  return p;
}

// The error a run that the engine stopped ends with (none when it finished).
std::optional<Error> stop_error(const EngineResult& r, const campaign::LoadedCampaign& campaign,
                                store::StateStore& store) {
  switch (r.reason) {
    case StopReason::k_finished: return std::nullopt;
    case StopReason::k_guard:
    case StopReason::k_limit:
      return guard_halt(campaign, store, r.violation_line, r.violation_data, *r.violation);
    case StopReason::k_settings:
      (void)store.append_event("stage_stop", "blindcast", util::mask_addresses_in(r.detail));
      return Error{fmt::format("sending stopped: {}; fix the [transport] settings and run send again",
                               util::mask_addresses_in(r.detail)),
                   ExitCode::k_runtime};
    case StopReason::k_failure:
      return Error{util::mask_addresses_in(r.detail), ExitCode::k_runtime};
    case StopReason::k_stopped:
      if (auto halt = read_halt(store); halt && *halt) return halted_error(store, campaign);
      return Error{"interrupted; state is saved — run send again to continue", ExitCode::k_runtime};
  }
  return std::nullopt;
}

}  // namespace

void request_stop() { g_stop = true; }
bool stop_requested() { return g_stop.load(); }

Result<delivery::TransportConfig> transport_config(const campaign::LoadedCampaign& campaign, const std::string& url) {
  const auto& t = campaign.config.transport;
  delivery::TransportConfig c;
  c.url = url;
  c.base_dir = campaign.dir.string();
  c.campaign_id = campaign.config.id;
  c.tls = t.tls;
  c.ca_file = t.ca_file.empty() ? "" : (campaign.dir / t.ca_file).string();
  c.username = t.username;
  c.connections = t.connections;
  c.messages_per_connection = t.messages_per_connection;
  c.timeout_seconds = t.timeout_seconds;
  c.helo_name = t.helo_name;
  c.resolver = t.resolver;
  c.mx_port = t.mx_port;
  c.connections_per_destination = t.connections_per_destination;
  c.mta_sts_port = t.mta_sts_port;
  c.mta_sts_cache = (campaign.state_dir() / "mta-sts-cache").string();
  if (!t.password_file.empty()) {
    auto secret = util::read_secret_file(campaign.dir / t.password_file, t.password_file);
    if (!secret) return std::unexpected(secret.error());
    c.password = secret->reveal();
  }
  if (!t.username.empty() && c.password.empty()) {
    return fail("[transport] username is set but password_file is not; put the password in a file under "
                "secrets/ (chmod 600) and name it with password_file");
  }
  return c;
}

std::string describe_owner(const store::Owner& o) {
  return fmt::format("pid {} on {}, since {:%Y-%m-%dT%H:%M:%SZ}", o.pid, o.host.empty() ? "this host" : o.host,
                     fmt::gmtime(static_cast<std::time_t>(o.since)));
}

Result<std::unique_ptr<store::OwnerLease>> own_campaign(store::StateStore& store, const std::string& dir) {
  auto got = store.acquire_owner();
  if (!got) return std::unexpected(got.error());
  if (auto* lease = std::get_if<std::unique_ptr<store::OwnerLease>>(&*got)) return std::move(*lease);
  return fail(fmt::format("{} is being sent by another process ({}); one send owns a campaign "
                          "at a time. Wait for it, stop it ('blindcast halt {} --reason ...'), or, if that process "
                          "is gone, run send again: its lock went with it",
                          dir, describe_owner(std::get<store::Owner>(*got)), dir),
              ExitCode::k_usage);
}

Result<SendSummary> run_send(const campaign::LoadedCampaign& campaign, store::StateStore& store,
                             const SendOptions& options,
                             const std::function<void(const SendProgress&)>& on_progress) {
  SendSummary summary;
  const auto started = std::chrono::steady_clock::now();
  if (options.stage == "full" && !(options.full_stage && options.full_stage->open)) {
    return fail("the full stage sends only once its gates are decided open (send::decide_full_stage: lint, canary, "
                "approvals, or --force with a reason); nothing was sent",
                ExitCode::k_gate);
  }
  if (auto h = check_not_halted(store, campaign); !h) return std::unexpected(h.error());
  const bool canary_only = options.stage == "canary";
  const std::string url = options.transport_url.empty() ? campaign.config.transport.url : options.transport_url;
  if (url.empty()) return fail("no transport: set [transport] url in campaign.toml or pass --transport URL");
  // With mx: and lanes that match by MX host, the import places domains by their MX hosts.
  auto mx_lanes = delivery::lane_resolver(url, campaign.config.transport.resolver,
                                          delivery::LaneTable(campaign.config.shaping));
  if (!mx_lanes) return std::unexpected(mx_lanes.error());
  auto prepared = prepare_journal(campaign, store, canary_only, options.retry_failed, summary, mx_lanes->get());
  if (!prepared) return std::unexpected(prepared.error());

  // The transport, the guard, the builders and the guard's ledger.
  Result<std::unique_ptr<delivery::Transport>> transport = std::unique_ptr<delivery::Transport>();
  if (options.shared_transport) {
    transport = options.shared_transport();
  } else {
    auto tconfig = transport_config(campaign, url);
    if (!tconfig) return std::unexpected(tconfig.error());
    transport = delivery::make_transport(*tconfig);
    tconfig->password.assign(tconfig->password.size(), '\0');
  }
  if (!transport) return std::unexpected(transport.error());
  summary.transport = (*transport)->describe();
  auto index = compose::index_from_store(store, static_cast<std::size_t>(std::max<std::int64_t>(prepared->total, 0)));
  if (!index) return std::unexpected(index.error());
  auto header = audience::AudienceLoader::open(campaign.audience_path(), {});
  if (!header) return std::unexpected(header.error());
  auto guard = compose::CampaignGuard::create(campaign, *index, header->columns());
  if (!guard) return std::unexpected(guard.error());
  // At most 16: that signs faster than any relay takes mail, and each worker
  // holds a batch ahead and its own renderer caches.
  const int workers = options.workers > 0 ? options.workers : std::clamp(usable_cpus(), 2, 16);
  auto preparer =
      compose::MessagePreparer::create(campaign, std::make_shared<const compose::CampaignGuard>(std::move(*guard)), workers);
  if (!preparer) return std::unexpected(preparer.error());
  // The in-flight window: recorded in flight, outcome not recorded: enough
  // to keep the connections fed while outcomes gather for a commit and the
  // next flight's record is synced (engine.hpp), about 50 per connection.
  // It is also what the guard's ledger lets a run send twice (a resume after
  // a crash). Of it, at most 2 x connections are let reach the end of DATA
  // before their outcome is in the outcome log: those alone can actually
  // arrive twice, and the log names them (a transport whose repeats replace
  // the earlier copy, a maildir, cannot deliver twice: there the window
  // only sets how many files share a sync).
  const auto connections = static_cast<std::size_t>(std::max(campaign.config.transport.connections, 1));
  summary.window = options.window > 0            ? options.window
                   : (*transport)->idempotent() ? 1000
                                                : std::clamp<std::size_t>(50 * connections, 200, 10000);
  summary.unconfirmed = (*transport)->idempotent() ? 0 : std::min(summary.window, 2 * connections);
  // A PostgreSQL store keeps no outcome log: what a node leaves in flight
  // when it dies is sent again by the others, and every one of those may be
  // a second message on the ledger. That is up to two windows: the window
  // in flight, whose outcomes the commit it died before would have
  // recorded, and the messages that commit was to put in flight in their
  // place (admitted on the ledger first, still pending in the store).
  const std::size_t resends = store::is_postgres(options.state_path) ? 2 * summary.window : summary.unconfirmed;
  // Second messages a run may send: what a crash leaves possibly delivered,
  // at most 2 x connections (the outcome log names them, and recovery
  // releases the rest); a transport whose repeats replace the earlier copy:
  // the window. (After a power loss every recipient in flight is resent:
  // more than this, so the ledger halts and asks for `release`.)
  auto ledger = compose::open_ledger(campaign, summary.window, resends,
                                     static_cast<std::size_t>(std::max<std::int64_t>(prepared->total, 0)));
  if (!ledger) return std::unexpected(ledger.error());
  if (!prepared->not_delivered.empty()) {
    auto rows = store.load(prepared->not_delivered);
    if (!rows) return std::unexpected(rows.error());
    std::vector<std::uint64_t> keys;
    keys.reserve(rows->size());
    for (const auto& r : *rows) keys.push_back(guard::SendLedger::key(r.email));
    std::string error;
    (*ledger)->release(keys, static_cast<std::int64_t>(std::time(nullptr)), error);
    if (!error.empty()) return fail(error, ExitCode::k_runtime);
  }
  // The journal thread's own connection to the store.
  // Without the organisation's list attached: a journal transaction (BEGIN
  // IMMEDIATE, every few ms) would take the write lock of every attached
  // file, the service's store among them. Addresses the relay refuses join
  // the store's own list, which apply_suppressions() moves into the shared one.
  auto writer = store::open_state_store(options.state_path);
  if (!writer) return std::unexpected(writer.error());
  HaltWatcher watcher(options.state_path);

  if (campaign.config.bounces) {
    // Where this campaign's VERP tokens lead, for whoever ingests its bounces.
    std::error_code ec;
    const auto absolute = [&](const std::filesystem::path& p) {
      return std::filesystem::weakly_canonical(std::filesystem::absolute(p, ec), ec).string();
    };
    const store::CampaignRecord record{bounce::campaign_tag(campaign.config.id), campaign.config.id,
                                       store::is_postgres(options.state_path) ? options.state_path
                                                                              : absolute(options.state_path),
                                       absolute(campaign.dir / campaign.config.bounces->secret_file)};
    if (auto r = store.org_list().register_campaign(record); !r) return std::unexpected(r.error());
  }
  if (auto e = store.append_event("stage_start", options.actor,
                                  fmt::format("stage {} started on {}", options.stage, summary.transport));
      !e) {
    return std::unexpected(e.error());
  }
  if (canary_only) {
    // Two people: whoever starts the canary of this content cannot also be its only approver.
    const auto hash = campaign::content_hash(campaign.dir);
    if (hash) {
      if (auto e = store.set_meta("canary_started_by", *hash + "\n" + options.actor); !e) return std::unexpected(e.error());
    }
  }
  EngineSettings settings;
  settings.stage = options.stage;
  settings.canary_only = canary_only;
  settings.window = summary.window;
  // Nodes sharing a PostgreSQL store each claim (lease) what they hold
  // ready: no more than one window ahead, so the others get their share.
  if (store::is_postgres(options.state_path)) settings.stock_unshaped = std::min(settings.stock_unshaped, summary.window);
  settings.unconfirmed = summary.unconfirmed;
  settings.throttle_quiet_seconds = static_cast<int>(campaign.config.delivery.throttle_quiet_seconds);
  settings.total = prepared->total;
  settings.done = prepared->done;
  // Lanes keep their queues either way; their rates apply only where a
  // provider is on the other end (not for maildir).
  delivery::LaneTable lanes(campaign.config.shaping);
  if (!(*transport)->paced()) lanes = lanes.unpaced();
  settings.give_up_after = std::chrono::seconds(campaign.config.transport.give_up_after_seconds);
  // A recipient held after a failed connection is tried again at the first
  // retry step, or sooner when giving up comes sooner (several tries first).
  const auto& retry = campaign.config.delivery.retry_seconds;
  const delivery::OutcomePolicy policy(
      {retry, campaign.config.delivery.max_retry_age_seconds,
       std::clamp<std::int64_t>(retry.empty() ? 60 : retry.front(), 1,
                                std::max<std::int64_t>(1, campaign.config.transport.give_up_after_seconds / 4))});
  summary.setup_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EngineResult result;
  {
    Engine engine(campaign, store, **writer, **transport, **preparer, **ledger, lanes, policy, settings);
    result = engine.run([&] { return watcher.halted() || stop_requested(); }, on_progress);
  }
  (void)store.delete_meta("progress");  // `status` must not go on showing it as running
  // Addresses the relay refused join the organisation's list now, not at the next run.
  (void)store.apply_suppressions();
  summary.progress = result.progress;
  if (canary_only) {
    if (auto w = note_canary_progress(store); !w) return std::unexpected(w.error());
  }
  if (auto e = stop_error(result, campaign, store)) return std::unexpected(std::move(*e));
  auto final_counts = store.counts();
  if (!final_counts) return std::unexpected(final_counts.error());
  summary.counts = *final_counts;
  (void)store.append_event("stage_end", "blindcast",
                           fmt::format("stage {} ended: {} sent this run, {} not delivered", options.stage,
                                       summary.progress.sent_this_run, summary.progress.failed_this_run));
  return summary;
}

}  // namespace blindcast::send
