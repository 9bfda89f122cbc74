#include "check/preview.hpp"

#include <map>

#include <fmt/format.h>

#include "bounce/mime_tree.hpp"
#include "compose/audience_session.hpp"
#include "compose/guard_setup.hpp"
#include "mail/address.hpp"
#include "util/file.hpp"
#include "util/mask.hpp"

namespace blindcast::check {

Result<std::vector<RenderedPreview>> render_previews(const std::filesystem::path& dir, const std::string& recipient,
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
  auto guard = compose::CampaignGuard::create(*campaign, index, session->columns);
  if (!guard) return std::unexpected(guard.error());
  std::vector<RenderedPreview> out;
  for (const auto& [locale, r] : chosen) {
    compose::BuildOptions build_options;
    build_options.keep_html = true;
    auto built = session->builder->build(r.fields, r.email, r.name, r.locale, build_options);
    if (!built) {
      return fail(fmt::format("audience.csv:{}: cannot render: {}", r.line, built.error()));
    }
    RenderedPreview p;
    p.locale = locale.empty() ? "default" : locale;
    p.line = static_cast<long>(r.line);
    p.subject = built->subject;
    if (auto v = guard->check(built->data, r.email, r.fields)) p.guard_violation = v->describe(false);
    p.data = std::move(built->data);
    p.html = std::move(built->html);
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::vector<PreviewFile>> write_previews(const std::filesystem::path& dir,
                                                const std::filesystem::path& out,
                                                const std::string& recipient,
                                                util::Diagnostics& diags) {
  auto rendered = render_previews(dir, recipient, diags);
  if (!rendered) return std::unexpected(rendered.error());
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) return fail(fmt::format("{}: cannot create: {}", out.string(), ec.message()), ExitCode::k_runtime);
  std::vector<PreviewFile> files;
  for (const auto& p : *rendered) {
    PreviewFile f;
    f.locale = p.locale;
    f.line = p.line;
    f.subject = p.subject;
    f.guard_violation = p.guard_violation;
    f.path = out / fmt::format("{}-line{}.eml", f.locale, p.line);
    if (auto w = util::write_file_atomic(f.path, p.data, 0600); !w) return std::unexpected(w.error());
    if (!p.html.empty()) {
      f.html = f.path;
      f.html.replace_extension(".html");
      if (auto w = util::write_file_atomic(f.html, p.html, 0600); !w) return std::unexpected(w.error());
    }
    files.push_back(std::move(f));
  }
  return files;
}

MessageView view_message(std::string_view data) {
  MessageView v;
  const auto root = bounce::read_mime(data, true);
  v.headers = root.headers;
  // The first text/plain and text/html leaves, depth first (multipart/alternative).
  std::vector<const bounce::MimeNode*> todo;
  for (auto it = root.children.rbegin(); it != root.children.rend(); ++it) todo.push_back(&*it);
  while (!todo.empty()) {
    const auto* n = todo.back();
    todo.pop_back();
    if (n->type == "text/plain" && v.text.empty()) v.text = n->body;
    if (n->type == "text/html" && v.html.empty()) v.html = n->body;
    if (n->is_message) continue;  // an attached message is not this one's body
    for (auto it = n->children.rbegin(); it != n->children.rend(); ++it) todo.push_back(&*it);
  }
  return v;
}

}  // namespace blindcast::check
