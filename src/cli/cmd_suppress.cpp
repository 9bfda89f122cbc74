// suppress import|list|remove: the organisation's suppression list (SPEC
// §9), shared by every campaign and stream that uses the same state store.
// Bounced and complaining addresses join it by themselves; these commands
// add, show and remove others.
#include <cstdio>
#include <ctime>
#include <fstream>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/context.hpp"
#include "mail/address.hpp"
#include "util/mask.hpp"
#include "util/strings.hpp"

namespace blindcast::cli {

int cmd_suppress_import(const CommonOptions& opts, const std::string& file, const std::string& reason) {
  std::ifstream in(file);
  if (!in) return report(Error{fmt::format("{}: cannot read", file)});
  std::vector<std::string> keys;
  std::string line;
  long n = 0;
  long bad = 0;
  while (std::getline(in, line)) {
    ++n;
    std::string_view v = util::trim(line);
    if (const auto comma = v.find(','); comma != std::string_view::npos) v = util::trim(v.substr(0, comma));
    if (v.empty() || v.front() == '#' || (n == 1 && util::iequals(v, "email"))) continue;
    auto a = mail::parse_address(v);
    if (!a) {
      ++bad;
      say(util::LogLevel::k_warn, fmt::format("{}:{}: warning: skipped: {}", file, n, a.error()),
          {{"file", file}, {"line", n}});
      continue;
    }
    keys.push_back(a->dedup_key());
  }
  auto store = open_store(opts, StoreUse::k_default);
  if (!store) return report(store.error());
  auto added = (*store)->add_suppressions(keys, reason.empty() ? fmt::format("imported from {}", file) : reason);
  if (!added) return report(added.error());
  (void)(*store)->append_event("suppress_import", "blindcast",
                               fmt::format("{} addresses imported from {} ({} new, {} skipped)", keys.size(), file,
                                           *added, bad));
  std::printf("suppression list: %lld new of %zu read from %s (%ld lines skipped)\n", static_cast<long long>(*added),
              keys.size(), file.c_str(), bad);
  if (opts.json) print_json({{"read", keys.size()}, {"new", *added}, {"skipped", bad}, {"file", file}});
  return 0;
}

int cmd_suppress_list(const CommonOptions& opts) {
  bool missing = false;
  auto store = open_store(opts, StoreUse::k_existing, &missing);
  if (!store) return report(store.error());
  if (missing) {
    if (opts.json) {
      print_json(nlohmann::json::array());
    } else {
      std::printf("the suppression list is empty (no state store yet: nothing has been sent from %s)\n",
                  opts.dir.c_str());
    }
    return 0;
  }
  // The organisation's list: every campaign and stream sharing this store.
  auto list = (*store)->org_list().suppression_list(1000000);
  if (!list) return report(list.error());
  const auto shown = [&](const std::string& a) { return opts.show_addresses ? a : util::mask_address(a); };
  if (opts.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& e : *list) {
      j.push_back({{"address", shown(e.address)}, {"reason", util::mask_addresses_in(e.reason)},
                   {"category", e.category}, {"scope", e.scope}, {"at", e.at}});
    }
    print_json(j);
    return 0;
  }
  for (const auto& e : *list) {
    std::printf("%s  %s  %-11s %s%s\n",
                fmt::format("{:%Y-%m-%d %H:%M}", fmt::gmtime(static_cast<std::time_t>(e.at))).c_str(),
                shown(e.address).c_str(), e.category.c_str(), util::mask_addresses_in(e.reason).c_str(),
                e.scope.empty() ? "" : fmt::format(" ({})", e.scope).c_str());
  }
  std::printf("%zu suppressed addresses\n", list->size());
  return 0;
}

int cmd_suppress_remove(const CommonOptions& opts, const std::string& address) {
  auto a = mail::parse_address(address);
  if (!a) return report(Error{fmt::format("not a valid address: {}", a.error())});
  bool missing = false;
  auto store = open_store(opts, StoreUse::k_existing, &missing);
  if (!store) return report(store.error());
  if (missing) {
    if (opts.json) print_json({{"removed", false}});
    std::printf("%s was not on the suppression list (no state store yet)\n", util::mask_address(address).c_str());
    return 0;
  }
  auto removed = (*store)->remove_suppression(a->dedup_key());
  if (!removed) return report(removed.error());
  if (opts.json) print_json({{"removed", *removed}});
  if (!*removed) {
    std::printf("%s was not on the suppression list\n", util::mask_address(address).c_str());
    return 0;
  }
  (void)(*store)->append_event("suppress_remove", "blindcast", util::mask_address(address));
  std::printf("removed %s from the suppression list; an unsent message to it will be sent by the next send\n",
              util::mask_address(address).c_str());
  return 0;
}

}  // namespace blindcast::cli
