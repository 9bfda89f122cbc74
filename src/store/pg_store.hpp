// The state store (state_store.hpp) in PostgreSQL (SPEC §10): every role,
// for one campaign of a database that many campaigns and nodes share.
//
// Claiming work across nodes (ARCHITECTURE.md, "PostgreSQL"):
// - next_for_lane() claims rows with FOR UPDATE SKIP LOCKED and leases them
//   to this process (leased_by = node_id(), lease_expires_at, the
//   database's clock); a row leased to a live node is never claimed by
//   another;
// - record_and_mark() puts rows in flight (state 1) only while this node
//   holds their lease, and records outcomes only on rows it holds, in one
//   transaction; a node that lost a lease stops with an error (nothing is
//   sent that is not recorded);
// - every k_lease_renew this node renews its leases; a node that stops
//   renewing (killed, cut off) loses them after k_lease: its pending rows
//   return to the queue as they are, its in-flight rows are counted as
//   possible duplicates and made due again (recover_in_flight(), and while
//   sending, next_for_lane());
// - a node that has nothing left to claim while others hold leases waits
//   (next_retry_at()) until they finish or their leases expire.
// There is no outcome log: outcomes reach the database with the next
// commit (every few ms); what a crash leaves in flight is counted.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "store/service_store.hpp"
#include "store/state_store.hpp"

namespace blindcast::store {

// How long a claimed row stays leased without renewal, and how often it is renewed.
inline constexpr std::chrono::seconds k_lease{10};
inline constexpr std::chrono::seconds k_lease_renew{3};
// How far ahead of now a node may reserve a lane's sends (cluster pacing):
// the most the cluster can run ahead of a lane's rate.
inline constexpr double k_rate_tolerance = 0.25;

// Whether `state` (a --state value, or a store locator) names PostgreSQL.
bool is_postgres(std::string_view state);
// The locator of campaign `campaign` in the database at `uri`.
std::string postgres_locator(std::string_view uri, std::string_view campaign);
// `state` as it may be printed: a path as it is; a PostgreSQL locator as
// user@host:port/db and the campaign (never a password or parameter).
std::string describe_state(std::string_view state);

// Opens the campaign store at `locator` (pg::make_locator: URI and campaign
// id), applying schema migrations first. `node` names this node in leases
// (default: this process, pg::node_id(); tests give others).
Result<std::unique_ptr<StateStore>> open_postgres_store(const std::string& locator, const std::string& node = {});

// Opens the organisation's list of the database at `uri` (or a campaign
// locator in it), applying schema migrations first.
Result<std::unique_ptr<OrgList>> open_postgres_org_list(const std::string& uri);

// Opens the service's store (server.toml's state) in the database at `uri`.
Result<std::unique_ptr<ServiceStore>> open_postgres_service_store(const std::string& uri);
// Opens the service's store `state` names: a PostgreSQL URI or a SQLite file.
Result<std::unique_ptr<ServiceStore>> open_service_store(const std::string& state);

// Opens the store `state` names: a PostgreSQL locator, or a SQLite file
// (with the organisation's list in `org_path` when that is not empty).
Result<std::unique_ptr<StateStore>> open_state_store(const std::string& state, const std::string& org_path = {});

}  // namespace blindcast::store
