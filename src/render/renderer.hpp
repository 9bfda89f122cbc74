// Renders one recipient's subject, text, HTML and List-Unsubscribe value.
//
// Binding happens once: each template variable becomes a slot — an audience
// column, a catalog message (`t.key`) or a built-in (`campaign_id`) — and
// every catalog argument is mapped to its column. Unknown variables, catalog
// arguments that are not columns and keys missing for a locale are reported by
// bind() / check_locale() as diagnostics with file and line, so `lint` finds
// them before anything is sent. Rendering a row fails (never silently) when a
// value does not fit a message argument, e.g. text where plural needs a number.
//
// Not thread-safe (per-locale caches); use one Renderer per thread.
#pragma once

#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "render/catalog.hpp"
#include "render/mustache.hpp"
#include "util/diagnostic.hpp"

namespace blindcast::render {

struct TemplateSet {
  // file names relative to the campaign dir, for diagnostics
  std::string subject_file = "templates/subject.txt";
  std::string text_file = "templates/body.txt";
  std::string html_file = "templates/body.html";
  std::string unsubscribe_file = "campaign.toml";
  MustacheTemplate subject;
  MustacheTemplate text;
  std::optional<MustacheTemplate> html;
  std::optional<MustacheTemplate> list_unsubscribe;
};

// The names of the values that reach a header: the variables of the subject
// and List-Unsubscribe templates, and the arguments of the catalog messages
// they use (any locale). Needs no renderer: the audience import uses it to
// refuse CR/LF in exactly those columns.
std::vector<std::string> header_variables(const TemplateSet& templates, const Catalogs& catalogs);

struct RenderedMessage {
  std::string subject;
  std::string text;
  std::string html;              // empty when there is no HTML template
  std::string list_unsubscribe;  // empty when not configured
  // Catalog messages with arguments that came out blank for this row (a
  // value, or a plural or select branch, gave them no text): lint warns.
  std::vector<const CatalogMessage*> blank_messages;
};

class Renderer {
 public:
  // Binds `templates` to `columns` and `catalogs`; findings go to `diags`.
  Renderer(std::shared_ptr<const TemplateSet> templates,
           std::shared_ptr<const Catalogs> catalogs, std::vector<std::string> columns,
           std::string campaign_id, util::Diagnostics& diags);

  // Appends to `diags` one error per used key that some of `row_locales`
  // cannot resolve, listing those locales.
  void check_locales(const std::vector<std::string>& row_locales, util::Diagnostics& diags) const;

  // Renders for a row with `fields` (in column order) and locale
  // `row_locale`; `unsubscribe_token` is the value of {{unsubscribe_token}}.
  std::expected<RenderedMessage, std::string> render(const std::vector<std::string>& fields,
                                                     std::string_view row_locale,
                                                     std::string_view unsubscribe_token = {});

  // True when a template uses {{unsubscribe_token}}.
  [[nodiscard]] bool uses_unsubscribe_token() const { return m_uses_token; }
  // True when the List-Unsubscribe template uses the column `column`.
  [[nodiscard]] bool unsubscribe_uses_column(std::string_view column) const;


 private:
  enum class SlotKind { k_column, k_catalog, k_builtin, k_unknown };
  struct Slot {
    SlotKind kind = SlotKind::k_unknown;
    int index = -1;  // column index or catalog key index
  };
  struct Bound {
    const MustacheTemplate* tmpl = nullptr;
    std::vector<Slot> slots;
  };
  struct LocaleCache {
    std::vector<const CatalogMessage*> messages;  // by catalog key index
    std::string lang;  // the catalog's BCP 47 tag (the HTML part's lang)
    bool rtl = false;  // its script runs right to left (ICU): values are isolated, the HTML part gets dir="rtl"
  };

  void bind(const MustacheTemplate& t, const std::string& file, Bound& out,
            util::Diagnostics& diags);
  const LocaleCache& locale_cache(std::string_view row_locale);
  bool render_one(const Bound& b, const std::vector<std::string>& fields, const LocaleCache& lc,
                  bool html, std::string& out, std::string& error);

  std::shared_ptr<const TemplateSet> m_templates;
  std::shared_ptr<const Catalogs> m_catalogs;
  std::vector<std::string> m_columns;
  std::string m_campaign_id;
  std::vector<std::string> m_keys;  // catalog keys used, by index
  std::vector<long> m_key_lines;
  std::vector<std::string> m_key_files;
  Bound m_subject, m_text, m_html, m_unsubscribe;
  std::unordered_map<const CatalogMessage*, std::vector<int>> m_arg_columns;
  std::unordered_map<std::string, LocaleCache> m_locale_caches;
  std::vector<std::optional<std::string>> m_scratch;
  std::string m_token;
  bool m_uses_token = false;
};

}  // namespace blindcast::render
