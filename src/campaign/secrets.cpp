#include "campaign/secrets.hpp"

#include <fmt/format.h>

#include "util/base64.hpp"
#include "util/secret_file.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace blindcast::campaign {

namespace {
constexpr std::size_t k_min_unsubscribe_key = 16;
}  // namespace

Result<CampaignSecrets> load_campaign_secrets(const LoadedCampaign& campaign) {
  CampaignSecrets s;
  const auto& cfg = campaign.config;
  if (cfg.dkim) {
    std::vector<std::string> pems;
    for (const auto& file : cfg.dkim->key_files) {
      auto secret = util::read_secret_file(campaign.dir / file, file);
      if (!secret) return std::unexpected(secret.error());
      pems.push_back(secret->reveal());
    }
    auto signer = mail::DkimSigner::create(cfg.dkim->domain, cfg.dkim->selectors, pems, cfg.dkim->key_files);
    for (auto& p : pems) p.assign(p.size(), '\0');
    if (!signer) return std::unexpected(signer.error());
    s.dkim = std::make_shared<const mail::DkimSigner>(std::move(*signer));
  }
  if (!cfg.unsubscribe_secret_file.empty()) {
    auto secret = util::read_secret_file(campaign.dir / cfg.unsubscribe_secret_file, cfg.unsubscribe_secret_file);
    if (!secret) return std::unexpected(secret.error());
    // Anyone holding one token and their own address could search a short key
    // offline, then forge the tokens of every other recipient.
    if (secret->reveal().size() < k_min_unsubscribe_key) {
      return fail(fmt::format("[unsubscribe] secret_file {}: {} bytes; the key of unsubscribe tokens needs at least {} "
                              "random bytes, e.g. head -c 32 /dev/urandom | base64 > {}",
                              cfg.unsubscribe_secret_file, secret->reveal().size(), k_min_unsubscribe_key,
                              cfg.unsubscribe_secret_file),
                  ExitCode::k_usage);
    }
    s.unsubscribe_mac = std::make_shared<const util::HmacSha256>(secret->reveal());
  }
  return s;
}

std::string unsubscribe_token(const util::HmacSha256& hmac, const std::string& campaign_id, const std::string& email) {
  const std::string mac = hmac.mac(campaign_id + "\n" + util::to_lower_ascii(email));
  std::string out = util::base64url(mac);
  out.resize(32);
  return out;
}

}  // namespace blindcast::campaign
