#include "send/audience_import.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "audience/audience_loader.hpp"
#include "delivery/mx_lanes.hpp"
#include "delivery/providers.hpp"
#include "mail/address.hpp"
#include "render/renderer.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

namespace blindcast::send {

namespace {

// A digest of the lane table: when it changes, recipients get their lanes again.
std::string lanes_digest(const delivery::LaneTable& lanes) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& l : lanes.lanes()) j.push_back({l.name, l.domains, l.mx});
  return util::sha256_hex(j.dump());
}

Result<void> import_file(const campaign::LoadedCampaign& campaign, store::StateStore& store, ImportSummary& summary,
                         const std::string& digest) {
  auto import = store.begin_import(digest);
  if (!import) return std::unexpected(import.error());
  if (!*import) {  // another node sharing the store imported this very file while this one waited
    util::log_info("audience.csv: imported by another node meanwhile");
    return {};
  }
  std::optional<Error> failure;
  audience::LoadOptions lo;
  lo.on_reject = [&](const audience::Rejection& r) {
    ++summary.rejected_rows;
    if (auto w = (*import)->reject(r.line, r.reason); !w && !failure) failure = w.error();
  };
  lo.on_duplicate = [&](std::int64_t, std::int64_t) { ++summary.duplicate_rows; };
  lo.find_duplicates = !(*import)->drops_duplicates();
  for (const auto& c : render::header_variables(*campaign.templates, *campaign.catalogs)) lo.header_columns.insert(c);
  auto loader = audience::AudienceLoader::open(campaign.audience_path(), std::move(lo));
  if (!loader) return std::unexpected(loader.error());
  const delivery::LaneTable lanes(campaign.config.shaping);
  audience::AudienceRow row;
  store::ImportRow ir;
  while (loader->next(row) && !failure) {
    ir.line = row.line;
    ir.email = row.email;
    const auto at = row.email.rfind('@');
    ir.domain = row.email.substr(at + 1);
    ir.lane = lanes.lane_for(ir.domain).name;
    ir.key = mail::dedup_key_of(row.email);
    ir.locale = row.locale;
    ir.fields = std::move(row.fields);
    if (auto w = (*import)->add(ir); !w) failure = w.error();
    ++summary.imported;
  }
  if (failure) return std::unexpected(*failure);
  if (loader->fatal()) return fail(loader->fatal_error());  // nothing of this import is committed
  auto removed = (*import)->commit();
  if (!removed) return std::unexpected(removed.error());
  if ((*import)->drops_duplicates()) {
    summary.duplicate_rows += (*import)->duplicates();
    summary.imported -= (*import)->duplicates();
  }
  if (*removed > 0) {
    util::log_warn(fmt::format("{} unsent recipients are no longer in audience.csv and will not be sent",
                               *removed));
  }
  if (auto w = store.set_meta("audience_digest", digest); !w) return w;
  return store.append_event("import", "blindcast",
                            fmt::format("audience imported: {} rows, {} rejected, {} duplicates",
                                        summary.imported, summary.rejected_rows, summary.duplicate_rows));
}

}  // namespace

Result<void> sync_audience(const campaign::LoadedCampaign& campaign, store::StateStore& store, ImportSummary& summary,
                           delivery::MxResolver* mx_lanes) {
  auto digest = util::file_sha256_hex(campaign.audience_path());
  if (!digest) return std::unexpected(digest.error());
  auto stored = store.get_meta("audience_digest");
  if (!stored) return std::unexpected(stored.error());
  const delivery::LaneTable lanes(campaign.config.shaping);
  const std::string want = lanes_digest(lanes) + (mx_lanes != nullptr ? "+mx" : "");
  if (!*stored || **stored != *digest) {
    if (auto r = import_file(campaign, store, summary, *digest); !r) return r;
    // The import gave every row its lane by its domain; by MX host below.
    if (mx_lanes == nullptr) return store.set_meta("lanes_digest", want);
  } else {
    auto have = store.get_meta("lanes_digest");
    if (!have) return std::unexpected(have.error());
    if (*have && **have == want) return {};
  }
  std::unordered_map<std::string, std::string> by_mx;
  if (mx_lanes != nullptr) {
    // The domains first (a pass that assigns each its lane by domain), then
    // one batch of lookups for those no lane names.
    std::vector<std::string> domains;
    if (auto r = store.assign_lanes([&](std::string_view domain) {
          domains.emplace_back(domain);
          return lanes.lane_for(domain).name;
        });
        !r) {
      return r;
    }
    by_mx = delivery::lanes_by_mx(lanes, *mx_lanes, domains);
    util::log_info(fmt::format("lanes by MX host: {} of {} domains placed in a provider's lane", by_mx.size(),
                               domains.size()));
  }
  if (auto r = store.assign_lanes([&](std::string_view domain) {
        if (const auto it = by_mx.find(std::string(domain)); it != by_mx.end()) return it->second;
        return lanes.lane_for(domain).name;
      });
      !r) {
    return r;
  }
  return store.set_meta("lanes_digest", want);
}

}  // namespace blindcast::send
