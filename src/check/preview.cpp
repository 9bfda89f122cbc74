#include "check/preview.hpp"

#include <map>

#include <fmt/format.h>

#include "compose/audience_session.hpp"
#include "compose/guard_setup.hpp"
#include "mail/address.hpp"
#include "util/file.hpp"
#include "util/mask.hpp"

namespace blindcast::check {

Result<std::vector<PreviewFile>> write_previews(const std::filesystem::path& dir,
                                                const std::filesystem::path& out,
                                                const std::string& recipient,
                                                util::Diagnostics& diags) {
  auto campaign = campaign::load_campaign(dir, diags);
  if (!campaign || util::error_count(diags) > 0) {
    return fail(fmt::format("the campaign has errors; run 'blindcast lint {}'", dir.string()));
  }
  std::string wanted;
  if (!recipient.empty()) {
    auto a = mail::parse_address(recipient);
    if (!a) return fail(fmt::format("--recipient: not a valid address: {}", a.error()));
    wanted = a->dedup_key();
  }
  auto session = compose::open_audience(*campaign, diags, {});
  if (!session) return std::unexpected(session.error());
  if (util::error_count(diags) > 0) {
    return fail(fmt::format("the campaign has errors; run 'blindcast lint {}'", dir.string()));
  }
  auto index = std::make_shared<guard::AddressIndex>();
  std::map<std::string, audience::AudienceRow> chosen;  // by locale as written
  audience::AudienceRow row;
  while (session->loader->next(row)) {
    index->add(row.email);
    if (!wanted.empty()) {
      if (mail::dedup_key_of(row.email) == wanted && chosen.empty()) chosen.emplace(row.locale, row);
    } else if (!chosen.contains(row.locale)) {
      chosen.emplace(row.locale, row);
    }
  }  if (session->loader->fatal()) return fail(session->loader->fatal_error());

  if (chosen.empty()) {
    return fail(wanted.empty() ? "the audience has no valid rows to preview"
                               : fmt::format("--recipient {}: not in audience.csv (or its row was rejected)",
                                             util::mask_address(recipient)));
  }
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) return fail(fmt::format("{}: cannot create: {}", out.string(), ec.message()), ExitCode::k_runtime);

  auto guard = compose::CampaignGuard::create(*campaign, index, session->columns);
  if (!guard) return std::unexpected(guard.error());
  std::vector<PreviewFile> files;
  for (const auto& [locale, r] : chosen) {
    compose::BuildOptions build_options;
    build_options.keep_html = true;
    auto built = session->builder->build(r.fields, r.email, r.name, r.locale, build_options);
    if (!built) {
      return fail(fmt::format("audience.csv:{}: cannot render: {}", r.line, built.error()));
    }
    PreviewFile f;
    f.locale = locale.empty() ? "default" : locale;
    f.line = static_cast<long>(r.line);
    f.subject = built->subject;
    f.path = out / fmt::format("{}-line{}.eml", f.locale, r.line);
    if (auto v = guard->check(built->data, r.email, r.fields)) {
      f.guard_violation = v->describe(false);
    }
    if (auto w = util::write_file_atomic(f.path, built->data, 0600); !w) return std::unexpected(w.error());
    if (!built->html.empty()) {
      f.html = f.path;
      f.html.replace_extension(".html");
      if (auto w = util::write_file_atomic(f.html, built->html, 0600); !w) return std::unexpected(w.error());
    }
    files.push_back(std::move(f));
  }
  return files;
}

}  // namespace blindcast::check
