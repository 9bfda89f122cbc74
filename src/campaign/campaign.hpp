// A campaign directory loaded into memory: settings, compiled templates and
// message catalogs (SPEC §1), with every problem found on the way as a
// Diagnostic. The audience is not loaded here: it is streamed by its users.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "campaign/config.hpp"
#include "render/catalog.hpp"
#include "render/renderer.hpp"
#include "util/diagnostic.hpp"
#include "util/error.hpp"

namespace blindcast::campaign {

struct LoadedCampaign {
  std::filesystem::path dir;
  CampaignConfig config;
  std::shared_ptr<const render::TemplateSet> templates;
  std::shared_ptr<const render::Catalogs> catalogs;

  // A transactional stream has no audience: its sample rows stand for it.
  [[nodiscard]] std::filesystem::path audience_path() const {
    return config.transactional ? samples_path() : dir / "audience.csv";
  }
  // Synthetic rows for the test stage and previews (optional).
  [[nodiscard]] std::filesystem::path samples_path() const { return dir / "samples.csv"; }
  [[nodiscard]] std::filesystem::path state_dir() const { return dir / ".blindcast"; }
};

// Loads `dir`; returns nullopt when settings or templates are unusable.
// Findings (errors and warnings) are appended to `diags`.
std::optional<LoadedCampaign> load_campaign(const std::filesystem::path& dir, util::Diagnostics& diags);

// Returns the campaign's content hash: SHA-256 over campaign.toml, every
// template, every catalog, the audience file and samples.csv, each named and
// length-prefixed (SPEC §4).
Result<std::string> content_hash(const std::filesystem::path& dir);

}  // namespace blindcast::campaign
