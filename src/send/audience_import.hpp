// Brings the audience file into the store's journal (SPEC §1, §7): only when
// the file changed since the last import; rows keep their delivery state,
// rows gone from the file become `removed` (never sent); rejected rows are
// kept with their reasons. Each recipient gets its provider lane (one
// delivery::LaneTable decides), and when the lanes change (`[shaping]`),
// every recipient is given its lane again. Importing builds no renderer and
// reads no key: only the templates' header variables are needed.
#pragma once

#include <cstdint>

#include "campaign/campaign.hpp"
#include "delivery/mx_resolver.hpp"
#include "store/state_store.hpp"
#include "util/error.hpp"

namespace blindcast::send {

struct ImportSummary {
  std::int64_t imported = 0;
  std::int64_t rejected_rows = 0;
  std::int64_t duplicate_rows = 0;
};

// Imports the audience into `store` when the file changed since the last
// import, and reassigns lanes when they changed.
// With `mx_lanes` (mx: delivery, lanes that match by MX host), the domains
// no lane names are looked up and placed by their MX hosts.
Result<void> sync_audience(const campaign::LoadedCampaign& campaign, store::StateStore& store, ImportSummary& summary,
                           delivery::MxResolver* mx_lanes = nullptr);

}  // namespace blindcast::send
