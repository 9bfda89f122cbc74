// The organisation's list (org_list.hpp) in a PostgreSQL database: one
// list for every campaign and service that uses the database (SPEC §9).
#pragma once

#include <memory>

#include "store/org_list.hpp"
#include "store/pg_conn.hpp"

namespace blindcast::store::pg {

// The list on `c` (which outlives it).
std::unique_ptr<OrgList> make_org_list(Connection& c);
// The list on its own connection `c`.
std::unique_ptr<OrgList> make_owning_org_list(std::unique_ptr<Connection> c);

}  // namespace blindcast::store::pg
