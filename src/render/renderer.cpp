#include "render/renderer.hpp"

#include <set>

#include <fmt/format.h>

namespace blindcast::render {

namespace {
constexpr std::string_view k_catalog_prefix = "t.";
}

Renderer::Renderer(std::shared_ptr<const TemplateSet> templates,
                   std::shared_ptr<const Catalogs> catalogs, std::vector<std::string> columns,
                   std::string campaign_id, util::Diagnostics& diags)
    : m_templates(std::move(templates)),
      m_catalogs(std::move(catalogs)),
      m_columns(std::move(columns)),
      m_campaign_id(std::move(campaign_id)) {
  bind(m_templates->subject, m_templates->subject_file, m_subject, diags);
  bind(m_templates->text, m_templates->text_file, m_text, diags);
  if (m_templates->html) bind(*m_templates->html, m_templates->html_file, m_html, diags);
  if (m_templates->list_unsubscribe) {
    bind(*m_templates->list_unsubscribe, m_templates->unsubscribe_file, m_unsubscribe, diags);
  }
  // Map every catalog message's arguments to columns once.
  for (const auto& [tag, catalog] : m_catalogs->all()) {
    for (const auto& [key, msg] : catalog.messages) {
      std::vector<int> cols;
      for (const auto& arg : msg->args()) {
        int idx = -1;
        for (std::size_t i = 0; i < m_columns.size(); ++i) {
          if (m_columns[i] == arg.name) idx = static_cast<int>(i);
        }
        if (idx < 0 && arg.name != "campaign_id") {
          diags.push_back({catalog.file, msg->line(), util::Severity::k_error,
                           fmt::format("message '{}' uses argument '{}', which is not an audience "
                                       "column (columns: {})",
                                       key, arg.name, fmt::join(m_columns, ", "))});
        }
        cols.push_back(idx);
      }
      m_arg_columns.emplace(msg.get(), std::move(cols));
    }
  }
  m_scratch.resize(m_keys.size());
}

void Renderer::bind(const MustacheTemplate& t, const std::string& file, Bound& out,
                    util::Diagnostics& diags) {
  out.tmpl = &t;
  for (std::size_t v = 0; v < t.variables().size(); ++v) {
    const std::string& name = t.variables()[v];
    Slot slot;
    if (name.starts_with(k_catalog_prefix)) {
      const std::string key = name.substr(k_catalog_prefix.size());
      int idx = -1;
      for (std::size_t k = 0; k < m_keys.size(); ++k) {
        if (m_keys[k] == key) idx = static_cast<int>(k);
      }
      if (idx < 0) {
        m_keys.push_back(key);
        m_key_lines.push_back(t.variable_line(v));
        m_key_files.push_back(file);
        idx = static_cast<int>(m_keys.size() - 1);
      }
      slot = {SlotKind::k_catalog, idx};
    } else if (name == "campaign_id") {
      slot = {SlotKind::k_builtin, 0};
    } else if (name == "unsubscribe_token") {
      slot = {SlotKind::k_builtin, 1};
      m_uses_token = true;
    } else {
      for (std::size_t i = 0; i < m_columns.size(); ++i) {
        if (m_columns[i] == name) slot = {SlotKind::k_column, static_cast<int>(i)};
      }
      if (slot.kind == SlotKind::k_unknown) {
        diags.push_back({file, t.variable_line(v), util::Severity::k_error,
                         fmt::format("unknown variable '{}': not an audience column (columns: {}); "
                                     "use t.KEY for catalog messages",
                                     name, fmt::join(m_columns, ", "))});
      }
    }
    out.slots.push_back(slot);
  }
}

void Renderer::check_locales(const std::vector<std::string>& row_locales, util::Diagnostics& diags) const {
  for (std::size_t k = 0; k < m_keys.size(); ++k) {
    std::vector<std::string> missing;
    for (const auto& loc : row_locales) {
      if (m_catalogs->find(loc, m_keys[k]) == nullptr) missing.push_back(loc.empty() ? "(none)" : loc);
    }
    if (missing.empty()) continue;
    diags.push_back({m_key_files[k], m_key_lines[k], util::Severity::k_error,
                     fmt::format("catalog key '{}' is missing for locale{} {} (add it to {} or to the "
                                 "default catalog)",
                                 m_keys[k], missing.size() > 1 ? "s" : "", fmt::join(missing, ", "),
                                 missing.size() == 1 && missing[0] != "(none)" ? "its catalog" : "their catalogs")});
  }
}

const Renderer::LocaleCache& Renderer::locale_cache(std::string_view row_locale) {
  const std::string raw(row_locale);
  if (auto it = m_locale_caches.find(raw); it != m_locale_caches.end()) return it->second;
  LocaleCache lc;
  for (const auto& key : m_keys) lc.messages.push_back(m_catalogs->find(row_locale, key));
  return m_locale_caches.emplace(raw, std::move(lc)).first->second;
}

bool Renderer::render_one(const Bound& b, const std::vector<std::string>& fields,
                          const LocaleCache& lc, bool html, std::string& out, std::string& error) {
  static const std::string k_empty;
  auto value = [&](std::uint32_t v) -> std::string_view {
    const Slot& s = b.slots[v];
    switch (s.kind) {
      case SlotKind::k_column:
        return static_cast<std::size_t>(s.index) < fields.size() ? fields[static_cast<std::size_t>(s.index)]
                                                                 : k_empty;
      case SlotKind::k_builtin:
        if (s.index == 1) {
          if (m_token.empty() && error.empty()) {
            error = "{{unsubscribe_token}} needs [unsubscribe] secret_file (a key in a file, chmod 600)";
          }
          return m_token;
        }
        return m_campaign_id;
      case SlotKind::k_unknown:
        if (error.empty()) error = fmt::format("unknown variable '{}'", b.tmpl->variables()[v]);
        return k_empty;
      case SlotKind::k_catalog: {
        auto& cached = m_scratch[static_cast<std::size_t>(s.index)];
        if (cached) return *cached;
        const CatalogMessage* msg = lc.messages[static_cast<std::size_t>(s.index)];
        if (msg == nullptr) {
          if (error.empty()) {
            error = fmt::format("catalog key '{}' is missing for this row's locale",
                                m_keys[static_cast<std::size_t>(s.index)]);
          }
          return k_empty;
        }
        const auto& cols = m_arg_columns.at(msg);
        std::vector<std::string_view> values;
        values.reserve(cols.size());
        for (std::size_t a = 0; a < cols.size(); ++a) {
          if (cols[a] >= 0) {
            values.emplace_back(fields[static_cast<std::size_t>(cols[a])]);
          } else {
            values.emplace_back(m_campaign_id);
          }
        }
        auto formatted = msg->format(values);
        if (!formatted) {
          if (error.empty()) error = formatted.error();
          return k_empty;
        }
        cached = std::move(*formatted);
        return *cached;
      }
    }
    return k_empty;
  };
  b.tmpl->render(out, value, html);
  return error.empty();
}

bool Renderer::unsubscribe_uses_column(std::string_view column) const {
  if (m_unsubscribe.tmpl == nullptr) return false;
  for (const auto& slot : m_unsubscribe.slots) {
    if (slot.kind == SlotKind::k_column && m_columns[static_cast<std::size_t>(slot.index)] == column) return true;
  }
  return false;
}

std::expected<RenderedMessage, std::string> Renderer::render(const std::vector<std::string>& fields,
                                                             std::string_view row_locale,
                                                             std::string_view unsubscribe_token) {
  m_token.assign(unsubscribe_token);
  if (fields.size() != m_columns.size()) {
    return std::unexpected(fmt::format("row has {} fields, expected {}", fields.size(), m_columns.size()));
  }
  for (auto& s : m_scratch) s.reset();
  const LocaleCache& lc = locale_cache(row_locale);
  RenderedMessage out;
  std::string error;
  if (!render_one(m_subject, fields, lc, false, out.subject, error) ||
      !render_one(m_text, fields, lc, false, out.text, error) ||
      (m_html.tmpl != nullptr && !render_one(m_html, fields, lc, true, out.html, error)) ||
      (m_unsubscribe.tmpl != nullptr &&
       !render_one(m_unsubscribe, fields, lc, false, out.list_unsubscribe, error))) {
    return std::unexpected(error);
  }
  // The subject is one line: line breaks from values or messages become spaces.
  for (char& c : out.subject) {
    if (c == '\r' || c == '\n' || c == '\t') c = ' ';
  }
  while (!out.subject.empty() && out.subject.back() == ' ') out.subject.pop_back();
  return out;
}

std::vector<std::string> header_variables(const TemplateSet& templates, const Catalogs& catalogs) {
  std::set<std::string> names;
  auto collect = [&](const MustacheTemplate& t) {
    for (const auto& v : t.variables()) {
      if (!v.starts_with(k_catalog_prefix)) {
        names.insert(v);
        continue;
      }
      const std::string key = v.substr(k_catalog_prefix.size());
      for (const auto& [tag, catalog] : catalogs.all()) {
        auto it = catalog.messages.find(key);
        if (it == catalog.messages.end()) continue;
        for (const auto& a : it->second->args()) names.insert(a.name);
      }
    }
  };
  collect(templates.subject);
  if (templates.list_unsubscribe) collect(*templates.list_unsubscribe);
  return {names.begin(), names.end()};
}

}  // namespace blindcast::render
