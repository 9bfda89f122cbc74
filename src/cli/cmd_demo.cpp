// demo: a sample campaign of 20,000 synthetic recipients in five locales, run
// end to end on the embedded defaults (SQLite state, maildir output).
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "campaign/example.hpp"
#include "check/lint.hpp"
#include "check/preview.hpp"
#include "send/stages.hpp"
#include "cli/context.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace blindcast::cli {

namespace {
constexpr const char* k_marker = ".blindcast-demo";
constexpr std::int64_t k_rows = 20000;
}  // namespace

int cmd_demo(const CommonOptions& in) {
  CommonOptions opts = in;
  opts.json = false;  // the steps speak to people (on stderr with --json); the summary is the JSON
  if (opts.dir.empty()) opts.dir = "blindcast-demo";
  const std::filesystem::path dir = opts.dir;
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    if (!std::filesystem::exists(dir / k_marker, ec) && !std::filesystem::is_empty(dir, ec)) {
      return report(Error{fmt::format("{} exists and was not made by 'blindcast demo'; choose another directory",
                                      dir.string())});
    }
    std::filesystem::remove_all(dir, ec);  // a fresh demo every time
  }
  std::printf("== blindcast demo in %s\n", dir.string().c_str());
  if (auto w = campaign::write_example_campaign(dir); !w) return report(w.error());
  if (auto w = util::write_file_atomic(dir / k_marker, "made by blindcast demo\n"); !w) return report(w.error());
  if (auto w = campaign::write_synthetic_audience(dir, k_rows, true); !w) return report(w.error());
  std::printf("1. wrote an example campaign: %s synthetic recipients in 5 locales (en, de, ja, ar, pt-BR), plus 3\n"
              "   deliberately broken rows (a bad address, a header injection, a duplicate)\n",
              util::with_commas(k_rows).c_str());

  const auto t0 = std::chrono::steady_clock::now();
  const auto lint = check::lint_campaign(dir, {});
  const double lint_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& d : lint.diags) std::printf("   %s\n", d.str().c_str());
  std::printf("2. lint: %zu errors; %s recipients, %s rejected, %s duplicates; the privacy guard checked %s\n"
              "   rendered messages with %s violations (%.1fs)\n",
              util::error_count(lint.diags), util::with_commas(lint.stats.accepted).c_str(),
              util::with_commas(lint.stats.rejected).c_str(), util::with_commas(lint.stats.duplicates).c_str(),
              util::with_commas(lint.rendered).c_str(), util::with_commas(lint.guard_violations).c_str(), lint_s);
  if (util::error_count(lint.diags) > 0) return static_cast<int>(ExitCode::k_usage);

  if (auto store = open_store(opts, StoreUse::k_create)) {
    (void)send::record_lint_result(**store, lint.content_hash, true, 0);
  }
  util::Diagnostics diags;
  const auto preview_dir = dir / "out" / "preview";
  auto previews = check::write_previews(dir, preview_dir, "", diags);
  if (!previews) return report(previews.error());
  std::printf("3. preview: %zu messages, one per locale, in %s\n", previews->size(), preview_dir.string().c_str());
  for (const auto& p : *previews) std::printf("   %-6s %s\n", p.locale.c_str(), p.subject.c_str());
  std::fflush(stdout);

  std::printf("4. send --stage full before any trial: refused by the gates, as it should be\n");
  std::fflush(stdout);
  suspend_json_errors(true);
  const int refused = cmd_send(opts, "full", false, "", false);
  suspend_json_errors(false);
  std::printf("   (exit code %d)\n", refused);
  std::printf("5. send --stage test: one message per locale to the internal seed list\n");
  std::fflush(stdout);
  if (const int rc = cmd_send(opts, "test", false, "", false); rc != 0) return rc;
  std::printf("6. send --stage canary: a reproducible 1%% sample\n");
  std::fflush(stdout);
  if (const int rc = cmd_send(opts, "canary", false, "", false); rc != 0) return rc;
  std::printf("7. approve --by demo\n");
  std::fflush(stdout);
  if (const int rc = cmd_approve(opts, "demo"); rc != 0) return rc;
  std::printf("8. send --stage full to maildir:%s\n", (dir / "out" / "maildir").string().c_str());
  std::fflush(stdout);
  const int rc = cmd_send(opts, "full", false, "", false);
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "out" / "maildir" / "new", ec)) {
    files += e.is_regular_file() ? 1 : 0;
  }
  if (in.json && !json_printed()) {  // a step that failed printed its error: that is the document
    print_json({{"dir", dir.string()},
                {"exit_code", rc},
                {"maildir", (dir / "out" / "maildir").string()},
                {"messages", files},
                {"full_stage_refused_first", refused == static_cast<int>(ExitCode::k_gate)}});
  }
  std::printf("9. done: %s message files in %s, one recipient each (the audience and the test stage)\n",
              util::with_commas(static_cast<std::int64_t>(files)).c_str(),
              (dir / "out" / "maildir" / "new").string().c_str());
  std::printf("   look at one:    ls %s | head -1\n", (dir / "out" / "maildir" / "new").string().c_str());
  std::printf("   see the state:  build/blindcast status %s --audit\n", dir.string().c_str());
  std::printf("   run it again:   build/blindcast send %s --stage full   (sends nothing new)\n", dir.string().c_str());
  return rc;
}

}  // namespace blindcast::cli
