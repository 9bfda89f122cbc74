// The SQLite organisation list: its tables live in the database `schema` of a
// connection ("main": the store's own file; or an attached one).
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>

#include "store/org_list.hpp"

namespace blindcast::store {

// Creates the organisation's tables in `schema` of `db` when missing, and
// moves the rows of a store written before they existed (a campaign's own
// suppression list, the service's) into them.
Result<void> ensure_org_schema(sqlite3* db, const std::string& schema);

// An OrgList over `schema` of `db` (which the caller keeps open longer).
std::unique_ptr<OrgList> make_sqlite_org_list(sqlite3* db, std::string schema);

// Opens (creating, mode 0600) the database at `path` for its organisation
// list alone (`bounces ingest`).
Result<std::unique_ptr<OrgList>> open_sqlite_org_list(const std::string& path);

}  // namespace blindcast::store
