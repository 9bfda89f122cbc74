#include "render/mustache.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace blindcast::render {

namespace {

bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return name.front() != '.' && name.back() != '.';
}

std::string_view trim_ws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

long count_lines(std::string_view s) { return std::count(s.begin(), s.end(), '\n'); }

}  // namespace

void append_html_escaped(std::string& out, std::string_view text) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char* rep = nullptr;
    switch (text[i]) {
      case '&': rep = "&amp;"; break;
      case '<': rep = "&lt;"; break;
      case '>': rep = "&gt;"; break;
      case '"': rep = "&quot;"; break;
      case '\'': rep = "&#39;"; break;
      default: continue;
    }
    out.append(text, start, i - start);
    out += rep;
    start = i + 1;
  }
  out.append(text, start, text.size() - start);
}

std::expected<MustacheTemplate, TemplateError> MustacheTemplate::compile(std::string_view src) {
  MustacheTemplate t;
  t.m_text.assign(src);
  struct Open {
    std::string name;
    std::size_t op;
    long line;
  };
  std::vector<Open> open;
  long line = 1;
  std::size_t pos = 0;

  auto var_index = [&](std::string_view name, long at) -> std::uint32_t {
    for (std::size_t i = 0; i < t.m_variables.size(); ++i) {
      if (t.m_variables[i] == name) return static_cast<std::uint32_t>(i);
    }
    t.m_variables.emplace_back(name);
    t.m_variable_lines.push_back(at);
    return static_cast<std::uint32_t>(t.m_variables.size() - 1);
  };
  auto add_text = [&](std::size_t from, std::size_t to) {
    if (to > from) {
      t.m_ops.push_back({OpKind::k_text, static_cast<std::uint32_t>(from),
                         static_cast<std::uint32_t>(to - from)});
    }
  };

  while (pos < src.size()) {
    const std::size_t tag = src.find("{{", pos);
    if (tag == std::string_view::npos) {
      add_text(pos, src.size());
      break;
    }
    const long tag_line = line + count_lines(src.substr(pos, tag - pos));
    const bool triple = tag + 2 < src.size() && src[tag + 2] == '{';
    const std::string_view closer = triple ? "}}}" : "}}";
    const std::size_t inner_start = tag + (triple ? 3 : 2);
    const std::size_t close = src.find(closer, inner_start);
    if (close == std::string_view::npos) {
      return std::unexpected(TemplateError{tag_line, "tag opened here is never closed with '" +
                                                         std::string(closer) + "'"});
    }
    std::string_view inner = trim_ws(src.substr(inner_start, close - inner_start));
    std::size_t after = close + closer.size();
    char sigil = 0;
    if (!triple && !inner.empty() && std::string_view("#^/!&>=").find(inner.front()) !=
                                         std::string_view::npos) {
      sigil = inner.front();
      inner = trim_ws(inner.substr(1));
    }
    // Standalone rule: a block or comment tag alone on its line takes the line with it.
    std::size_t text_end = tag;
    if (sigil == '#' || sigil == '^' || sigil == '/' || sigil == '!') {
      std::size_t ls = 0;
      if (tag > 0) {
        const std::size_t nl = src.rfind('\n', tag - 1);
        ls = nl == std::string_view::npos ? 0 : nl + 1;
      }
      const bool before_blank = ls >= pos && trim_ws(src.substr(ls, tag - ls)).empty();
      std::size_t eol = after;
      while (eol < src.size() && (src[eol] == ' ' || src[eol] == '\t' || src[eol] == '\r')) ++eol;
      const bool after_blank = eol == src.size() || src[eol] == '\n';
      if (before_blank && after_blank) {
        text_end = ls;
        after = eol < src.size() ? eol + 1 : eol;
      }
    }
    add_text(pos, text_end);
    line = tag_line + count_lines(src.substr(tag, after - tag));
    pos = after;

    switch (sigil) {
      case '!':
        break;
      case '>':
        return std::unexpected(TemplateError{tag_line, "partials ({{> name}}) are not supported"});
      case '=':
        return std::unexpected(
            TemplateError{tag_line, "changing delimiters ({{= =}}) is not supported"});
      case '#':
      case '^': {
        if (!valid_name(inner)) {
          return std::unexpected(TemplateError{tag_line, fmt::format("invalid section name '{}'", inner)});
        }
        const auto v = var_index(inner, tag_line);
        open.push_back({std::string(inner), t.m_ops.size(), tag_line});
        t.m_ops.push_back({sigil == '#' ? OpKind::k_section : OpKind::k_inverted, v, 0});
        break;
      }
      case '/': {
        if (open.empty()) {
          return std::unexpected(
              TemplateError{tag_line, fmt::format("'{{{{/{}}}}}' closes a section that was never opened", inner)});
        }
        if (open.back().name != inner) {
          return std::unexpected(TemplateError{
              tag_line, fmt::format("'{{{{/{}}}}}' closes section '{}' opened on line {}", inner,
                                    open.back().name, open.back().line)});
        }
        t.m_ops[open.back().op].b = static_cast<std::uint32_t>(t.m_ops.size());
        open.pop_back();
        break;
      }
      default: {
        if (!valid_name(inner)) {
          return std::unexpected(
              TemplateError{tag_line, fmt::format("invalid variable name '{}'", inner)});
        }
        const bool raw = triple || sigil == '&';
        t.m_ops.push_back({raw ? OpKind::k_raw : OpKind::k_escaped, var_index(inner, tag_line), 0});
      }
    }
  }
  if (!open.empty()) {
    return std::unexpected(TemplateError{
        open.back().line, fmt::format("section '{}' is never closed", open.back().name)});
  }
  return t;
}

}  // namespace blindcast::render
