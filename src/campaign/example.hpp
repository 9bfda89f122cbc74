// The example campaign written by `init` and used by `demo`: five locales
// (English, German, Japanese, Arabic, Portuguese with a pt-BR -> pt fallback),
// plain-text and HTML templates, ICU plural and date formatting, and a body
// that shows each recipient their own address (which the guard must allow).
#pragma once

#include <cstdint>
#include <filesystem>

#include "util/error.hpp"

namespace blindcast::campaign {

// Writes the example campaign into `dir` (created if needed); refuses to
// overwrite an existing campaign.toml.
Result<void> write_example_campaign(const std::filesystem::path& dir);

// Replaces `dir`/audience.csv with `rows` synthetic recipients spread over the
// example locales and the big providers, plus `bad_rows` deliberately broken
// rows (invalid address, header injection, duplicate) to show rejection.
Result<void> write_synthetic_audience(const std::filesystem::path& dir, std::int64_t rows,
                                      bool bad_rows);

}  // namespace blindcast::campaign
