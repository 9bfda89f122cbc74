// `preview`: writes the exact bytes that would be sent, as .eml files (mode
// 0600: they hold personal data) — the first row of every locale in the
// audience, or the one row of `recipient`. Every preview is checked by the
// privacy guard; a message the guard would block is still written, for
// inspection, and reported.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/diagnostic.hpp"
#include "util/error.hpp"

namespace blindcast::check {

struct PreviewFile {
  std::filesystem::path path;
  std::filesystem::path html;  // the HTML part alone, to open in a browser (empty without an HTML template)
  std::string locale;
  long line = 0;
  std::string subject;
  std::string guard_violation;  // empty when the guard passes it (masked)
};

// A preview in memory: the exact bytes and the HTML part as rendered.
struct RenderedPreview {
  std::string locale;
  long line = 0;
  std::string subject;
  std::string data;             // the message as it would be sent (CRLF)
  std::string html;             // the HTML part alone (empty without an HTML template)
  std::string guard_violation;  // empty when the guard passes it (masked)
};

// Renders the previews write_previews() writes (the dashboard shows them).
Result<std::vector<RenderedPreview>> render_previews(const std::filesystem::path& dir, const std::string& recipient,
                                                     util::Diagnostics& diags);

// A message taken apart for display (GMime): every header, RFC 2047-decoded,
// and its first text/plain and text/html parts, transfer-decoded to UTF-8.
struct MessageView {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string text;
  std::string html;
};
MessageView view_message(std::string_view data);

// Writes previews of the campaign in `dir` into `out`.
Result<std::vector<PreviewFile>> write_previews(const std::filesystem::path& dir,
                                                const std::filesystem::path& out,
                                                const std::string& recipient,
                                                util::Diagnostics& diags);

}  // namespace blindcast::check
