// The campaigns a service runs (SPEC §8: GET/POST /v1/campaigns...): the
// same stages, gates, approvals, halts and audit as the command line, with
// the API key's name as the person. A stage runs on a thread of its own,
// holding the campaign store's owner lease like `blindcast send` (so a
// command-line send of the same campaign is refused while it runs, and the
// other way round).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "check/preview.hpp"
#include "delivery/shared_transport.hpp"
#include "serve/server_config.hpp"
#include "serve/streams.hpp"

namespace blindcast::serve {

class CampaignRunner {
 public:
  // `shared`: the service's transport; a campaign whose [transport] url is
  // the server's sends through a channel of it (priority 1), sharing lanes
  // and connections with transactional mail. Others use their own.
  CampaignRunner(const ServerConfig& config, delivery::SharedTransport* shared);
  ~CampaignRunner();
  CampaignRunner(const CampaignRunner&) = delete;
  CampaignRunner& operator=(const CampaignRunner&) = delete;

  // Every campaign: id, directory, and what its last run here did.
  nlohmann::json list();
  // What `status --json` shows, plus this service's run of it.
  std::expected<nlohmann::json, ApiError> status(const std::string& id, bool show_addresses);
  // Starts `stage` (test, canary, full) for `actor`; gates as the command line.
  std::expected<nlohmann::json, ApiError> start(const std::string& id, const std::string& stage, const std::string& actor);
  std::expected<nlohmann::json, ApiError> approve(const std::string& id, const std::string& actor);
  std::expected<nlohmann::json, ApiError> halt(const std::string& id, const std::string& reason, const std::string& actor);
  std::expected<nlohmann::json, ApiError> release(const std::string& id, const std::string& actor);
  // Adds `email` to campaign `id`'s suppression list (an unsubscribe); false when no such campaign.
  bool suppress(const std::string& id, const std::string& email, const std::string& reason);
  // The previews of campaign `id` (every locale's first row, or the row of
  // `recipient`) for the dashboard; every locale's are kept per content hash.
  std::expected<std::vector<check::RenderedPreview>, ApiError> previews(const std::string& id,
                                                                       const std::string& recipient,
                                                                       std::string* content_hash);
  // Every campaign's record of the recipient whose deduplication key is `key`.
  nlohmann::json lookup(const std::string& key, bool show_addresses);
  // Campaign stores' counts by lane and state, for /metrics.
  std::string metrics();
  // Waits for the running stages (they stop on send::request_stop()).
  void join();

 private:
  struct Run {
    std::string stage;
    std::string actor;
    bool running = false;
    std::string result;  // how it ended
    std::thread thread;
  };
  std::expected<std::filesystem::path, ApiError> dir_of(const std::string& id);

  std::map<std::string, std::filesystem::path> m_dirs;  // id -> directory
  delivery::SharedTransport* m_shared = nullptr;
  std::string m_server_url;
  std::string m_org_path;
  std::optional<campaign::BounceSettings> m_bounces;  // the service's [bounces], for every campaign it runs  // the service store: the organisation's list every campaign shares
  std::mutex m_mutex;
  std::map<std::string, std::shared_ptr<Run>> m_runs;
  // Every locale's preview per campaign, with the content hash they show.
  std::mutex m_preview_mutex;
  std::map<std::string, std::pair<std::string, std::vector<check::RenderedPreview>>> m_previews;
};

}  // namespace blindcast::serve
