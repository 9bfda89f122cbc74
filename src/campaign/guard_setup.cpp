#include "campaign/guard_setup.hpp"

namespace blindcast::campaign {

guard::GuardPolicy guard_policy(const CampaignConfig& config) {
  guard::GuardPolicy p;
  p.from_address = config.from.address.str();
  if (config.reply_to) p.reply_to_address = config.reply_to->address.str();
  return p;
}

}  // namespace blindcast::campaign
