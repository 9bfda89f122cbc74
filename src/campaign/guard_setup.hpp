// Builds the privacy guard for a campaign: the policy from its settings and
// the index of every audience address (SPEC §3).
#pragma once

#include <memory>

#include "campaign/config.hpp"
#include "guard/privacy_guard.hpp"

namespace blindcast::campaign {

// Returns the guard's policy (From and Reply-To constants) for `config`.
guard::GuardPolicy guard_policy(const CampaignConfig& config);

}  // namespace blindcast::campaign
