#include "compose/samples.hpp"

#include <fmt/format.h>

#include "compose/audience_session.hpp"
#include "util/strings.hpp"

namespace blindcast::compose {

Result<Samples> read_samples(const campaign::LoadedCampaign& campaign, const std::vector<std::string>& columns) {
  Samples out;
  std::error_code ec;
  if (!std::filesystem::exists(campaign.samples_path(), ec)) return out;
  util::Diagnostics diags;
  std::vector<std::string> rejected;
  audience::LoadOptions lo;
  lo.on_reject = [&](const audience::Rejection& r) { rejected.push_back(fmt::format("line {}: {}", r.line, r.reason)); };
  auto samples = open_audience(campaign, diags, lo, campaign.samples_path());
  if (!samples) return std::unexpected(samples.error());
  std::vector<int> from;  // sample column for each audience column (-1: missing)
  for (const auto& c : columns) {
    from.push_back(samples->loader->column_index(util::to_lower_ascii(c)));
    if (from.back() < 0) out.missing_columns.push_back(c);
  }
  audience::AudienceRow row;
  while (samples->loader->next(row)) {
    SampleRow s{row.line, row.email, row.locale, {}};
    for (const int i : from) s.fields.push_back(i < 0 ? std::string() : row.fields[static_cast<std::size_t>(i)]);
    out.rows.push_back(std::move(s));
  }
  if (samples->loader->fatal()) return fail(samples->loader->fatal_error());
  if (!rejected.empty()) return fail("samples.csv " + rejected.front() + "; fix or remove the row");
  return out;
}

std::string placeholder_of(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c >= '0' && c <= '9') {
      out += '1';
    } else if (c >= 'A' && c <= 'Z') {
      out += 'X';
    } else if (c >= 'a' && c <= 'z') {
      out += 'x';
    } else if (c < 0x80) {
      out += static_cast<char>(c);  // punctuation and spaces keep the shape
    } else if ((c & 0xC0) != 0x80) {
      out += 'x';  // one per character outside ASCII (continuation bytes skipped)
    }
  }
  return out;
}

}  // namespace blindcast::compose
