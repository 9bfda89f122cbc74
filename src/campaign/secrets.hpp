// The campaign's secrets, each read from its `*_file` through the checks of
// SPEC §6: the DKIM keys (a signer) and the key of unsubscribe tokens.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "campaign/campaign.hpp"
#include "mail/dkim_signer.hpp"
#include "bounce/verp.hpp"
#include "util/sealed_token.hpp"
#include "util/sha256.hpp"

namespace blindcast::campaign {

struct CampaignSecrets {
  std::shared_ptr<const mail::DkimSigner> dkim;  // null without [dkim]
  std::shared_ptr<const util::SealKey> unsubscribe_key;  // null without [unsubscribe] secret_file
  std::shared_ptr<const bounce::VerpKey> verp_key;       // null without [bounces]
};

// Reads the secret files named in `campaign`'s settings.
Result<CampaignSecrets> load_campaign_secrets(const LoadedCampaign& campaign);

// The token for `email` in List-Unsubscribe URLs: the campaign (or stream)
// id and the address, sealed under the unsubscribe key (util/sealed_token).
// Whoever holds the key reads who unsubscribes (`serve`'s POST /u/{token});
// anyone else learns nothing and cannot make or alter one.
std::string unsubscribe_token(const util::SealKey& key, const std::string& campaign_id, const std::string& email);

// Who an unsubscribe token names.
struct UnsubscribeTarget {
  std::string scope;  // campaign or stream id
  std::string email;  // lower-case
};
// Reads `token`; nothing when `key` did not make it (forged or altered).
std::optional<UnsubscribeTarget> open_unsubscribe_token(const util::SealKey& key, std::string_view token);

}  // namespace blindcast::campaign
