// `lint`: everything that can be checked without sending (SPEC §2).
//
// Checks settings, templates and catalogs (syntax, unknown variables, keys
// missing for a locale, arguments that are not columns), reads the whole
// audience (rejected rows and duplicates are warnings: they are never sent),
// then renders and composes every row — or every k-th row with `sample` —
// and runs the privacy guard on each message against the full audience
// index. Guard violations and rows that cannot be rendered are errors. With
// [dkim], the report also names the DNS TXT record each key needs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "audience/audience_loader.hpp"
#include "mail/dkim_signer.hpp"
#include "util/diagnostic.hpp"

namespace blindcast::check {

struct LintOptions {
  std::optional<std::int64_t> sample;   // render and guard about this many rows
  std::size_t max_row_findings = 50;    // per kind, to keep output readable
};

struct LintReport {
  util::Diagnostics diags;
  audience::LoadStats stats;
  std::map<std::string, std::int64_t> locales;   // row locale as written -> rows
  std::int64_t rendered = 0;                     // messages built and guarded
  std::int64_t guard_violations = 0;
  std::int64_t suppressed_findings = 0;          // row findings beyond the cap
  std::string content_hash;
  std::vector<mail::DkimSigner::DnsRecord> dkim_records;  // the TXT record each DKIM key needs
  bool loaded = false;                           // settings and templates usable
};

// Lints the campaign in `dir`.
LintReport lint_campaign(const std::filesystem::path& dir, const LintOptions& options);

}  // namespace blindcast::check
