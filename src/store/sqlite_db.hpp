// Small helpers over SQLite's C API shared by the stores: a prepared
// statement, transactions that roll back unless committed (STYLE: commit
// explicitly, never in a destructor), and opening a database the one way
// (WAL, synchronous=FULL, busy timeout 5 s, no per-call mutex: a connection
// belongs to one thread).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "util/error.hpp"

namespace blindcast::store::sqlite {

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : m_db(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &m_stmt, nullptr) != SQLITE_OK) m_stmt = nullptr;
  }
  ~Stmt() { sqlite3_finalize(m_stmt); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  [[nodiscard]] bool ok() const { return m_stmt != nullptr; }
  Stmt& bind(int i, std::int64_t v) { sqlite3_bind_int64(m_stmt, i, v); return *this; }
  Stmt& bind(int i, std::string_view v) {
    sqlite3_bind_text(m_stmt, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_blob(int i, std::string_view v) {
    sqlite3_bind_blob(m_stmt, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  int step() { return sqlite3_step(m_stmt); }
  // Runs a statement that returns no rows and makes it ready for the next
  // bindings; false on failure (see db_error).
  [[nodiscard]] bool run() {
    const int rc = step();
    reset();
    return rc == SQLITE_DONE;
  }
  void reset() {
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
  }
  std::int64_t i64(int c) { return sqlite3_column_int64(m_stmt, c); }
  bool is_null(int c) { return sqlite3_column_type(m_stmt, c) == SQLITE_NULL; }
  std::string_view text(int c) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(m_stmt, c));
    return p == nullptr ? std::string_view() : std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(m_stmt, c)));
  }
  std::string_view blob(int c) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(m_stmt, c));
    return p == nullptr ? std::string_view() : std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(m_stmt, c)));
  }

 private:
  sqlite3* m_db;
  sqlite3_stmt* m_stmt = nullptr;
};

// An Error (exit code 1) for a failed `what`, with SQLite's message.
std::unexpected<Error> db_error(sqlite3* db, std::string_view what);

// Runs `sql` (no rows).
Result<void> exec(sqlite3* db, const char* sql);

// A transaction that rolls back unless commit() is called.
class Txn {
 public:
  explicit Txn(sqlite3* db) : m_db(db) { m_ok = exec(db, "BEGIN IMMEDIATE").has_value(); }
  ~Txn() {
    if (m_ok && !m_done) sqlite3_exec(m_db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  [[nodiscard]] bool ok() const { return m_ok; }
  Result<void> commit() {
    if (sqlite3_exec(m_db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return db_error(m_db, "commit");
    }
    m_done = true;
    return {};
  }

 private:
  sqlite3* m_db;
  bool m_ok = false;
  bool m_done = false;
};

// A read transaction: every SELECT in it sees one snapshot of the store.
class ReadTxn {
 public:
  explicit ReadTxn(sqlite3* db) : m_db(db) {
    m_ok = sqlite3_get_autocommit(db) != 0 && exec(db, "BEGIN").has_value();
  }
  ~ReadTxn() {
    if (m_ok) sqlite3_exec(m_db, "COMMIT", nullptr, nullptr, nullptr);
  }
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;

 private:
  sqlite3* m_db;
  bool m_ok = false;
};

// Opens (creating) the SQLite database at `path` for `what` ("the state
// store") with WAL and synchronous=FULL.
Result<sqlite3*> open_database(const std::string& path, std::string_view what);

}  // namespace blindcast::store::sqlite
