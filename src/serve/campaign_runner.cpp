#include "serve/campaign_runner.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "campaign/campaign.hpp"
#include "send/gates.hpp"
#include "send/halt.hpp"
#include "send/seed_stage.hpp"
#include "send/sender.hpp"
#include "send/status_report.hpp"
#include "serve/metrics.hpp"
#include "store/pg_store.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/mask.hpp"
#include "util/threads.hpp"

namespace blindcast::serve {

namespace {

std::filesystem::path store_path(const std::filesystem::path& dir) { return dir / ".blindcast" / "state.db"; }

ApiError conflict(std::string code, std::string message) { return {409, std::move(code), std::move(message), ""}; }

// Where the state of the campaign in `dir` is: its own file beside it, or,
// when the service's store (`org_path`) is PostgreSQL, its rows there.
std::string campaign_state(const std::filesystem::path& dir, const std::string& org_path) {
  if (!store::is_postgres(org_path)) return store_path(dir).string();
  util::Diagnostics ignored;
  const auto cfg = campaign::load_config(dir.string(), ignored);
  return store::postgres_locator(org_path, cfg ? cfg->id : std::string());
}

// Opens the campaign's store, creating it (0600) when `create`.
Result<std::unique_ptr<store::StateStore>> open_campaign_store(const std::filesystem::path& dir, bool create,
                                                               const std::string& org_path) {
  if (store::is_postgres(org_path)) return store::open_postgres_store(campaign_state(dir, org_path));
  const auto path = store_path(dir);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (!create) return std::unique_ptr<store::StateStore>();
    (void)util::make_private_dirs(path.parent_path());
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
      return fail(fmt::format("{}: cannot create the state store: {}", path.string(), std::strerror(errno)),
                  ExitCode::k_runtime);
    }
    if (fd >= 0) ::close(fd);
  }
  return store::open_sqlite_store(path.string(), org_path);
}

std::unexpected<ApiError> internal(const Error& e) {
  return std::unexpected(ApiError{500, "internal", util::mask_addresses_in(e.message), ""});
}

}  // namespace

CampaignRunner::CampaignRunner(const ServerConfig& config, delivery::SharedTransport* shared)
    : m_shared(shared), m_server_url(config.transport.url), m_org_path(config.state.string()) {
  if (config.bounces) m_bounces = config.bounces->verp;
  for (const auto& dir : config.campaigns) {
    util::Diagnostics diags;
    auto cfg = campaign::load_config(dir, diags);
    if (!cfg || cfg->id.empty()) {
      util::log_warn(fmt::format("{}: not a usable campaign (run 'blindcast lint {}'); not served", dir.string(),
                                 dir.string()));
      continue;
    }
    if (cfg->transactional) continue;  // a stream listed among campaigns: streams/ serves it
    if (const auto [it, fresh] = m_dirs.emplace(cfg->id, dir); !fresh) {
      util::log_warn(fmt::format("{} and {} both have id '{}'; only the first is served", it->second.string(),
                                 dir.string(), cfg->id));
    }
  }
}

CampaignRunner::~CampaignRunner() { join(); }

void CampaignRunner::join() {
  std::vector<std::shared_ptr<Run>> runs;
  {
    std::lock_guard lock(m_mutex);
    for (auto& [id, r] : m_runs) runs.push_back(r);
  }
  for (auto& r : runs) {
    if (r->thread.joinable()) r->thread.join();
  }
}

std::expected<std::filesystem::path, ApiError> CampaignRunner::dir_of(const std::string& id) {
  const auto it = m_dirs.find(id);
  if (it == m_dirs.end()) {
    return std::unexpected(ApiError{404, "unknown_campaign", fmt::format("no campaign '{}' on this node", id.substr(0, 128)), ""});
  }
  return it->second;
}

nlohmann::json CampaignRunner::list() {
  nlohmann::json out = nlohmann::json::array();
  std::lock_guard lock(m_mutex);
  for (const auto& [id, dir] : m_dirs) {
    nlohmann::json j{{"id", id}, {"dir", dir.string()}};
    if (const auto r = m_runs.find(id); r != m_runs.end()) {
      j["run"] = {{"stage", r->second->stage}, {"by", r->second->actor}, {"running", r->second->running},
                  {"result", r->second->result}};
    }
    out.push_back(std::move(j));
  }
  return out;
}

std::expected<nlohmann::json, ApiError> CampaignRunner::status(const std::string& id, bool show_addresses) {
  auto dir = dir_of(id);
  if (!dir) return std::unexpected(dir.error());
  // The run first, the store after: a client that sees "running": false
  // then sees every state that run recorded (read the other way round, the
  // counts could be from a moment before the run's last commit).
  nlohmann::json run;
  {
    std::lock_guard lock(m_mutex);
    if (const auto r = m_runs.find(id); r != m_runs.end()) {
      run = {{"stage", r->second->stage}, {"by", r->second->actor}, {"running", r->second->running},
             {"result", r->second->result}};
    }
  }
  auto store = open_campaign_store(*dir, false, m_org_path);
  if (!store) return internal(store.error());
  const bool missing = *store == nullptr;
  if (missing) store = store::open_sqlite_store(":memory:");
  if (!store) return internal(store.error());
  auto report = send::read_status(dir->string(), **store, missing ? std::string() : store::describe_state(campaign_state(*dir, m_org_path)), 20);
  if (!report) return internal(report.error());
  auto j = send::status_json(*report, show_addresses);
  j["id"] = id;
  if (!run.is_null()) j["run"] = std::move(run);
  return j;
}

std::expected<nlohmann::json, ApiError> CampaignRunner::start(const std::string& id, const std::string& stage,
                                                              const std::string& actor) {
  if (stage != "test" && stage != "canary" && stage != "full") {
    return std::unexpected(ApiError{400, "invalid_request", "'stage' must be \"test\", \"canary\" or \"full\"", "stage"});
  }
  auto dir = dir_of(id);
  if (!dir) return std::unexpected(dir.error());
  {
    std::lock_guard lock(m_mutex);
    if (const auto r = m_runs.find(id); r != m_runs.end() && r->second->running) {
      return std::unexpected(conflict("running", fmt::format("campaign '{}' is running its {} stage (started by {}); "
                                                             "halt it or wait",
                                                             id, r->second->stage, r->second->actor)));
    }
  }
  util::Diagnostics diags;
  auto loaded = campaign::load_campaign(*dir, diags);
  if (!loaded || util::error_count(diags) > 0) {
    return std::unexpected(conflict("campaign_errors", fmt::format("campaign '{}' has errors: {}; run 'blindcast lint "
                                                                   "{}'",
                                                                   id, diags.empty() ? "" : diags.front().str(),
                                                                   dir->string())));
  }
  auto store = open_campaign_store(*dir, true, m_org_path);
  if (!store) return internal(store.error());
  if (auto w = (*store)->get_meta("campaign_id"); w && !*w) (void)(*store)->set_meta("campaign_id", id);
  if (auto h = send::check_not_halted(**store, *loaded); !h) {
    return std::unexpected(conflict("halted", util::mask_addresses_in(h.error().message)));
  }
  std::optional<send::FullStageDecision> full;
  if (stage == "full") {
    auto gates = send::decide_full_stage(*loaded, **store, dir->string(), false, "", actor);
    if (!gates) return internal(gates.error());
    if (!gates->open) {
      auto e = conflict("gate_refused", fmt::format("the full stage is closed for content {}",
                                                    gates->content_hash.substr(0, 12)));
      e.field = nlohmann::json(gates->closed).dump();  // carried to the answer as "reasons"
      return std::unexpected(e);
    }
    full = std::move(*gates);
  } else if (stage == "canary") {
    auto closed = send::decide_canary_stage(*loaded, **store, dir->string());
    if (!closed) return internal(closed.error());
    if (!closed->empty()) {
      auto e = conflict("gate_refused", "the canary stage is closed (it sends to real recipients)");
      e.field = nlohmann::json(*closed).dump();
      return std::unexpected(e);
    }
  }
  auto run = std::make_shared<Run>();
  run->stage = stage;
  run->actor = actor;
  run->running = true;
  run->result = "running";
  {
    std::lock_guard lock(m_mutex);
    if (auto old = m_runs.find(id); old != m_runs.end() && old->second->thread.joinable()) {
      old->second->thread.join();
    }
    m_runs[id] = run;
  }
  const std::filesystem::path d = *dir;
  run->thread = std::thread([this, run, d, id, stage, actor, full = std::move(full)]() mutable {
    util::set_thread_name("bc-campaign");
    std::string result;
    util::Diagnostics diags2;
    auto c = campaign::load_campaign(d, diags2);
    auto s = open_campaign_store(d, true, m_org_path);
    // The service's VERP domain and key: its bounce receiver verifies the tokens.
    if (c && m_bounces) c->config.bounces = m_bounces;
    if (!c || !s) {
      result = "failed: cannot load the campaign or its store";
    } else if (auto lease = send::own_campaign(**s, d.string()); !lease) {
      result = "refused: " + lease.error().message;
    } else {
      send::SendOptions so;
      so.stage = stage;
      so.state_path = campaign_state(d, m_org_path);
      so.org_path = m_org_path;
      so.full_stage = std::move(full);
      so.actor = actor;
      if (m_shared != nullptr && c->config.transport.url == m_server_url) {
        so.shared_transport = [this] { return m_shared->channel(1); };
      }
      if (stage == "test") {
        auto r = send::run_seed_stage(*c, **s, so);
        result = r ? fmt::format("finished: {} sent, {} not delivered", r->sent, r->failed)
                   : "stopped: " + r.error().message;
      } else {
        auto r = send::run_send(*c, **s, so, [](const send::SendProgress&) {});
        result = r ? fmt::format("finished: {} sent this run, {} not delivered", r->progress.sent_this_run,
                                 r->progress.failed_this_run)
                   : "stopped: " + r.error().message;
      }
    }
    result = util::mask_addresses_in(result);
    util::log_info(fmt::format("campaign {}: stage {} (started by {}) {}", id, stage, actor, result));
    std::lock_guard lock(m_mutex);
    run->running = false;
    run->result = result;
  });
  return nlohmann::json{{"id", id}, {"stage", stage}, {"status", "started"}, {"by", actor}};
}

std::expected<nlohmann::json, ApiError> CampaignRunner::approve(const std::string& id, const std::string& actor,
                                                                const std::string& expected_hash) {
  auto dir = dir_of(id);
  if (!dir) return std::unexpected(dir.error());
  util::Diagnostics diags;
  auto loaded = campaign::load_campaign(*dir, diags);
  if (!loaded || util::error_count(diags) > 0) {
    return std::unexpected(conflict("campaign_errors", fmt::format("campaign '{}' has errors; run 'blindcast lint {}'",
                                                                   id, dir->string())));
  }
  auto store = open_campaign_store(*dir, true, m_org_path);
  if (!store) return internal(store.error());
  auto approved = send::approve_content(*loaded, **store, actor, expected_hash);
  if (!approved && approved.error().exit_code == ExitCode::k_gate) {
    return std::unexpected(ApiError{409, "content_changed", approved.error().message, "content_hash"});
  }
  if (!approved) return internal(approved.error());
  const auto& g = approved->gates;
  return nlohmann::json{{"approved", approved->content_hash}, {"by", actor},        {"approvals", g.approvers},
                        {"required", g.approvals_required},  {"open", g.open()}, {"closed", g.closed_gates(dir->string())}};
}

std::expected<nlohmann::json, ApiError> CampaignRunner::halt(const std::string& id, const std::string& reason,
                                                             const std::string& actor) {
  auto dir = dir_of(id);
  if (!dir) return std::unexpected(dir.error());
  if (reason.empty()) return std::unexpected(ApiError{400, "invalid_request", "'reason' is required", "reason"});
  auto store = open_campaign_store(*dir, true, m_org_path);
  if (!store) return internal(store.error());
  send::HaltState h;
  h.kind = "operator";
  h.reason = util::mask_addresses_in(reason);
  h.by = actor;
  h.at = static_cast<std::int64_t>(std::time(nullptr));
  h.content_hash = campaign::content_hash(*dir).value_or("");
  if (auto w = send::write_halt(**store, h); !w) return internal(w.error());
  (void)(*store)->append_event("halt", actor, h.reason);
  return nlohmann::json{{"id", id}, {"halted", true}, {"by", actor}, {"reason", h.reason}};
}

std::expected<nlohmann::json, ApiError> CampaignRunner::release(const std::string& id, const std::string& actor) {
  auto dir = dir_of(id);
  if (!dir) return std::unexpected(dir.error());
  auto store = open_campaign_store(*dir, false, m_org_path);
  if (!store) return internal(store.error());
  if (*store == nullptr) return nlohmann::json{{"id", id}, {"halted", false}};
  auto h = send::read_halt(**store);
  if (!h) return internal(h.error());
  if (!*h) return nlohmann::json{{"id", id}, {"halted", false}};
  if ((*h)->kind == "guard" && (*h)->content_hash == campaign::content_hash(*dir).value_or("")) {
    return std::unexpected(conflict("guard_halt", "a privacy guard halt is released only after the content changed; fix "
                                                  "the campaign, lint it, then release"));
  }
  if (auto w = send::clear_halt(**store); !w) return internal(w.error());
  (void)(*store)->append_event("release", actor, fmt::format("released a {} halt", (*h)->kind));
  return nlohmann::json{{"id", id}, {"halted", false}, {"by", actor}};
}

bool CampaignRunner::suppress(const std::string& id, const std::string& email, const std::string& reason) {
  const auto it = m_dirs.find(id);
  if (it == m_dirs.end()) return false;
  auto store = open_campaign_store(it->second, true, m_org_path);
  if (!store) return false;
  const std::string address = email;
  auto added = (*store)->add_suppressions(std::span<const std::string>(&address, 1), reason);
  if (!added) return false;
  (void)(*store)->apply_suppressions();
  return true;
}

std::expected<std::vector<check::RenderedPreview>, ApiError> CampaignRunner::previews(const std::string& id,
                                                                                     const std::string& recipient,
                                                                                     bool synthetic,
                                                                                     std::string* content_hash) {
  auto dir = dir_of(id);
  if (!dir) return std::unexpected(dir.error());
  auto hash = campaign::content_hash(*dir);
  if (!hash) return internal(hash.error());
  if (content_hash != nullptr) *content_hash = *hash;
  const std::pair<std::string, bool> key{id, synthetic};
  const auto cached = [&]() -> std::optional<std::vector<check::RenderedPreview>> {
    std::lock_guard lock(m_preview_mutex);
    if (const auto it = m_previews.find(key); it != m_previews.end() && it->second.first == *hash) {
      return it->second.second;
    }
    return std::nullopt;
  };
  if (recipient.empty()) {
    if (auto c = cached()) return std::move(*c);
  }
  std::lock_guard render(m_render_mutex);
  if (recipient.empty()) {
    if (auto c = cached()) return std::move(*c);  // rendered while this one waited
  }
  util::Diagnostics diags;
  auto rendered = check::render_previews(*dir, recipient, diags, synthetic && recipient.empty());
  if (!rendered) {
    const bool not_found = !recipient.empty() && rendered.error().message.find("not in audience.csv") != std::string::npos;
    return std::unexpected(ApiError{not_found ? 404 : 409, not_found ? "not_found" : "cannot_preview",
                                    util::mask_addresses_in(rendered.error().message), not_found ? "recipient" : ""});
  }
  if (recipient.empty()) {
    std::lock_guard lock(m_preview_mutex);
    m_previews[key] = {*hash, *rendered};
  }
  return std::move(*rendered);
}

nlohmann::json CampaignRunner::lookup(const std::string& key, bool show_addresses) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [id, dir] : m_dirs) {
    auto store = open_campaign_store(dir, false, m_org_path);
    if (!store || *store == nullptr) continue;
    auto r = (*store)->find_recipient(key);
    if (!r || !*r) continue;
    const auto& x = **r;
    out.push_back({{"id", id},
                   {"line", x.line},
                   {"state", store::state_name(x.state)},
                   {"attempts", x.attempts},
                   {"reply", show_addresses ? x.reply : util::mask_addresses_in(x.reply)},
                   {"updated_at", x.updated_at},
                   {"lane", x.lane},
                   {"possible_duplicate", x.duplicate_risk > 0}});
  }
  return out;
}

std::string CampaignRunner::metrics() {
  std::string out;
  out += "# HELP blindcast_campaign_recipients Campaign recipients by lane and state (outcome).\n";
  out += "# TYPE blindcast_campaign_recipients gauge\n";
  std::string rates;
  std::string feedback;  // bounce and complaint rates
  for (const auto& [id, dir] : m_dirs) {
    auto store = open_campaign_store(dir, false, m_org_path);
    if (!store || *store == nullptr) continue;
    if (auto c = (*store)->counts_by_lane()) {
      for (const auto& [lane, state, n] : *c) {
        out += fmt::format("blindcast_campaign_recipients{{campaign=\"{}\",lane=\"{}\",state=\"{}\"}} {}\n",
                           prometheus_label(id), prometheus_label(lane), store::state_name(state), n);
      }
      // Against what was sent, per lane (a lane is a provider); `status` shows the same.
      if (auto f = send::lane_feedback(*c, (*store)->org_list(), id)) {
        for (const auto& l : *f) {
          if (l.lane == "all" || l.sent == 0) continue;
          feedback += fmt::format("blindcast_bounce_rate{{campaign=\"{0}\",lane=\"{1}\"}} {2:.6f}\n"
                                  "blindcast_complaint_rate{{campaign=\"{0}\",lane=\"{1}\"}} {3:.6f}\n",
                                  prometheus_label(id), prometheus_label(l.lane), l.bounce_rate(), l.complaint_rate());
        }
      }
    }
    if (auto p = (*store)->get_meta("progress"); p && *p) {
      auto j = nlohmann::json::parse(**p, nullptr, false);
      if (j.is_object() && std::time(nullptr) - j.value("at", std::int64_t{0}) <= 30 && j.contains("lanes")) {
        for (const auto& [lane, l] : j["lanes"].items()) {
          rates += fmt::format("blindcast_lane_rate_per_second{{campaign=\"{}\",lane=\"{}\"}} {}\n",
                               prometheus_label(id), prometheus_label(lane), l.value("rate_per_second", 0.0));
        }
      }
    }
  }
  out += "# HELP blindcast_bounce_rate Hard bounces (refused by the relay or reported later) per message sent, by "
         "campaign and lane.\n";
  out += "# TYPE blindcast_bounce_rate gauge\n";
  out += "# HELP blindcast_complaint_rate Complaints (feedback reports) per message sent, by campaign and lane; "
         "Gmail and Yahoo block senders above blindcast_complaint_rate_limit.\n";
  out += "# TYPE blindcast_complaint_rate gauge\n";
  out += feedback;
  out += "# HELP blindcast_complaint_rate_limit The complaint rate mailbox providers tolerate (0.3%).\n";
  out += "# TYPE blindcast_complaint_rate_limit gauge\nblindcast_complaint_rate_limit 0.003\n";
  out += "# HELP blindcast_lane_rate_per_second A running campaign's current rate per lane.\n";
  out += "# TYPE blindcast_lane_rate_per_second gauge\n";
  out += rates;
  return out;
}

}  // namespace blindcast::serve
