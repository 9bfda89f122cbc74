// Reads a TOML file (toml++) and turns a syntax error into a Diagnostic with
// the file and line, instead of an exception.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <toml++/toml.h>

#include "util/diagnostic.hpp"

namespace blindcast::util {

// Parses `path`; on a syntax error appends to `diags` (as `shown_name`) and returns nullopt.
std::optional<toml::table> parse_toml_file(const std::filesystem::path& path,
                                           const std::string& shown_name, Diagnostics& diags);

}  // namespace blindcast::util
