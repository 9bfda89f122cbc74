#include "send/sender.hpp"

#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <future>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "compose/audience_session.hpp"
#include "send/delivery_thread.hpp"
#include "compose/guard_setup.hpp"
#include "send/halt.hpp"
#include "send/halt_watcher.hpp"
#include "compose/message_preparer.hpp"
#include "send/stages.hpp"
#include "delivery/retry_schedule.hpp"
#include "util/secret_file.hpp"
#include "delivery/providers.hpp"
#include "delivery/transport.hpp"
#include "guard/privacy_guard.hpp"
#include "mail/address.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/mask.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace blindcast::send {

namespace {

std::atomic<bool> g_stop{false};

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

Result<std::string> file_digest(const std::filesystem::path& path) {
  auto data = util::read_file(path);
  if (!data) return std::unexpected(data.error());
  return util::sha256_hex(*data);
}

// Quarantines `data` with `reason`; returns the path of the copy.
Result<std::filesystem::path> quarantine(const campaign::LoadedCampaign& campaign, std::int64_t line,
                                         const std::string& data, const std::string& reason) {
  const auto dir = campaign.state_dir() / "quarantine";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  ::chmod(dir.c_str(), 0700);
  const auto base = dir / (line > 0 ? fmt::format("{}-line{}", unix_now(), line) : fmt::format("{}-test", unix_now()));
  auto eml = base;
  eml += ".eml";
  auto txt = base;
  txt += ".reason.txt";
  if (auto w = util::write_file_atomic(eml, data, 0600); !w) return std::unexpected(w.error());
  if (auto w = util::write_file_atomic(txt, reason + "\n", 0600); !w) return std::unexpected(w.error());
  return eml;
}

}  // namespace

void request_stop() { g_stop = true; }
bool stop_requested() { return g_stop.load(); }

Result<void> sync_audience(const campaign::LoadedCampaign& campaign, store::StateStore& store,
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
  auto session = compose::open_audience(campaign, diags, lo);
  if (!session) return std::unexpected(session.error());
  audience::AudienceRow row;
  store::ImportRow ir;
  while (session->loader->next(row) && !failure) {
    ir.line = row.line;
    ir.email = row.email;
    const auto at = row.email.rfind('@');
    ir.domain = row.email.substr(at + 1);
    ir.key = mail::dedup_key_of(row.email);
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

// Builds the transport settings, reading the password from its secret file.
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
  c.lanes = delivery::LaneTable(campaign.config.shaping).lanes();
  c.throttle_quiet_seconds = static_cast<int>(campaign.config.delivery.throttle_quiet_seconds);
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

Error guard_halt(const campaign::LoadedCampaign& campaign, store::StateStore& store, std::int64_t line, const std::string& data,
                 const guard::Violation& violation) {
  const std::string reason = line > 0 ? fmt::format("audience.csv line {}: {}", line, violation.describe(false))
                                      : fmt::format("test stage: {}", violation.describe(false));
  auto q = quarantine(campaign, line, data, reason);
  // A limit of the guard's ledger is no content problem: it is released
  // once understood, without a content change.
  const bool limit = violation.invariant == 0 && violation.rule.starts_with("limit");
  HaltState h{limit ? "limit" : "guard", reason, "privacy guard", unix_now(), campaign::content_hash(campaign.dir).value_or("")};
  if (auto w = write_halt(store, h); !w) return w.error();
  (void)store.append_event("guard_violation", "privacy guard", reason);
  const std::string where = q ? q->string() : std::string("(quarantine failed: ") + q.error().message + ")";
  if (limit) {
    return Error{fmt::format("privacy guard {} — nothing more is sent. {}. The campaign is halted for every sender; "
                             "the message that would have gone is quarantined at {}. Find out why (is another send "
                             "of this campaign running? see 'blindcast status'), then run 'blindcast release {}'.",
                             violation.rule, reason, where, campaign.dir.string()),
                 ExitCode::k_guard};
  }
  return Error{fmt::format("privacy guard violation — nothing of this message was sent. {}. "
                           "The campaign is halted for every sender; the message is quarantined at {}. "
                           "Fix the content, then run 'blindcast release {}'.",
                           reason, where, campaign.dir.string()),
               ExitCode::k_guard};
}

Result<void> check_not_halted(store::StateStore& store, const campaign::LoadedCampaign& campaign) {
  auto halt = read_halt(store);
  if (!halt) return std::unexpected(halt.error());
  if (!*halt) return {};
  const auto& h = **halt;
  if (h.kind == "guard") {
    return fail(fmt::format("campaign is halted by the privacy guard: {}; fix the content, then run "
                            "'blindcast release {}'", h.reason, campaign.dir.string()),
                ExitCode::k_guard);
  }
  if (h.kind == "limit") {
    return fail(fmt::format("campaign is halted by a limit of the privacy guard: {}; find out why, then run "
                            "'blindcast release {}'", h.reason, campaign.dir.string()),
                ExitCode::k_guard);
  }
  return fail(fmt::format("campaign is halted by {}: {}; run 'blindcast release {}' to continue",
                          h.by.empty() ? "an operator" : h.by, h.reason, campaign.dir.string()),
              ExitCode::k_halted);
}

namespace {

// CPUs this process may run on (its affinity mask, which containers and
// taskset narrow), not every CPU of the machine.
int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::thread::hardware_concurrency());
}

nlohmann::json lanes_json(const std::vector<delivery::LaneStatus>& lanes) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& l : lanes) {
    j[l.name] = {{"rate_per_second", l.rate}, {"configured_per_second", l.configured_rate},
                 {"throttled_at", l.throttled_at}};
  }
  return j;
}

Error halted_error(store::StateStore& store, const campaign::LoadedCampaign& campaign) {
  auto halt = read_halt(store);
  if (halt && *halt) {
    const auto& h = **halt;
    return Error{fmt::format("halted by {} while sending: {}; run 'blindcast release {}' to continue",
                             h.by.empty() ? "an operator" : h.by, h.reason, campaign.dir.string()),
                 h.kind == "guard" || h.kind == "limit" ? ExitCode::k_guard : ExitCode::k_halted};
  }
  return Error{"halted while sending", ExitCode::k_halted};
}

}  // namespace

Result<SendSummary> run_send(const campaign::LoadedCampaign& campaign, store::StateStore& store, const SendOptions& options,
                             const std::function<void(const SendProgress&)>& on_progress) {
  SendSummary summary;
  const auto started = std::chrono::steady_clock::now();
  if (auto h = check_not_halted(store, campaign); !h) return std::unexpected(h.error());
  if (auto s = sync_audience(campaign, store, summary); !s) return std::unexpected(s.error());
  auto suppressed = store.apply_suppressions();
  if (!suppressed) return std::unexpected(suppressed.error());
  if (*suppressed > 0) util::log_info(fmt::format("{} recipients are on the suppression list and will not be sent", *suppressed));
  auto recovered = store.recover_in_flight();
  if (!recovered) return std::unexpected(recovered.error());
  summary.recovered_in_flight = *recovered;
  if (*recovered > 0) {
    util::log_warn(fmt::format("{} recipients were in flight when the last run stopped; they are sent "
                               "again and counted as possible duplicates", *recovered));
  }

  const std::string url = options.transport_url.empty() ? campaign.config.transport.url : options.transport_url;
  if (url.empty()) return fail("no transport: set [transport] url in campaign.toml or pass --transport URL");
  auto tconfig = transport_config(campaign, url);
  if (!tconfig) return std::unexpected(tconfig.error());
  auto transport = delivery::make_transport(*tconfig);
  tconfig->password.assign(tconfig->password.size(), '\0');
  if (!transport) return std::unexpected(transport.error());
  summary.transport = (*transport)->describe();
  HaltWatcher watcher(options.state_path);
  (*transport)->set_stop_check([&watcher] { return watcher.halted() || stop_requested(); });

  auto index = compose::index_from_store(store);
  if (!index) return std::unexpected(index.error());
  auto header = audience::AudienceLoader::open(campaign.audience_path(), {});
  if (!header) return std::unexpected(header.error());
  auto guard = compose::CampaignGuard::create(campaign, *index, header->columns());
  if (!guard) return std::unexpected(guard.error());
  // At most 16: that signs faster than any relay takes mail, and each worker
  // holds a batch ahead (500 built messages) and its own renderer caches.
  const int workers = options.workers > 0 ? options.workers : std::clamp(usable_cpus(), 2, 16);
  auto preparer = compose::MessagePreparer::create(campaign, std::make_shared<const compose::CampaignGuard>(std::move(*guard)), workers);
  // The guard's own record and limits: the batch on the wire, the one marked
  // behind it and the one admitted but not yet marked are what a crash can
  // leave to be sent again.
  auto ledger = compose::open_ledger(campaign, 3 * options.batch_size);
  if (!ledger) return std::unexpected(ledger.error());
  if (!preparer) return std::unexpected(preparer.error());
  const delivery::RetryPolicy retry{campaign.config.delivery.retry_seconds,
                                    campaign.config.delivery.max_retry_age_seconds};

  if (auto e = store.append_event("stage_start", "blindcast",
                                  fmt::format("stage {} started on {}", options.stage, summary.transport));
      !e) {
    return std::unexpected(e.error());
  }
  auto counts = store.counts();
  if (!counts) return std::unexpected(counts.error());
  SendProgress& progress = summary.progress;
  progress.total = counts->total;
  progress.done = counts->of(store::RecipientState::k_sent) + counts->of(store::RecipientState::k_bounced) +
                  counts->of(store::RecipientState::k_failed) + counts->of(store::RecipientState::k_removed);

  const bool canary_only = options.stage == "canary";
  if (canary_only) {
    auto size = prepare_canary(campaign, store);
    if (!size) return std::unexpected(size.error());
    util::log_info(fmt::format("canary: {} recipients", *size));
  }
  if (canary_only) {
    auto st = store.canary_stats();
    if (!st) return std::unexpected(st.error());
    summary.progress.total = st->size;
    summary.progress.done = st->size - st->unfinished;
  }
  {
    // Unsent recipients per lane, for the per-lane progress and ETA.
    const delivery::LaneTable lanes(campaign.config.shaping);
    auto r = store.for_each_recipient(
        [&](std::int64_t, std::string_view email) {
          ++summary.progress.todo_by_lane[lanes.lane_for(email.substr(email.rfind('@') + 1)).name];
        },
        true);
    if (!r) return std::unexpected(r.error());
  }
  summary.setup_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const auto sending_started = std::chrono::steady_clock::now();
  auto progress_written = sending_started;
  (void)store.set_meta("progress", nlohmann::json{{"stage", options.stage}, {"at", unix_now()}, {"sent_this_run", 0},
                                                  {"rate_per_second", 0.0}, {"eta_seconds", -1.0}}
                                       .dump());
  // However this send ends, `status` must not go on showing it as running.
  struct ProgressCleared {
    store::StateStore& store;
    ~ProgressCleared() { (void)store.delete_meta("progress"); }
  } progress_cleared{store};
  std::int64_t last_id = 0;
  bool exhausted = false;  // no due recipient after last_id
  // Batches being built beyond the one in hand, one per worker (a worker
  // builds a whole batch): the workers always have the next one to build
  // while the current one is delivered, and with DKIM, signing uses every CPU.
  const auto k_batches_ahead = static_cast<std::size_t>(workers);
  auto refill = [&]() -> Result<void> {
    while (!exhausted && (*preparer)->pending() < k_batches_ahead) {
      auto batch = store.next_batch(unix_now(), options.batch_size, last_id, canary_only);
      if (!batch) return std::unexpected(batch.error());
      if (batch->empty()) {
        exhausted = true;
        break;
      }
      last_id = batch->back().id;
      (*preparer)->submit(std::move(*batch));
    }
    return {};
  };
  // The next built batch of due recipients; empty when none is due.
  auto next = [&]() -> Result<std::vector<compose::PreparedMessage>> {
    if (auto r = refill(); !r) return std::unexpected(r.error());
    if ((*preparer)->pending() == 0) return std::vector<compose::PreparedMessage>{};
    auto built = (*preparer)->take();
    if (auto r = refill(); !r) return std::unexpected(r.error());
    return built;
  };
  auto stopped = [&] { return watcher.halted() || stop_requested(); };

  // Outcomes not yet in the store (delivery results, render failures), and
  // the flights they land (or that were never handed over).
  std::vector<store::Outcome> unrecorded;
  std::vector<std::int64_t> landed_flights;
  auto flush = [&]() -> Result<void> {
    if (unrecorded.empty() && landed_flights.empty()) return {};
    auto w = store.record_outcomes(unrecorded, landed_flights);
    unrecorded.clear();
    landed_flights.clear();
    return w;
  };

  // The batch on the wire. Store writes (its predecessor's outcomes, the
  // next batch's in-flight mark) and preparing the next batch run on this
  // thread while it is delivered, so the connections never wait for the disk.
  struct OnTheWire {
    std::vector<compose::PreparedMessage> batch;  // owns what sent_with points into
    std::vector<delivery::OutgoingMessage> outgoing;
    std::vector<const compose::PreparedMessage*> sent_with;
    std::int64_t flight = 0;  // the store's record of this batch in flight
    std::future<Result<delivery::DeliveryReport>> report;
  };
  std::unique_ptr<OnTheWire> wire;
  // Declared after `wire`: on the way out it finishes (and joins) before the
  // batch it may still be sending is destroyed.
  DeliveryThread courier(**transport);

  // Waits for the batch on the wire and turns its report into outcomes.
  struct Landed {
    std::unique_ptr<OnTheWire> batch;
    Result<delivery::DeliveryReport> report;
  };
  // Waits for the batch on the wire to finish.
  auto land = [&]() -> std::optional<Landed> {
    if (!wire) return std::nullopt;
    auto report = wire->report.get();
    return Landed{std::move(wire), std::move(report)};
  };
  bool stop_logged = false;  // a settings failure is logged once, not per batch it stops
  // Turns a finished batch's report into outcomes and progress.
  auto absorb = [&](std::optional<Landed> landed) -> Result<void> {
    if (!landed) return {};
    const auto& done = landed->batch;
    auto& report = landed->report;
    if (!report) return std::unexpected(report.error());
    const std::int64_t now = unix_now();
    std::vector<std::uint64_t> not_delivered;  // for the guard's ledger
    for (std::size_t i = 0; i < report->results.size(); ++i) {
      const auto& res = report->results[i];
      const compose::PreparedMessage& m = *done->sent_with[i];
      if (res.kind != delivery::DeliveryKind::k_sent && !res.maybe_delivered) {
        not_delivered.push_back(guard::SendLedger::key(m.email));
      }
      store::Outcome o{res.recipient_id, store::RecipientState::k_sent, util::mask_addresses_in(res.reply), 0,
                       res.maybe_delivered, res.kind != delivery::DeliveryKind::k_not_attempted};
      switch (res.kind) {
        case delivery::DeliveryKind::k_sent:
          ++progress.sent_this_run;
          ++progress.sent_by_lane[m.lane];
          break;
        case delivery::DeliveryKind::k_not_attempted:
          o.state = store::RecipientState::k_pending;
          o.next_attempt_at = res.retry_at;  // set when its lane was at its rate
          break;
        case delivery::DeliveryKind::k_deferred: {
          // This attempt is number attempts + 1 (recorded with the outcome).
          auto when = delivery::next_attempt_at(retry, now, m.attempts + 1,
                                                m.first_attempt_at > 0 ? m.first_attempt_at : now,
                                                static_cast<std::uint64_t>(res.recipient_id));
          if (when) {
            o.state = store::RecipientState::k_deferred;
            o.next_attempt_at = *when;
            ++progress.deferred_by_lane[m.lane];
          } else {
            o.state = store::RecipientState::k_failed;
            o.reply = "gave up after max_retry_age: " + o.reply;
            ++progress.failed_this_run;
          }
          break;
        }
        case delivery::DeliveryKind::k_bounced:
          o.state = store::RecipientState::k_bounced;
          ++progress.failed_this_run;
          ++progress.bounced_by_lane[m.lane];
          break;
        case delivery::DeliveryKind::k_failed:
          o.state = store::RecipientState::k_failed;
          ++progress.failed_this_run;
          break;
      }
      unrecorded.push_back(std::move(o));
    }
    landed_flights.push_back(done->flight);  // lands with these outcomes
    std::string ledger_error;
    (*ledger)->release(not_delivered, now, ledger_error);
    if (!ledger_error.empty()) util::log_warn(ledger_error);
    progress.elapsed_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - sending_started).count();
    for (const auto& l : report->lanes) progress.rate_by_lane[l.name] = l.rate;
    if (on_progress) on_progress(progress);
    if (!report->fatal.empty()) {
      if (auto w = flush(); !w) return std::unexpected(w.error());
      if (!stop_logged) (void)store.append_event("stage_stop", "blindcast", util::mask_addresses_in(report->fatal));
      stop_logged = true;
      return fail(fmt::format("sending stopped: {}; fix the [transport] settings and run send again",
                              util::mask_addresses_in(report->fatal)),
                  ExitCode::k_runtime);
    }
    // For `status` in another shell: the rate and ETA of this running send,
    // at most once a second (each write is a transaction of its own).
    const auto written_at = std::chrono::steady_clock::now();
    if (written_at - progress_written < std::chrono::seconds(1)) return {};
    progress_written = written_at;
    const double rate =
        progress.elapsed_seconds > 0 ? static_cast<double>(progress.sent_this_run) / progress.elapsed_seconds : 0.0;
    const std::int64_t remaining = std::max<std::int64_t>(0, progress.total - progress.done - progress.sent_this_run);
    (void)store.set_meta("progress", nlohmann::json{{"stage", options.stage},
                                                    {"at", unix_now()},
                                                    {"sent_this_run", progress.sent_this_run},
                                                    {"rate_per_second", rate},
                                                    {"eta_seconds", rate > 0 ? remaining / rate : -1.0},
                                                    {"by_lane", progress.sent_by_lane},
                                                    {"lanes", lanes_json(report->lanes)}}
                                         .dump());
    return {};
  };
  auto settle = [&]() -> Result<void> { return absorb(land()); };
  // Leaves through an error: no new message is started, the batches handed
  // over are settled (what was not started comes back "not attempted") and
  // every known outcome recorded first, so nothing that was sent is forgotten.
  auto abandon = [&](Error e) -> Result<SendSummary> {
    (*transport)->stop_starting();
    (void)settle();
    (void)flush();
    return std::unexpected(std::move(e));
  };

  auto current = next();
  if (!current) return std::unexpected(current.error());
  while (true) {
    if (stopped()) break;
    if (current->empty()) {
      if (auto s = settle(); !s) return abandon(s.error());
      if (auto w = flush(); !w) return std::unexpected(w.error());
      // Nothing due now: finish, or wait for the next retry of deferred recipients.
      auto retry_at = store.next_retry_at();
      if (!retry_at) return std::unexpected(retry_at.error());
      if (!*retry_at) break;
      while (unix_now() < **retry_at && !stopped()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (stopped()) break;
      last_id = 0;
      exhausted = false;
      current = next();
      if (!current) return std::unexpected(current.error());
      continue;
    }
    auto next_wire = std::make_unique<OnTheWire>();
    std::vector<std::int64_t> ids;
    for (auto& m : *current) {
      if (!m.render_error.empty()) {
        unrecorded.push_back({m.id, store::RecipientState::k_failed,
                              util::mask_addresses_in("cannot render: " + m.render_error), 0, false, false});
        ++progress.failed_this_run;
        continue;
      }
      if (m.violation) {
        (void)settle();
        Error e = guard_halt(campaign, store, m.line, m.data, *m.violation);
        (void)flush();
        return std::unexpected(std::move(e));
      }
      ids.push_back(m.id);
      next_wire->outgoing.push_back({m.id, fmt::format("{}-{}", options.stage, m.id),
                                     (*preparer)->envelope_from(), m.email, std::move(m.data), m.lane, m.traits});
      next_wire->sent_with.push_back(&m);
    }
    if (ids.empty()) {
      current = next();
      if (!current) return abandon(current.error());
      continue;
    }
    {
      // The guard's limits, on its own record, before anything is recorded or sent.
      std::vector<std::uint64_t> keys;
      keys.reserve(next_wire->outgoing.size());
      for (const auto& o : next_wire->outgoing) keys.push_back(guard::SendLedger::key(o.recipient));
      std::string error;
      std::size_t which = 0;
      if (auto v = (*ledger)->admit(keys, unix_now(), error, &which)) {
        (void)settle();
        Error e = guard_halt(campaign, store, next_wire->sent_with[which]->line, next_wire->outgoing[which].data, *v);
        (void)flush();
        return std::unexpected(std::move(e));
      }
      if (!error.empty()) return abandon(Error{error + "; nothing more is sent", ExitCode::k_runtime});
    }
    // Durably in flight before any byte of these messages is handed over.
    auto flight = store.record_and_mark(unrecorded, landed_flights, ids);
    if (!flight) return abandon(flight.error());
    unrecorded.clear();
    landed_flights.clear();
    next_wire->flight = *flight;
    // Handed over at once, behind the batch on the wire: the transport may
    // start it as soon as that batch's last messages are out, so the
    // connections never drain between batches. If that batch ends in a
    // settings failure or a stop, this one comes back "not attempted" and
    // lands without having been sent.
    next_wire->batch = std::move(*current);
    next_wire->report = courier.start(next_wire->outgoing);
    auto landed = land();
    wire = std::move(next_wire);
    if (auto s = absorb(std::move(landed)); !s) return abandon(s.error());
    if (stopped()) break;
    // While it is delivered: record the previous batch's outcomes, prepare the next.
    if (auto w = flush(); !w) return abandon(w.error());
    current = next();
    if (!current) return abandon(current.error());
  }
  if (auto s = settle(); !s) return abandon(s.error());
  if (auto w = flush(); !w) return std::unexpected(w.error());
  if (canary_only) {
    if (auto w = note_canary_progress(store); !w) return std::unexpected(w.error());
  }
  progress.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - sending_started).count();
  if (watcher.halted()) return std::unexpected(halted_error(store, campaign));
  if (stop_requested()) {
    return fail("interrupted; state is saved — run send again to continue", ExitCode::k_runtime);
  }
  auto final_counts = store.counts();
  if (!final_counts) return std::unexpected(final_counts.error());
  summary.counts = *final_counts;
  (void)store.append_event("stage_end", "blindcast",
                           fmt::format("stage {} ended: {} sent this run, {} not delivered", options.stage,
                                       progress.sent_this_run, progress.failed_this_run));
  return summary;
}

}  // namespace blindcast::send
