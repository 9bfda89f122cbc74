#include "util/toml_file.hpp"

namespace blindcast::util {

std::optional<toml::table> parse_toml_file(const std::filesystem::path& path,
                                           const std::string& shown_name, Diagnostics& diags) {
  try {
    return toml::parse_file(path.string());
  } catch (const toml::parse_error& err) {
    diags.push_back({shown_name, static_cast<long>(err.source().begin.line), Severity::k_error,
                     std::string(err.description())});
    return std::nullopt;
  }
}

}  // namespace blindcast::util
