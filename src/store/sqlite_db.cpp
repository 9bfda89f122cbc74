#include "store/sqlite_db.hpp"

#include <mutex>

#include <fmt/format.h>

namespace blindcast::store::sqlite {

std::unexpected<Error> db_error(sqlite3* db, std::string_view what) {
  return fail(fmt::format("state store: {} failed: {} — sending stopped; fix the cause (disk space, "
                          "permissions, a read-only file) and run the command again",
                          what, sqlite3_errmsg(db)),
              ExitCode::k_runtime);
}

Result<void> exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    return fail(fmt::format("state store: '{}' failed: {}", std::string_view(sql).substr(0, 40), msg),
                ExitCode::k_runtime);
  }
  return {};
}

Result<sqlite3*> open_database(const std::string& path, std::string_view what) {
  // SQLite's memory statistics take a global mutex on every allocation; they
  // are never read here. Only possible before the library initialises.
  static std::once_flag configured;
  std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  sqlite3* db = nullptr;
  // A connection belongs to one thread: the halt watcher opens its own. So
  // no mutex around every call (NOMUTEX, SQLite's "multi-thread" mode).
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return fail(fmt::format("{}: cannot open {}: {}", path, what, msg), ExitCode::k_runtime);
  }
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                             "PRAGMA foreign_keys=ON", "PRAGMA cache_size=-16384"}) {
    if (auto r = exec(db, pragma); !r) {
      sqlite3_close(db);
      return fail(fmt::format("{}: {}", path, r.error().message), ExitCode::k_runtime);
    }
  }
  return db;
}

}  // namespace blindcast::store::sqlite
