#include "campaign/campaign.hpp"

#include <algorithm>
#include <sys/stat.h>

#include <ctime>
#include <fstream>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "util/file.hpp"
#include "util/sha256.hpp"
#include "util/utf8.hpp"

namespace blindcast::campaign {

namespace {

std::optional<render::MustacheTemplate> load_template(const std::filesystem::path& dir,
                                                      const std::string& rel, bool required,
                                                      util::Diagnostics& diags) {
  const auto path = dir / rel;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    if (required) {
      diags.push_back({rel, 0, util::Severity::k_error, "missing; this template is required"});
    }
    return std::nullopt;
  }
  auto text = util::read_file(path);
  if (!text) {
    diags.push_back({rel, 0, util::Severity::k_error, text.error().message});
    return std::nullopt;
  }
  if (!util::is_valid_utf8(*text)) {
    diags.push_back({rel, 0, util::Severity::k_error, "not valid UTF-8; save the file as UTF-8"});
    return std::nullopt;
  }
  auto compiled = render::MustacheTemplate::compile(*text);
  if (!compiled) {
    diags.push_back({rel, compiled.error().line, util::Severity::k_error, compiled.error().message});
    return std::nullopt;
  }
  return std::move(*compiled);
}

}  // namespace

std::optional<LoadedCampaign> load_campaign(const std::filesystem::path& dir, util::Diagnostics& diags) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    diags.push_back({dir.string(), 0, util::Severity::k_error,
                     "not a campaign directory; run 'blindcast init DIR' to create one"});
    return std::nullopt;
  }
  auto config = load_config(dir, diags);
  auto set = std::make_shared<render::TemplateSet>();
  auto subject = load_template(dir, set->subject_file, true, diags);
  auto text = load_template(dir, set->text_file, true, diags);
  set->html = load_template(dir, set->html_file, false, diags);
  if (subject) {
    const auto path = dir / set->subject_file;
    auto raw = util::read_file(path);
    std::string_view s = raw ? std::string_view(*raw) : std::string_view();
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
    if (s.find('\n') != std::string_view::npos) {
      diags.push_back({set->subject_file, 2, util::Severity::k_error,
                       "the subject template must be one line"});
    }
    // Recompile without the final line break so the subject has none.
    auto trimmed = render::MustacheTemplate::compile(s);
    if (trimmed) subject = std::move(*trimmed);
  }
  if (config && !config->list_unsubscribe.empty()) {
    auto lu = render::MustacheTemplate::compile(fmt::format("{}", fmt::join(config->list_unsubscribe, "\n")));
    if (lu) {
      set->list_unsubscribe = std::move(*lu);
    } else {
      diags.push_back({"campaign.toml", 0, util::Severity::k_error,
                       "list_unsubscribe: " + lu.error().message});
    }
  }
  if (!config || !subject || !text) return std::nullopt;
  set->subject = std::move(*subject);
  set->text = std::move(*text);
  auto catalogs = std::make_shared<render::Catalogs>(
      render::Catalogs::load(dir, config->default_locale, diags));
  if (render::canonical_locale(config->default_locale).empty()) {
    diags.push_back({"campaign.toml", 0, util::Severity::k_error,
                     fmt::format("default_locale '{}' is not a BCP 47 tag (e.g. \"en\", \"pt-BR\")",
                                 config->default_locale)});
  }
  return LoadedCampaign{dir, std::move(*config), std::move(set), std::move(catalogs)};
}

Result<std::string> content_hash(const std::filesystem::path& dir) {
  std::vector<std::string> files = {"campaign.toml", "templates/subject.txt", "templates/body.txt",
                                    "templates/body.html"};
  std::error_code ec;
  if (std::filesystem::is_directory(dir / "locales", ec)) {
    std::vector<std::string> locales;
    for (const auto& e : std::filesystem::directory_iterator(dir / "locales", ec)) {
      if (e.path().extension() == ".toml") locales.push_back("locales/" + e.path().filename().string());
    }
    std::sort(locales.begin(), locales.end());
    files.insert(files.end(), locales.begin(), locales.end());
  }
  files.emplace_back("audience.csv");
  files.emplace_back("samples.csv");  // what the test stage sends (skipped when absent)
  // A long-running service asks for the same hash every second (status, the
  // dashboard): it is read again only when a file's identity, size, mtime or
  // ctime moved. Every write changes ctime, which no tool can set back; a
  // file changed in the last 2 s is not cached (timestamps are coarser than
  // two quick writes of the same size: git's "racily clean" rule).
  std::string identity;
  bool cacheable = true;
  const auto now = std::time(nullptr);
  for (const auto& rel : files) {
    struct stat st{};
    if (::stat((dir / rel).c_str(), &st) != 0) {
      identity += rel + ":-;";
      continue;
    }
    if (now - st.st_ctim.tv_sec < 2 || now - st.st_mtim.tv_sec < 2) cacheable = false;
    identity += fmt::format("{}:{}:{}:{}:{}.{}:{}.{};", rel, st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec,
                            st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
  }
  static std::mutex cache_mutex;
  static std::map<std::string, std::pair<std::string, std::string>> cache;  // dir -> (identity, hash)
  const std::string key = std::filesystem::absolute(dir, ec).string();
  {
    std::lock_guard lock(cache_mutex);
    const auto it = cache.find(key);
    if (cacheable && it != cache.end() && it->second.first == identity) return it->second.second;
  }
  util::Sha256 hash;
  for (const auto& rel : files) {
    const auto path = dir / rel;
    if (!std::filesystem::is_regular_file(path, ec)) continue;
    hash.update_field(rel);
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(fmt::format("{}: cannot read", path.string()), ExitCode::k_runtime);
    const auto size = std::filesystem::file_size(path, ec);
    hash.update_field(std::to_string(size));
    std::vector<char> buf(1 << 20);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      hash.update(std::string_view(buf.data(), static_cast<std::size_t>(in.gcount())));
    }
  }
  std::string digest = hash.hex_digest();
  std::lock_guard lock(cache_mutex);
  if (cache.size() > 1024) cache.clear();
  if (cacheable) cache[key] = {identity, digest};
  return digest;
}

}  // namespace blindcast::campaign
