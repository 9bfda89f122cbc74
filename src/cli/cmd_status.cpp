// status, halt, release: reading and steering a campaign's state.
#include <filesystem>
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "campaign/campaign.hpp"
#include "compose/guard_setup.hpp"
#include "send/halt.hpp"
#include "send/sender.hpp"
#include "send/stages.hpp"
#include "send/status_report.hpp"
#include "cli/context.hpp"
#include "store/pg_store.hpp"
#include "util/mask.hpp"
#include "util/strings.hpp"

namespace blindcast::cli {

namespace {

std::string login_name() {
  if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_name != nullptr) return pw->pw_name;
  return fmt::format("uid {}", ::getuid());
}

std::string when(std::int64_t t) { return fmt::format("{:%Y-%m-%d %H:%M:%S}Z", fmt::gmtime(static_cast<std::time_t>(t))); }

}  // namespace

int cmd_status(const CommonOptions& opts, bool audit) {
  bool missing = false;
  auto store = open_store(opts, StoreUse::k_existing, &missing);
  if (!store) return report(store.error());
  // A campaign that never sent: an empty store in memory answers every question.
  if (missing) store = store::open_sqlite_store(":memory:");
  if (!store) return report(store.error());
  auto status = send::read_status(opts.dir, **store, missing ? std::string() : store::describe_state(state_path(opts)), audit ? 100000 : 10);
  if (!status) return report(status.error());
  const auto& r = *status;
  const auto mask = [&](const std::string& t) { return opts.show_addresses ? t : util::mask_addresses_in(t); };
  if (opts.json) {
    print_json(send::status_json(r, opts.show_addresses));
    return 0;
  }
  using S = store::RecipientState;
  const auto& hash = r.content_hash;
  const auto& halt = r.halt;
  const auto& gates = r.gates;
  const auto& running = r.running;
  const auto* counts = &r.counts;
  const auto* errors = &r.errors;
  const auto* events = &r.events;
  const auto* rejected = &r.rejected;
  std::printf("campaign: %s\ncontent hash: %s\n", opts.dir.c_str(), hash.c_str());
  // The guard's ledger (one per campaign directory) knows whether the
  // campaign has sent, whatever store it used.
  std::error_code ec;
  const auto ledger = std::filesystem::path(opts.dir) / ".blindcast" / "guard-ledger";
  const bool has_sent = std::filesystem::file_size(ledger, ec) > 0 && !ec;
  if (has_sent && counts->total == 0) {
    std::printf("this store (%s) has no recipients, but the campaign has sent (its guard's ledger %s says so): give "
                "the --state it sent with (a shared store, or the service's)\n",
                store::describe_state(state_path(opts)).c_str(), ledger.c_str());
  } else if (missing) {
    std::printf("no state store yet (%s): nothing has been sent from this campaign\n",
                store::describe_state(state_path(opts)).c_str());
  }
  if (r.sender) std::printf("sender running: %s\n", send::describe_owner(*r.sender).c_str());
  if (halt) {
    std::printf("HALTED (%s) by %s at %s: %s\n", halt->kind.c_str(), halt->by.c_str(), when(halt->at).c_str(),
                mask(halt->reason).c_str());
  }
  if (gates) {
    std::printf("lint: %s\n", gates->lint_detail.c_str());
    std::printf("canary: %s\n", gates->canary.why.c_str());
    std::printf("approvals: %zu of %lld for the current content%s%s\n", gates->approvers.size(),
                static_cast<long long>(gates->approvals_required),
                gates->approvers.empty() ? "" : fmt::format(" ({})", fmt::join(gates->approvers, ", ")).c_str(),
                gates->voided_approvals > 0
                    ? fmt::format("; {} earlier approval(s) voided by content changes", gates->voided_approvals).c_str()
                    : "");
    std::printf("full stage: %s\n", gates->open() ? "open" : "closed");
  }
  if (running) {
    const double eta = running->value("eta_seconds", -1.0);
    std::printf("running: stage %s, %.0f messages/s, ETA %s\n", running->value("stage", "?").c_str(),
                running->value("rate_per_second", 0.0),
                eta < 0 ? "?" : util::format_duration(static_cast<std::int64_t>(eta)).c_str());
    if (running->contains("lanes")) {
      for (const auto& [lane, l] : (*running)["lanes"].items()) {
        const double rate = l.value("rate_per_second", 0.0);
        const double configured = l.value("configured_per_second", 0.0);
        std::printf("  lane %-10s %6.0f/min%s\n", lane.c_str(), rate * 60,
                    rate < configured ? fmt::format(" (throttled; configured {:.0f}/min)", configured * 60).c_str() : "");
      }
    }
  }
  std::printf("recipients: %s\n", util::with_commas(counts->total).c_str());
  for (int i = 0; i < store::k_state_count; ++i) {
    const auto n = counts->by_state[static_cast<std::size_t>(i)];
    if (n > 0) std::printf("  %-11s %s\n", store::state_name(static_cast<S>(i)), util::with_commas(n).c_str());
  }
  if (!r.feedback.empty()) {
    std::printf("bounces and complaints (refused by the relay + reported later; limits %.1f%% and %.1f%%):\n",
                r.max_bounce_rate * 100, r.max_complaint_rate * 100);
    for (const auto& f : r.feedback) {
      std::printf("  %-10s sent %s, hard bounces %s+%s (%.2f%%%s), soft %s, complaints %s (%.3f%%%s)\n", f.lane.c_str(),
                  util::with_commas(f.sent).c_str(), util::with_commas(f.refused).c_str(),
                  util::with_commas(f.reported).c_str(), f.bounce_rate() * 100,
                  f.bounce_rate() > r.max_bounce_rate ? " OVER" : "", util::with_commas(f.soft).c_str(),
                  util::with_commas(f.complaints).c_str(), f.complaint_rate() * 100,
                  f.complaint_rate() > r.max_complaint_rate ? " OVER" : "");
    }
  }
  if (counts->possible_duplicates > 0) {
    std::printf("possible duplicates: %s extra deliveries to %s recipients (in flight at a crash or a lost "
                "connection, then sent again)\n",
                util::with_commas(counts->possible_duplicates).c_str(),
                util::with_commas(counts->possible_duplicate_recipients).c_str());
  }
  if (rejected && !rejected->empty()) {
    std::printf("rejected audience rows:\n");
    for (const auto& [line, reason] : *rejected) std::printf("  audience.csv:%lld: %s\n", static_cast<long long>(line), reason.c_str());
  }
  if (errors && !errors->empty()) {
    std::printf("last errors:\n");
    for (const auto& e : *errors) {
      std::printf("  line %lld %s: %s\n", static_cast<long long>(e.line), e.state.c_str(), mask(e.reply).c_str());
    }
  }
  if (events && !events->empty()) {
    std::printf("audit log%s:\n", audit ? "" : " (latest 10; --audit for all)");
    for (const auto& e : *events) {
      std::printf("  %s %-16s %-14s %s\n", when(e.at).c_str(), e.kind.c_str(), e.actor.c_str(), mask(e.detail).c_str());
    }
  }
  return 0;
}

int cmd_halt(const CommonOptions& opts, const std::string& reason, const std::string& by) {
  auto store = open_store(opts, StoreUse::k_default);
  if (!store) return report(store.error());
  const std::string who = by.empty() ? login_name() : by;
  send::HaltState h{"operator", reason, who, static_cast<std::int64_t>(std::time(nullptr)),
                        campaign::content_hash(opts.dir).value_or("")};
  auto existing = send::read_halt(**store);
  if (existing && *existing && (*existing)->kind == "guard") {
    std::printf("already halted by the privacy guard; recording the operator's halt in the audit log\n");
  } else if (auto w = send::write_halt(**store, h); !w) {
    return report(w.error());
  }
  if (auto w = (*store)->append_event("halt", who, reason); !w) return report(w.error());
  auto owner = (*store)->current_owner();
  if (!owner) return report(owner.error());
  if (opts.json) {
    print_json({{"halted", opts.dir},
                {"reason", reason},
                {"by", who},
                {"sender", *owner ? nlohmann::json{{"pid", (*owner)->pid}, {"host", (*owner)->host},
                                                   {"since", (*owner)->since}}
                                  : nlohmann::json(nullptr)}});
  }
  if (*owner) {
    std::printf("halted %s: the sender running (%s) stops within a second\n", opts.dir.c_str(),
                send::describe_owner(**owner).c_str());
  } else {
    std::printf("halted %s: no sender is running with this state store (%s); none starts until 'blindcast "
                "release %s'\n",
                opts.dir.c_str(), store::describe_state(state_path(opts)).c_str(), opts.dir.c_str());
  }
  return 0;
}

int cmd_release(const CommonOptions& opts, const std::string& by) {
  auto store = open_store(opts, StoreUse::k_default);
  if (!store) return report(store.error());
  auto halt = send::read_halt(**store);
  if (!halt) return report(halt.error());
  const std::string who = by.empty() ? login_name() : by;
  if (*halt && (*halt)->kind == "guard") {
    const auto now_hash = campaign::content_hash(opts.dir).value_or("");
    if (!now_hash.empty() && now_hash == (*halt)->content_hash) {
      return report(Error{"the privacy guard halted this campaign and its content has not changed since; fix the "
                          "templates, catalogs or audience that caused it (see 'blindcast status'), run 'blindcast "
                          "lint', then release",
                          ExitCode::k_guard});
    }
  }
  // The guard's ledger keeps its own halt (a limit tripped by any sender,
  // whatever its --state): released here too.
  auto ledger = compose::release_ledger(opts.dir);
  if (!ledger) return report(ledger.error());
  if (!*halt && ledger->empty()) {
    if (opts.json) print_json({{"released", false}, {"halted", false}});
    std::printf("%s is not halted\n", opts.dir.c_str());
    return 0;
  }
  if (*halt) {
    if (auto w = send::clear_halt(**store); !w) return report(w.error());
    if (auto w = (*store)->append_event("release", who,
                                        fmt::format("released {} halt: {}", (*halt)->kind, (*halt)->reason));
        !w) {
      return report(w.error());
    }
  }
  if (!ledger->empty()) {
    if (auto w = (*store)->append_event("release", who, fmt::format("released the guard's ledger: {}", *ledger)); !w) {
      return report(w.error());
    }
  }
  if (opts.json) {
    print_json({{"released", true},
                {"halt", *halt ? nlohmann::json{{"kind", (*halt)->kind}, {"reason", (*halt)->reason}}
                               : nlohmann::json(nullptr)},
                {"ledger", ledger->empty() ? nlohmann::json(nullptr) : nlohmann::json(*ledger)},
                {"by", who}});
  }
  std::printf("released %s\n", opts.dir.c_str());
  return 0;
}

}  // namespace blindcast::cli
