#include "render/renderer.hpp"

#include <cctype>
#include <set>

#include <unicode/locid.h>

#include <fmt/format.h>

namespace blindcast::render {

namespace {

// The value of attribute `name` is present in the start tag `tag` (text
// between '<' and '>'), ASCII case ignored.
bool has_attribute(std::string_view tag, std::string_view name) {
  for (std::size_t i = 0; i + 1 + name.size() < tag.size(); ++i) {
    const char before = tag[i];
    if (before != ' ' && before != '\t' && before != '\n' && before != '\r') continue;
    bool match = true;
    for (std::size_t k = 0; k < name.size() && match; ++k) {
      match = (tag[i + 1 + k] | 0x20) == name[k];
    }
    if (match) {
      const char after = tag[i + 1 + name.size()];
      if (after == '=' || after == ' ' || after == '>' || after == '/') return true;
    }
  }
  return false;
}

// Gives the HTML part the language and direction of its catalog, unless the
// template says them: lang and dir on <html>, or, for a fragment without
// one, a <div> around it. Without dir, a right-to-left message is laid out
// left to right, its punctuation at the wrong end.
// Where markup is in an HTML part, read coarsely as a browser's tokenizer
// would: comments, tags (a '>' inside a quoted attribute value does not end
// one), and the raw text of <style> and <script>. Everything else is text.
struct Markup {
  std::vector<std::pair<std::size_t, std::size_t>> not_text;  // [begin, end) ranges, in order
  std::size_t html_tag = std::string::npos;                   // the first <html ...> start tag
  std::size_t body_tag = std::string::npos;                   // the first <body ...> start tag
  std::size_t doctype_end = 0;                                // just past a leading <!DOCTYPE ...>
};

// With `whole` false it stops at the first <html> or <body>: where lang and
// dir go is all set_language() needs, and it is near the start of a document
// (this runs for every message).
Markup scan_markup(const std::string& html, bool whole) {
  Markup m;
  const std::size_t n = html.size();
  const auto lower = [](char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); };
  std::size_t i = 0;
  while (i < n) {
    if (html.compare(i, 4, "<!--") == 0) {
      const auto close = html.find("-->", i + 4);
      const std::size_t end = close == std::string::npos ? n : close + 3;
      m.not_text.emplace_back(i, end);
      i = end;
      continue;
    }
    const bool tag = html[i] == '<' && i + 1 < n &&
                     (std::isalpha(static_cast<unsigned char>(html[i + 1])) != 0 || html[i + 1] == '/' ||
                      html[i + 1] == '!' || html[i + 1] == '?');
    if (!tag) {
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    char quote = 0;
    for (; j < n; ++j) {
      const char c = html[j];
      if (quote != 0) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '>') {
        break;
      }
    }
    const std::size_t end = j < n ? j + 1 : n;
    char buffer[10];  // the longest name looked for is "!doctype"; a longer one matches nothing
    std::size_t length = 0;
    for (std::size_t k = i + 1;
         k < end && length < sizeof buffer &&
         (std::isalnum(static_cast<unsigned char>(html[k])) != 0 || (k == i + 1 && html[k] == '!'));
         ++k) {
      buffer[length++] = lower(html[k]);
    }
    const std::string_view name(buffer, length);
    if (name == "!doctype" && m.not_text.empty()) m.doctype_end = end;
    if (name == "html" && m.html_tag == std::string::npos) m.html_tag = i;
    if (name == "body" && m.body_tag == std::string::npos) m.body_tag = i;
    if (!whole && (m.html_tag != std::string::npos || m.body_tag != std::string::npos)) return m;
    m.not_text.emplace_back(i, end);
    i = end;
    if (name == "style" || name == "script") {  // raw text up to its end tag
      std::size_t close = i;
      while ((close = html.find("</", close)) != std::string::npos) {
        bool same = close + 2 + name.size() <= n;
        for (std::size_t k = 0; same && k < name.size(); ++k) same = lower(html[close + 2 + k]) == name[k];
        if (same) break;
        close += 2;
      }
      const std::size_t raw_end = close == std::string::npos ? n : close;
      m.not_text.emplace_back(i, raw_end);
      i = raw_end;
    }
  }
  return m;
}

// Gives the HTML part the language and direction of its catalog, unless the
// template says them: on <html>, else on <body>, else a <div> around the
// fragment (after a doctype, which must stay first). Without dir, a
// right-to-left message is laid out left to right, its punctuation at the
// wrong end.
void set_language(std::string& html, const Markup& m, const std::string& lang, bool rtl) {
  const std::string dir = rtl ? "rtl" : "ltr";
  for (const auto& [start, name] : {std::pair{m.html_tag, std::string_view("html")},
                                    std::pair{m.body_tag, std::string_view("body")}}) {
    if (start == std::string::npos) continue;
    const auto end = html.find('>', start);  // a quoted '>' only shortens the view of the attributes
    if (end == std::string::npos) return;
    const std::string_view tag(html.data() + start, end - start);
    std::string add;
    if (!has_attribute(tag, "lang")) add += fmt::format(" lang=\"{}\"", lang);
    if (!has_attribute(tag, "dir")) add += fmt::format(" dir=\"{}\"", dir);
    html.insert(start + 1 + name.size(), add);
    return;
  }
  html.insert(m.doctype_end, fmt::format("<div lang=\"{}\" dir=\"{}\">", lang, dir));
  html += "</div>";
}

// Bidi isolates belong to text: in a tag (an attribute value, a URL), a
// comment, a style sheet or a script they would become part of it.
// Removes those that landed there.
void drop_isolates_outside_text(std::string& html, const Markup& m) {
  std::string out;
  out.reserve(html.size());
  std::size_t range = 0;
  for (std::size_t i = 0; i < html.size(); ++i) {
    while (range < m.not_text.size() && m.not_text[range].second <= i) ++range;
    const bool in_markup = range < m.not_text.size() && m.not_text[range].first <= i;
    if (in_markup && html[i] == '\xE2' && i + 2 < html.size() && html[i + 1] == '\x81' &&
        (html[i + 2] == '\xA8' || html[i + 2] == '\xA9')) {
      i += 2;
      continue;
    }
    out += html[i];
  }
  html.swap(out);
}

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
  const auto chain = m_catalogs->chain(row_locale);
  lc.lang = chain.empty() ? m_catalogs->default_tag() : chain.front()->tag;
  UErrorCode status = U_ZERO_ERROR;
  lc.rtl = icu::Locale::forLanguageTag(lc.lang, status).isRightToLeft();
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
        // In right-to-left text a value shown as it is (an address, a
        // ticket number, a name in Latin letters) is isolated (FSI ... PDI,
        // Unicode's bidi isolates; browsers and mail readers honour them in
        // text and HTML): its punctuation stays with it, not with the
        // sentence around it.
        std::vector<std::string> isolated;
        if (lc.rtl) isolated.reserve(cols.size());
        for (std::size_t a = 0; a < cols.size(); ++a) {
          std::string_view shown = cols[a] >= 0 ? std::string_view(fields[static_cast<std::size_t>(cols[a])])
                                                : std::string_view(m_campaign_id);
          if (lc.rtl && msg->args()[a].plain && !shown.empty()) {
            isolated.push_back("\u2068" + std::string(shown) + "\u2069");
            shown = isolated.back();
          }
          values.emplace_back(shown);
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
  if (!out.html.empty()) {
    if (lc.rtl && out.html.find("\xE2\x81") != std::string::npos) {
      drop_isolates_outside_text(out.html, scan_markup(out.html, true));
    }
    set_language(out.html, scan_markup(out.html, false), lc.lang, lc.rtl);
  }
  for (std::size_t i = 0; i < m_scratch.size(); ++i) {
    const CatalogMessage* msg = lc.messages[i];
    if (!m_scratch[i] || msg == nullptr || msg->args().empty()) continue;
    if (m_scratch[i]->find_first_not_of(" \t\r\n") == std::string::npos) out.blank_messages.push_back(msg);
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
