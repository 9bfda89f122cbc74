#include "send/halt.hpp"

#include <sys/stat.h>

#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/file.hpp"

namespace blindcast::send {

namespace {

constexpr const char* k_key = "halt";

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// Quarantines `data` with `reason`; returns the path of the copy.
Result<std::filesystem::path> quarantine(const campaign::LoadedCampaign& campaign, std::int64_t line,
                                         const std::string& data, const std::string& reason) {
  const auto dir = campaign.state_dir() / "quarantine";
  (void)util::make_private_dirs(dir);
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

Result<std::optional<HaltState>> read_halt(store::StateStore& store) {
  auto raw = store.get_meta(k_key);
  if (!raw) return std::unexpected(raw.error());
  if (!*raw) return std::optional<HaltState>();
  const auto j = nlohmann::json::parse(**raw, nullptr, false);
  HaltState h;
  if (j.is_object()) {
    h.kind = j.value("kind", "operator");
    h.reason = j.value("reason", "");
    h.by = j.value("by", "");
    h.at = j.value("at", std::int64_t{0});
    h.content_hash = j.value("content_hash", "");
  } else {
    h.kind = "operator";
    h.reason = "unreadable halt record";
  }
  return std::optional<HaltState>(h);
}

Result<void> write_halt(store::StateStore& store, const HaltState& halt) {
  const nlohmann::json j{{"kind", halt.kind}, {"reason", halt.reason}, {"by", halt.by},
                         {"at", halt.at}, {"content_hash", halt.content_hash}};
  return store.set_meta(k_key, j.dump());
}

Result<void> clear_halt(store::StateStore& store) { return store.delete_meta(k_key); }

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

}  // namespace blindcast::send
