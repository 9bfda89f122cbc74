// A thin RAII layer over libpq for the PostgreSQL stores (SPEC §10): a
// connection opened the one way, results that free themselves, parameters
// passed out of line (never spliced into SQL), and transactions that roll
// back unless committed (STYLE: commit explicitly, never in a destructor).
//
// Policy:
// - the connection string is a libpq URI (postgresql://USER@HOST:PORT/DB
//   ?sslmode=...&passfile=...); a password inside it is refused (SPEC §6:
//   secrets only from files), and so are PGPASSWORD and PGPASSFILE: the
//   password comes from the URI's `passfile` (checked like every secret
//   file: a regular file of ours, mode 0600) or, without one, ~/.pgpass;
// - with a passfile, the server must be on a loopback address or a unix
//   socket unless sslmode is require, verify-ca or verify-full (SPEC §6: no
//   credential over an unencrypted connection);
// - what is printed about a connection is describe(): user, host, port and
//   database, never a password or a parameter;
// - every failure is an Error (exit code 1) naming the server and what was
//   being done; a connection lost is reported, and the next call reconnects;
// - a process that must ride out a restart of the server (`send`, `serve`)
//   sets an outage patience (set_outage_patience()): a statement outside a
//   transaction that finds the server gone waits for it (reconnecting with
//   backoff, saying so in the log) and runs again; a transaction that loses
//   its connection fails, and its caller reruns it (lost_count() tells).
#pragma once

#include <chrono>
#include <cstdint>

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace blindcast::store::pg {

// Whether `state` names a PostgreSQL store (postgresql:// or postgres://).
bool is_uri(std::string_view state);

// user@host:port/db of `uri`, for messages (no password, no parameters).
std::string describe(std::string_view uri);

// A campaign's place in a PostgreSQL store: the URI and the campaign's id,
// written as one string (URI + "#campaign=" + id) wherever a state path goes.
struct Locator {
  std::string uri;
  std::string campaign;
};
std::string make_locator(std::string_view uri, std::string_view campaign);
Locator parse_locator(std::string_view locator);

// The value of a result: owns the PGresult.
class Rows {
 public:
  Rows() = default;
  explicit Rows(PGresult* r) : m_r(r) {}
  ~Rows() { PQclear(m_r); }
  Rows(Rows&& o) noexcept : m_r(o.m_r) { o.m_r = nullptr; }
  Rows& operator=(Rows&& o) noexcept {
    if (this != &o) {
      PQclear(m_r);
      m_r = o.m_r;
      o.m_r = nullptr;
    }
    return *this;
  }
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;

  [[nodiscard]] ExecStatusType status() const { return m_r != nullptr ? PQresultStatus(m_r) : PGRES_FATAL_ERROR; }
  [[nodiscard]] int size() const { return m_r != nullptr ? PQntuples(m_r) : 0; }
  [[nodiscard]] bool empty() const { return size() == 0; }
  [[nodiscard]] bool is_null(int row, int col) const { return PQgetisnull(m_r, row, col) != 0; }
  [[nodiscard]] std::string_view text(int row, int col) const {
    return {PQgetvalue(m_r, row, col), static_cast<std::size_t>(PQgetlength(m_r, row, col))};
  }
  [[nodiscard]] std::int64_t i64(int row, int col) const;
  // A bytea column (hex output) as its bytes.
  [[nodiscard]] std::string bytes(int row, int col) const;
  // Rows an INSERT, UPDATE or DELETE changed.
  [[nodiscard]] std::int64_t affected() const;

 private:
  PGresult* m_r = nullptr;
};

// Parameters $1, $2, ... as text (bytes for bytea), NULL where unset.
class Params {
 public:
  Params& add(std::int64_t v);
  Params& add(std::string_view v);
  Params& add(const char* v) { return add(std::string_view(v)); }
  Params& add(const std::string& v) { return add(std::string_view(v)); }
  Params& add_bytes(std::string_view v);
  Params& add_null();
  // A bigint[] / text[] array literal.
  Params& add_array(std::span<const std::int64_t> v);
  Params& add_array(std::span<const std::string> v);
  [[nodiscard]] int size() const { return static_cast<int>(m_values.size()); }

 private:
  friend class Connection;
  std::vector<std::optional<std::string>> m_values;
  std::vector<int> m_formats;
};

class Connection {
 public:
  // Connects to `uri` (see the policy above).
  static Result<std::unique_ptr<Connection>> open(const std::string& uri);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs `sql` (several statements allowed, no parameters); `what` names the step for errors.
  Result<void> exec(const char* sql, std::string_view what);
  // Runs one statement with `params`; rows for a query.
  Result<Rows> query(const char* sql, const Params& params, std::string_view what);
  Result<Rows> query(const char* sql, std::string_view what) { return query(sql, Params{}, what); }
  // Runs a query and calls `fn` with each row as it arrives (libpq's
  // single-row mode): memory stays bounded whatever the number of rows.
  Result<void> for_each_row(const char* sql, const Params& params, std::string_view what,
                            const std::function<void(const Rows&)>& fn);
  // COPY ... FROM STDIN: starts `sql`, then put() rows in COPY's text
  // format (copy_field() escapes a value), then finish. No other call may
  // run on the connection in between.
  Result<void> copy_start(const char* sql, std::string_view what);
  Result<void> copy_put(std::string_view data);
  Result<void> copy_finish();
  // Ends a COPY in progress without its rows (after an error).
  void copy_abort();
  // Appends `value` to `line` escaped for COPY's text format.
  static void copy_field(std::string& line, std::string_view value);
  // Sends LISTEN `channel` and waits up to `timeout_ms` for a notification
  // on it; true when one came.
  Result<bool> wait_notify(std::string_view channel, int timeout_ms);

  [[nodiscard]] const std::string& described() const { return m_described; }
  [[nodiscard]] PGconn* raw() const { return m_conn; }
  // Whether a transaction is open on the connection.
  [[nodiscard]] bool in_transaction() const;
  // How many times this connection was found lost so far: a caller that
  // sees it move across a failed transaction reruns the transaction after
  // wait_until_open().
  [[nodiscard]] std::uint64_t lost_count() const { return m_lost; }
  // Reconnects, waiting up to the outage patience for the server (an
  // error once it has run out, or at once without patience).
  Result<void> wait_until_open();

 private:
  Connection(PGconn* c, std::string uri);
  Result<void> ensure_open();
  // After a failed call: whether the connection is gone (counted).
  bool lost();
  // After a failed statement (`idle`: outside a transaction): whether to run
  // it again; waits for the server within the outage patience, or without
  // patience allows one reconnect (`reopened` notes it was used).
  bool retry_after_loss(bool idle, bool& reopened);
  Error error(std::string_view what) const;
  PGconn* m_conn;
  std::string m_uri;
  std::string m_described;
  std::string m_listening;
  std::string m_copying;  // what the COPY in progress is doing (for errors)
  std::uint64_t m_lost = 0;
  bool m_txn_open = false;  // between a Txn's BEGIN and its end: never rerun a statement
  friend class Txn;
};

// How long statements wait for a server that went away (restarted, failed
// over) before they fail; zero (the default) waits for nothing.
void set_outage_patience(std::chrono::seconds patience);
// The same for the calling thread only (a watcher that must not wait).
void set_thread_outage_patience(std::chrono::seconds patience);
// The patience of the calling thread.
std::chrono::seconds outage_patience();

// BEGIN now; ROLLBACK on destruction unless commit() was called.
class Txn {
 public:
  explicit Txn(Connection& c) : m_c(c) {
    m_began = c.exec("BEGIN", "starting a transaction");
    m_c.m_txn_open = m_began.has_value();
  }
  ~Txn() {
    if (m_began && !m_done) (void)m_c.exec("ROLLBACK", "rolling back");
    m_c.m_txn_open = false;
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  [[nodiscard]] const Result<void>& began() const { return m_began; }
  Result<void> commit() {
    m_done = true;
    auto r = m_c.exec("COMMIT", "committing");
    m_c.m_txn_open = false;
    return r;
  }

 private:
  Connection& m_c;
  Result<void> m_began;
  bool m_done = false;
};

// This process as a node of the cluster: "host:pid:random" (one per process).
const std::string& node_id();

}  // namespace blindcast::store::pg
