// Options shared by every command, and helpers every command uses to print
// findings and open the state store. Only cli/ writes to stdout.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace CLI {
class App;
}  // namespace CLI

#include "store/state_store.hpp"
#include "util/diagnostic.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

namespace blindcast::cli {

struct CommonOptions {
  std::string dir;            // the campaign directory
  std::string state;          // --state PATH
  std::string transport;      // --transport URL
  bool json = false;          // --json
  std::string log_format = "text";
  bool show_addresses = false;
};

// Returns the campaign's state store file for `opts` (default
// DIR/.blindcast/state.db; a --state shared with other campaigns keeps this
// one in a file beside it, see context.cpp).
std::string state_path(const CommonOptions& opts);
// The file of the organisation's list when it is not state_path()'s own: the
// --state another campaign (or the service) already holds.
std::string org_path(const CommonOptions& opts);

// Refuses (exit 2, saying what is missing) a DIR that is not a campaign: a
// typo must never act on, or create, something else.
Result<void> require_campaign(const CommonOptions& opts);

// What a command may do when the state store does not exist yet.
enum class StoreUse {
  k_existing,  // read it or change it only if it exists (status, release, ...)
  k_default,   // may create the default DIR/.blindcast/state.db, never a --state path (lint, approve, halt, ...)
  k_create,    // may create it wherever it is (send)
};

// Opens the state store for `opts`. A store it creates (and DIR/.blindcast)
// is readable by its owner only (0600; 0700). A missing store that `use`
// may not create is a usage error naming the path; for the default path,
// `*missing` (when given) is set instead, for commands that can go on
// without one (a --state that does not exist is always an error: a typo).
Result<std::unique_ptr<store::StateStore>> open_store(const CommonOptions& opts, StoreUse use,
                                                      bool* missing = nullptr);

// Prints `diags` one per line to stderr (errors and warnings), compiler
// style; with --log-format json, one JSON object each (file, line, level, msg).
void print_diagnostics(const util::Diagnostics& diags);

// Tells the operator `text` on stderr: as it is, or with --log-format json
// as one JSON line at `level` with `fields`.
void say(util::LogLevel level, const std::string& text, const nlohmann::json& fields = nlohmann::json::object());

// With --json (called once, after the command line is parsed): stdout
// carries exactly one JSON document (the command's result, or its error or
// refusal) and everything printed for people goes to stderr.
void begin_json_output(bool json_log);
// True once a JSON document was printed.
bool json_printed();
// Errors are not printed as JSON while suspended (a step of `demo` that is
// refused on purpose).
void suspend_json_errors(bool suspended);

// Prints `error` to stderr (and, with --json, as {"error": {"code",
// "message", "file", "line"}} on stdout) and returns its exit code.
int report(const Error& error);

// A refusal with details (closed gates): like report(), with `details`
// (strings) listed on stderr and under "details" in the JSON.
int refuse(ExitCode code, const std::string& message, const std::vector<std::string>& details);

// Prints `j` on stdout (the --json output of a command that succeeded).
void print_json(const nlohmann::json& j);
// Prints `j` on one line of stdout (commands whose --json output is one
// object per line, such as `bounces inspect`).
void print_json_line(const nlohmann::json& j);

int cmd_init(const CommonOptions& opts, const std::string& dkim_domain);
int cmd_lint(const CommonOptions& opts, long long sample);
int cmd_preview(const CommonOptions& opts, const std::string& out, const std::string& recipient);
int cmd_plan(const CommonOptions& opts);
int cmd_send(const CommonOptions& opts, const std::string& stage, bool force, const std::string& reason,
             bool retry_failed);
// With `content_hash`, only that content (a gate refusal, exit 4, when the files changed since).
int cmd_approve(const CommonOptions& opts, const std::string& by, const std::string& content_hash = "");
int cmd_suppress_import(const CommonOptions& opts, const std::string& file, const std::string& reason);
int cmd_suppress_list(const CommonOptions& opts);
int cmd_suppress_remove(const CommonOptions& opts, const std::string& address);
int cmd_status(const CommonOptions& opts, bool audit);
int cmd_halt(const CommonOptions& opts, const std::string& reason, const std::string& by);
int cmd_release(const CommonOptions& opts, const std::string& by);
int cmd_demo(const CommonOptions& opts);
int cmd_serve(const std::string& config_path);
int cmd_keys_create(const std::string& config_path, const std::string& name, const std::vector<std::string>& scopes,
                    const std::vector<std::string>& cidrs, bool json);
int cmd_keys_list(const std::string& config_path, bool json);
int cmd_keys_revoke(const std::string& config_path, const std::string& name);
// Prints what each message in `paths` (files, mbox files, directories) is;
// `show_addresses`: unmasked in the human output (JSON always shows them).
int cmd_bounces_inspect(const std::vector<std::string>& paths, bool json, bool show_addresses = false);
// Applies the messages in `paths` to the organisation's list of `state` (a
// state store) or of `config_path`'s service.
int cmd_bounces_ingest(const std::vector<std::string>& paths, const std::string& state, const std::string& config_path,
                       bool json);
int cmd_manpage(const CLI::App& app);
int cmd_completion(const CLI::App& app, const std::string& shell);

}  // namespace blindcast::cli
