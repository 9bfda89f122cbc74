// samples.csv (SPEC §1): synthetic rows the operator writes for previews
// and the test stage, so no real customer's data reaches the internal seed
// list; and placeholders of the same shape for a locale without a sample.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "campaign/campaign.hpp"
#include "util/error.hpp"

namespace blindcast::compose {

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
Result<Samples> read_samples(const campaign::LoadedCampaign& campaign, const std::vector<std::string>& columns);

// Returns `value` with every digit replaced by 1 and every other letter or
// character outside ASCII punctuation by x (X for ASCII capitals): the same
// shape and length, none of the data. Dates stay valid dates (1111-11-11).
std::string placeholder_of(std::string_view value);

}  // namespace blindcast::compose
