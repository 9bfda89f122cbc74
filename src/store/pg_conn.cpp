#include "store/pg_conn.hpp"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "util/log.hpp"
#include "util/secret_file.hpp"

namespace blindcast::store::pg {

namespace {

constexpr std::string_view k_campaign_mark = "#campaign=";

std::string option(PQconninfoOption* opts, std::string_view name) {
  for (auto* o = opts; o != nullptr && o->keyword != nullptr; ++o) {
    if (name == o->keyword && o->val != nullptr) return o->val;
  }
  return {};
}

bool loopback(std::string_view host) {
  if (host.empty() || host.front() == '/' || host.front() == '@') return true;  // a unix socket
  return host == "localhost" || host.starts_with("127.") || host == "::1";
}

std::string trimmed(const char* s) {
  std::string out = s != nullptr ? s : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

bool is_uri(std::string_view state) {
  return state.starts_with("postgresql://") || state.starts_with("postgres://");
}

std::string describe(std::string_view uri) {
  const auto mark = uri.find(k_campaign_mark);
  if (mark != std::string_view::npos) uri = uri.substr(0, mark);
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(std::string(uri).c_str(), &err);
  if (opts == nullptr) {
    PQfreemem(err);
    return "postgresql://(unparsable URI)";
  }
  const std::string user = option(opts, "user");
  const std::string host = option(opts, "host");
  const std::string port = option(opts, "port");
  const std::string db = option(opts, "dbname");
  PQconninfoFree(opts);
  return fmt::format("postgresql://{}{}{}{}/{}", user, user.empty() ? "" : "@", host.empty() ? "localhost" : host,
                     port.empty() ? "" : ":" + port, db);
}

std::string make_locator(std::string_view uri, std::string_view campaign) {
  return fmt::format("{}{}{}", uri, k_campaign_mark, campaign);
}

Locator parse_locator(std::string_view locator) {
  const auto mark = locator.find(k_campaign_mark);
  if (mark == std::string_view::npos) return {std::string(locator), ""};
  return {std::string(locator.substr(0, mark)), std::string(locator.substr(mark + k_campaign_mark.size()))};
}

std::int64_t Rows::i64(int row, int col) const {
  const auto t = text(row, col);
  std::int64_t v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

std::string Rows::bytes(int row, int col) const {
  const auto t = text(row, col);
  std::string out;
  if (t.size() < 2 || t[0] != '\\' || t[1] != 'x') return std::string(t);
  out.reserve((t.size() - 2) / 2);
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
  };
  for (std::size_t i = 2; i + 1 < t.size(); i += 2) out.push_back(static_cast<char>(hex(t[i]) * 16 + hex(t[i + 1])));
  return out;
}

std::int64_t Rows::affected() const {
  const char* n = m_r != nullptr ? PQcmdTuples(m_r) : "";
  return n != nullptr && *n != '\0' ? std::strtoll(n, nullptr, 10) : 0;
}

Params& Params::add(std::int64_t v) {
  m_values.emplace_back(std::to_string(v));
  m_formats.push_back(0);
  return *this;
}

Params& Params::add(std::string_view v) {
  // Text cannot hold NUL; what reaches the store is text a person reads.
  std::string s(v);
  std::erase(s, '\0');
  m_values.emplace_back(std::move(s));
  m_formats.push_back(0);
  return *this;
}

Params& Params::add_bytes(std::string_view v) {
  m_values.emplace_back(std::string(v));
  m_formats.push_back(1);
  return *this;
}

Params& Params::add_null() {
  m_values.emplace_back(std::nullopt);
  m_formats.push_back(0);
  return *this;
}

Params& Params::add_array(std::span<const std::int64_t> v) {
  std::string s = "{";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(v[i]);
  }
  s += '}';
  m_values.emplace_back(std::move(s));
  m_formats.push_back(0);
  return *this;
}

Params& Params::add_array(std::span<const std::string> v) {
  std::string s = "{";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) s += ',';
    s += '"';
    for (const char c : v[i]) {
      if (c == '\0') continue;
      if (c == '"' || c == '\\') s += '\\';
      s += c;
    }
    s += '"';
  }
  s += '}';
  m_values.emplace_back(std::move(s));
  m_formats.push_back(0);
  return *this;
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& uri) {
  const std::string shown = describe(uri);
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(uri.c_str(), &err);
  if (opts == nullptr) {
    const std::string why = trimmed(err);
    PQfreemem(err);
    return fail(fmt::format("--state: not a PostgreSQL connection URI ({}); write it as "
                            "postgresql://USER@HOST:PORT/DB?sslmode=verify-full&passfile=PATH",
                            why),
                ExitCode::k_usage);
  }
  const std::string password = option(opts, "password");
  std::string passfile = option(opts, "passfile");
  const std::string host = option(opts, "host");
  const std::string hostaddr = option(opts, "hostaddr");
  std::string sslmode = option(opts, "sslmode");
  PQconninfoFree(opts);
  if (!password.empty()) {
    return fail(fmt::format("{}: the state URI holds a password; secrets are read only from files (SPEC §6): remove "
                            "it from the URI, put 'HOST:PORT:DB:USER:PASSWORD' in a file (chmod 600) and add "
                            "?passfile=PATH to the URI",
                            shown),
                ExitCode::k_usage);
  }
  if (passfile.empty()) {
    // libpq's own default; never $PGPASSFILE (secrets are not taken from the environment).
    const char* home = std::getenv("HOME");
    const std::string dflt = home != nullptr ? std::string(home) + "/.pgpass" : std::string();
    std::error_code ec;
    if (!dflt.empty() && std::filesystem::exists(dflt, ec)) passfile = dflt;
  }
  if (!passfile.empty()) {
    auto checked = util::read_secret_file(passfile, passfile);
    if (!checked) return std::unexpected(checked.error());
    bool local = true;
    for (std::size_t start = 0; start <= host.size();) {  // host may list several
      const auto comma = host.find(',', start);
      const auto one = host.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      local = local && loopback(one);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (!hostaddr.empty()) local = local && loopback(hostaddr);
    const bool encrypted = sslmode == "require" || sslmode == "verify-ca" || sslmode == "verify-full";
    if (!local && !encrypted) {
      return fail(fmt::format("{}: the database password would cross the network unencrypted; add "
                              "sslmode=verify-full (or require) to the state URI",
                              shown),
                  ExitCode::k_usage);
    }
  }
  // Defaults first; the URI overrides them; then what must hold whatever the URI says.
  // The server drops a session whose node went silent (a host that
  // crashed, a network cut) within about 30 s instead of the system's TCP
  // default of hours: what such a session holds (connection slots of
  // shaped lanes: session advisory locks) frees itself then. Kept across
  // reconnections (libpq reuses the options).
  const char* keys[] = {"connect_timeout", "application_name", "options", "dbname", "password", "passfile", nullptr};
  const std::string none;
  const char* values[] = {"10", "blindcast",
                          "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3 "
                          "-c tcp_user_timeout=30000",
                          uri.c_str(), none.c_str(),
                          passfile.empty() ? "/nonexistent/blindcast-no-passfile" : passfile.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 1);
  if (conn == nullptr) return fail(shown + ": out of memory connecting", ExitCode::k_runtime);
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string why = trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    return fail(fmt::format("{}: cannot connect to the state store: {}", shown, why), ExitCode::k_runtime);
  }
  auto c = std::unique_ptr<Connection>(new Connection(conn, uri));
  if (auto r = c->exec("SET client_min_messages = warning", "setting up the session"); !r) {
    return std::unexpected(r.error());
  }
  return c;
}

Connection::Connection(PGconn* c, std::string uri) : m_conn(c), m_uri(std::move(uri)), m_described(describe(m_uri)) {}

Connection::~Connection() { PQfinish(m_conn); }

bool Connection::in_transaction() const { return PQtransactionStatus(m_conn) != PQTRANS_IDLE; }

Error Connection::error(std::string_view what) const {
  return Error{fmt::format("state store {}: {}: {}", m_described, what, trimmed(PQerrorMessage(m_conn))),
               ExitCode::k_runtime};
}

namespace {
std::atomic<std::int64_t> g_patience_seconds{0};
thread_local std::int64_t t_patience_seconds = -1;  // -1: the process's
}  // namespace

void set_outage_patience(std::chrono::seconds patience) { g_patience_seconds = patience.count(); }
void set_thread_outage_patience(std::chrono::seconds patience) { t_patience_seconds = patience.count(); }
std::chrono::seconds outage_patience() {
  return std::chrono::seconds(t_patience_seconds >= 0 ? t_patience_seconds : g_patience_seconds.load());
}

Result<void> Connection::ensure_open() {
  if (PQstatus(m_conn) == CONNECTION_OK) return {};
  // The server restarted or the network dropped: one reconnect (a
  // transaction in progress is lost and its caller sees the error).
  ++m_lost;
  PQreset(m_conn);
  if (PQstatus(m_conn) != CONNECTION_OK) return std::unexpected(error("reconnecting"));
  m_listening.clear();
  return {};
}

bool Connection::lost() {
  if (PQstatus(m_conn) == CONNECTION_OK) return false;
  ++m_lost;
  return true;
}

Result<void> Connection::wait_until_open() {
  using Clock = std::chrono::steady_clock;
  const auto patience = outage_patience();
  const auto since = Clock::now();
  auto pause = std::chrono::milliseconds(250);
  auto next_note = since;
  while (true) {
    if (PQstatus(m_conn) == CONNECTION_OK) return {};
    PQreset(m_conn);
    if (PQstatus(m_conn) == CONNECTION_OK) {
      m_listening.clear();
      if (Clock::now() - since >= std::chrono::seconds(1)) {
        util::log_info(fmt::format("state store {}: connected again after {} s", m_described,
                                   std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - since).count()));
      }
      return {};
    }
    const auto waited = Clock::now() - since;
    if (waited >= patience) {
      return fail(fmt::format("state store {}: unreachable{}: {} — nothing is lost; run the command again once it "
                              "is back",
                              m_described,
                              patience.count() > 0 ? fmt::format(" for {} s", patience.count()) : std::string(),
                              trimmed(PQerrorMessage(m_conn))),
                  ExitCode::k_runtime);
    }
    if (Clock::now() >= next_note) {
      util::log_warn(fmt::format("state store {}: unreachable ({}); waiting for it (up to {} s)", m_described,
                                 trimmed(PQerrorMessage(m_conn)), patience.count()));
      next_note = Clock::now() + std::chrono::seconds(30);
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(2000));
  }
}

Result<void> Connection::exec(const char* sql, std::string_view what) {
  bool reopened = false;
  while (true) {
    if (auto r = ensure_open(); !r && (m_txn_open || !wait_until_open())) return r;
    const bool idle = !m_txn_open;
    Rows res(PQexec(m_conn, sql));
    const auto st = res.status();
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return {};
    auto e = error(what);
    if (!retry_after_loss(idle, reopened)) return std::unexpected(std::move(e));
  }
}

bool Connection::retry_after_loss(bool idle, bool& reopened) {
  // Outside a transaction a statement that met a lost server runs again
  // once it is back (those the stores run so are safe to repeat).
  if (!lost() || !idle) return false;
  if (outage_patience().count() == 0) {
    // No patience (serve) waits out no outage; but a connection the server
    // closed while it sat idle (a restart since its last statement) is
    // opened again at once, and the statement tried once more: the first
    // request after a restart must not fail for a connection nobody used
    // while the server was away.
    if (reopened) return false;
    reopened = true;
    return true;  // the loop's ensure_open() reconnects, or fails if it is still away
  }
  return wait_until_open().has_value();
}

Result<Rows> Connection::query(const char* sql, const Params& params, std::string_view what) {
  std::vector<const char*> values;
  std::vector<int> lengths;
  values.reserve(params.m_values.size());
  for (const auto& v : params.m_values) {
    values.push_back(v ? v->c_str() : nullptr);
    lengths.push_back(v ? static_cast<int>(v->size()) : 0);
  }
  bool reopened = false;
  while (true) {
    if (auto r = ensure_open(); !r && (m_txn_open || !wait_until_open())) return std::unexpected(r.error());
    const bool idle = !m_txn_open;
    Rows res(PQexecParams(m_conn, sql, params.size(), nullptr, values.data(), lengths.data(), params.m_formats.data(),
                          0));
    const auto st = res.status();
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return res;
    auto e = error(what);
    if (!retry_after_loss(idle, reopened)) return std::unexpected(std::move(e));
  }
}

Result<void> Connection::for_each_row(const char* sql, const Params& params, std::string_view what,
                                      const std::function<void(const Rows&)>& fn) {
  if (auto r = ensure_open(); !r) return r;
  std::vector<const char*> values;
  std::vector<int> lengths;
  for (const auto& v : params.m_values) {
    values.push_back(v ? v->c_str() : nullptr);
    lengths.push_back(v ? static_cast<int>(v->size()) : 0);
  }
  if (PQsendQueryParams(m_conn, sql, params.size(), nullptr, values.data(), lengths.data(), params.m_formats.data(),
                        0) != 1 ||
      PQsetSingleRowMode(m_conn) != 1) {
    return std::unexpected(error(what));
  }
  bool ok = true;
  while (PGresult* raw = PQgetResult(m_conn)) {
    Rows row(raw);
    const auto st = row.status();
    if (st == PGRES_SINGLE_TUPLE) {
      if (ok) fn(row);
    } else if (st != PGRES_TUPLES_OK) {
      ok = false;
    }
  }
  if (!ok) return std::unexpected(error(what));
  return {};
}

Result<void> Connection::copy_start(const char* sql, std::string_view what) {
  if (auto r = ensure_open(); !r) return r;
  Rows res(PQexec(m_conn, sql));
  if (res.status() != PGRES_COPY_IN) return std::unexpected(error(what));
  m_copying = std::string(what);
  return {};
}

Result<void> Connection::copy_put(std::string_view data) {
  if (PQputCopyData(m_conn, data.data(), static_cast<int>(data.size())) != 1) return std::unexpected(error(m_copying));
  return {};
}

Result<void> Connection::copy_finish() {
  if (PQputCopyEnd(m_conn, nullptr) != 1) return std::unexpected(error(m_copying));
  bool ok = true;
  while (PGresult* r = PQgetResult(m_conn)) {
    ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
  }
  if (!ok) return std::unexpected(error(m_copying));
  return {};
}

void Connection::copy_abort() {
  PQputCopyEnd(m_conn, "abandoned");
  while (PGresult* r = PQgetResult(m_conn)) PQclear(r);
}

void Connection::copy_field(std::string& line, std::string_view value) {
  for (const char c : value) {
    switch (c) {
      case '\\': line += "\\\\"; break;
      case '\t': line += "\\t"; break;
      case '\n': line += "\\n"; break;
      case '\r': line += "\\r"; break;
      case '\0': break;  // text cannot hold NUL
      default: line += c;
    }
  }
}

Result<bool> Connection::wait_notify(std::string_view channel, int timeout_ms) {
  if (auto r = ensure_open(); !r) return std::unexpected(r.error());
  if (m_listening != channel) {
    const std::string sql = fmt::format("LISTEN \"{}\"", channel);
    if (auto r = exec(sql.c_str(), "listening for halts"); !r) return std::unexpected(r.error());
    m_listening = std::string(channel);
  }
  const auto take = [&]() {
    bool got = false;
    while (PGnotify* n = PQnotifies(m_conn)) {
      got = got || channel == n->relname;
      PQfreemem(n);
    }
    return got;
  };
  if (PQconsumeInput(m_conn) == 0) return std::unexpected(error("waiting for a notification"));
  if (take()) return true;
  pollfd p{PQsocket(m_conn), POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) > 0) {
    if (PQconsumeInput(m_conn) == 0) return std::unexpected(error("waiting for a notification"));
    return take();
  }
  return false;
}

const std::string& node_id() {
  static const std::string id = [] {
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    std::random_device random;
    return fmt::format("{}:{}:{:08x}", host[0] != 0 ? host : "localhost", ::getpid(), random());
  }();
  return id;
}

}  // namespace blindcast::store::pg
