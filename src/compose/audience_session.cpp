#include "compose/audience_session.hpp"

#include "campaign/secrets.hpp"

namespace blindcast::compose {

Result<AudienceSession> open_audience(const campaign::LoadedCampaign& campaign, util::Diagnostics& diags,
                                      audience::LoadOptions options, const std::filesystem::path& path) {
  const auto csv = path.empty() ? campaign.audience_path() : path;
  AudienceSession session;
  {
    auto peek = audience::AudienceLoader::open(csv, {});
    if (!peek) return std::unexpected(peek.error());
    session.columns = peek->columns();
  }
  session.builder = std::make_unique<MessageBuilder>(campaign, session.columns, diags);
  if (auto secrets = campaign::load_campaign_secrets(campaign)) {
    session.builder->use_secrets(*secrets);
  } else {
    diags.push_back({"campaign.toml", 0, util::Severity::k_error, secrets.error().message});
  }
  for (const auto& c : render::header_variables(*campaign.templates, *campaign.catalogs)) options.header_columns.insert(c);
  auto loader = audience::AudienceLoader::open(csv, std::move(options));
  if (!loader) return std::unexpected(loader.error());
  session.loader = std::make_unique<audience::AudienceLoader>(std::move(*loader));
  return session;
}

}  // namespace blindcast::compose
