#include "serve/streams.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "audience/audience_loader.hpp"
#include "mail/address.hpp"
#include "send/stages.hpp"
#include "store/pg_store.hpp"
#include "store/state_store.hpp"
#include "util/log.hpp"
#include "util/mask.hpp"
#include "util/secret_file.hpp"

namespace blindcast::serve {

namespace {

constexpr std::size_t k_max_value = 16 * 1024;  // bytes of one data value

// One builder with its own copy of the stream's content (a builder's
// renderer and catalogs keep caches of their own: one per thread at a time).
struct Builder {
  campaign::LoadedCampaign campaign;
  std::unique_ptr<compose::MessageBuilder> builder;
};

bool valid_locale(const std::string& s) {
  if (s.empty() || s.size() > 35) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

bool has_control(std::string_view v) {
  return std::any_of(v.begin(), v.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

ApiError bad(std::string field, std::string message) { return {400, "invalid_request", std::move(message), std::move(field)}; }

}  // namespace

class Stream {
 public:
  std::string name;
  std::filesystem::path dir;
  std::string content_hash;
  std::string hold;  // why it may not send now; empty when it may
  bool security = false;
  std::string default_locale = "en";
  std::vector<std::string> columns;
  std::optional<compose::CampaignGuard> guard;
  campaign::CampaignSecrets secrets;
  std::optional<campaign::DkimSettings> server_dkim;
  std::string server_unsubscribe;
  std::optional<campaign::BounceSettings> server_bounces;

  std::mutex pool_mutex;
  std::vector<std::unique_ptr<Builder>> pool;

  // Applies the server's defaults to a stream's settings.
  void defaults(campaign::LoadedCampaign& c) const {
    if (!c.config.dkim && server_dkim) c.config.dkim = server_dkim;
    // Tokens are opened with the server's key: a stream makes them with it too.
    if (!server_unsubscribe.empty()) c.config.unsubscribe_secret_file = server_unsubscribe;
    // The same for VERP tokens: the bounce listener verifies them with the server's key.
    if (server_bounces) c.config.bounces = server_bounces;
    c.config.guard.strict = true;  // always, whatever the stream says
  }

  // A builder of the current content, from the pool or made now.
  std::expected<std::unique_ptr<Builder>, std::string> take() {
    {
      std::lock_guard lock(pool_mutex);
      if (!pool.empty()) {
        auto b = std::move(pool.back());
        pool.pop_back();
        return b;
      }
    }
    util::Diagnostics diags;
    auto loaded = campaign::load_campaign(dir, diags);
    if (!loaded || util::error_count(diags) > 0) return std::unexpected("the stream's files cannot be read now");
    if (campaign::content_hash(dir).value_or("") != content_hash) {
      return std::unexpected("the stream's content changed; it is held until linted and approved again");
    }
    auto b = std::make_unique<Builder>();
    b->campaign = std::move(*loaded);
    defaults(b->campaign);
    b->builder = std::make_unique<compose::MessageBuilder>(b->campaign, columns, diags);
    b->builder->use_secrets(secrets);
    if (util::error_count(diags) > 0) return std::unexpected(diags.front().str());
    return b;
  }

  void give_back(std::unique_ptr<Builder> b) {
    std::lock_guard lock(pool_mutex);
    pool.push_back(std::move(b));
  }
};

StreamSet::StreamSet(const ServerConfig& config) : m_config(config), m_lanes(config.shaping) {
  if (!config.unsubscribe_secret_file.empty()) {
    auto secret = util::read_secret_file(config.unsubscribe_secret_file, config.unsubscribe_secret_file.string());
    if (!secret) {
      m_fatal.push_back(secret.error().message);
    } else if (secret->reveal().size() < 16) {
      m_fatal.push_back(fmt::format("[unsubscribe] secret_file {}: the key of unsubscribe tokens needs at least 16 "
                                    "random bytes, e.g. head -c 32 /dev/urandom | base64 > {}",
                                    config.unsubscribe_secret_file.string(), config.unsubscribe_secret_file.string()));
    } else {
      m_unsubscribe_key = std::make_shared<const util::SealKey>(secret->reveal());
    }
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(config.streams, ec)) return;
  std::vector<std::filesystem::path> dirs;
  for (const auto& e : std::filesystem::directory_iterator(config.streams, ec)) {
    if (e.is_directory(ec) && std::filesystem::exists(e.path() / "campaign.toml", ec)) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) load(d);
}

StreamSet::~StreamSet() = default;

void StreamSet::load(const std::filesystem::path& dir) {
  auto s = std::make_shared<Stream>();
  s->name = dir.filename().string();
  s->dir = dir;
  s->server_dkim = m_config.dkim;
  s->server_unsubscribe = m_config.unsubscribe_secret_file.string();
  if (m_config.bounces) s->server_bounces = m_config.bounces->verp;
  s->content_hash = campaign::content_hash(dir).value_or("");
  util::Diagnostics diags;
  auto loaded = campaign::load_campaign(dir, diags);
  // A held stream is read again every second: say so when its state changes, not each time.
  const auto publish = [&] {
    std::lock_guard lock(m_mutex);
    const auto before = m_streams.find(s->name);
    const bool changed = before == m_streams.end() || before->second->hold != s->hold ||
                         before->second->content_hash != s->content_hash;
    m_streams[s->name] = s;
    return changed;
  };
  const auto held = [&](std::string why) {
    s->hold = std::move(why);
    if (publish()) util::log_warn(fmt::format("stream {}: held: {}", s->name, s->hold));
  };
  if (!loaded || util::error_count(diags) > 0) {
    return held(fmt::format("its files have errors; run 'blindcast lint {}'", dir.string()));
  }
  if (!loaded->config.transactional) {
    util::log_warn(fmt::format("{}: not a transactional stream (kind = \"transactional\" is missing); skipped",
                               dir.string()));
    return;
  }
  s->security = loaded->config.security;
  s->default_locale = loaded->config.default_locale;
  s->defaults(*loaded);
  auto header = audience::AudienceLoader::open(loaded->samples_path(), {});
  if (!header) return held(header.error().message);
  s->columns = header->columns();
  auto secrets = campaign::load_campaign_secrets(*loaded);
  if (!secrets) return held(secrets.error().message);
  s->secrets = std::move(*secrets);
  auto guard = compose::CampaignGuard::create(*loaded, std::make_shared<guard::AddressIndex>(), s->columns);
  if (!guard) return held(guard.error().message);
  s->guard = std::move(*guard);
  // Approved content only: lint clean and enough approvals of this hash.
  // Its approvals: in its own store, or under its id in the service's PostgreSQL database.
  const bool shared = store::is_postgres(m_config.state.string());
  const auto store_path = shared ? std::filesystem::path(store::postgres_locator(m_config.state.string(),
                                                                                 loaded->config.id))
                                 : loaded->state_dir() / "state.db";
  std::error_code ec;
  if (!shared && !std::filesystem::exists(store_path, ec)) {
    return held(fmt::format("not approved: run 'blindcast lint {}' and 'blindcast approve {} --by NAME'", dir.string(),
                            dir.string()));
  }
  auto store = store::open_state_store(store_path.string());
  if (!store) return held(store.error().message);
  auto gates = send::evaluate_gates(*loaded, **store, false);
  if (!gates) return held(gates.error().message);
  if (!gates->lint_clean) {
    return held(fmt::format("content {} is not linted clean: run 'blindcast lint {}'", s->content_hash.substr(0, 12),
                            dir.string()));
  }
  if (!gates->approvals_ok()) {
    return held(fmt::format("content {} has {} of {} approvals: run 'blindcast approve {} --by NAME'",
                            s->content_hash.substr(0, 12), gates->approvers.size(), gates->approvals_required,
                            dir.string()));
  }
  s->hold.clear();
  if (publish()) {
    util::log_info(fmt::format("stream {}: content {} approved by {}", s->name, s->content_hash.substr(0, 12),
                               fmt::join(gates->approvers, ", ")));
  }
}

void StreamSet::refresh() {
  std::vector<std::pair<std::filesystem::path, std::string>> known;
  {
    std::lock_guard lock(m_mutex);
    for (const auto& [name, s] : m_streams) known.emplace_back(s->dir, s->hold.empty() ? s->content_hash : "");
  }
  for (const auto& [dir, hash] : known) {
    // A held stream is read again each time (it may have been approved since);
    // an approved one when its content changed.
    if (hash.empty() || campaign::content_hash(dir).value_or("") != hash) load(dir);
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(m_config.streams, ec)) return;
  for (const auto& e : std::filesystem::directory_iterator(m_config.streams, ec)) {
    if (!e.is_directory(ec) || !std::filesystem::exists(e.path() / "campaign.toml", ec)) continue;
    bool have = false;
    {
      std::lock_guard lock(m_mutex);
      have = m_streams.contains(e.path().filename().string());
    }
    if (!have) load(e.path());
  }
}

std::shared_ptr<Stream> StreamSet::find(const std::string& name) {
  std::lock_guard lock(m_mutex);
  const auto it = m_streams.find(name);
  return it == m_streams.end() ? nullptr : it->second;
}

std::vector<std::pair<std::string, std::string>> StreamSet::states() {
  std::lock_guard lock(m_mutex);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, s] : m_streams) out.emplace_back(name, s->hold);
  return out;
}

std::string StreamSet::lane_for(const std::string& domain) const { return m_lanes.lane_for(domain).name; }

bool StreamSet::is_security_stream(const std::string& scope) {
  const auto s = find(scope);
  return s != nullptr && s->security;
}

std::expected<BuiltRequest, ApiError> StreamSet::build(const nlohmann::json& request, std::string_view message_id) {
  if (!request.is_object()) return std::unexpected(bad("", "the body must be a JSON object"));
  for (const auto& [key, value] : request.items()) {
    if (key != "stream" && key != "to" && key != "locale" && key != "data") {
      return std::unexpected(bad(key, fmt::format("unknown field '{}'; the fields are stream, to, locale, data",
                                                  util::mask_addresses_in(key.substr(0, 64)))));
    }
  }
  const auto stream_it = request.find("stream");
  if (stream_it == request.end() || !stream_it->is_string()) {
    return std::unexpected(bad("stream", "'stream' (a string naming a stream) is required"));
  }
  const std::string name = stream_it->get<std::string>();
  auto s = find(name);
  if (s == nullptr) {
    std::vector<std::string> names;
    for (const auto& [n, hold] : states()) names.push_back(n);
    return std::unexpected(ApiError{404, "unknown_stream",
                                    fmt::format("no stream '{}' on this node; the streams are: {}",
                                                util::mask_addresses_in(name.substr(0, 64)), fmt::join(names, ", ")),
                                    "stream"});
  }
  const auto to_it = request.find("to");
  if (to_it == request.end() || !to_it->is_string()) {
    return std::unexpected(bad("to", "'to' (the one recipient's address) is required"));
  }
  auto address = mail::parse_address(to_it->get<std::string>());
  if (!address || has_control(to_it->get_ref<const std::string&>())) {
    return std::unexpected(
        bad("to", fmt::format("'to' is not an address blindcast sends to: {}", address ? "control characters" : address.error())));
  }
  std::string locale = s->default_locale;
  if (const auto it = request.find("locale"); it != request.end()) {
    if (!it->is_string() || !valid_locale(it->get<std::string>())) {
      return std::unexpected(bad("locale", "'locale' must be a BCP 47 tag such as \"de\" or \"pt-BR\""));
    }
    locale = it->get<std::string>();
  }
  const nlohmann::json empty = nlohmann::json::object();
  const nlohmann::json* data = &empty;
  if (const auto it = request.find("data"); it != request.end()) {
    if (!it->is_object()) return std::unexpected(bad("data", "'data' must be an object of the stream's fields"));
    data = &*it;
  }
  for (const auto& [key, value] : data->items()) {
    if (key == "email" || key == "locale" ||
        std::find(s->columns.begin(), s->columns.end(), key) == s->columns.end()) {
      return std::unexpected(bad("data." + key.substr(0, 64),
                                 fmt::format("stream '{}' has no field '{}'; its fields are those of its "
                                             "samples.csv: {}",
                                             name, util::mask_addresses_in(key.substr(0, 64)), fmt::join(s->columns, ", "))));
    }
  }
  std::vector<std::string> fields;
  fields.reserve(s->columns.size());
  std::string person;
  for (const auto& col : s->columns) {
    if (col == "email") {
      fields.push_back(address->str());
      continue;
    }
    if (col == "locale") {
      fields.push_back(locale);
      continue;
    }
    const auto it = data->find(col);
    if (it == data->end()) {
      return std::unexpected(bad("data." + col, fmt::format("'data.{}' is required by stream '{}'", col, name)));
    }
    std::string v;
    if (it->is_string()) v = it->get<std::string>();
    else if (it->is_number()) v = it->dump();  // exactly as sent (a 64-bit unsigned too)
    else if (it->is_boolean()) v = it->get<bool>() ? "true" : "false";
    else return std::unexpected(bad("data." + col, fmt::format("'data.{}' must be a string or a number", col)));
    if (v.size() > k_max_value) {
      return std::unexpected(bad("data." + col, fmt::format("'data.{}' is longer than {} bytes", col, k_max_value)));
    }
    if (col == "name" && v.size() > audience::k_max_name) {
      return std::unexpected(bad("data.name", fmt::format("'data.name' is {} bytes; a display name in To: is at most {}",
                                                          v.size(), audience::k_max_name)));
    }
    if (has_control(v)) {
      return std::unexpected(bad("data." + col, fmt::format("'data.{}' holds a control character (line break, NUL, "
                                                            "tab); values are single lines of text",
                                                            col)));
    }
    if (col == "name") person = v;
    fields.push_back(std::move(v));
  }
  if (!s->hold.empty()) {
    return std::unexpected(ApiError{409, "stream_held", fmt::format("stream '{}' is held: {}", name, s->hold), "stream"});
  }
  auto b = s->take();
  if (!b) return std::unexpected(ApiError{409, "stream_held", fmt::format("stream '{}': {}", name, b.error()), "stream"});
  compose::BuildOptions options;
  options.bounce_token = (*b)->builder->message_bounce_token(message_id);
  auto built = (*b)->builder->build(fields, address->str(), person, locale, options);
  s->give_back(std::move(*b));
  if (!built) {
    return std::unexpected(ApiError{422, "cannot_render",
                                    fmt::format("stream '{}' cannot render this message: {}", name,
                                                util::mask_addresses_in(built.error())),
                                    "data"});
  }
  if (auto v = s->guard->check(built->data, address->str(), fields)) {
    return std::unexpected(ApiError{422, "guard_refused",
                                    fmt::format("the privacy guard refused the message (nothing was stored or sent): {}",
                                                v->describe(false)),
                                    ""});
  }
  BuiltRequest out;
  out.stream = name;
  out.recipient = address->str();
  out.locale = locale;
  out.lane = lane_for(address->domain);
  out.envelope_from = built->envelope_from;
  out.data = std::move(built->data);
  out.content_hash = s->content_hash;
  out.security = s->security;
  return out;
}

}  // namespace blindcast::serve
