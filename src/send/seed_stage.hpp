// `send --stage test` (SPEC §4): one message per catalog the audience uses,
// to every address in `[stages] test`, with "[TEST <locale>] " before the
// subject. No real customer's data reaches the internal seed list: each
// message is built from a row of samples.csv (synthetic rows the operator
// writes; `init` writes one) whose locale uses that catalog, or else from a
// real row of that locale with every value but `locale` replaced by a
// placeholder of the same shape and length (digits become 1, letters x or
// X). The row's `email` is the seed address. Each message passes the same
// privacy guard as the full stage (strict mode included).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "campaign/campaign.hpp"
#include "compose/samples.hpp"
#include "send/sender.hpp"
#include "store/state_store.hpp"

namespace blindcast::send {

struct SeedStageResult {
  std::int64_t sent = 0;
  std::int64_t failed = 0;
  std::vector<std::string> lines;  // one per message: locale, source row, address (masked), outcome
};

// Runs the test stage of `campaign`.
Result<SeedStageResult> run_seed_stage(const campaign::LoadedCampaign& campaign, store::StateStore& store,
                                       const SendOptions& options);

}  // namespace blindcast::send
