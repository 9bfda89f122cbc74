#include "store/pg_schema.hpp"

#include <mutex>
#include <set>

#include <fmt/format.h>

namespace blindcast::store::pg {

namespace {

struct Migration {
  int version;
  const char* what;
  const char* sql;
};

// Append only: a released migration is never edited, a change is a new one.
constexpr Migration k_migrations[] = {
    {1, "campaign state and the organisation's list", R"sql(
CREATE FUNCTION blindcast_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$;

CREATE TABLE campaign_meta (
  campaign text NOT NULL, key text NOT NULL, value text NOT NULL, PRIMARY KEY (campaign, key));

-- One row per recipient per campaign. A row being worked on by a node is
-- leased to it (leased_by, lease_expires_at); state 1 (in flight) rows are
-- the only possible duplicates when their node dies.
CREATE TABLE recipients (
  id bigserial PRIMARY KEY,
  campaign text NOT NULL,
  key text NOT NULL,
  line bigint NOT NULL,
  email text NOT NULL,
  domain text NOT NULL,
  locale text NOT NULL,
  fields bytea NOT NULL,
  lane text NOT NULL DEFAULT '',
  state smallint NOT NULL DEFAULT 0,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at bigint NOT NULL DEFAULT 0,
  duplicate_risk integer NOT NULL DEFAULT 0,
  last_reply text,
  updated_at bigint,
  first_attempt_at bigint,
  sent_at bigint,
  canary boolean NOT NULL DEFAULT false,
  flight bigint NOT NULL DEFAULT 0,
  leased_by text,
  lease_expires_at timestamptz,
  UNIQUE (campaign, key));
CREATE INDEX recipients_lane_todo ON recipients (campaign, lane, id) WHERE state IN (0, 3);
CREATE INDEX recipients_leased ON recipients (leased_by) WHERE leased_by IS NOT NULL;
CREATE INDEX recipients_in_flight ON recipients (campaign, lease_expires_at) WHERE state = 1;
CREATE INDEX recipients_canary ON recipients (campaign, id) WHERE canary;
-- Flight numbers are never reused (an outcome applies only to a row whose
-- last recorded flight is lower).
CREATE SEQUENCE flight_seq;

CREATE TABLE rejected_rows (
  campaign text NOT NULL, line bigint NOT NULL, reason text NOT NULL, PRIMARY KEY (campaign, line));

CREATE TABLE audit (
  id bigserial PRIMARY KEY, campaign text NOT NULL, at bigint NOT NULL, kind text NOT NULL,
  actor text NOT NULL, detail text NOT NULL);
CREATE INDEX audit_campaign ON audit (campaign, id);
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
  FOR EACH ROW EXECUTE FUNCTION blindcast_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
  FOR EACH STATEMENT EXECUTE FUNCTION blindcast_append_only();

CREATE TABLE approvals (
  id bigserial PRIMARY KEY, campaign text NOT NULL, at bigint NOT NULL, by text NOT NULL,
  content_hash text NOT NULL);
CREATE INDEX approvals_campaign ON approvals (campaign, id);
CREATE TRIGGER approvals_append_only BEFORE UPDATE OR DELETE ON approvals
  FOR EACH ROW EXECUTE FUNCTION blindcast_append_only();
CREATE TRIGGER approvals_no_truncate BEFORE TRUNCATE ON approvals
  FOR EACH STATEMENT EXECUTE FUNCTION blindcast_append_only();

-- The processes sending a campaign now, each with its lease (status shows them).
CREATE TABLE senders (
  campaign text NOT NULL, node text NOT NULL, host text NOT NULL, pid bigint NOT NULL,
  since bigint NOT NULL, lease_expires_at timestamptz NOT NULL, PRIMARY KEY (campaign, node));

CREATE TABLE org_suppressions (
  address text NOT NULL, category text NOT NULL, reason text NOT NULL, scope text NOT NULL,
  at bigint NOT NULL, PRIMARY KEY (address, category));
CREATE TABLE bounce_events (
  id bigserial PRIMARY KEY, at bigint NOT NULL, kind text NOT NULL, hard boolean NOT NULL,
  address text NOT NULL, scope text NOT NULL, ref text NOT NULL, lane text NOT NULL, status text NOT NULL,
  reason text NOT NULL, diagnostic text NOT NULL, fingerprint text NOT NULL UNIQUE);
CREATE INDEX bounce_events_address ON bounce_events (address, at);
CREATE INDEX bounce_events_scope ON bounce_events (scope, at);
CREATE TABLE org_campaigns (
  tag text PRIMARY KEY, id text NOT NULL, store_path text NOT NULL, secret_file text NOT NULL);

-- A halt (or its release) wakes every node at once; each also polls.
CREATE FUNCTION blindcast_notify_halt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (TG_OP = 'DELETE' AND OLD.key = 'halt') OR (TG_OP <> 'DELETE' AND NEW.key = 'halt') THEN
    PERFORM pg_notify('blindcast_halt', COALESCE(NEW.campaign, OLD.campaign));
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER campaign_meta_halt AFTER INSERT OR UPDATE OR DELETE ON campaign_meta
  FOR EACH ROW EXECUTE FUNCTION blindcast_notify_halt();
)sql"},
    {2, "the service: API keys, transactional messages, idempotency keys, its audit log", R"sql(
CREATE TABLE api_keys (
  name text PRIMARY KEY, key_id text NOT NULL UNIQUE, secret_hash bytea NOT NULL, scopes text NOT NULL,
  cidrs text NOT NULL, created_at bigint NOT NULL, revoked_at bigint NOT NULL DEFAULT 0);
-- Moves whenever a key changes: every node's key cache reloads.
CREATE SEQUENCE api_keys_changes;
CREATE FUNCTION blindcast_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM nextval('api_keys_changes'); RETURN NULL; END $$;
CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION blindcast_keys_changed();

-- A message being sent (state 1) is leased to its node like a campaign's recipient.
CREATE TABLE messages (
  id bigserial PRIMARY KEY,
  public_id text NOT NULL UNIQUE,
  stream text NOT NULL,
  recipient text NOT NULL,
  locale text NOT NULL,
  lane text NOT NULL,
  key_name text NOT NULL,
  envelope_from text NOT NULL,
  content_hash text NOT NULL,
  data bytea NOT NULL,
  state smallint NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at bigint NOT NULL DEFAULT 0,
  first_attempt_at bigint NOT NULL DEFAULT 0,
  maybe_delivered boolean NOT NULL DEFAULT false,
  last_reply text NOT NULL DEFAULT '',
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  leased_by text,
  lease_expires_at timestamptz);
CREATE INDEX messages_due ON messages (next_attempt_at, id) WHERE state IN (0, 3);
CREATE INDEX messages_sending ON messages (lease_expires_at) WHERE state = 1;
CREATE TABLE message_attempts (
  id bigserial PRIMARY KEY, message bigint NOT NULL, at bigint NOT NULL, reply text NOT NULL);
CREATE INDEX message_attempts_message ON message_attempts (message, id);

CREATE TABLE idempotency (
  key_name text NOT NULL, idem_key text NOT NULL, body_hash text NOT NULL, status integer NOT NULL,
  response text NOT NULL, created_at bigint NOT NULL, PRIMARY KEY (key_name, idem_key));

CREATE TABLE service_audit (
  id bigserial PRIMARY KEY, at bigint NOT NULL, actor text NOT NULL, address text NOT NULL,
  action text NOT NULL, detail text NOT NULL);
CREATE TRIGGER service_audit_append_only BEFORE UPDATE OR DELETE ON service_audit
  FOR EACH ROW EXECUTE FUNCTION blindcast_append_only();
CREATE TRIGGER service_audit_no_truncate BEFORE TRUNCATE ON service_audit
  FOR EACH STATEMENT EXECUTE FUNCTION blindcast_append_only();
)sql"},
    {3, "cluster-wide lane rates", R"sql(
-- One row per lane: the theoretical arrival time (GCRA) of its next send,
-- in unix seconds; nodes reserve sends from it in small chunks.
CREATE TABLE lane_rates (lane text PRIMARY KEY, tat double precision NOT NULL);
)sql"},
    {4, "indexes for the dashboard's reads of the service's messages", R"sql(
CREATE INDEX messages_recipient ON messages (lower(recipient), id);
CREATE INDEX messages_created ON messages (created_at, stream, state);
CREATE INDEX messages_failures ON messages (updated_at, id) WHERE state IN (3, 4, 5);
)sql"},
    {5, "batches in flight as rows of their own; a row's lease is its node's", R"sql(
-- A node's claims (recipients.leased_by) hold while its row in senders
-- does: it renews that one row, not each recipient. A batch handed to the
-- transport is one row here (as in the SQLite store), so a recipient is
-- written twice on its way (claimed, then its outcome) instead of three
-- times, and neither write changes an indexed column but `state`: the
-- claim is a HOT update. What a dead node leaves here is what may arrive
-- twice.
CREATE TABLE flights (
  id bigint PRIMARY KEY, campaign text NOT NULL, node text NOT NULL, at bigint NOT NULL,
  recipients bigint[] NOT NULL);
CREATE INDEX flights_node ON flights (campaign, node);
DROP INDEX recipients_leased;
DROP INDEX recipients_in_flight;
-- Rows an earlier version left in flight (state 1) are still recovered.
CREATE INDEX recipients_in_flight ON recipients (campaign, id) WHERE state = 1;
-- Room on each page for the new version of a row (HOT updates).
ALTER TABLE recipients SET (fillfactor = 80);
)sql"},
    {6, "a lane slowed for the whole cluster by one node's throttling replies", R"sql(
-- The rate a node's shaper slowed the lane to, and until when (unix
-- seconds) every node keeps to it unless a node says so again.
ALTER TABLE lane_rates ADD COLUMN slow_rate double precision, ADD COLUMN slow_until double precision;
)sql"},
    {7, "recipients' deduplication keys compared byte by byte", R"sql(
-- A key is only ever looked up, never sorted for people: byte order is
-- enough, and whatever the database's locale, comparing bytes spares the
-- locale's collation on each of the ~23 comparisons an insertion into the
-- unique index makes (a large import's main cost). Rebuilds that index.
ALTER TABLE recipients ALTER COLUMN key TYPE text COLLATE "C";
)sql"},
    {8, "claims as rows of their own", R"sql(
-- A claim is a row here (a recipient's id, its campaign, the node), made
-- by an INSERT and ended by a DELETE with the outcome: ~1.7 us a
-- recipient, where writing the claim into the recipient's row cost ~11 us.
-- A claim takes every row of a page in one statement, and their old
-- versions are not dead until it commits: without room on the page for a
-- second copy of it (a fillfactor under 50, a table twice as large, a
-- slower import) most of those writes were new entries in three indexes.
-- A claim holds while its node is listed in senders, as before.
CREATE TABLE leases (id bigint PRIMARY KEY, campaign text NOT NULL, node text NOT NULL);
-- Claims an earlier version wrote into recipients.leased_by.
INSERT INTO leases (id, campaign, node)
  SELECT id, campaign, leased_by FROM recipients WHERE leased_by IS NOT NULL AND state IN (0, 3);
-- The column keeps the node of rows an earlier version left in flight
-- (state 1), for their recovery; renamed, so that a node of an earlier
-- version still running stops at its next statement instead of claiming
-- by a column nobody else reads.
ALTER TABLE recipients RENAME COLUMN leased_by TO leased_by_before_8;
)sql"},
};

}  // namespace

Result<void> migrate(Connection& c) {
  if (auto r = c.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                      "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                      "creating schema_migrations");
      !r) {
    // Another node creating it at the same instant: it is there now.
    auto again = c.query("SELECT 1 FROM schema_migrations LIMIT 1", "reading schema_migrations");
    if (!again) return r;
  }
  Txn txn(c);
  if (!txn.began()) return std::unexpected(txn.began().error());
  // One node migrates at a time; the others wait here and find it done.
  if (auto r = c.exec("SELECT pg_advisory_xact_lock(7255020001)", "locking the schema"); !r) return r;
  auto have = c.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", "reading schema_migrations");
  if (!have) return std::unexpected(have.error());
  const auto current = have->i64(0, 0);
  const int known = k_migrations[std::size(k_migrations) - 1].version;
  if (current > known) {
    return fail(fmt::format("state store {}: its schema is version {}, newer than this blindcast knows ({}); "
                            "upgrade blindcast on this node",
                            c.described(), current, known),
                ExitCode::k_runtime);
  }
  for (const auto& m : k_migrations) {
    if (m.version <= current) continue;
    if (auto r = c.exec(m.sql, fmt::format("applying schema migration {} ({})", m.version, m.what)); !r) return r;
    Params p;
    p.add(std::int64_t{m.version}).add(m.what);
    if (auto r = c.query("INSERT INTO schema_migrations (version, description) VALUES ($1, $2)", p,
                         "recording a schema migration");
        !r) {
      return std::unexpected(r.error());
    }
  }
  return txn.commit();
}

Result<std::unique_ptr<Connection>> connect_migrated(const std::string& uri) {
  auto c = Connection::open(uri);
  if (!c) return std::unexpected(c.error());
  static std::mutex mutex;
  static std::set<std::string> migrated;
  std::lock_guard lock(mutex);
  if (!migrated.contains(uri)) {
    if (auto m = pg::migrate(**c); !m) return std::unexpected(m.error());
    migrated.insert(uri);
  }
  return c;
}

}  // namespace blindcast::store::pg
