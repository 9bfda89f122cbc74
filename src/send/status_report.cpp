#include "send/status_report.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

#include "campaign/campaign.hpp"
#include "util/mask.hpp"
#include "util/utf8.hpp"

namespace blindcast::send {

Result<std::vector<LaneFeedback>> lane_feedback(
    const std::vector<std::tuple<std::string, store::RecipientState, std::int64_t>>& counts_by_lane,
    store::OrgList& org, const std::string& campaign_id) {
  // The relay's refusals and what was reported later (DSNs, feedback reports).
  std::map<std::string, LaneFeedback> lanes;
  for (const auto& [lane, state, n] : counts_by_lane) {
    if (state == store::RecipientState::k_sent || state == store::RecipientState::k_bounced) lanes[lane].sent += n;
    if (state == store::RecipientState::k_bounced) lanes[lane].refused += n;
  }
  auto events = org.event_counts(campaign_id, 0);
  if (!events) return std::unexpected(events.error());
  for (const auto& e : *events) {
    auto& l = lanes[e.lane];
    l.reported += e.hard;
    l.soft += e.soft;
    l.complaints += e.complaints;
  }
  std::vector<LaneFeedback> out;
  LaneFeedback all;
  all.lane = "all";
  for (auto& [lane, l] : lanes) {
    l.lane = lane;
    all.sent += l.sent;
    all.refused += l.refused;
    all.reported += l.reported;
    all.soft += l.soft;
    all.complaints += l.complaints;
    out.push_back(l);
  }
  if (!out.empty()) out.push_back(all);
  return out;
}

namespace {

// `text` cut to at most `max` bytes, at a UTF-8 character's boundary.
std::string_view cut_utf8(std::string_view text, std::size_t max) {
  return text.substr(0, util::utf8_prefix_length(text, max));
}

}  // namespace

std::string reason_of(std::string_view reply) {
  // Masked whole first: a cut between a local part and its '@' would leave
  // the local part unmasked.
  std::string whole = util::mask_addresses_in(reply.substr(0, 4096));
  // Every masked address ("l***@1***.com") becomes "(address)": replies
  // that differ only in whom they name group together.
  for (std::size_t at = whole.find("***@"); at != std::string::npos; at = whole.find("***@", at)) {
    std::size_t b = at;
    while (b > 0 && std::string_view(" <>\"'(),;:[]").find(whole[b - 1]) == std::string_view::npos) --b;
    std::size_t e = whole.find("***", at + 4);
    if (e == std::string::npos) break;
    e += 3;
    while (e < whole.size() && (std::isalnum(static_cast<unsigned char>(whole[e])) != 0 || whole[e] == '.' ||
                                whole[e] == '-')) {
      ++e;
    }
    if (e > b && whole[e - 1] == '.') --e;
    whole.replace(b, e - b, "(address)");
    at = b + 9;
  }
  const std::string_view masked = cut_utf8(whole, 400);
  std::string out;
  std::size_t i = 0;
  const auto is_id_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == ':' || c == '-' || c == '_';
  };
  while (i < masked.size() && out.size() < 200) {
    // A word (letters, digits and . : - _) with 4+ digits in it is an
    // identifier: a queue id, an address, a count, a time.
    if (is_id_char(masked[i]) && (i == 0 || !is_id_char(masked[i - 1]))) {
      std::size_t j = i;
      int digits = 0;
      while (j < masked.size() && is_id_char(masked[j])) digits += std::isdigit(static_cast<unsigned char>(masked[j++])) != 0;
      if (digits >= 4) {
        out += '#';
      } else {
        out.append(masked.substr(i, j - i));
      }
      i = j;
      continue;
    }
    const char c = masked[i++];
    if (std::isspace(static_cast<unsigned char>(c)) != 0) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  out = std::string(cut_utf8(out, 160));
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

Result<StatusReport> read_status(const std::string& dir, store::StateStore& s, const std::string& state_store,
                                 std::size_t history) {
  StatusReport r;
  r.dir = dir;
  r.state_store = state_store;
  if (!state_store.empty()) {
    auto owner = s.current_owner();
    if (!owner) return std::unexpected(owner.error());
    r.sender = std::move(*owner);
  }
  auto counts = s.counts();
  if (!counts) return std::unexpected(counts.error());
  r.counts = *counts;
  auto halt = read_halt(s);
  if (!halt) return std::unexpected(halt.error());
  r.halt = std::move(*halt);
  if (auto errors = s.recent_errors(k_reason_sample)) {
    std::map<std::pair<std::string, std::string>, std::int64_t> grouped;
    for (const auto& e : *errors) ++grouped[{e.state, reason_of(e.reply)}];
    for (const auto& [k, n] : grouped) r.reasons.push_back({k.first, k.second, n});
    std::stable_sort(r.reasons.begin(), r.reasons.end(),
                     [](const ReasonCount& a, const ReasonCount& b) { return a.count > b.count; });
    if (r.reasons.size() > k_top_reasons) r.reasons.resize(k_top_reasons);
    errors->resize(std::min<std::size_t>(errors->size(), 10));
    r.errors = std::move(*errors);
  }
  if (auto events = s.events(history)) r.events = std::move(*events);
  if (auto rejected = s.rejected_rows(history)) r.rejected = std::move(*rejected);
  r.content_hash = campaign::content_hash(dir).value_or("");
  util::Diagnostics ignored;
  if (const auto loaded = campaign::load_campaign(dir, ignored)) {
    if (auto g = evaluate_gates(*loaded, s, false)) r.gates = std::move(*g);
    r.max_bounce_rate = loaded->config.canary.max_bounce_rate;
    r.max_complaint_rate = loaded->config.canary.max_complaint_rate;
    // The per-lane counts come with the counts (one scan of the rows).
    if (auto f = lane_feedback(r.counts.by_lane, s.org_list(), loaded->config.id)) r.feedback = std::move(*f);
  }
  // A send updates "progress" after a batch, at most once a second; older than
  // 30 s means none is running.
  if (auto p = s.get_meta("progress"); p && *p) {
    auto j = nlohmann::json::parse(**p, nullptr, false);
    if (j.is_object() && std::time(nullptr) - j.value("at", std::int64_t{0}) <= 30) r.running = std::move(j);
  }
  return r;
}

nlohmann::json status_json(const StatusReport& r, bool show_addresses) {
  const auto mask = [&](const std::string& t) { return show_addresses ? t : util::mask_addresses_in(t); };
  nlohmann::json j;
  for (int i = 0; i < store::k_state_count; ++i) {
    j["states"][store::state_name(static_cast<store::RecipientState>(i))] = r.counts.by_state[static_cast<std::size_t>(i)];
  }
  j["total"] = r.counts.total;
  j["state_store"] = r.state_store.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.state_store);
  j["sender"] = r.sender ? nlohmann::json{{"pid", r.sender->pid}, {"host", r.sender->host}, {"since", r.sender->since}}
                         : nlohmann::json(nullptr);
  j["running"] = r.running ? *r.running : nlohmann::json(nullptr);
  j["possible_duplicates"] = r.counts.possible_duplicates;
  j["possible_duplicate_recipients"] = r.counts.possible_duplicate_recipients;
  j["content_hash"] = r.content_hash;
  if (r.gates) {
    const auto& g = *r.gates;
    j["gates"] = {{"open", g.open()},
                  {"lint", {{"clean", g.lint_clean}, {"detail", g.lint_detail}}},
                  {"canary", {{"chosen", g.canary.chosen}, {"passed", g.canary.passed}, {"why", g.canary.why},
                              {"size", g.canary.stats.size}, {"sent", g.canary.stats.sent},
                              {"bounced", g.canary.stats.bounced}, {"sample", g.canary.sample_digest}}},
                  {"approvals", {{"by", g.approvers}, {"required", g.approvals_required},
                                 {"voided", g.voided_approvals}}},
                  {"closed", g.closed_gates(r.dir)}};
  }
  j["halted"] = r.halt ? nlohmann::json{{"kind", r.halt->kind}, {"reason", r.halt->reason}, {"by", r.halt->by},
                                        {"at", r.halt->at}}
                       : nlohmann::json(nullptr);
  j["last_errors"] = nlohmann::json::array();
  for (const auto& e : r.errors) {
    j["last_errors"].push_back({{"line", e.line}, {"state", e.state}, {"reply", mask(e.reply)}, {"at", e.at}});
  }
  j["feedback"] = nlohmann::json::array();
  for (const auto& f : r.feedback) {
    j["feedback"].push_back({{"lane", f.lane}, {"sent", f.sent}, {"refused", f.refused}, {"reported", f.reported},
                             {"soft", f.soft}, {"complaints", f.complaints}, {"bounce_rate", f.bounce_rate()},
                             {"complaint_rate", f.complaint_rate()}});
  }
  // Per lane: every state's count (the dashboard's progress per provider).
  j["lanes"] = nlohmann::json::object();
  for (const auto& [lane, state, n] : r.counts.by_lane) {
    auto& l = j["lanes"][lane.empty() ? "(unassigned)" : lane];
    l[store::state_name(state)] = n;
    l["total"] = l.value("total", std::int64_t{0}) + n;
  }
  j["top_reasons"] = nlohmann::json::array();
  for (const auto& t : r.reasons) {
    j["top_reasons"].push_back({{"state", t.state}, {"reason", t.reason}, {"count", t.count}});
  }
  j["limits"] = {{"max_bounce_rate", r.max_bounce_rate}, {"max_complaint_rate", r.max_complaint_rate}};
  j["rejected_rows"] = nlohmann::json::array();
  for (const auto& [line, reason] : r.rejected) j["rejected_rows"].push_back({{"line", line}, {"reason", reason}});
  j["audit"] = nlohmann::json::array();
  for (const auto& e : r.events) {
    j["audit"].push_back({{"at", e.at}, {"kind", e.kind}, {"actor", e.actor}, {"detail", mask(e.detail)}});
  }
  return j;
}

}  // namespace blindcast::send
