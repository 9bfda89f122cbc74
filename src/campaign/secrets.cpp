#include "campaign/secrets.hpp"

#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

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
  // Every secret file is looked at before any is refused: one run names
  // every file to fix, not one per run.
  std::vector<std::string> problems;
  const auto read = [&](const std::string& file) -> std::optional<util::Secret> {
    auto secret = util::read_secret_file(campaign.dir / file, file);
    if (!secret) {
      problems.push_back(secret.error().message);
      return std::nullopt;
    }
    return std::move(*secret);
  };
  std::vector<std::optional<util::Secret>> keys;
  if (cfg.dkim) {
    for (const auto& file : cfg.dkim->key_files) keys.push_back(read(file));
  }
  std::optional<util::Secret> unsubscribe;
  if (!cfg.unsubscribe_secret_file.empty()) unsubscribe = read(cfg.unsubscribe_secret_file);
  std::optional<util::Secret> bounce_secret;
  if (cfg.bounces) bounce_secret = read(cfg.bounces->secret_file);
  // The relay's password is read where it is used; its file is checked here too.
  if (!cfg.transport.password_file.empty()) (void)read(cfg.transport.password_file);
  if (!problems.empty()) {
    return fail(problems.size() == 1 ? problems.front()
                                     : fmt::format("{} secret files need fixing:\n  {}", problems.size(),
                                                   fmt::join(problems, "\n  ")));
  }
  if (cfg.dkim) {
    std::vector<std::string> pems;
    for (auto& key : keys) pems.push_back(key->reveal());
    auto signer = mail::DkimSigner::create(cfg.dkim->domain, cfg.dkim->selectors, pems, cfg.dkim->key_files);
    for (auto& p : pems) p.assign(p.size(), '\0');
    if (!signer) return std::unexpected(signer.error());
    s.dkim = std::make_shared<const mail::DkimSigner>(std::move(*signer));
  }
  if (unsubscribe) {
    const auto& secret = unsubscribe;
    // Anyone holding one token and their own address could search a short key
    // offline, then forge the tokens of every other recipient.
    if (secret->reveal().size() < k_min_unsubscribe_key) {
      return fail(fmt::format("[unsubscribe] secret_file {}: {} bytes; the key of unsubscribe tokens needs at least {} "
                              "random bytes, e.g. head -c 32 /dev/urandom | base64 > {}",
                              cfg.unsubscribe_secret_file, secret->reveal().size(), k_min_unsubscribe_key,
                              cfg.unsubscribe_secret_file),
                  ExitCode::k_usage);
    }
    s.unsubscribe_key = std::make_shared<const util::SealKey>(secret->reveal());
  }
  if (bounce_secret) {
    // A short key could be searched offline from one token, then used to
    // forge bounces that suppress anyone.
    if (bounce_secret->reveal().size() < k_min_unsubscribe_key) {
      return fail(fmt::format("[bounces] secret_file {}: {} bytes; the key of VERP tokens needs at least {} random "
                              "bytes, e.g. head -c 32 /dev/urandom | base64 > {}",
                              cfg.bounces->secret_file, bounce_secret->reveal().size(), k_min_unsubscribe_key,
                              cfg.bounces->secret_file),
                  ExitCode::k_usage);
    }
    s.verp_key = std::make_shared<const bounce::VerpKey>(bounce_secret->reveal());
  }
  return s;
}

std::string unsubscribe_token(const util::SealKey& key, const std::string& campaign_id, const std::string& email) {
  return key.seal(campaign_id + "\n" + util::to_lower_ascii(email));
}

std::optional<UnsubscribeTarget> open_unsubscribe_token(const util::SealKey& key, std::string_view token) {
  auto value = key.open(token);
  if (!value) return std::nullopt;
  const auto nl = value->find('\n');
  if (nl == std::string::npos || nl == 0 || nl + 1 == value->size()) return std::nullopt;
  return UnsubscribeTarget{value->substr(0, nl), value->substr(nl + 1)};
}

}  // namespace blindcast::campaign
