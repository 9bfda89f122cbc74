// `send --stage test` (SPEC §4): one rendering per locale of the audience,
// built from the first row of that locale, sent to every address in
// `[stages] test` with "[TEST <locale>] " before the subject. The sample
// row's `email` value is replaced by the test address, so a template that
// shows the recipient their own address does not show a customer's address to
// the internal seed list (the privacy guard would stop that anyway).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "campaign/campaign.hpp"
#include "campaign/sender.hpp"
#include "store/state_store.hpp"

namespace blindcast::campaign {

struct TestStageResult {
  std::int64_t sent = 0;
  std::int64_t failed = 0;
  std::vector<std::string> lines;  // one per message: locale, address (masked), outcome
};

// Runs the test stage of `campaign`.
Result<TestStageResult> run_test_stage(const LoadedCampaign& campaign, store::StateStore& store,
                                       const SendOptions& options);

}  // namespace blindcast::campaign
