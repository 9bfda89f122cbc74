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

// The example campaign sending for `domain`: From and Reply-To at it, a new
// RSA-2048 and Ed25519 DKIM key and an unsubscribe key under secrets/ (0600,
// unencrypted PEM), [dkim], [unsubscribe] and a one-click https
// list_unsubscribe. The DNS records to publish come from the loaded campaign.
Result<void> write_example_campaign(const std::filesystem::path& dir, const std::string& domain);

// Replaces `dir`/audience.csv with `rows` synthetic recipients spread over the
// example locales and the big providers, plus `bad_rows` deliberately broken
// rows (invalid address, header injection, duplicate) to show rejection.
Result<void> write_synthetic_audience(const std::filesystem::path& dir, std::int64_t rows,
                                      bool bad_rows);

}  // namespace blindcast::campaign
