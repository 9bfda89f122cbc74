#include "cli/context.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "campaign/config.hpp"
#include "store/pg_store.hpp"
#include "util/file.hpp"
#include "util/sha256.hpp"
#include "util/mask.hpp"

namespace blindcast::cli {

namespace {

// Where a campaign's state lives for `opts`: its own store, and the file of
// the organisation's list when that is another (SPEC §9: campaigns that
// give the same --state share one suppression list). A --state that holds
// no campaign, or this one, is the campaign's store (and the list's); one
// that holds another campaign's recipients keeps this campaign in
// FILE.campaigns/ID-HASH.db beside it and shares its list; a service store
// (server.toml's state) keeps it where `serve` does, DIR/.blindcast/state.db,
// and shares the service's list.
struct StoreFiles {
  std::string campaign;
  std::string org;  // "" when it is the campaign's own file
};

StoreFiles store_files(const CommonOptions& opts) {
  if (opts.state.empty()) return {(std::filesystem::path(opts.dir) / ".blindcast" / "state.db").string(), ""};
  if (store::is_postgres(opts.state)) {
    // One database for every campaign: this one's rows are keyed by its id,
    // and the organisation's list is the database's (SPEC §9, §10).
    util::Diagnostics ignored;
    const auto cfg = campaign::load_config(opts.dir, ignored);
    return {store::postgres_locator(opts.state, cfg ? cfg->id : std::string()), ""};
  }
  static std::map<std::pair<std::string, std::string>, StoreFiles> resolved;
  const auto key = std::make_pair(opts.dir, opts.state);
  if (const auto it = resolved.find(key); it != resolved.end()) return it->second;
  StoreFiles files{opts.state, ""};
  std::error_code ec;
  if (std::filesystem::exists(opts.state, ec)) {
    util::Diagnostics ignored;
    const auto cfg = campaign::load_config(opts.dir, ignored);
    const auto probe = store::probe_sqlite_store(opts.state);
    if (probe && probe->service) {
      // The service's store: the campaign keeps its own file where `serve`
      // keeps it (DIR/.blindcast/state.db) and shares the service's list.
      files = {(std::filesystem::path(opts.dir) / ".blindcast" / "state.db").string(), opts.state};
    } else if (cfg && !cfg->id.empty() && probe && !probe->campaign_id.empty() && probe->campaign_id != cfg->id) {
      std::string name;
      for (const char c : cfg->id) {
        const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                           c == '_' || c == '.';
        name += plain ? c : '_';
      }
      name = name.substr(0, 80) + "-" + util::sha256_hex(cfg->id).substr(0, 8) + ".db";
      files = {(std::filesystem::path(opts.state + ".campaigns") / name).string(), opts.state};
    }
  }
  resolved[key] = files;
  return files;
}

}  // namespace

std::string state_path(const CommonOptions& opts) { return store_files(opts).campaign; }

std::string org_path(const CommonOptions& opts) { return store_files(opts).org; }

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
  if (missing != nullptr) *missing = false;
  if (store::is_postgres(opts.state)) return store::open_postgres_store(state_path(opts));
  const std::filesystem::path path = state_path(opts);
  std::error_code ec;
  if (missing != nullptr) *missing = false;
  const bool exists = std::filesystem::exists(path, ec);
  if (ec) {  // not "absent": unreadable (a store in another user's 0700 directory)
    return std::unexpected(Error{fmt::format("{}: cannot look at the state store: {}", path.string(), ec.message()),
                                 ExitCode::k_runtime});
  }
  if (!exists) {
    // A campaign's own file beside a shared --state is as the default one.
    const bool own = opts.state.empty() || !org_path(opts).empty();
    const bool may_create = use == StoreUse::k_create || (use == StoreUse::k_default && own);
    if (!may_create) {
      if (missing != nullptr && own) {
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
    if (opts.state.empty() || !org_path(opts).empty()) {
      (void)util::make_private_dirs(path.parent_path());
    }
    // Created here, owner-only, before SQLite opens it (SQLite gives its
    // -wal and -shm files the mode of the database file).
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
      return std::unexpected(Error{fmt::format("{}: cannot create the state store: {}", path.string(),
                                               std::strerror(errno)),
                                   errno == ENOENT || errno == ENOTDIR ? ExitCode::k_usage : ExitCode::k_runtime});
    }
    if (fd >= 0) ::close(fd);
  }
  return store::open_sqlite_store(path.string(), org_path(opts));
}

void print_diagnostics(const util::Diagnostics& diags) {
  for (const auto& d : diags) {
    say(d.severity == util::Severity::k_error ? util::LogLevel::k_error : util::LogLevel::k_warn, d.str(),
        {{"file", d.file}, {"line", d.line > 0 ? nlohmann::json(d.line) : nlohmann::json(nullptr)},
         {"finding", d.message}});
  }
}

namespace {

bool g_json_errors = false;
std::FILE* g_json_out = stdout;  // with --json: the real stdout (the command's text goes to stderr)
bool g_json_printed = false;

void emit_json(const nlohmann::json& j) {
  std::fprintf(g_json_out, "%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  std::fflush(g_json_out);
  g_json_printed = true;
}

// "path:12: error: ..." -> ("path", 12); messages that name no file give ("", 0).
std::pair<std::string, long> file_and_line(const std::string& message) {
  const auto marker = message.find(": error: ");
  if (marker == std::string::npos) return {"", 0};
  const std::string head = message.substr(0, marker);
  const auto colon = head.rfind(':');
  if (colon == std::string::npos || colon + 1 == head.size()) return {head, 0};
  long line = 0;
  for (std::size_t i = colon + 1; i < head.size(); ++i) {
    if (head[i] < '0' || head[i] > '9') return {head, 0};
    line = line * 10 + (head[i] - '0');
  }
  return {head.substr(0, colon), line};
}

void print_json_error(ExitCode code, const std::string& message, const std::vector<std::string>& details) {
  const auto [file, line] = file_and_line(message);
  nlohmann::json e{{"code", static_cast<int>(code)},
                   {"message", message},
                   {"file", file.empty() ? nlohmann::json(nullptr) : nlohmann::json(file)},
                   {"line", line > 0 ? nlohmann::json(line) : nlohmann::json(nullptr)}};
  if (!details.empty()) e["details"] = details;
  emit_json(nlohmann::json{{"error", e}});
}

}  // namespace

void begin_json_output(bool json_log) {
  g_json_errors = true;
  std::fflush(stdout);
  // What the commands print for people goes to stderr from now on (nowhere
  // when every stderr line must be JSON: the document carries the result);
  // stdout carries exactly one JSON document.
  const int real = ::dup(STDOUT_FILENO);
  if (real < 0) return;
  if (std::FILE* out = ::fdopen(real, "w"); out != nullptr) {
    g_json_out = out;
    const int sink = json_log ? ::open("/dev/null", O_WRONLY | O_CLOEXEC) : STDERR_FILENO;
    ::dup2(sink >= 0 ? sink : STDERR_FILENO, STDOUT_FILENO);
    if (json_log && sink >= 0) ::close(sink);
  } else {
    ::close(real);
  }
}

bool json_printed() { return g_json_printed; }

void print_json(const nlohmann::json& j) { emit_json(j); }

void print_json_line(const nlohmann::json& j) {
  std::fprintf(g_json_out, "%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  g_json_printed = true;
}

void suspend_json_errors(bool suspended) {
  static bool saved = false;
  if (suspended) {
    saved = g_json_errors;
    g_json_errors = false;
  } else {
    g_json_errors = saved;
  }
}

void say(util::LogLevel level, const std::string& text, const nlohmann::json& fields) {
  if (util::log_is_json()) {
    util::log_fields(level, text, fields);
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
}

int report(const Error& error) {
  const auto message = util::mask_addresses_in(error.message);
  const auto [file, line] = file_and_line(message);
  say(util::LogLevel::k_error, "blindcast: " + message,
      {{"code", static_cast<int>(error.exit_code)}, {"file", file.empty() ? nlohmann::json(nullptr) : nlohmann::json(file)},
       {"line", line > 0 ? nlohmann::json(line) : nlohmann::json(nullptr)}});
  if (g_json_errors) print_json_error(error.exit_code, message, {});
  return static_cast<int>(error.exit_code);
}

int refuse(ExitCode code, const std::string& message, const std::vector<std::string>& details) {
  std::string text = "blindcast: " + message + ":";
  for (const auto& d : details) text += "\n  - " + d;
  say(util::LogLevel::k_error, util::log_is_json() ? "blindcast: " + message : text,
      {{"code", static_cast<int>(code)}, {"details", details}});
  if (g_json_errors) print_json_error(code, message, details);
  return static_cast<int>(code);
}

}  // namespace blindcast::cli
