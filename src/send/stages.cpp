#include "send/stages.hpp"

#include <charconv>
#include <algorithm>
#include <cmath>
#include <ctime>
#include <set>

#include <fmt/format.h>

#include "send/halt.hpp"
#include "check/lint.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace blindcast::send {

namespace {

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string percent(double v) { return fmt::format("{:.1f}%", v * 100); }

Result<std::int64_t> meta_int(store::StateStore& store, std::string_view key) {
  auto v = store.get_meta(key);
  if (!v) return std::unexpected(v.error());
  if (!*v) return 0;
  try {
    return std::stoll(**v);
  } catch (...) {
    return 0;
  }
}

}  // namespace

std::vector<std::string> GateReport::closed_gates(const std::string& dir) const {
  std::vector<std::string> out;
  if (!lint_clean) out.push_back(fmt::format("lint: {} — fix them, then run 'blindcast lint {}'", lint_detail, dir));
  if (!canary.passed) {
    out.push_back(fmt::format("canary: {}{}", canary.why,
                              canary.chosen ? "" : fmt::format(" — run 'blindcast send {} --stage canary'", dir)));
  }
  if (only_canary_starter_approved()) {
    out.push_back(fmt::format("approvals: {} started the canary of content {} and cannot be its only approver — "
                              "someone else runs 'blindcast approve {} --by NAME'",
                              canary_started_by, content_hash.substr(0, 12), dir));
  } else if (!approvals_ok()) {
    out.push_back(fmt::format("approvals: {} of {} for content {}{} — run 'blindcast approve {} --by NAME'",
                              approvers.size(), approvals_required, content_hash.substr(0, 12),
                              voided_approvals > 0 ? fmt::format(" ({} earlier approvals voided by content changes)",
                                                                 voided_approvals)
                                                   : "",
                              dir));
  }
  return out;
}

Result<std::int64_t> prepare_canary(const campaign::LoadedCampaign& campaign, store::StateStore& store) {
  auto hash = campaign::content_hash(campaign.dir);
  if (!hash) return std::unexpected(hash.error());
  auto chosen_for = store.get_meta("canary_hash");
  if (!chosen_for) return std::unexpected(chosen_for.error());
  if (*chosen_for && **chosen_for == *hash) {
    auto size = meta_int(store, "canary_size");
    if (!size) return std::unexpected(size.error());
    return *size;
  }
  // Rank unsent recipients by SHA-256(campaign id, address): reproducible everywhere.
  struct Ranked {
    std::string key;
    std::int64_t id;
    std::string email;
  };
  std::vector<Ranked> ranked;
  std::int64_t total = 0;
  if (auto r = store.for_each_recipient([&](std::int64_t, std::string_view) { ++total; }); !r) {
    return std::unexpected(r.error());
  }
  auto r = store.for_each_recipient(
      [&](std::int64_t id, std::string_view email) {
        const std::string lower = util::to_lower_ascii(email);
        ranked.push_back({util::sha256_hex(campaign.config.id + "\n" + lower), id, lower});
      },
      true);
  if (!r) return std::unexpected(r.error());
  const auto& c = campaign.config.canary;
  std::int64_t size = c.size_count > 0 ? c.size_count
                                       : static_cast<std::int64_t>(std::ceil(c.size_fraction * static_cast<double>(total)));
  size = std::min<std::int64_t>(std::max(size, c.min), static_cast<std::int64_t>(ranked.size()));
  std::partial_sort(ranked.begin(), ranked.begin() + size, ranked.end(),
                    [](const Ranked& a, const Ranked& b) { return a.key < b.key; });
  ranked.resize(static_cast<std::size_t>(size));
  std::vector<std::int64_t> ids;
  std::vector<std::string> emails;
  for (const auto& c_row : ranked) {
    ids.push_back(c_row.id);
    emails.push_back(c_row.email);
  }
  std::sort(emails.begin(), emails.end());
  util::Sha256 digest;
  for (const auto& e : emails) digest.update_field(e);
  if (auto w = store.set_canary(ids); !w) return std::unexpected(w.error());
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"canary_hash", *hash},
           {"canary_size", std::to_string(size)},
           {"canary_started_at", std::to_string(unix_now())},
           {"canary_sample", digest.hex_digest()}}) {
    if (auto w = store.set_meta(k, v); !w) return std::unexpected(w.error());
  }
  if (auto w = store.delete_meta("canary_completed_at"); !w) return std::unexpected(w.error());
  (void)store.append_event("canary_chosen", "blindcast",
                           fmt::format("canary sample of {} recipients for content {}", size, hash->substr(0, 12)));
  return size;
}

Result<void> note_canary_progress(store::StateStore& store) {
  auto stats = store.canary_stats();
  if (!stats) return std::unexpected(stats.error());
  if (stats->size == 0 || stats->unfinished > 0) return {};
  auto done = store.get_meta("canary_completed_at");
  if (!done) return std::unexpected(done.error());
  if (*done) return {};
  if (auto w = store.set_meta("canary_completed_at", std::to_string(unix_now())); !w) return w;
  return store.append_event("canary_complete", "blindcast",
                            fmt::format("canary complete: {} sent, {} bounced, {} failed of {}", stats->sent,
                                        stats->bounced, stats->failed, stats->size));
}

Result<CanaryVerdict> canary_verdict(const campaign::LoadedCampaign& campaign, store::StateStore& store,
                                     const std::string& hash) {
  CanaryVerdict v;
  auto chosen_for = store.get_meta("canary_hash");
  if (!chosen_for) return std::unexpected(chosen_for.error());
  if (!*chosen_for) {
    v.why = "no canary has been sent";
    return v;
  }
  v.chosen = true;
  auto sample = store.get_meta("canary_sample");
  if (sample && *sample) v.sample_digest = **sample;
  auto stats = store.canary_stats();
  if (!stats) return std::unexpected(stats.error());
  v.stats = *stats;
  if (**chosen_for != hash) {
    v.why = "the content changed since the canary was sent; send the canary again";
    return v;
  }
  if (stats->size == 0) {
    v.why = "the canary sample is empty";
    return v;
  }
  if (stats->unfinished > 0) {
    v.why = fmt::format("not complete: {} of {} not delivered yet", stats->unfinished, stats->size);
    return v;
  }
  const auto& c = campaign.config.canary;
  // Bounces and complaints that arrived after the relay accepted (DSNs and
  // feedback reports applied to the organisation's list) count too.
  auto started_at = meta_int(store, "canary_started_at");
  if (!started_at) return std::unexpected(started_at.error());
  auto refs = store.org_list().event_refs(campaign.config.id, *started_at);
  if (!refs) return std::unexpected(refs.error());
  std::vector<std::int64_t> bounced_ids, complaint_ids;
  for (const auto& [kind, ref] : *refs) {
    std::int64_t id = 0;
    if (std::from_chars(ref.data(), ref.data() + ref.size(), id).ec != std::errc()) continue;
    (kind == "complaint" ? complaint_ids : bounced_ids).push_back(id);
  }
  auto late = store.canary_among(bounced_ids, true);
  if (!late) return std::unexpected(late.error());
  auto complained = store.canary_among(complaint_ids, false);
  if (!complained) return std::unexpected(complained.error());
  stats->late_bounces = static_cast<std::int64_t>(late->size());
  stats->complaints = static_cast<std::int64_t>(complained->size());
  v.stats = *stats;
  const double bounce = static_cast<double>(stats->bounced + stats->late_bounces) / static_cast<double>(stats->size);
  const double complaint = static_cast<double>(stats->complaints) / static_cast<double>(stats->size);
  const double deferral = static_cast<double>(stats->ever_deferred) / static_cast<double>(stats->size);
  if (bounce > c.max_bounce_rate) {
    v.why = fmt::format("hard-bounce rate {} is over the limit {} ({} of {}: {} refused by the relay, {} reported "
                        "later)",
                        percent(bounce), percent(c.max_bounce_rate), stats->bounced + stats->late_bounces,
                        stats->size, stats->bounced, stats->late_bounces);
    return v;
  }
  if (complaint > c.max_complaint_rate) {
    v.why = fmt::format("complaint rate {} is over the limit {} ({} of {} reported the message as spam)",
                        percent(complaint), percent(c.max_complaint_rate), stats->complaints, stats->size);
    return v;
  }
  if (deferral > c.max_deferral_rate) {
    v.why = fmt::format("deferral rate {} is over the limit {} ({} of {})", percent(deferral),
                        percent(c.max_deferral_rate), stats->ever_deferred, stats->size);
    return v;
  }
  auto started = meta_int(store, "canary_started_at");
  if (!started) return std::unexpected(started.error());
  auto events = store.events(100000);
  if (!events) return std::unexpected(events.error());
  for (const auto& e : *events) {
    if (e.kind == "guard_violation" && e.at >= *started) {
      v.why = "the privacy guard stopped a message after the canary started";
      return v;
    }
  }
  auto completed = meta_int(store, "canary_completed_at");
  if (!completed) return std::unexpected(completed.error());
  const std::int64_t waited = unix_now() - *completed;
  if (*completed == 0 || waited < c.wait_seconds) {
    v.why = fmt::format("waiting for late bounces: {} left (wait = {})",
                        util::format_duration(c.wait_seconds - (*completed == 0 ? 0 : waited)),
                        util::format_duration(c.wait_seconds));
    return v;
  }
  v.passed = true;
  v.why = fmt::format("passed: {} sent, bounce rate {}, complaint rate {}, deferral rate {}", stats->sent,
                      percent(bounce), percent(complaint), percent(deferral));
  return v;
}

Result<void> record_lint_result(store::StateStore& store, const std::string& hash, bool clean, std::size_t errors) {
  if (auto w = store.set_meta("lint_hash", hash); !w) return w;
  return store.set_meta("lint_errors", clean ? "0" : std::to_string(std::max<std::size_t>(errors, 1)));
}

Result<GateReport> evaluate_gates(const campaign::LoadedCampaign& campaign, store::StateStore& store, bool run_lint) {
  GateReport g;
  auto hash = campaign::content_hash(campaign.dir);
  if (!hash) return std::unexpected(hash.error());
  g.content_hash = *hash;
  g.approvals_required = campaign.config.approvals_required;

  auto lint_hash = store.get_meta("lint_hash");
  auto lint_errors = store.get_meta("lint_errors");
  if (!lint_hash || !lint_errors) return std::unexpected(Error{"state store: cannot read the lint result", ExitCode::k_runtime});
  if (*lint_hash && **lint_hash == *hash && *lint_errors) {
    g.lint_clean = **lint_errors == "0";
    g.lint_detail = g.lint_clean ? "clean" : fmt::format("{} error(s) in the current content", **lint_errors);
  } else if (run_lint) {
    const auto report = check::lint_campaign(campaign.dir, {});
    const auto errors = util::error_count(report.diags) + static_cast<std::size_t>(report.guard_violations);
    g.lint_clean = report.loaded && errors == 0;
    g.lint_detail = g.lint_clean ? "clean" : fmt::format("{} error(s) in the current content", errors);
    if (auto w = record_lint_result(store, *hash, g.lint_clean, errors); !w) return std::unexpected(w.error());
  } else {
    g.lint_detail = "not run for the current content";
  }

  auto verdict = canary_verdict(campaign, store, *hash);
  if (!verdict) return std::unexpected(verdict.error());
  g.canary = std::move(*verdict);

  auto approvals = store.approvals();
  if (!approvals) return std::unexpected(approvals.error());
  std::set<std::string> names;
  for (const auto& a : *approvals) {
    if (a.content_hash == *hash) {
      names.insert(a.by);
    } else {
      ++g.voided_approvals;
    }
  }
  g.approvers.assign(names.begin(), names.end());
  auto starter = store.get_meta("canary_started_by");
  if (!starter) return std::unexpected(starter.error());
  if (*starter && (*starter)->starts_with(*hash + "\n")) g.canary_started_by = (*starter)->substr(hash->size() + 1);
  return g;
}

}  // namespace blindcast::send
