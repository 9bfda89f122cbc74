#include "serve/service.hpp"

#include <httplib.h>
#include <openssl/crypto.h>
#include <signal.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <future>
#include <mutex>
#include <thread>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "campaign/campaign.hpp"
#include "campaign/secrets.hpp"
#include "check/preview.hpp"
#include "mail/address.hpp"
#include "send/sender.hpp"
#include "delivery/shared_transport.hpp"
#include "serve/api_keys.hpp"
#include "serve/bounce_listener.hpp"
#include "serve/campaign_runner.hpp"
#include "serve/connection_pool.hpp"
#include "serve/dashboard.hpp"
#include "serve/dashboard_assets.hpp"
#include "serve/intake.hpp"
#include "serve/metrics.hpp"
#include "serve/sessions.hpp"
#include "serve/streams.hpp"
#include "serve/tx_sender.hpp"
#include "store/pg_store.hpp"
#include "util/log.hpp"
#include "util/mask.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"
#include "util/threads.hpp"

namespace blindcast::serve {

namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// The service store's writers (intake, transactional delivery) copy the WAL
// into the database themselves only past this many pages (16 MB): the
// housekeeping loop does it every 250 ms.
constexpr int k_writer_checkpoint_pages = 4096;
constexpr std::size_t k_max_idempotency_key = 255;

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string rfc3339(std::int64_t t) {
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(static_cast<std::time_t>(t)));
}


// JSON text; invalid UTF-8 (a client's bytes cut in a message) becomes U+FFFD, never an exception.
std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message,
                const std::string& field = "") {
  res.status = status;
  Json j{{"error", {{"code", code}, {"message", message}}}};
  if (!field.empty()) j["error"]["field"] = field;
  res.set_content(dump(j), "application/json");
}

void send_json(httplib::Response& res, int status, const Json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

void send_api_error(httplib::Response& res, const ApiError& e) {
  if (e.code == "gate_refused") {
    // The closed gates ride in `field` as a JSON array (campaign_runner).
    Json j{{"error", {{"code", e.code}, {"message", e.message}, {"reasons", Json::parse(e.field, nullptr, false)}}}};
    res.status = e.status;
    res.set_content(dump(j), "application/json");
    return;
  }
  send_error(res, e.status, e.code, e.message, e.field);
}

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// The HTML of GET /u/{token}: a button that posts the form; nothing changes on GET.
std::string unsubscribe_page(const std::string& token, bool valid) {
  if (!valid) {
    return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
           "content=\"width=device-width\"><title>Unsubscribe</title></head><body><h1>This unsubscribe link is not "
           "valid</h1><p>It may have been cut or changed. Use the link from the message itself, or reply to the "
           "message to ask for no more mail.</p></body></html>";
  }
  return fmt::format(
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
      "content=\"width=device-width\"><title>Unsubscribe</title></head><body><h1>Unsubscribe</h1><p>Stop receiving "
      "these messages? Security notices about your account still arrive.</p><form method=\"post\" "
      "action=\"/u/{}\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\"><button "
      "type=\"submit\">Unsubscribe</button></form></body></html>",
      token);
}

}  // namespace

struct Service {
  Service(const ServerConfig& c, delivery::SharedTransport* shared)
      : config(c), shared_transport(shared), streams(c), campaigns(c, shared) {}

  const ServerConfig& config;
  delivery::SharedTransport* shared_transport;  // null with a maildir (nothing shared, nothing to yield)
  KeyRing keys;
  Sessions sessions;
  PreviewCache previews;
  StreamSet streams;
  Metrics metrics;
  CampaignRunner campaigns;
  std::unique_ptr<Intake> intake;
  std::unique_ptr<TxSender> tx;
  std::mutex reader_mutex;
  std::unique_ptr<store::ServiceStore> reader;  // under reader_mutex
  // The dashboard's reads (streams, lookup) on a connection of their own, so
  // a look never holds up intake; the streams' view is shared for a second.
  std::mutex viewer_mutex;
  std::unique_ptr<store::ServiceStore> viewer;  // under viewer_mutex
  std::array<std::pair<Clock::time_point, Json>, 2> streams_views{};  // [admin], under viewer_mutex
  Clock::time_point keys_read{};                // under reader_mutex
  std::atomic<std::int64_t> unfinished{0};
  std::atomic<bool> stopping{false};
  std::mutex bucket_mutex;
  double tokens = 0;
  Clock::time_point refilled = Clock::now();
  std::unique_ptr<httplib::Server> http;

  // ---- requests

  // Reads the keys again when they changed, unless that was done less than `min_gap` ago.
  void reload_keys(std::chrono::milliseconds min_gap) {
    std::lock_guard lock(reader_mutex);
    const auto now = Clock::now();
    if (now - keys_read < min_gap) return;
    keys_read = now;
    if (auto k = keys.reload(*reader); !k) util::log_warn(k.error().message);
  }

  void audit(const httplib::Request& req, const std::string& actor, std::string detail = {}) {
    intake->audit({now_seconds(), actor.empty() ? "-" : actor, req.remote_addr,
                   fmt::format("{} {}", req.method, util::mask_addresses_in(req.path.substr(0, 200))),
                   util::mask_addresses_in(detail)});
  }

  // A state-changing request of a signed-in browser: it must echo the
  // session's CSRF token, and come from this origin when the browser says
  // where it comes from.
  static bool same_origin_request(const httplib::Request& req, const Session& session) {
    const std::string token = req.get_header_value("X-CSRF-Token");
    if (token.size() != session.csrf.size() ||
        CRYPTO_memcmp(token.data(), session.csrf.data(), token.size()) != 0) {
      return false;
    }
    const std::string site = req.get_header_value("Sec-Fetch-Site");
    if (!site.empty() && site != "same-origin") return false;
    const std::string origin = req.get_header_value("Origin");
    const std::string host = req.get_header_value("Host");
    return origin.empty() || (!host.empty() && origin.ends_with("://" + host) &&
                              (origin.starts_with("http://") || origin.starts_with("https://")));
  }

  // The key of `req` when it may do `scope` (any of `scopes`); else answers
  // 401/403 and returns nothing. A request without Authorization may carry
  // a dashboard session (the cookie): the key it signed in with, as it is now.
  std::optional<AuthResult> authorize(const httplib::Request& req, httplib::Response& res,
                                      std::initializer_list<const char*> scopes) {
    const std::string header = req.get_header_value("Authorization");
    AuthResult r;
    const std::string cookie = header.empty() ? session_of(req) : "";
    if (!cookie.empty()) {
      const auto session = sessions.find(cookie);
      if (!session) {
        audit(req, "-", "refused: dashboard session unknown or expired");
        send_error(res, 401, "session_expired", "the dashboard session ended; sign in again");
        return std::nullopt;
      }
      r = keys.check_id(session->key_id, req.remote_addr);
      if (r.status == AuthStatus::k_unknown) {
        sessions.end(cookie);
        audit(req, session->name, "refused: the session's key was revoked");
        send_error(res, 401, "session_expired", "the key this session signed in with was revoked; sign in again");
        return std::nullopt;
      }
      if (req.method != "GET" && req.method != "HEAD" && !same_origin_request(req, *session)) {
        audit(req, r.name, "refused: no valid CSRF token");
        send_error(res, 403, "csrf",
                   "this request did not come from the dashboard page (no valid X-CSRF-Token); reload the page");
        return std::nullopt;
      }
    } else {
      r = keys.check(header, req.remote_addr, "");
      if (r.status == AuthStatus::k_unknown) {
        // A key made a moment ago: read the keys again now (at most every 50 ms)
        // rather than at the next housekeeping round.
        reload_keys(std::chrono::milliseconds(0));
        r = keys.check(header, req.remote_addr, "");
      }
    }
    if (r.status == AuthStatus::k_ok) {
      const bool allowed = std::any_of(scopes.begin(), scopes.end(), [&](const char* s) { return r.has(s); });
      if (!allowed) r.status = AuthStatus::k_scope;
    }
    switch (r.status) {
      case AuthStatus::k_ok: return r;
      case AuthStatus::k_missing:
      case AuthStatus::k_unknown:
        audit(req, "-", r.status == AuthStatus::k_missing ? "refused: no key" : "refused: unknown key");
        res.set_header("WWW-Authenticate", "Bearer");
        send_error(res, 401, "unauthorized",
                   "a valid API key is required: Authorization: Bearer KEY ('blindcast keys create' makes one)");
        break;
      case AuthStatus::k_network:
        audit(req, r.name, "refused: address outside the key's networks");
        send_error(res, 403, "forbidden_network",
                   fmt::format("key '{}' may not be used from {}; it is bound to other networks", r.name, req.remote_addr));
        break;
      case AuthStatus::k_scope: {
        std::string need;
        for (const char* s : scopes) need += need.empty() ? s : std::string(" or ") + s;
        audit(req, r.name, fmt::format("refused: scope {} needed", need));
        send_error(res, 403, "forbidden_scope", fmt::format("key '{}' lacks the scope this needs: {}", r.name, need));
        break;
      }
    }
    return std::nullopt;
  }

  // Takes one intake token; 0 when there was one, else the seconds to wait.
  int take_token() {
    std::lock_guard lock(bucket_mutex);
    const auto now = Clock::now();
    tokens = std::min(config.intake.burst,
                      tokens + std::chrono::duration<double>(now - refilled).count() * config.intake.rate);
    refilled = now;
    if (tokens >= 1) {
      tokens -= 1;
      return 0;
    }
    return std::max(1, static_cast<int>(std::ceil((1 - tokens) / config.intake.rate)));
  }

  void post_message(const httplib::Request& req, httplib::Response& res) {
    auto key = authorize(req, res, {"send"});
    if (!key) {
      metrics.intake_rejected(res.status == 401 ? "unauthorized" : "forbidden");
      return;
    }
    const std::string idem = req.get_header_value("Idempotency-Key");
    if (idem.size() > k_max_idempotency_key || (!idem.empty() && !printable_ascii(idem))) {
      metrics.intake_rejected("bad_request");
      send_error(res, 400, "invalid_request", "Idempotency-Key must be 1-255 printable ASCII characters",
                 "Idempotency-Key");
      return;
    }
    const std::string body_hash = util::sha256_hex(req.body);
    if (!idem.empty()) {
      // A retry gets the first answer whatever happened since (a held
      // stream, the intake limit, a stop); the writer checks again for
      // retries that race each other.
      std::optional<store::IdempotencyRecord> first;
      {
        std::lock_guard lock(reader_mutex);
        if (auto f = reader->find_idempotency(key->name, idem)) first = std::move(*f);
      }
      if (first) {
        audit(req, key->name, first->body_hash == body_hash ? "idempotent replay" : "refused: idempotency conflict");
        if (first->body_hash != body_hash) {
          send_error(res, 409, "idempotency_conflict",
                     "this Idempotency-Key was used with another body in the last 24 hours; use a new key for a new "
                     "message",
                     "Idempotency-Key");
          return;
        }
        res.set_header("Idempotent-Replayed", "true");
        res.status = first->status;
        res.set_content(first->response, "application/json");
        return;
      }
    }
    if (stopping.load()) {
      res.set_header("Retry-After", "5");
      send_error(res, 503, "shutting_down", "this node is stopping; send to another node or again in a moment");
      return;
    }
    if (const int wait = take_token(); wait > 0) {
      metrics.intake_rejected("rate_limited");
      res.set_header("Retry-After", std::to_string(wait));
      audit(req, key->name, "refused: over the intake limit");
      send_error(res, 429, "rate_limited",
                 fmt::format("this node accepts {} messages per second ([intake] rate); retry after {} s",
                             config.intake.rate, wait));
      return;
    }
    if (unfinished.load() >= config.intake.max_queued) {
      metrics.intake_rejected("queue_full");
      res.set_header("Retry-After", "5");
      audit(req, key->name, "refused: queue full");
      send_error(res, 429, "queue_full",
                 fmt::format("{} messages wait to be sent on this node ([intake] max_queued); retry later",
                             unfinished.load()));
      return;
    }
    // Campaigns start yielding while this one is on its way through intake
    // (a request the intake limits turn away does not count).
    if (shared_transport != nullptr) shared_transport->urgent_coming();
    const Json body = Json::parse(req.body, nullptr, false);
    if (body.is_discarded()) {
      metrics.intake_rejected("bad_request");
      send_error(res, 400, "invalid_json", "the body is not JSON; send {\"stream\": ..., \"to\": ..., \"data\": {...}}",
                 "");
      return;
    }
    const std::string public_id = "msg_" + util::to_hex(util::random_bytes(12));
    auto built = streams.build(body, public_id);
    if (!built) {
      const auto& e = built.error();
      metrics.intake_rejected(e.code == "guard_refused" ? "guard" : e.status == 409 ? "stream_held" : "bad_request");
      if (e.code == "guard_refused") {
        const auto s = body.is_object() && body.contains("stream") && body["stream"].is_string()
                           ? body["stream"].get<std::string>()
                           : std::string("?");
        metrics.guard_refused(s);
        util::log_warn(fmt::format("stream {}: {}", s, e.message));
      }
      audit(req, key->name, fmt::format("refused {}: {}", e.status, e.message));
      send_api_error(res, e);
      return;
    }
    IntakeItem item;
    item.key_name = key->name;
    item.idempotency_key = idem;
    item.body_hash = body_hash;
    auto& m = item.message;
    m.public_id = public_id;
    m.stream = built->stream;
    m.recipient = built->recipient;
    m.locale = built->locale;
    m.lane = built->lane;
    m.key_name = key->name;
    m.envelope_from = built->envelope_from;
    m.data = std::move(built->data);
    m.content_hash = built->content_hash;
    {
      std::lock_guard lock(reader_mutex);
      auto sup = reader->org_list().suppression(util::to_lower_ascii(m.recipient));
      if (!sup) {
        util::log_error(sup.error().message);
        send_error(res, 503, "store_unavailable", "the state store cannot be read; nothing was accepted");
        return;
      }
      // Hard bounces and complaints stop everything; unsubscribes all but security notices.
      if (*sup && ((*sup)->category == "all" || !built->security)) {
        m.state = store::MessageState::k_suppressed;
        m.reply = fmt::format("suppressed: {}", (*sup)->reason);
      }
    }
    item.audit = {now_seconds(), key->name, req.remote_addr, "POST /v1/messages",
                  fmt::format("{} to {} as {}", built->stream, util::mask_address(m.recipient), m.public_id)};
    const auto answer = intake->submit(std::move(item));
    if (answer.replay) res.set_header("Idempotent-Replayed", "true");
    if (answer.status == 202 && !answer.replay) {
      metrics.intake_accepted(built->stream);
      if (m.state == store::MessageState::k_suppressed) metrics.message(built->stream, built->lane, "suppressed");
    }
    res.status = answer.status;
    res.set_content(answer.body, "application/json");
  }

  void get_message(const httplib::Request& req, httplib::Response& res) {
    auto key = authorize(req, res, {"read", "send"});
    if (!key) return;
    audit(req, key->name);
    std::optional<store::MessageRecord> m;
    {
      std::lock_guard lock(reader_mutex);
      auto r = reader->message(req.matches[1].str());
      if (!r) {
        send_error(res, 503, "store_unavailable", "the state store cannot be read");
        return;
      }
      m = std::move(*r);
    }
    // A key without `read` sees the messages it sent, no others.
    if (!m || (!key->has("read") && m->key_name != key->name)) {
      send_error(res, 404, "not_found", "no message with this id");
      return;
    }
    const bool admin = key->has("admin");
    Json attempts = Json::array();
    for (const auto& a : m->history) {
      attempts.push_back({{"at", rfc3339(a.at)}, {"reply", admin ? a.reply : util::mask_addresses_in(a.reply)}});
    }
    send_json(res, 200,
              {{"id", m->public_id},
               {"stream", m->stream},
               {"to", admin ? m->recipient : util::mask_address(m->recipient)},
               {"status", store::message_state_name(m->state)},
               {"lane", m->lane},
               {"created_at", rfc3339(m->created_at / 1000)},
               {"possible_duplicate", m->maybe_delivered},
               {"attempts", attempts}});
  }

  void campaign_action(const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1].str();
    const std::string action = req.matches[2].str();
    auto key = authorize(req, res, {action == "approve" ? "approve" : "campaigns"});
    if (!key) return;
    Json body = Json::object();
    if (!req.body.empty()) {
      body = Json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        send_error(res, 400, "invalid_json", "the body must be a JSON object");
        return;
      }
    }
    const auto text = [&](const char* field) {
      const auto it = body.find(field);
      return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    std::expected<Json, ApiError> r;
    if (action == "send") {
      r = campaigns.start(id, text("stage"), key->name);
    } else if (action == "approve") {
      r = campaigns.approve(id, key->name, text("content_hash"));
    } else if (action == "halt") {
      r = campaigns.halt(id, text("reason"), key->name);
    } else {
      r = campaigns.release(id, key->name);
    }
    audit(req, key->name, r ? dump(*r) : fmt::format("refused {}: {}", r.error().status, r.error().message));
    if (!r) return send_api_error(res, r.error());
    send_json(res, action == "send" ? 202 : 200, *r);
  }

  void unsubscribe(const httplib::Request& req, httplib::Response& res, bool post) {
    const std::string token = req.matches[1].str();
    const auto key = streams.unsubscribe_key();
    const auto target = key ? campaign::open_unsubscribe_token(*key, token) : std::nullopt;
    res.set_header("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'");
    res.set_header("Cache-Control", "no-store");
    res.set_header("Referrer-Policy", "no-referrer");
    if (!post) {
      res.status = target ? 200 : 400;
      res.set_content(unsubscribe_page(token, target.has_value()), "text/html; charset=utf-8");
      return;
    }
    if (!target) {
      audit(req, "-", "unsubscribe refused: token not valid");
      send_error(res, 400, "invalid_token", "this unsubscribe link is not valid (cut, changed or not ours)");
      return;
    }
    bool added = false;
    {
      std::lock_guard lock(reader_mutex);
      auto s = reader->org_list().suppress(
          {util::to_lower_ascii(target->email), "unsubscribed (one-click)", "unsubscribe", target->scope, 0});
      if (!s) {
        util::log_error(s.error().message);
        send_error(res, 503, "store_unavailable", "the unsubscribe could not be recorded; try again");
        return;
      }
      added = *s;
    }
    (void)campaigns.suppress(target->scope, target->email, "unsubscribed (one-click)");
    audit(req, "-", fmt::format("unsubscribed {} from {}{}", util::mask_address(target->email), target->scope,
                                added ? "" : " (already)"));
    res.status = 200;
    res.set_content("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Unsubscribed</title></head>"
                    "<body><h1>You are unsubscribed</h1><p>You will get no more of these messages.</p></body></html>",
                    "text/html; charset=utf-8");
  }

  void get_metrics(const httplib::Request& req, httplib::Response& res) {
    auto key = authorize(req, res, {"read"});
    if (!key) return;
    std::string out = metrics.render();
    out += "# HELP blindcast_queue_depth Transactional messages waiting or on the wire, by lane.\n";
    out += "# TYPE blindcast_queue_depth gauge\n";
    {
      std::lock_guard lock(reader_mutex);
      if (auto q = reader->queue_depth()) {
        for (const auto& [lane, n] : *q) {
          out += fmt::format("blindcast_queue_depth{{lane=\"{}\"}} {}\n", prometheus_label(lane), n);
        }
      }
      // Reported after the relay accepted (DSNs, feedback reports), from the
      // organisation's list: every campaign and stream sharing this store.
      if (auto ev = reader->org_list().event_counts("", 0)) {
        out += "# HELP blindcast_reported_bounces_total Bounces reported after delivery, by campaign or stream, lane "
               "and kind.\n# TYPE blindcast_reported_bounces_total counter\n";
        std::string complaints;
        for (const auto& e : *ev) {
          out += fmt::format("blindcast_reported_bounces_total{{scope=\"{0}\",lane=\"{1}\",kind=\"hard\"}} {2}\n"
                             "blindcast_reported_bounces_total{{scope=\"{0}\",lane=\"{1}\",kind=\"soft\"}} {3}\n",
                             prometheus_label(e.scope), prometheus_label(e.lane), e.hard, e.soft);
          complaints += fmt::format("blindcast_complaints_total{{scope=\"{}\",lane=\"{}\"}} {}\n",
                                    prometheus_label(e.scope), prometheus_label(e.lane), e.complaints);
        }
        out += "# HELP blindcast_complaints_total Complaints (feedback reports), by campaign or stream and lane.\n"
               "# TYPE blindcast_complaints_total counter\n" + complaints;
      }
    }
    if (const auto y = shared_transport != nullptr ? shared_transport->yield_status() : std::nullopt) {
      out += fmt::format(
          "# HELP blindcast_campaign_yield_rate Campaign messages per second allowed while transactional mail flows "
          "(0: no limit).\n# TYPE blindcast_campaign_yield_rate gauge\nblindcast_campaign_yield_rate {:.0f}\n"
          "# HELP blindcast_campaign_full_rate Campaigns' measured full speed, messages per second.\n"
          "# TYPE blindcast_campaign_full_rate gauge\nblindcast_campaign_full_rate {:.0f}\n"
          "# HELP blindcast_transactional_base_delay_seconds Shortest transactional time from submission to the "
          "relay's reply, last 10 minutes.\n# TYPE blindcast_transactional_base_delay_seconds gauge\n"
          "blindcast_transactional_base_delay_seconds {:.6f}\n"
          "# HELP blindcast_transactional_target_delay_seconds A transactional message slower than this slows the "
          "campaigns.\n# TYPE blindcast_transactional_target_delay_seconds gauge\n"
          "blindcast_transactional_target_delay_seconds {:.6f}\n"
          "# HELP blindcast_campaign_yield_spells_total Times campaigns began to yield to transactional mail.\n"
          "# TYPE blindcast_campaign_yield_spells_total counter\nblindcast_campaign_yield_spells_total {}\n",
          y->rate, y->full_rate, y->base_seconds, y->target_seconds, y->spells);
    }
    out += "# HELP blindcast_stream_held 1 when a stream refuses messages (content not approved).\n";
    out += "# TYPE blindcast_stream_held gauge\n";
    for (const auto& [name, hold] : streams.states()) {
      out += fmt::format("blindcast_stream_held{{stream=\"{}\"}} {}\n", prometheus_label(name), hold.empty() ? 0 : 1);
    }
    out += campaigns.metrics();
    res.status = 200;
    res.set_content(out, "text/plain; version=0.0.4; charset=utf-8");
  }

  void healthz(httplib::Response& res) {
    bool store_ok = false;
    {
      std::lock_guard lock(reader_mutex);
      store_ok = reader->unfinished().has_value();
    }
    const bool ok = store_ok && tx->healthy() && !stopping.load();
    send_json(res, ok ? 200 : 503,
              {{"status", ok ? "ok" : "unavailable"},
               {"store", store_ok},
               {"transport", tx->healthy()},
               {"stopping", stopping.load()}});
  }

  // ---- the dashboard (SPEC §8): its page and files, sign-in, and the
  // read-only views the API had no endpoint for.

  bool tls() const { return !config.tls_cert_file.empty(); }
  const char* cookie_name() const { return tls() ? k_session_cookie_tls : k_session_cookie; }
  std::string session_of(const httplib::Request& req) const {
    return cookie_value(req.get_header_value("Cookie"), cookie_name());
  }

  void asset(const std::string& name, httplib::Response& res) {
    const auto* a = dashboard_asset(name);
    if (a == nullptr) return send_error(res, 404, "not_found", "no such dashboard file");
    set_page_headers(res, tls());
    res.status = 200;
    res.set_content(std::string(a->body), std::string(a->type));
  }

  std::string session_cookie(const std::string& value, std::int64_t max_age) const {
    return fmt::format("{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}", cookie_name(), value, max_age,
                       tls() ? "; Secure" : "");
  }

  void sign_in(const httplib::Request& req, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    if (!sessions.sign_in_allowed(req.remote_addr)) {
      res.set_header("Retry-After", "300");
      audit(req, "-", "dashboard sign-in refused: too many failures from this address");
      return send_error(res, 429, "rate_limited", "too many failed sign-ins from this address; wait 5 minutes");
    }
    // JSON only: a form on another site cannot send it without asking (CORS).
    if (!req.get_header_value("Content-Type").starts_with("application/json")) {
      return send_error(res, 415, "unsupported_media_type", "sign in with a JSON body {\"key\": \"...\"}");
    }
    const Json body = Json::parse(req.body, nullptr, false);
    const std::string key = body.is_object() && body.contains("key") && body["key"].is_string()
                                ? body["key"].get<std::string>()
                                : std::string();
    if (key.empty()) return send_error(res, 400, "invalid_request", "'key' is required", "key");
    const std::string bearer = "Bearer " + key;
    AuthResult r = keys.check(bearer, req.remote_addr, "");
    if (r.status == AuthStatus::k_unknown) {
      reload_keys(std::chrono::milliseconds(0));
      r = keys.check(bearer, req.remote_addr, "");
    }
    if (r.status == AuthStatus::k_network) {
      audit(req, r.name, "dashboard sign-in refused: address outside the key's networks");
      return send_error(res, 403, "forbidden_network",
                        fmt::format("key '{}' may not be used from {}; it is bound to other networks", r.name,
                                    req.remote_addr));
    }
    if (r.status != AuthStatus::k_ok) {
      sessions.sign_in_failed(req.remote_addr);
      audit(req, "-", "dashboard sign-in refused: unknown key");
      return send_error(res, 401, "unauthorized", "this key is not valid (mistyped, revoked, or from another node)",
                        "key");
    }
    sessions.end(session_of(req));  // signing in again ends the session this browser had
    const auto made = sessions.create(r.key_id, r.name);
    res.set_header("Set-Cookie", session_cookie(made.cookie, sessions.lifetime().count()));
    audit(req, r.name, "signed in to the dashboard");
    send_json(res, 200, {{"name", r.name}, {"scopes", r.scopes}, {"csrf", made.csrf}});
  }

  void session_info(const httplib::Request& req, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    const auto session = sessions.find(session_of(req));
    const AuthResult r = session ? keys.check_id(session->key_id, req.remote_addr) : AuthResult{};
    if (!session || r.status != AuthStatus::k_ok) {
      return send_error(res, 401, "unauthorized", "not signed in");
    }
    send_json(res, 200, {{"name", r.name}, {"scopes", r.scopes}, {"csrf", session->csrf}});
  }

  // Ends the session whatever its key may do now (a revoked key, another
  // network): only the CSRF token is asked, so that a forged page cannot
  // sign anyone out.
  void sign_out(const httplib::Request& req, httplib::Response& res) {
    const std::string cookie = session_of(req);
    const auto session = sessions.find(cookie);
    if (session && !same_origin_request(req, *session)) {
      audit(req, session->name, "refused: no valid CSRF token");
      return send_error(res, 403, "csrf", "this request did not come from the dashboard page; reload the page");
    }
    res.set_header("Set-Cookie", session_cookie("", 0));
    if (!session) return send_json(res, 200, {{"signed_out", true}});
    sessions.end(cookie);
    audit(req, session->name, "signed out of the dashboard");
    send_json(res, 200, {{"signed_out", true}});
  }

  // POST /v1/campaigns/{id}/preview {"recipient": optional}: each locale's
  // message (read or approve: approvers see what they approve), built from
  // nobody's data unless the key has admin (a samples.csv row or
  // placeholders, as the test stage sends: no real name, no working
  // unsubscribe link), from the locale's first recipient with admin; or one
  // recipient's own (admin: it is that person's data, and it tells whether
  // the address is in the audience). The address stays out of URLs; every
  // address in a message is masked unless the key has admin.
  void campaign_preview(const httplib::Request& req, httplib::Response& res) {
    auto key = authorize(req, res, {"read", "approve"});
    if (!key) return;
    const Json body = req.body.empty() ? Json::object() : Json::parse(req.body, nullptr, false);
    if (!body.is_object()) return send_error(res, 400, "invalid_json", "the body must be a JSON object");
    std::string recipient;
    if (const auto it = body.find("recipient"); it != body.end() && !it->is_null()) {
      if (!it->is_string()) return send_error(res, 400, "invalid_request", "'recipient' must be a string", "recipient");
      recipient = util::trim(it->get<std::string>());
    }
    const bool admin = key->has("admin");
    if (!recipient.empty() && !admin) {
      audit(req, key->name, "refused: a recipient's preview needs admin");
      return send_error(res, 403, "forbidden_scope",
                        fmt::format("key '{}' lacks the scope a recipient's own preview needs: admin", key->name),
                        "recipient");
    }
    const std::string id = req.matches[1].str();
    std::string hash;
    // Without admin, nobody's data: samples or placeholders, as the test stage sends.
    auto rendered = campaigns.previews(id, recipient, !admin, &hash);
    audit(req, key->name, recipient.empty() ? "preview" : "preview of " + util::mask_address(recipient));
    if (!rendered) return send_api_error(res, rendered.error());
    const auto mask = [&](const std::string& t) { return admin ? t : util::mask_addresses_in(t); };
    Json out{{"id", id}, {"content_hash", hash}, {"previews", Json::array()}};
    for (const auto& p : *rendered) {
      const auto view = check::view_message(p.data);
      Json headers = Json::array();
      for (const auto& [n, v] : view.headers) headers.push_back({n, mask(v)});
      Json j{{"locale", p.locale},
             {"line", p.line},
             {"source", p.source},
             {"subject", mask(p.subject)},
             {"guard", p.guard_violation},
             {"headers", headers},
             {"text", mask(view.text)},
             {"html_url", nullptr}};
      const std::string& html = view.html.empty() ? p.html : view.html;
      if (!html.empty()) j["html_url"] = "/v1/previews/" + previews.put(mask(html), key->key_id);
      out["previews"].push_back(std::move(j));
    }
    send_json(res, 200, out);
  }

  void preview_html(const httplib::Request& req, httplib::Response& res) {
    auto key = authorize(req, res, {"read", "approve"});
    if (!key) return;
    auto html = previews.get(req.matches[1].str(), key->key_id);
    if (!html) return send_error(res, 404, "not_found", "this preview expired (they last 10 minutes); open it again");
    set_preview_headers(res);
    res.status = 200;
    res.set_content(*html, "text/html; charset=utf-8");
  }

  // GET /v1/streams: per stream, whether it is held, its volume in the last
  // 24 hours, its latency since the service started and its recent failures.
  void streams_overview(const httplib::Request& req, httplib::Response& res) {
    auto key = authorize(req, res, {"read"});
    if (!key) return;
    audit(req, key->name);
    const bool admin = key->has("admin");
    std::lock_guard lock(viewer_mutex);
    auto& [at, view] = streams_views[admin ? 1 : 0];
    if (Clock::now() - at < std::chrono::seconds(1)) return send_json(res, 200, view);
    const auto day_ago_ms = (now_seconds() - 86400) * 1000;
    auto counts = viewer->stream_counts(day_ago_ms);
    auto failures = viewer->recent_failures(200);
    if (!counts || !failures) return send_error(res, 503, "store_unavailable", "the state store cannot be read");
    const auto outcomes = metrics.outcomes_by_stream();
    Json out = Json::array();
    for (const auto& [name, hold] : streams.states()) {
      Json last = Json::object();
      for (const auto& c : *counts) {
        if (c.stream == name) last[store::message_state_name(c.state)] = c.count;
      }
      Json failed = Json::array();
      for (const auto& m : *failures) {
        if (m.stream != name || failed.size() >= 10) continue;
        failed.push_back({{"id", m.public_id},
                          {"to", admin ? m.recipient : util::mask_address(m.recipient)},
                          {"status", store::message_state_name(m.state)},
                          {"reply", admin ? m.last_reply : util::mask_addresses_in(m.last_reply)},
                          {"at", m.updated_at / 1000}});
      }
      const auto o = outcomes.find(name);
      out.push_back({{"name", name},
                     {"held", hold},
                     {"security", streams.is_security_stream(name)},
                     {"last_24h", last},
                     {"since_start", o == outcomes.end() ? Json::object() : Json(o->second)},
                     {"latency_p50", metrics.latency_quantile(0.5, name)},
                     {"latency_p99", metrics.latency_quantile(0.99, name)},
                     {"failures", failed}});
    }
    view = {{"streams", out}};
    at = Clock::now();
    send_json(res, 200, view);
  }

  // POST /v1/lookup {"address"}: every message to one address (admin).
  void lookup(const httplib::Request& req, httplib::Response& res) {
    auto key = authorize(req, res, {"admin"});
    if (!key) return;
    const Json body = Json::parse(req.body, nullptr, false);
    const std::string text = body.is_object() && body.contains("address") && body["address"].is_string()
                                 ? std::string(util::trim(body["address"].get<std::string>()))
                                 : std::string();
    auto address = mail::parse_address(text);
    if (!address) {
      return send_error(res, 400, "invalid_request",
                        fmt::format("'address' is not a valid address: {}", util::mask_addresses_in(address.error())),
                        "address");
    }
    audit(req, key->name, "lookup of " + util::mask_address(address->str()));
    Json out{{"address", address->str()}, {"suppressed", nullptr}, {"messages", Json::array()}};
    {
      std::lock_guard lock(viewer_mutex);
      auto sup = viewer->org_list().suppression(util::to_lower_ascii(address->str()));
      auto msgs = viewer->messages_to(address->str(), 100);
      if (!sup || !msgs) return send_error(res, 503, "store_unavailable", "the state store cannot be read");
      if (*sup) {
        out["suppressed"] = {{"reason", (*sup)->reason}, {"category", (*sup)->category}, {"scope", (*sup)->scope},
                             {"at", (*sup)->at}};
      }
      for (const auto& m : *msgs) {
        Json attempts = Json::array();
        for (const auto& a : m.history) attempts.push_back({{"at", rfc3339(a.at)}, {"reply", a.reply}});
        out["messages"].push_back({{"id", m.public_id},
                                   {"stream", m.stream},
                                   {"status", store::message_state_name(m.state)},
                                   {"created_at", rfc3339(m.created_at / 1000)},
                                   {"possible_duplicate", m.maybe_delivered},
                                   {"attempts", attempts}});
      }
    }
    out["campaigns"] = campaigns.lookup(address->dedup_key(), true);
    send_json(res, 200, out);
  }

  void routes() {
    auto& s = *http;
    s.Post("/v1/messages", [this](const httplib::Request& q, httplib::Response& r) { post_message(q, r); });
    s.Get(R"(/v1/messages/([A-Za-z0-9_]{1,64}))",
          [this](const httplib::Request& q, httplib::Response& r) { get_message(q, r); });
    s.Get("/v1/campaigns", [this](const httplib::Request& q, httplib::Response& r) {
      auto key = authorize(q, r, {"read"});
      if (!key) return;
      audit(q, key->name);
      send_json(r, 200, {{"campaigns", campaigns.list()}});
    });
    s.Get(R"(/v1/campaigns/([A-Za-z0-9._-]{1,128}))", [this](const httplib::Request& q, httplib::Response& r) {
      auto key = authorize(q, r, {"read"});
      if (!key) return;
      audit(q, key->name);
      auto st = campaigns.status(q.matches[1].str(), key->has("admin"));
      if (!st) return send_api_error(r, st.error());
      send_json(r, 200, *st);
    });
    s.Post(R"(/v1/campaigns/([A-Za-z0-9._-]{1,128})/(send|approve|halt|release))",
           [this](const httplib::Request& q, httplib::Response& r) { campaign_action(q, r); });
    s.Post(R"(/u/([A-Za-z0-9_-]{1,1024}))",
           [this](const httplib::Request& q, httplib::Response& r) { unsubscribe(q, r, true); });
    s.Get(R"(/u/([A-Za-z0-9_-]{1,1024}))",
          [this](const httplib::Request& q, httplib::Response& r) { unsubscribe(q, r, false); });
    s.Get("/metrics", [this](const httplib::Request& q, httplib::Response& r) { get_metrics(q, r); });
    s.Get("/healthz", [this](const httplib::Request&, httplib::Response& r) { healthz(r); });
    s.Post(R"(/v1/campaigns/([A-Za-z0-9._-]{1,128})/preview)",
           [this](const httplib::Request& q, httplib::Response& r) { campaign_preview(q, r); });
    s.Get(R"(/v1/previews/([0-9a-f]{32}))",
          [this](const httplib::Request& q, httplib::Response& r) { preview_html(q, r); });
    s.Get("/v1/streams", [this](const httplib::Request& q, httplib::Response& r) { streams_overview(q, r); });
    s.Post("/v1/lookup", [this](const httplib::Request& q, httplib::Response& r) { lookup(q, r); });
    // The dashboard: its page and files need no key (they hold no data).
    s.Get("/", [this](const httplib::Request&, httplib::Response& r) { asset("index.html", r); });
    s.Get(R"(/ui/(app\.js|app\.css))",
          [this](const httplib::Request& q, httplib::Response& r) { asset(q.matches[1].str(), r); });
    s.Post("/ui/sign-in", [this](const httplib::Request& q, httplib::Response& r) { sign_in(q, r); });
    s.Get("/ui/session", [this](const httplib::Request& q, httplib::Response& r) { session_info(q, r); });
    s.Post("/ui/sign-out", [this](const httplib::Request& q, httplib::Response& r) { sign_out(q, r); });
    // Every error the library answers by itself (404, 413, 400) is JSON too.
    s.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& q, httplib::Response& r) {
      if (!r.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      const char* code = r.status == 404   ? "not_found"
                         : r.status == 413 ? "too_large"
                         : r.status == 405 ? "method_not_allowed"
                                           : "bad_request";
      send_error(r, r.status, code,
                 r.status == 413   ? "the body is larger than this node accepts ([intake] max_body_bytes)"
                 : r.status == 404 ? "no such endpoint; see README, \"HTTP API\""
                 : q.method == "POST" && !q.has_header("Content-Length")
                     ? "a POST needs a Content-Length header, even for an empty body (Content-Length: 0)"
                     : "the request could not be read");
      return httplib::Server::HandlerResponse::Handled;
    }));
    s.set_exception_handler([](const httplib::Request& q, httplib::Response& r, std::exception_ptr e) {
      std::string what = "unknown exception";
      try {
        if (e) std::rethrow_exception(e);
      } catch (const std::exception& x) {
        what = x.what();
      } catch (...) {
      }
      util::log_error(fmt::format("{} {}: internal error: {}", q.method, util::mask_addresses_in(q.path.substr(0, 200)),
                                  util::mask_addresses_in(what)));
      send_error(r, 500, "internal", "the request failed inside the service; it is logged");
    });
    // Before a body is read: a body without a length (chunked) is refused,
    // so the body limit holds whatever the client sends.
    s.set_pre_routing_handler([](const httplib::Request& q, httplib::Response& r) {
      if (q.has_header("Transfer-Encoding")) {
        send_error(r, 411, "length_required",
                   "send the body with a Content-Length (chunked bodies are not accepted)");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
  }
};

Result<void> run_service(const ServerConfig& config) {
  // Signals are taken by this thread alone (sigtimedwait below): every
  // thread started from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::error_code ec;
  std::filesystem::create_directories(config.node_dir, ec);
  const auto open = [&]() { return store::open_service_store(config.state.string()); };
  auto reader = open();
  if (!reader) return std::unexpected(reader.error());
  auto writer = open();
  if (!writer) return std::unexpected(writer.error());
  auto tx_store = open();
  if (!tx_store) return std::unexpected(tx_store.error());
  auto viewer = open();
  if (!viewer) return std::unexpected(viewer.error());
  // The WAL is copied into the database by the housekeeping loop below, on
  // a connection of its own: a commit that crossed SQLite's threshold did
  // it inline before (a copy and a sync of the database, 20-80 ms of a
  // request's way to 202 about every 125 messages). The writers keep a
  // far threshold as a safety valve.
  std::unique_ptr<store::ServiceStore> checkpointer;  // SQLite only (PostgreSQL has no WAL of ours to copy)
  if (!store::is_postgres(config.state.string())) {
    auto c = open();
    if (!c) return std::unexpected(c.error());
    checkpointer = std::move(*c);
    for (auto* s : {&*writer, &*tx_store}) {
      if (auto r = (**s).checkpoint_after(k_writer_checkpoint_pages); !r) return std::unexpected(r.error());
    }
  }
  if (auto n = (*reader)->recover_sending(); !n) {
    return std::unexpected(n.error());
  } else if (*n > 0) {
    util::log_warn(fmt::format("{} transactional message(s) were on the wire when the service last stopped: counted "
                               "as possibly delivered and sent again",
                               *n));
  }
  // The node's transport ([transport] of server.toml): transactional mail
  // and the campaigns that name the same url share its connections (a
  // channel each, transactional first); a maildir is not shared.
  campaign::LoadedCampaign settings;
  settings.dir = config.base;
  settings.config.id = "serve";
  settings.config.transport = config.transport;
  auto tc = send::transport_config(settings, config.transport.url);
  if (!tc) return std::unexpected(tc.error());
  tc->mta_sts_cache = (config.node_dir / "mta-sts-cache").string();
  tc->yield = config.priority;
  auto made = delivery::make_transport(*tc);
  if (!made) return std::unexpected(made.error());
  std::unique_ptr<delivery::SharedTransport> shared;
  Result<std::unique_ptr<delivery::Transport>> transport = std::move(made);
  if (!config.transport.url.starts_with("maildir:")) {
    shared = std::make_unique<delivery::SharedTransport>(std::move(*transport));
    transport = shared->channel(0);
  }
  auto svc = std::make_unique<Service>(config, shared.get());
  if (!svc->streams.fatal().empty()) return fail(svc->streams.fatal().front());
  svc->reader = std::move(*reader);
  svc->viewer = std::move(*viewer);
  if (auto k = svc->keys.reload(*svc->reader); !k) return std::unexpected(k.error());
  svc->tokens = config.intake.burst;
  const auto& retry = campaign::DeliverySettings{}.retry_seconds;
  delivery::OutcomePolicy policy({retry, campaign::DeliverySettings{}.max_retry_age_seconds, retry.front()});
  const std::size_t window = static_cast<std::size_t>(std::max(1, config.transport.connections)) * 4;
  svc->tx = std::make_unique<TxSender>(std::move(*tx_store), std::move(*transport), std::move(policy), svc->metrics,
                                       window);
  Service* raw = svc.get();
  svc->intake = std::make_unique<Intake>(std::move(*writer), [raw] { raw->tx->wake(); });
  svc->tx->start();

  // HTTP (cpp-httplib): TLS when configured.
  if (!config.tls_cert_file.empty()) {
    auto tls = std::make_unique<httplib::SSLServer>(config.tls_cert_file.c_str(), config.tls_key_file.c_str());
    if (!tls->is_valid()) {
      svc->tx->stop(std::chrono::seconds(0));
      svc->intake->stop();
      return fail(fmt::format("tls_cert_file {} / tls_key_file {}: cannot be used (not PEM, or the key does not match "
                              "the certificate)",
                              config.tls_cert_file.string(), config.tls_key_file.string()));
    }
    svc->http = std::move(tls);
  } else {
    svc->http = std::make_unique<httplib::Server>();
  }
  const auto threads = static_cast<std::size_t>(config.http_threads);
  const auto ceiling = static_cast<std::size_t>(config.max_connections);
  svc->http->new_task_queue = [threads, ceiling] { return new ConnectionPool(threads, ceiling); };
  svc->http->set_read_timeout(config.read_timeout_seconds, 0);
  svc->http->set_write_timeout(config.read_timeout_seconds, 0);
  svc->http->set_keep_alive_timeout(config.read_timeout_seconds);
  svc->http->set_keep_alive_max_count(100000);
  svc->http->set_payload_max_length(config.intake.max_body_bytes);
  // Headers and body go out in two writes: without TCP_NODELAY the second
  // waits for the client's delayed ACK (40 ms a request on keep-alive).
  svc->http->set_tcp_nodelay(true);
  svc->routes();
  if (!svc->http->bind_to_port(config.listen_host, config.listen_port)) {
    svc->tx->stop(std::chrono::seconds(0));
    svc->intake->stop();
    return fail(fmt::format("cannot listen on {}:{} (in use, or not an address of this machine); change 'listen' in {}",
                            config.listen_host, config.listen_port, config.file.string()),
                ExitCode::k_runtime);
  }
  std::promise<void> listened;
  auto listener_finished = listened.get_future();
  std::thread listener([raw, &listened] {
    util::set_thread_name("bc-http");
    raw->http->listen_after_bind();
    listened.set_value();
  });
  util::log_fields(util::LogLevel::k_info,
                   fmt::format("serving on {}://{}:{}; transactional mail via {}", config.tls_cert_file.empty() ? "http" : "https",
                               config.listen_host, config.listen_port, svc->tx->describe()),
                   {{"event", "listening"}, {"host", config.listen_host}, {"port", config.listen_port}});

  // The bounce receiver ([bounces] listen).
  std::unique_ptr<BounceListener> bounces;
  if (config.bounces && !config.bounces->listen_host.empty()) {
    auto started = BounceListener::start(config, svc->metrics);
    if (!started) {
      svc->http->stop();
      listener.join();
      svc->tx->stop(std::chrono::seconds(0));
      svc->intake->stop();
      return std::unexpected(started.error());
    }
    bounces = std::move(*started);
    util::log_fields(util::LogLevel::k_info,
                     fmt::format("receiving bounces for {} on {}:{} (SMTP)", config.bounces->verp.domain,
                                 config.bounces->listen_host, bounces->port()),
                     {{"event", "listening_bounces"}, {"host", config.bounces->listen_host}, {"port", bounces->port()}});
  }

  // Housekeeping until SIGTERM or SIGINT.
  auto last_streams = Clock::now();
  auto last_expiry = Clock::now() - std::chrono::hours(2);
  int signal_seen = 0;
  bool checkpoint_failing = false;
  while (true) {
    timespec wait{0, 250'000'000};
    const int got = sigtimedwait(&signals, nullptr, &wait);
    if (got == SIGTERM || got == SIGINT) {
      signal_seen = got;
      break;
    }
    svc->reload_keys(std::chrono::milliseconds(0));
    if (checkpointer) {
      // The first failure of a spell is logged, and the recovery.
      const auto c = checkpointer->checkpoint();
      if (!c && !checkpoint_failing) util::log_warn(c.error().message);
      if (c && checkpoint_failing) util::log_info("the service's state store: its WAL is copied into the database again");
      checkpoint_failing = !c;
    }
    {
      std::lock_guard lock(svc->reader_mutex);
      if (auto n = svc->reader->unfinished()) svc->unfinished = *n;
    }
    const auto now = Clock::now();
    if (now - last_streams >= std::chrono::seconds(1)) {
      last_streams = now;
      svc->streams.refresh();
    }
    if (now - last_expiry >= std::chrono::hours(1)) {
      last_expiry = now;
      svc->intake->expire_idempotency();
    }
  }
  util::log_fields(util::LogLevel::k_info,
                   fmt::format("{}: draining (no new requests; messages on the wire get {} s)",
                               signal_seen == SIGTERM ? "SIGTERM" : "SIGINT", config.drain_seconds),
                   {{"event", "draining"}});
  svc->stopping = true;
  send::request_stop();  // running campaign stages stop starting messages
  svc->http->stop();
  bounces.reset();
  // The listener returns once every connection's thread is done; a client
  // that keeps sending (slowly) would hold it: it gets 3 s.
  const bool listener_done = listener_finished.wait_for(std::chrono::seconds(3)) == std::future_status::ready;
  if (listener_done) listener.join();
  svc->intake->stop();
  svc->tx->stop(std::chrono::seconds(config.drain_seconds));
  svc->campaigns.join();
  if (!listener_done) {
    // Everything is recorded; what is left is clients that would not leave.
    util::log_fields(util::LogLevel::k_info, "stopped (slow clients dropped)", {{"event", "stopped"}});
    std::fflush(nullptr);
    std::_Exit(0);
  }
  svc.reset();     // the channels go before the transport they share
  shared.reset();
  util::log_fields(util::LogLevel::k_info, "stopped", {{"event", "stopped"}});
  return {};
}

}  // namespace blindcast::serve
