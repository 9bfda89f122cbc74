// The state store (state_store.hpp) in PostgreSQL (SPEC §10): every role,
// for one campaign of a database that many campaigns and nodes share.
//
// Claiming work across nodes (ARCHITECTURE.md, "PostgreSQL"):
// - a node sending the campaign is listed in `senders` (once per process,
//   by its first claim) with a lease (lease_expires_at, the database's
//   clock) that it renews every k_lease_renew (its work threads, and the
//   halt watcher through keep_alive()); its claims hold while that one
//   row does; a transaction recording outcomes takes that row first, as
//   recovery does;
// - next_for_lane() locks rows with FOR UPDATE SKIP LOCKED and claims them
//   with a row each in `leases` (id, node); a row leased to a listed node is
//   never claimed by another, one leased to a node no longer listed is free;
// - record_and_mark() puts a batch in flight as one row of `flights`, only
//   while this node is listed and holds every row of it, and records
//   outcomes only on rows it holds, in one transaction; a node that lost
//   its lease stops with an error (nothing is sent that is not recorded);
// - a node that stops renewing (killed, cut off) is recovered by another
//   after k_lease (recover_in_flight(), and while sending, next_for_lane()):
//   the members of its open flights without an outcome are due again and
//   counted as possible duplicates, and it leaves `senders`, which frees
//   the rest of its claims — in one transaction holding its row;
// - a node that has nothing left to claim while others are listed waits
//   (next_retry_at()) until they finish or their leases expire.
// A recipient's row is written once on its way (its outcome); its claim is
// an insert into `leases`, deleted with the outcome (~1.7 us, where a new
// version of the recipient's row cost ~11 us).
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
// How long a lane stays slowed for the cluster after the last node that
// saw throttling replies said so (each says it with every reservation).
inline constexpr double k_slow_hold_seconds = 5.0;

// How long `send` waits for a PostgreSQL that went away (a restart, a
// failover) before it stops (exit 1, nothing lost); its lease is kept for
// the nodes that come back within k_lease of the server's start.
inline constexpr std::chrono::seconds k_outage_patience{300};
// Lets this process's statements wait up to k_outage_patience for the server.
void wait_out_outages();
// Lets the calling thread's statements fail at once instead.
void fail_fast_on_outages();

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
