// The privacy guard of one campaign, built the one way every command builds
// it (lint, preview, the test stage, send): the index of every audience
// address, the From and Reply-To constants, strict mode with the addresses
// written in the reviewed content (templates, catalogs, settings) and
// `[guard] allow`, and which columns hold a recipient's own other addresses
// (`[guard] own_columns`). SPEC §3.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "campaign/campaign.hpp"
#include "guard/privacy_guard.hpp"
#include "guard/send_ledger.hpp"
#include "store/state_store.hpp"
#include "util/error.hpp"

namespace blindcast::compose {

class CampaignGuard {
 public:
  // Builds the guard of `campaign` over `index` (every audience address);
  // `columns` is the audience header, for [guard] own_columns.
  static Result<CampaignGuard> create(const campaign::LoadedCampaign& campaign, std::shared_ptr<const guard::AddressIndex> index,
                                      std::span<const std::string> columns);

  // Checks `data` for `recipient`, whose audience row is `fields`; nullopt when it may be sent.
  [[nodiscard]] std::optional<guard::Violation> check(std::string_view data, const std::string& recipient,
                                                      std::span<const std::string> fields) const;

  [[nodiscard]] const std::shared_ptr<const guard::PrivacyGuard>& guard() const { return m_guard; }
  [[nodiscard]] const std::string& envelope_from() const { return m_envelope_from; }

 private:
  std::shared_ptr<const guard::PrivacyGuard> m_guard;
  std::vector<std::size_t> m_own_columns;
  std::string m_envelope_from;
};

// Returns every address written in the campaign's reviewed content (settings,
// templates, catalogs), with {{campaign_id}} filled in and
// {{unsubscribe_token}} as '*' (it renders to letters, digits, '-' and '_').
Result<std::vector<std::string>> reviewed_addresses(const campaign::LoadedCampaign& campaign);

// Opens the guard's ledger of `campaign` (CAMPAIGN/.blindcast/guard-ledger,
// independent of --state) with the limits of its settings; `window` is the
// sender's in-flight window (its possible duplicates per crash).
// `resends`: second messages a run may send (what a crash can leave
// possibly delivered); 0: `window`. `recipients`: the campaign's (the
// ledger makes room for them at once).
Result<std::unique_ptr<guard::SendLedger>> open_ledger(const campaign::LoadedCampaign& campaign, std::size_t window,
                                                       std::size_t resends = 0, std::size_t recipients = 0);

// Lifts a halt of the guard's ledger of the campaign in `dir`; returns the
// limit that had tripped, or an empty string when the ledger was not halted.
Result<std::string> release_ledger(const std::filesystem::path& dir);

// Returns an index of every audience address in `store`, made for
// `recipients` addresses at once (more fit too).
Result<std::shared_ptr<guard::AddressIndex>> index_from_store(store::StateStore& store, std::size_t recipients = 0);

}  // namespace blindcast::compose
