// The campaign's secrets, each read from its `*_file` through the checks of
// SPEC §6: the DKIM keys (a signer) and the key of unsubscribe tokens.
#pragma once

#include <memory>
#include <string>

#include "campaign/campaign.hpp"
#include "mail/dkim_signer.hpp"
#include "util/sha256.hpp"

namespace blindcast::campaign {

struct CampaignSecrets {
  std::shared_ptr<const mail::DkimSigner> dkim;  // null without [dkim]
  std::shared_ptr<const util::HmacSha256> unsubscribe_mac;  // null without [unsubscribe] secret_file
};

// Reads the secret files named in `campaign`'s settings.
Result<CampaignSecrets> load_campaign_secrets(const LoadedCampaign& campaign);

// The token for `email` in List-Unsubscribe URLs: HMAC-SHA256 under the
// unsubscribe key of the campaign id and the address, base64url, 32
// characters. It identifies the recipient to whoever holds the key, and
// reveals nothing to anyone else.
std::string unsubscribe_token(const util::HmacSha256& mac, const std::string& campaign_id, const std::string& email);

}  // namespace blindcast::campaign
