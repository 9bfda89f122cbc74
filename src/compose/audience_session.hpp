// Opens a campaign's audience together with a MessageBuilder bound to its
// columns. The header row is read first so the builder can say which columns
// reach a header; the loader then rejects CR/LF in exactly those columns.
#pragma once

#include <memory>

#include "audience/audience_loader.hpp"
#include "campaign/campaign.hpp"
#include "compose/message_builder.hpp"

namespace blindcast::compose {

struct AudienceSession {
  std::vector<std::string> columns;
  std::unique_ptr<MessageBuilder> builder;
  std::unique_ptr<audience::AudienceLoader> loader;
};

// Opens `campaign`'s audience (or the CSV at `path`, e.g. samples.csv);
// `options` supplies the reject/duplicate callbacks.
Result<AudienceSession> open_audience(const campaign::LoadedCampaign& campaign, util::Diagnostics& diags,
                                      audience::LoadOptions options = {}, const std::filesystem::path& path = {});

}  // namespace blindcast::compose
