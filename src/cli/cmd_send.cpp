// send: runs a stage, with live progress on a terminal and periodic log lines
// without one.
#include <pwd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "campaign/campaign.hpp"
#include "send/gates.hpp"
#include "send/sender.hpp"
#include "send/stages.hpp"
#include "send/seed_stage.hpp"
#include "cli/context.hpp"
#include "store/pg_store.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace blindcast::cli {

namespace {

std::string login_name() {
  if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_name != nullptr) return pw->pw_name;
  return fmt::format("uid {}", ::getuid());
}

// A live line on a terminal (clipped to its width, redrawn in place); a
// progress log line every 5 s without one.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool quiet)
      : m_tty(!quiet && !util::log_is_json() && ::isatty(STDERR_FILENO) == 1), m_quiet(quiet) {}

  void operator()(const send::SendProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    const double since = std::chrono::duration<double>(now - m_last).count();
    // A new failure is shown at once (a relay refusing every connection must
    // not look like a slow start), otherwise a line every 5 s.
    const bool news = !p.last_reply.empty() && p.last_reply != m_last_reply;
    if (m_quiet || since < (m_tty || news ? 0.2 : 5.0)) return;
    m_last = now;
    m_last_reply = p.last_reply;
    const double rate = p.recent_rate;
    const std::int64_t remaining = std::max<std::int64_t>(0, p.total - p.done - p.sent_this_run - p.failed_this_run);
    // Overall ETA: the slowest lane's, each lane at its own current rate.
    double eta_seconds = rate > 0 ? static_cast<double>(remaining) / rate : -1;
    std::string lanes;
    nlohmann::json lanes_json = nlohmann::json::object();
    for (const auto& [lane, todo] : p.todo_by_lane) {
      const auto get = [&](const std::map<std::string, std::int64_t>& m) {
        const auto it = m.find(lane);
        return it == m.end() ? std::int64_t{0} : it->second;
      };
      const std::int64_t sent = get(p.sent_by_lane), deferred = get(p.deferred_by_lane), bounced = get(p.bounced_by_lane);
      lanes += fmt::format(" {}={}/{}", lane, sent, todo);
      if (deferred > 0 || bounced > 0) lanes += fmt::format("(d{} b{})", deferred, bounced);
      auto& lj = lanes_json[lane];
      lj = {{"sent", sent}, {"todo", todo}, {"deferred", deferred}, {"bounced", bounced}};
      if (const auto r = p.rate_by_lane.find(lane); r != p.rate_by_lane.end() && r->second > 0) {
        const double left = static_cast<double>(std::max<std::int64_t>(0, todo - sent - bounced));
        lanes += fmt::format("@{:.0f}/min ETA {}", r->second * 60,
                             util::format_duration(static_cast<std::int64_t>(left / r->second)));
        eta_seconds = std::max(eta_seconds, left / r->second);
        lj["rate_per_second"] = r->second;
        lj["eta_seconds"] = left / r->second;
      }
    }
    const std::string eta = eta_seconds >= 0 ? util::format_duration(static_cast<std::int64_t>(eta_seconds)) : "?";
    std::string line = fmt::format("sent {}/{}  {:.0f}/s  ETA {}  in flight {}  |{}", p.sent_this_run + p.done,
                                   p.total, rate, eta, p.in_flight, lanes);
    if (!p.last_reply.empty()) line += "  last: " + p.last_reply;
    if (m_tty) {
      winsize ws{};
      const std::size_t width = ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
      if (line.size() >= width) {  // one line, never wrapped; cut between characters, not inside one
        line.resize(width - 1);
        while (!line.empty() && (static_cast<unsigned char>(line.back()) & 0xC0) == 0x80) line.pop_back();
        if (!line.empty() && static_cast<unsigned char>(line.back()) >= 0xC0) line.pop_back();
      }
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      m_dirty = true;
    } else if (util::log_is_json()) {
      util::log_fields(util::LogLevel::k_info, "progress",
                       {{"sent", p.sent_this_run + p.done},
                        {"total", p.total},
                        {"rate_per_second", rate},
                        {"eta_seconds", eta_seconds >= 0 ? nlohmann::json(eta_seconds) : nlohmann::json(nullptr)},
                        {"in_flight", p.in_flight},
                        {"lanes", lanes_json},
                        {"last_reply", p.last_reply.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.last_reply)}});
    } else {
      util::log_info("progress: " + line);
    }
  }
  void finish() {
    if (m_dirty) std::fprintf(stderr, "\n");
  }

 private:
  bool m_tty;
  bool m_quiet;
  bool m_dirty = false;
  std::chrono::steady_clock::time_point m_last{};
  std::string m_last_reply;
};

}  // namespace

int cmd_send(const CommonOptions& opts, const std::string& stage, bool force, const std::string& reason,
             bool retry_failed) {
  if (auto ok = send::check_force_request(stage, force, reason); !ok) return report(ok.error());
  util::Diagnostics diags;
  auto loaded = campaign::load_campaign(opts.dir, diags);
  if (!loaded || util::error_count(diags) > 0) {
    print_diagnostics(diags);
    return report(Error{fmt::format("the campaign has errors; nothing was sent. Run 'blindcast lint {}'", opts.dir)});
  }
  if (loaded->config.transactional && stage != "test") {
    return report(Error{fmt::format("{} is a transactional stream (kind = \"transactional\"): 'blindcast serve' sends "
                                    "it one message at a time through POST /v1/messages; only '--stage test' sends "
                                    "from here",
                                    opts.dir)});
  }
  // A new state store for a campaign that has sent before would send
  // everyone again: its guard's ledger (one per campaign directory, whatever
  // the --state) says whether it has.
  std::error_code ec;
  const auto ledger = loaded->state_dir() / "guard-ledger";
  if (!store::is_postgres(opts.state) && !std::filesystem::exists(state_path(opts), ec) &&
      std::filesystem::file_size(ledger, ec) > 0 && !ec) {
    return report(Error{fmt::format("{}: no state store there, but {} has sent before (its guard's ledger {} records "
                                    "it): a new store would send everyone again. Give the --state it used, or, to "
                                    "start over on purpose, remove {}",
                                    state_path(opts), opts.dir, ledger.string(), ledger.string())});
  }
  auto store = open_store(opts, StoreUse::k_create);
  if (!store) return report(store.error());
  auto id = (*store)->get_meta("campaign_id");
  if (!id) return report(id.error());
  if (*id && **id != loaded->config.id) {
    return report(Error{fmt::format("{} belongs to campaign '{}', not '{}'; use another --state",
                                    store::describe_state(state_path(opts)),
                                    **id, loaded->config.id)});
  }
  if (!*id) {
    if (auto w = (*store)->set_meta("campaign_id", loaded->config.id); !w) return report(w.error());
  }
  // One send owns the campaign at a time (whatever the stage).
  auto lease = send::own_campaign(**store, opts.dir);
  if (!lease) return report(lease.error());
  std::optional<send::FullStageDecision> full_stage;
  if (stage == "full") {
    auto gates = send::decide_full_stage(*loaded, **store, opts.dir, force, reason, login_name());
    if (!gates) return report(gates.error());
    if (!gates->open) {
      return refuse(ExitCode::k_gate,
                    fmt::format("the full stage is closed for content {}", gates->content_hash.substr(0, 12)),
                    gates->closed);
    }
    if (gates->forced) {
      std::string text = fmt::format("blindcast: WARNING: forcing {} closed gate(s) of the full stage: {}",
                                     gates->closed.size(), reason);
      if (!util::log_is_json()) {
        for (const auto& c : gates->closed) text += "\n  - forced: " + c;
      }
      say(util::LogLevel::k_warn, text, {{"forced", gates->closed}, {"reason", reason}});
    }
    full_stage = std::move(*gates);
  } else if (stage == "canary") {
    auto closed = send::decide_canary_stage(*loaded, **store, opts.dir);
    if (!closed) return report(closed.error());
    if (!closed->empty()) {
      return refuse(ExitCode::k_gate, "the canary stage is closed (it sends to real recipients)", *closed);
    }
  } else if (stage == "test") {
    send::SendOptions so;
    so.stage = stage;
    so.transport_url = opts.transport;
    so.state_path = state_path(opts);
    so.org_path = org_path(opts);
    auto result = send::run_seed_stage(*loaded, **store, so);
    if (!result) return report(result.error());
    for (const auto& line : result->lines) std::printf("  %s\n", line.c_str());
    std::printf("test stage: %lld sent, %lld not delivered\n", static_cast<long long>(result->sent),
                static_cast<long long>(result->failed));
    if (opts.json) {
      print_json({{"stage", "test"}, {"sent", result->sent}, {"not_delivered", result->failed},
                  {"messages", result->lines}});
    }
    return result->failed > 0 ? static_cast<int>(ExitCode::k_runtime) : 0;
  }
  send::SendOptions so;
  so.stage = stage;
  so.transport_url = opts.transport;
  so.state_path = state_path(opts);
  so.org_path = org_path(opts);
  so.full_stage = std::move(full_stage);
  so.retry_failed = retry_failed;
  so.actor = login_name();
  ProgressPrinter printer(opts.json);
  // A node rides out a restart of the shared database (SPEC §10): its
  // statements wait for it and its transactions run again.
  if (store::is_postgres(so.state_path)) store::wait_out_outages();
  auto summary = send::run_send(*loaded, **store, so, [&](const send::SendProgress& p) { printer(p); });
  printer.finish();
  if (!summary) return report(summary.error());
  const auto& c = summary->counts;
  using S = store::RecipientState;
  std::int64_t undelivered = c.of(S::k_pending) + c.of(S::k_deferred) + c.of(S::k_failed) +
                             c.of(S::k_bounced) + c.of(S::k_in_flight);
  if (stage == "canary") {
    auto st = (*store)->canary_stats();
    undelivered = st ? st->unfinished + st->bounced + st->failed : undelivered;
  }
  if (opts.json) {
    nlohmann::json j;
    j["stage"] = stage;
    j["transport"] = summary->transport;
    j["sent_this_run"] = summary->progress.sent_this_run;
    j["not_delivered_this_run"] = summary->progress.failed_this_run;
    j["elapsed_seconds"] = summary->progress.elapsed_seconds;
    j["setup_seconds"] = summary->setup_seconds;
    j["recovered_in_flight"] = summary->recovered_in_flight;
    j["requeued"] = summary->requeued;
    j["imported"] = summary->imported;
    j["rejected_rows"] = summary->rejected_rows;
    j["duplicate_rows"] = summary->duplicate_rows;
    for (int s = 0; s < store::k_state_count; ++s) {
      j["states"][store::state_name(static_cast<S>(s))] = c.by_state[static_cast<std::size_t>(s)];
    }
    j["possible_duplicates"] = c.possible_duplicates;
    print_json(j);
  } else {
    const double secs = summary->progress.elapsed_seconds;
    std::printf("send %s via %s: %s sent this run in %.1fs (%.0f messages/s; setup %.1fs)\n", stage.c_str(),
                summary->transport.c_str(), util::with_commas(summary->progress.sent_this_run).c_str(), secs,
                secs > 0 ? static_cast<double>(summary->progress.sent_this_run) / secs : 0.0,
                summary->setup_seconds);
    if (summary->imported > 0 || summary->rejected_rows > 0) {
      std::printf("audience: %s imported, %s rows rejected, %s duplicates dropped (details: blindcast status %s)\n",
                  util::with_commas(summary->imported).c_str(), util::with_commas(summary->rejected_rows).c_str(),
                  util::with_commas(summary->duplicate_rows).c_str(), opts.dir.c_str());
    }
    std::printf("state: %s sent, %s failed, %s bounced, %s deferred, %s pending of %s\n",
                util::with_commas(c.of(S::k_sent)).c_str(), util::with_commas(c.of(S::k_failed)).c_str(),
                util::with_commas(c.of(S::k_bounced)).c_str(), util::with_commas(c.of(S::k_deferred)).c_str(),
                util::with_commas(c.of(S::k_pending)).c_str(), util::with_commas(c.total).c_str());
    if (c.possible_duplicates > 0) {
      std::printf("possible duplicates (in flight at an earlier crash): %s\n",
                  util::with_commas(c.possible_duplicates).c_str());
    }
    if (stage == "canary") {
      auto verdict = send::canary_verdict(*loaded, **store, campaign::content_hash(opts.dir).value_or(""));
      if (verdict) std::printf("canary: %s\n", verdict->why.c_str());
    }
  }
  return undelivered > 0 ? static_cast<int>(ExitCode::k_runtime) : 0;
}

}  // namespace blindcast::cli

namespace blindcast::cli {

int cmd_approve(const CommonOptions& opts, const std::string& by, const std::string& content_hash) {
  if (auto ok = send::check_approver(by); !ok) return report(ok.error());
  util::Diagnostics diags;
  auto loaded = campaign::load_campaign(opts.dir, diags);
  if (!loaded || util::error_count(diags) > 0) {  // an approval is of settings that mean what they say
    print_diagnostics(diags);
    return report(Error{fmt::format("the campaign has errors; run 'blindcast lint {}'", opts.dir)});
  }
  auto store = open_store(opts, StoreUse::k_default);
  if (!store) return report(store.error());
  auto approved = send::approve_content(*loaded, **store, by, content_hash);
  if (!approved) return report(approved.error());
  const auto& after = approved->gates;
  std::printf("approved content %s by %s: %zu of %lld approvals\n", approved->content_hash.substr(0, 12).c_str(),
              by.c_str(), after.approvers.size(), static_cast<long long>(after.approvals_required));
  if (!after.lint_clean) {
    std::printf("note: lint has not passed for this content yet (%s)\n", after.lint_detail.c_str());
  }
  if (opts.json) {
    print_json({{"approved", approved->content_hash},
                {"by", by},
                {"approvals", after.approvers},
                {"required", after.approvals_required},
                {"lint", after.lint_detail}});
  }
  return 0;
}

}  // namespace blindcast::cli
