#include "compose/guard_setup.hpp"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/file.hpp"
#include "util/strings.hpp"

namespace blindcast::compose {

namespace {

// Replaces the built-in tokens a reviewed address may be written with.
std::string fill_builtins(std::string_view text, const std::string& campaign_id) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t open = text.find("{{", i);
    if (open == std::string_view::npos) break;
    const std::size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) break;
    std::size_t end = close + 2;
    if (end < text.size() && text[end] == '}') ++end;  // {{{x}}}
    std::string_view name = text.substr(open + 2, close - open - 2);
    while (!name.empty() && (name.front() == '{' || name.front() == '&' || name.front() == ' ')) name.remove_prefix(1);
    name = util::trim(name);
    out.append(text.substr(i, open - i));
    if (name == "unsubscribe_token") {
      out += '*';
    } else if (name == "campaign_id") {
      out += campaign_id;
    } else {
      out.append(text.substr(open, end - open));
    }
    i = end;
  }
  out.append(text.substr(i));
  return out;
}

}  // namespace

Result<std::vector<std::string>> reviewed_addresses(const campaign::LoadedCampaign& campaign) {
  std::vector<std::filesystem::path> files = {campaign.dir / "campaign.toml"};
  std::error_code ec;
  for (const char* sub : {"templates", "locales"}) {
    const auto dir = campaign.dir / sub;
    if (!std::filesystem::is_directory(dir, ec)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.is_regular_file(ec)) files.push_back(entry.path());
    }
  }
  std::vector<std::string> out;
  for (const auto& f : files) {
    auto text = util::read_file(f);
    if (!text) return std::unexpected(text.error());
    guard::collect_addresses(fill_builtins(*text, campaign.config.id), out);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<std::unique_ptr<guard::SendLedger>> open_ledger(const campaign::LoadedCampaign& campaign, std::size_t window,
                                                       std::size_t resends, std::size_t recipients) {
  std::string error;
  auto ledger = guard::SendLedger::open(campaign.state_dir() / "guard-ledger",
                                        {window, campaign.config.guard.max_rate, resends, recipients}, error);
  if (!ledger) return fail(error, ExitCode::k_runtime);
  return ledger;
}

Result<std::string> release_ledger(const std::filesystem::path& dir) {
  const auto path = dir / ".blindcast" / "guard-ledger";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::string();
  std::string error;
  auto ledger = guard::SendLedger::open(path, {}, error);
  if (!ledger) return fail(error, ExitCode::k_runtime);
  std::string limit = ledger->halted();
  if (limit.empty()) return limit;
  ledger->clear_halt(static_cast<std::int64_t>(std::time(nullptr)), error);
  if (!error.empty()) return fail(error, ExitCode::k_runtime);
  return limit;
}

Result<std::shared_ptr<guard::AddressIndex>> index_from_store(store::StateStore& store, std::size_t recipients) {
  auto index = std::make_shared<guard::AddressIndex>();
  index->reserve(recipients);
  if (auto r = store.for_each_address([&](std::string_view a) { index->add(a); }); !r) {
    return std::unexpected(r.error());
  }
  return index;
}

Result<CampaignGuard> CampaignGuard::create(const campaign::LoadedCampaign& campaign,
                                            std::shared_ptr<const guard::AddressIndex> index,
                                            std::span<const std::string> columns) {
  const auto& settings = campaign.config.guard;
  guard::GuardPolicy policy;
  policy.from_address = campaign.config.from.address.str();
  if (campaign.config.reply_to) policy.reply_to_address = campaign.config.reply_to->address.str();
  policy.strict = settings.strict;
  policy.allow = settings.allow;
  if (settings.strict) {
    auto reviewed = reviewed_addresses(campaign);
    if (!reviewed) return std::unexpected(reviewed.error());
    policy.reviewed_addresses = std::move(*reviewed);
  }
  CampaignGuard g;
  for (const auto& name : settings.own_columns) {
    const auto it = std::find_if(columns.begin(), columns.end(),
                                 [&](const std::string& c) { return util::to_lower_ascii(c) == name; });
    if (it == columns.end()) {
      return fail(fmt::format("campaign.toml: [guard] own_columns names '{}', which audience.csv does not have "
                              "(its columns: {})",
                              name, fmt::join(columns, ", ")));
    }
    g.m_own_columns.push_back(static_cast<std::size_t>(it - columns.begin()));
  }
  g.m_envelope_from = policy.from_address;
  g.m_guard = std::make_shared<const guard::PrivacyGuard>(std::move(index), std::move(policy));
  return g;
}

std::optional<guard::Violation> CampaignGuard::check(std::string_view data, const std::string& recipient,
                                                     std::span<const std::string> fields) const {
  const std::string rcpt[] = {recipient};
  std::vector<std::string> own;
  for (const auto c : m_own_columns) {
    if (c >= fields.size()) continue;
    for (const auto part : util::split(fields[c], ',')) {
      const auto a = util::trim(part);
      if (!a.empty()) own.emplace_back(a);
    }
  }
  return m_guard->check(data, guard::Envelope{m_envelope_from, rcpt, own});
}

}  // namespace blindcast::compose
