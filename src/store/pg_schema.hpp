// The PostgreSQL schema (SPEC §10), as numbered migrations applied on start.
//
// Policy: every migration runs once, in order, in its own transaction, under
// an advisory lock (several nodes may start at once); `schema_migrations`
// records each applied version. A database newer than this binary (a
// version it does not know) is refused rather than written to. Campaigns
// share the database: every campaign table is keyed by the campaign's id;
// the organisation's list (suppressions, bounces, campaign tags) is one for
// the whole database (SPEC §9).
#pragma once

#include <memory>
#include <string>

#include "store/pg_conn.hpp"
#include "util/error.hpp"

namespace blindcast::store::pg {

// Brings the schema of `c`'s database up to date.
Result<void> migrate(Connection& c);

// Connects to `uri` with the schema up to date (migrated once per database
// per process; every later connection finds it done).
Result<std::unique_ptr<Connection>> connect_migrated(const std::string& uri);

}  // namespace blindcast::store::pg
