#include "cli/context.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "util/mask.hpp"

namespace blindcast::cli {

std::string state_path(const CommonOptions& opts) {
  if (!opts.state.empty()) return opts.state;
  return (std::filesystem::path(opts.dir) / ".blindcast" / "state.db").string();
}

Result<std::unique_ptr<store::StateStore>> open_store(const CommonOptions& opts) {
  const std::filesystem::path path = state_path(opts);
  std::error_code ec;
  if (opts.state.empty()) {
    const auto dir = path.parent_path();
    if (!std::filesystem::exists(dir, ec)) {
      std::filesystem::create_directories(dir, ec);
      ::chmod(dir.c_str(), 0700);
    }
  }
  return store::open_sqlite_store(path.string());
}

void print_diagnostics(const util::Diagnostics& diags) {
  for (const auto& d : diags) std::fprintf(stderr, "%s\n", d.str().c_str());
}

int report(const Error& error) {
  std::fprintf(stderr, "blindcast: %s\n", util::mask_addresses_in(error.message).c_str());
  return static_cast<int>(error.exit_code);
}

}  // namespace blindcast::cli
