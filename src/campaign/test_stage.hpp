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
#include "campaign/sender.hpp"
#include "store/state_store.hpp"

namespace blindcast::campaign {

struct TestStageResult {
  std::int64_t sent = 0;
  std::int64_t failed = 0;
  std::vector<std::string> lines;  // one per message: locale, source row, address (masked), outcome
};

// A row of samples.csv, its fields in audience.csv's column order.
struct SampleRow {
  std::int64_t line = 0;
  std::string email;
  std::string locale;
  std::vector<std::string> fields;
};

struct Samples {
  std::vector<SampleRow> rows;
  std::vector<std::string> missing_columns;  // audience.csv columns samples.csv lacks (empty in its rows)
};

// Reads samples.csv (no rows when there is none) for the audience's
// `columns`; fails when a row is rejected.
Result<Samples> read_samples(const LoadedCampaign& campaign, const std::vector<std::string>& columns);

// Returns `value` with every digit replaced by 1 and every other letter or
// character outside ASCII punctuation by x (X for ASCII capitals): the same
// shape and length, none of the data. Dates stay valid dates (1111-11-11).
std::string placeholder_of(std::string_view value);

// Runs the test stage of `campaign`.
Result<TestStageResult> run_test_stage(const LoadedCampaign& campaign, store::StateStore& store,
                                       const SendOptions& options);

}  // namespace blindcast::campaign
