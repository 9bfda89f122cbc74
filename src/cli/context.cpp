#include "cli/context.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "util/file.hpp"
#include "util/mask.hpp"

namespace blindcast::cli {

std::string state_path(const CommonOptions& opts) {
  if (!opts.state.empty()) return opts.state;
  return (std::filesystem::path(opts.dir) / ".blindcast" / "state.db").string();
}

Result<void> require_campaign(const CommonOptions& opts) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir(opts.dir);
  if (!fs::exists(dir, ec)) {
    return std::unexpected(Error{fmt::format("{}: no such directory; nothing was done (a typo? 'blindcast init DIR' "
                                             "writes a new campaign)",
                                             opts.dir)});
  }
  if (!fs::is_directory(dir, ec)) {
    return std::unexpected(Error{fmt::format("{}: not a directory; give the campaign's directory", opts.dir)});
  }
  if (!fs::is_regular_file(dir / "campaign.toml", ec)) {
    return std::unexpected(Error{fmt::format("{}: not a campaign, there is no campaign.toml in it; nothing was done "
                                             "(a typo? 'blindcast init DIR' writes a new campaign)",
                                             opts.dir)});
  }
  return {};
}

Result<std::unique_ptr<store::StateStore>> open_store(const CommonOptions& opts, StoreUse use, bool* missing) {
  const std::filesystem::path path = state_path(opts);
  std::error_code ec;
  if (missing != nullptr) *missing = false;
  if (!std::filesystem::exists(path, ec)) {
    const bool may_create = use == StoreUse::k_create || (use == StoreUse::k_default && opts.state.empty());
    if (!may_create) {
      if (missing != nullptr && opts.state.empty()) {
        *missing = true;
        return std::unique_ptr<store::StateStore>();
      }
      return std::unexpected(Error{
          opts.state.empty()
              ? fmt::format("{}: no state store yet; nothing has been sent from {} ('blindcast send' creates it)",
                            path.string(), opts.dir)
              : fmt::format("--state {}: no state store there; nothing was done (a typo? only 'blindcast send' "
                            "creates one)",
                            path.string())});
    }
    if (opts.state.empty()) {
      (void)util::make_private_dirs(path.parent_path());
    }
    // Created here, owner-only, before SQLite opens it (SQLite gives its
    // -wal and -shm files the mode of the database file).
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
      return std::unexpected(Error{fmt::format("{}: cannot create the state store: {}", path.string(),
                                               std::strerror(errno)),
                                   ExitCode::k_runtime});
    }
    if (fd >= 0) ::close(fd);
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
