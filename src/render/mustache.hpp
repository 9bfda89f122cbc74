// A compiled Mustache template (the subset a mail campaign needs).
//
// Supported: `{{name}}` (HTML-escaped when rendering HTML, raw otherwise),
// `{{{name}}}` and `{{& name}}` (raw), sections `{{#name}}...{{/name}}` and
// inverted sections `{{^name}}...{{/name}}` (shown when the value is
// non-empty / empty), comments `{{! ...}}`, and the spec's standalone-line
// rule: a section or comment tag alone on its line leaves no blank line.
// Not supported, and reported as errors with their line: partials `{{> x}}`,
// delimiter changes `{{= =}}`, lists (values are flat strings).
//
// Why hand-written and not kainjow/mustache (Debian: libkainjow-mustache-dev):
// lint must report `file:line` for every error and every unknown variable, and
// rendering must not build a data object per recipient. Compilation turns the
// text into a flat list of operations over variable slots; rendering walks the
// list once, appending to one buffer.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace blindcast::render {

struct TemplateError {
  long line = 0;
  std::string message;
};

class MustacheTemplate {
 public:
  enum class OpKind : std::uint8_t { k_text, k_escaped, k_raw, k_section, k_inverted };
  struct Op {
    OpKind kind;
    std::uint32_t a;  // text: offset; variable/section: variable index
    std::uint32_t b;  // text: length; section: index of the op after the section
  };

  // Compiles `source`; errors carry the 1-based line where they occur.
  static std::expected<MustacheTemplate, TemplateError> compile(std::string_view source);

  // Names of the variables used, in order of first use (indexes used by ops).
  [[nodiscard]] const std::vector<std::string>& variables() const { return m_variables; }
  // Line of the first use of variable `index`.
  [[nodiscard]] long variable_line(std::size_t index) const { return m_variable_lines[index]; }

  // Appends the rendering to `out`; `value(i)` returns variable i's value;
  // `html` selects HTML escaping for `{{name}}`.
  template <class Lookup>
  void render(std::string& out, Lookup&& value, bool html) const;

 private:
  std::string m_text;
  std::vector<Op> m_ops;
  std::vector<std::string> m_variables;
  std::vector<long> m_variable_lines;
};

// Appends `text` to `out` with & < > " ' escaped.
void append_html_escaped(std::string& out, std::string_view text);

template <class Lookup>
void MustacheTemplate::render(std::string& out, Lookup&& value, bool html) const {
  const std::size_t n = m_ops.size();
  for (std::size_t i = 0; i < n; ++i) {
    const Op& op = m_ops[i];
    switch (op.kind) {
      case OpKind::k_text:
        out.append(m_text, op.a, op.b);
        break;
      case OpKind::k_escaped:
        if (html) {
          append_html_escaped(out, value(op.a));
        } else {
          out.append(value(op.a));
        }
        break;
      case OpKind::k_raw:
        out.append(value(op.a));
        break;
      case OpKind::k_section:
        if (value(op.a).empty()) i = op.b - 1;
        break;
      case OpKind::k_inverted:
        if (!value(op.a).empty()) i = op.b - 1;
        break;
    }
  }
}

}  // namespace blindcast::render
