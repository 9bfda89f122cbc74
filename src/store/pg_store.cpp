// PostgreSQL implementation of the state store; see pg_store.hpp for how
// nodes share a campaign.
#include "store/pg_store.hpp"

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <cerrno>
#include <chrono>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "store/field_codec.hpp"
#include "store/outcome_log.hpp"
#include "store/pg_conn.hpp"
#include "store/pg_org_list.hpp"
#include "store/pg_schema.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace blindcast::store {

namespace {

using pg::Connection;
using pg::Params;
using pg::Rows;
using pg::Txn;

using SteadyClock = std::chrono::steady_clock;

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const std::int64_t k_lease_seconds = k_lease.count();

// Statements that look rows up by id also check the campaign, written
// `campaign || '' = $1`: a check the planner cannot answer from an index.
// Written plainly, it may read the campaign's whole part of an index
// (tens of thousands of entries, with those of earlier versions of rows)
// to intersect it with a few hundred ids.

// Which deduplication keys an import may have met before: a split-block
// Bloom filter (each key sets one bit in each of the 8 words of one 64-byte
// block, so a look-up costs one cache miss). "No" is certain; "maybe" is
// wrong for about 1 key in 10,000 at 10,000,000 keys, more beyond. Fixed
// in size (32 MB; a page of it is in memory once a key falls there), so a
// node's memory does not grow with the audience.
class KeyFilter {
 public:
  // calloc: the system hands over zeroed pages as they are first touched.
  KeyFilter() : m_words(static_cast<std::uint64_t*>(std::calloc(k_blocks * 8, sizeof(std::uint64_t)))) {
    if (m_words == nullptr) throw std::bad_alloc();
  }
  // Adds `key`; true when it may have been added before.
  bool test_and_add(std::string_view key) {
    const std::uint64_t h = std::hash<std::string_view>{}(key);
    std::uint64_t* block = m_words.get() + (h >> (64 - k_block_bits)) * 8;
    std::uint64_t x = h * 0x9E3779B97F4A7C15ULL;  // the bits within the block, from a second mix
    x ^= x >> 29;
    bool seen = true;
    for (int i = 0; i < 8; ++i) {
      const std::uint64_t bit = std::uint64_t{1} << ((x >> (6 * i)) & 63);
      seen = seen && (block[i] & bit) != 0;
      block[i] |= bit;
    }
    return seen;
  }

 private:
  static constexpr int k_block_bits = 19;  // 2^19 blocks of 64 bytes: 32 MB
  static constexpr std::size_t k_blocks = std::size_t{1} << k_block_bits;
  struct Free {
    void operator()(std::uint64_t* p) const { std::free(p); }
  };
  std::unique_ptr<std::uint64_t[], Free> m_words;
};

// A bulk load of a campaign's audience with COPY; memory stays bounded
// whatever the audience's size, and the database, not this process, decides
// which rows are duplicate addresses (the first kept).
//
// A campaign's first import streams its rows straight into `recipients`
// (one pass), in chunks of k_chunk_rows rows sorted by key: a real export
// comes in no particular order of its addresses, and rows inserted in key
// order land next to each other in the unique index (10,000,000 shuffled
// rows: 111 s, 138 s unsorted). The ids, which are the sending order,
// follow the file from chunk to chunk and the keys within a full one (an
// audience shorter than a chunk keeps the file's order). (Ids
// given in the file's order within a chunk cost more than the sort saves:
// they land at random places in the id indexes instead.) The rows whose
// key a KeyFilter says may have come before are kept apart: those go to a temporary file, and at the end
// through a temporary table into `recipients` with ON CONFLICT DO NOTHING
// (true duplicates are dropped; a new address the filter mistook, about 1
// in 10,000, is stored after the others). A later import streams every row
// into a temporary table, and commit() merges them with set statements:
// new rows, rows that changed, and unsent rows no longer in the file
// removed. Rows that did not change are neither
// written nor locked: a node that imports the same file while another node
// sends from it (nodes started together) waits for no row the sender
// holds, so the two cannot deadlock.
class PgImport final : public ImportSession {
 public:
  PgImport(Connection& c, std::string campaign, std::string digest)
      : m_c(c), m_campaign(std::move(campaign)), m_digest(std::move(digest)), m_txn(c) {
    Connection::copy_field(m_prefix, m_campaign);
    m_prefix += '\t';
  }
  ~PgImport() override {
    if (m_copying) m_c.copy_abort();  // before the transaction rolls back
    if (m_maybe_seen != nullptr) std::fclose(m_maybe_seen);
  }
  PgImport(const PgImport&) = delete;
  PgImport& operator=(const PgImport&) = delete;

  // Takes the campaign's import lock (nodes starting together import one
  // after the other) and starts the COPY; false when the file's import was
  // committed while this one waited for the lock (nothing to do).
  Result<bool> start() {
    if (!m_txn.began()) return std::unexpected(m_txn.began().error());
    Params p;
    p.add("import:" + m_campaign);
    if (auto r = m_c.query("SELECT pg_advisory_xact_lock(hashtext($1))", p, "locking the audience import"); !r) {
      return std::unexpected(r.error());
    }
    if (!m_digest.empty()) {
      Params d;
      d.add(m_campaign).add(m_digest);
      auto done = m_c.query("SELECT 1 FROM campaign_meta WHERE campaign = $1 AND key = 'audience_digest' AND value = $2",
                            d, "starting the audience import");
      if (!done) return std::unexpected(done.error());
      if (done->size() > 0) return false;
    }
    Params q;
    q.add(m_campaign);
    auto known = m_c.query("SELECT EXISTS (SELECT 1 FROM recipients WHERE campaign = $1)", q, "starting the audience import");
    if (!known) return std::unexpected(known.error());
    m_first = known->text(0, 0) == "f";
    if (auto r = m_c.exec("CREATE TEMP TABLE import_rows (k text COLLATE \"C\" NOT NULL, l bigint NOT NULL, e text NOT NULL, "
                          "d text NOT NULL, lo text NOT NULL, f bytea NOT NULL, la text NOT NULL) ON COMMIT DROP",
                          "starting the audience import");
        !r) {
      return std::unexpected(r.error());
    }
    if (m_first) {
      m_filter = std::make_unique<KeyFilter>();
      m_maybe_seen = std::tmpfile();
      if (m_maybe_seen == nullptr) {
        return fail(fmt::format("cannot create a temporary file for the audience import: {}; check the space and "
                                "permissions of /tmp",
                                std::strerror(errno)),
                    ExitCode::k_runtime);
      }
    }
    if (auto r = m_c.copy_start(m_first ? "COPY recipients (campaign, key, line, email, domain, locale, fields, lane) "
                                          "FROM STDIN"
                                        : "COPY import_rows FROM STDIN",
                                "importing the audience");
        !r) {
      return std::unexpected(r.error());
    }
    m_copying = true;
    return true;
  }

  Result<void> add(const ImportRow& row) override {
    ++m_rows;
    // A first import's row whose key may have come before waits in the
    // temporary file; every other row goes out now.
    const bool maybe_seen = m_filter && m_filter->test_and_add(row.key);
    if (m_first && !maybe_seen) m_chunk.emplace_back();
    std::string& out = maybe_seen ? m_line : m_first ? m_chunk.back() : m_buffer;
    if (maybe_seen) m_line.clear();
    const auto field = [&](std::string_view v) {
      Connection::copy_field(out, v);
      out += '\t';
    };
    field(row.key);
    out += std::to_string(row.line);
    out += '\t';
    field(row.email);
    field(row.domain);
    field(row.locale);
    out += "\\\\x";  // bytea in hex, its backslash escaped for COPY
    out += util::to_hex(pack_fields(row.fields));
    out += '\t';
    Connection::copy_field(out, row.lane);
    out += '\n';
    if (maybe_seen) {
      ++m_maybe_seen_rows;
      if (std::fwrite(m_line.data(), 1, m_line.size(), m_maybe_seen) != m_line.size()) {
        return fail(fmt::format("cannot write the audience import's temporary file: {}; check the space in /tmp",
                                std::strerror(errno)),
                    ExitCode::k_runtime);
      }
      return {};
    }
    if (m_first) return m_chunk.size() >= k_chunk_rows ? send_chunk() : Result<void>{};
    if (m_buffer.size() >= k_copy_chunk) return send();
    return {};
  }

  Result<void> reject(std::int64_t line, std::string_view reason) override {
    m_rejected_lines.push_back(line);
    m_rejected_reasons.emplace_back(reason);
    return {};
  }

  [[nodiscard]] bool drops_duplicates() const override { return true; }
  [[nodiscard]] std::int64_t duplicates() const override { return m_duplicates; }

  Result<std::int64_t> commit() override {
    if (auto r = send_chunk(); !r) return std::unexpected(r.error());
    if (auto r = send(); !r) return std::unexpected(r.error());
    m_copying = false;
    if (auto r = m_c.copy_finish(); !r) return std::unexpected(r.error());
    Params p;
    p.add(m_campaign);
    std::int64_t stored = 0;  // rows the COPY stored in recipients
    if (m_first) {
      stored = m_rows - m_maybe_seen_rows;
      if (m_maybe_seen_rows == 0) {
        m_duplicates = 0;
        return finish(0);
      }
      if (auto r = fill_from_maybe_seen(); !r) return std::unexpected(r.error());
    }
    // New rows in the file's order (their ids are the sending order); a
    // key met before in the file (or stored before) is skipped. A
    // temporary table is read back in the order COPY wrote it (one
    // sequential scan of this session's own pages: temporary tables are
    // never scanned in parallel or in step with another scan), so no sort
    // of the whole audience is needed for that order (a third of the time).
    auto added = m_c.query("INSERT INTO recipients (campaign, key, line, email, domain, locale, fields, lane) "
                           "SELECT $1, k, l, e, d, lo, f, la FROM import_rows "
                           "ON CONFLICT (campaign, key) DO NOTHING",
                           p, "storing audience rows");
    if (!added) return std::unexpected(added.error());
    std::int64_t removed_count = 0;
    if (m_first) {
      m_duplicates = m_rows - stored - added->affected();
    } else {
      if (auto r = m_c.exec("CREATE INDEX ON import_rows (k, l); ANALYZE import_rows", "importing the audience"); !r) {
        return std::unexpected(r.error());
      }
      auto distinct = m_c.query("SELECT COUNT(DISTINCT k) FROM import_rows", "importing the audience");
      if (!distinct) return std::unexpected(distinct.error());
      m_duplicates = m_rows - distinct->i64(0, 0);
      // Rows that changed (or come back after a removal), each key's first
      // line; then unsent recipients no longer in the file are removed
      // (never sent).
      if (auto r = m_c.query("UPDATE recipients r SET line = u.l, email = u.e, domain = u.d, locale = u.lo, "
                             "fields = u.f, lane = u.la, state = CASE WHEN r.state = 7 THEN 0 ELSE r.state END "
                             "FROM (SELECT DISTINCT ON (k) * FROM import_rows ORDER BY k, l) u "
                             "WHERE r.campaign = $1 AND r.key = u.k AND (r.state = 7 OR "
                             "(r.line, r.email, r.domain, r.locale, r.fields, r.lane) IS DISTINCT FROM "
                             "(u.l, u.e, u.d, u.lo, u.f, u.la))",
                             p, "storing audience rows");
          !r) {
        return std::unexpected(r.error());
      }
      auto removed = m_c.query("UPDATE recipients r SET state = 7 WHERE r.campaign = $1 AND r.state IN (0, 3) AND "
                               "NOT EXISTS (SELECT 1 FROM import_rows u WHERE u.k = r.key)",
                               p, "marking removed rows");
      if (!removed) return std::unexpected(removed.error());
      removed_count = removed->affected();
    }
    return finish(removed_count);
  }

 private:
  static constexpr std::size_t k_copy_chunk = 256 * 1024;
  static constexpr std::size_t k_chunk_rows = 131072;  // a first import's rows sorted at a time (~15 MB)

  // Stores the rejected rows, commits, and updates the planner's statistics.
  Result<std::int64_t> finish(std::int64_t removed_count) {
    if (!m_digest.empty()) {  // in the import's own commit: a node waiting for the lock sees both or neither
      Params d;
      d.add(m_campaign).add(m_digest);
      if (auto r = m_c.query("INSERT INTO campaign_meta (campaign, key, value) VALUES ($1, 'audience_digest', $2) "
                             "ON CONFLICT (campaign, key) DO UPDATE SET value = excluded.value",
                             d, "storing audience rows");
          !r) {
        return std::unexpected(r.error());
      }
    }
    if (!m_rejected_lines.empty()) {
      Params q;
      q.add(m_campaign).add_array(m_rejected_lines).add_array(m_rejected_reasons);
      if (auto r = m_c.query("INSERT INTO rejected_rows (campaign, line, reason) SELECT DISTINCT ON (l) $1, l, r "
                             "FROM unnest($2::bigint[], $3::text[]) AS u(l, r) "
                             "ON CONFLICT (campaign, line) DO UPDATE SET reason = excluded.reason",
                             q, "storing rejected rows");
          !r) {
        return std::unexpected(r.error());
      }
    }
    if (auto c = m_txn.commit(); !c) return std::unexpected(c.error());
    // The planner's statistics learn of the new rows now, not when
    // autovacuum next passes: with a campaign it believes empty, it would
    // scan the campaign for each batch's outcomes instead of looking the
    // rows up by id.
    if (auto r = m_c.exec("ANALYZE recipients", "updating the planner's statistics"); !r) {
      return std::unexpected(r.error());
    }
    return removed_count;
  }

  // Copies the rows waiting in the temporary file into the temporary table.
  Result<void> fill_from_maybe_seen() {
    if (std::fflush(m_maybe_seen) != 0 || std::fseek(m_maybe_seen, 0, SEEK_SET) != 0) {
      return fail(fmt::format("cannot read back the audience import's temporary file: {}", std::strerror(errno)),
                  ExitCode::k_runtime);
    }
    if (auto r = m_c.copy_start("COPY import_rows FROM STDIN", "importing the audience"); !r) return r;
    m_copying = true;
    std::vector<char> chunk(k_copy_chunk);
    while (true) {
      const auto n = std::fread(chunk.data(), 1, chunk.size(), m_maybe_seen);
      if (n > 0) {
        if (auto r = m_c.copy_put(std::string_view(chunk.data(), n)); !r) return r;
      }
      if (n < chunk.size()) break;
    }
    if (std::ferror(m_maybe_seen) != 0) {
      return fail("cannot read back the audience import's temporary file", ExitCode::k_runtime);
    }
    m_copying = false;
    return m_c.copy_finish();
  }

  // Sends the chunk of a first import's rows, sorted by key (their ids
  // follow: the sequence numbers them as they arrive).
  Result<void> send_chunk() {
    if (m_chunk.empty()) return {};
    std::vector<std::uint32_t> order(m_chunk.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    // A row starts with its key: sorting the rows sorts the keys. The last
    // chunk, short, keeps the file's order (an audience of less than a
    // chunk is sent in that order; its index is small anyway).
    if (m_chunk.size() >= k_chunk_rows) std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return m_chunk[a] < m_chunk[b]; });
    for (const auto i : order) {
      m_buffer += m_prefix;
      m_buffer += m_chunk[i];
      if (m_buffer.size() >= k_copy_chunk) {
        if (auto r = send(); !r) return r;
      }
    }
    m_chunk.clear();
    return send();
  }

  Result<void> send() {
    if (m_buffer.empty()) return {};
    auto r = m_c.copy_put(m_buffer);
    m_buffer.clear();
    return r;
  }

  Connection& m_c;
  std::string m_campaign;
  std::string m_digest;  // the audience file's (recorded with the import), or empty
  Txn m_txn;
  bool m_copying = false;
  bool m_first = false;  // the campaign has no rows yet
  std::string m_prefix;  // the campaign column of a row copied into recipients
  std::unique_ptr<KeyFilter> m_filter;  // a first import's keys so far
  std::FILE* m_maybe_seen = nullptr;    // ... rows whose key may have come before (temporary table format)
  std::int64_t m_maybe_seen_rows = 0;
  std::string m_line;  // one such row
  std::vector<std::string> m_chunk;       // a first import's rows not sent yet (file order; no id or campaign)
  std::int64_t m_rows = 0;
  std::int64_t m_duplicates = 0;
  std::string m_buffer;  // rows not yet sent, in COPY's text format
  std::vector<std::int64_t> m_rejected_lines;
  std::vector<std::string> m_rejected_reasons;
};

// This process's part in sending the campaign: its row in `senders`. At the
// end it gives back the rows it claimed and did not put in flight.
class PgLease final : public OwnerLease {
 public:
  PgLease(std::shared_ptr<Connection> c, std::string campaign, std::string node)
      : m_c(std::move(c)), m_campaign(std::move(campaign)), m_node(std::move(node)) {}
  ~PgLease() override {
    // Leaving the senders gives back every row this node claimed (a claim
    // holds while its node is listed). With batches still open in flight
    // (the send stopped on an error), the node's lease is ended instead:
    // the next node to recover counts them, and only then are its rows free.
    Params p;
    p.add(m_campaign).add(m_node);
    auto left = m_c->query("DELETE FROM senders WHERE campaign = $1 AND node = $2 AND NOT EXISTS "
                           "(SELECT 1 FROM flights WHERE campaign = $1 AND node = $2)",
                           p, "leaving the senders");
    if (left && left->affected() > 0) {
      (void)m_c->query("DELETE FROM leases WHERE campaign = $1 AND node = $2", p, "leaving the senders");
    }
    (void)m_c->query("UPDATE senders SET lease_expires_at = clock_timestamp() - interval '1 second' "
                     "WHERE campaign = $1 AND node = $2",
                     p, "leaving the senders");
  }
  PgLease(const PgLease&) = delete;
  PgLease& operator=(const PgLease&) = delete;

 private:
  std::shared_ptr<Connection> m_c;
  std::string m_campaign;
  std::string m_node;
};

class PgStore final : public StateStore {
 public:
  PgStore(std::shared_ptr<Connection> c, std::string campaign, std::string node)
      : m_c(std::move(c)),
        m_campaign(std::move(campaign)),
        m_node(std::move(node)),
        m_org(pg::make_org_list(*m_c)),
        m_log("") {}

  // ---- Gates
  Result<std::optional<std::string>> get_meta(std::string_view key) override {
    Params p;
    p.add(m_campaign).add(key);
    auto r = m_c->query("SELECT value FROM campaign_meta WHERE campaign = $1 AND key = $2", p, "reading metadata");
    if (!r) return std::unexpected(r.error());
    if (r->empty()) return std::optional<std::string>();
    return std::optional<std::string>(std::string(r->text(0, 0)));
  }

  Result<void> set_meta(std::string_view key, std::string_view value) override {
    Params p;
    p.add(m_campaign).add(key).add(value);
    auto r = m_c->query("INSERT INTO campaign_meta (campaign, key, value) VALUES ($1, $2, $3) "
                        "ON CONFLICT (campaign, key) DO UPDATE SET value = excluded.value",
                        p, "writing metadata");
    if (!r) return std::unexpected(r.error());
    return {};
  }

  Result<void> delete_meta(std::string_view key) override {
    Params p;
    p.add(m_campaign).add(key);
    auto r = m_c->query("DELETE FROM campaign_meta WHERE campaign = $1 AND key = $2", p, "writing metadata");
    if (!r) return std::unexpected(r.error());
    return {};
  }

  Result<void> add_approval(std::string_view by, std::string_view content_hash) override {
    Params p;
    p.add(m_campaign).add(now_seconds()).add(by).add(content_hash);
    auto r = m_c->query("INSERT INTO approvals (campaign, at, by, content_hash) VALUES ($1, $2, $3, $4)", p,
                        "recording the approval");
    if (!r) return std::unexpected(r.error());
    return {};
  }

  Result<std::vector<Approval>> approvals() override {
    Params p;
    p.add(m_campaign);
    auto r = m_c->query("SELECT at, by, content_hash FROM approvals WHERE campaign = $1 ORDER BY id", p,
                        "reading approvals");
    if (!r) return std::unexpected(r.error());
    std::vector<Approval> out;
    for (int i = 0; i < r->size(); ++i) out.push_back({r->i64(i, 0), std::string(r->text(i, 1)), std::string(r->text(i, 2))});
    return out;
  }

  Result<bool> wait_for_halt_signal(int timeout_ms) override { return m_c->wait_notify("blindcast_halt", timeout_ms); }
  [[nodiscard]] bool signals_halts() const override { return true; }

  // ---- AuditLog
  Result<void> append_event(std::string_view kind, std::string_view actor, std::string_view detail) override {
    Params p;
    p.add(m_campaign).add(now_seconds()).add(kind).add(actor).add(detail);
    auto r = m_c->query("INSERT INTO audit (campaign, at, kind, actor, detail) VALUES ($1, $2, $3, $4, $5)", p,
                        "writing the audit log");
    if (!r) return std::unexpected(r.error());
    return {};
  }

  Result<std::vector<AuditEvent>> events(std::size_t limit) override {
    Params p;
    p.add(m_campaign).add(static_cast<std::int64_t>(limit));
    auto r = m_c->query("SELECT at, kind, actor, detail FROM (SELECT * FROM audit WHERE campaign = $1 "
                        "ORDER BY id DESC LIMIT $2) AS last ORDER BY id",
                        p, "reading the audit log");
    if (!r) return std::unexpected(r.error());
    std::vector<AuditEvent> out;
    for (int i = 0; i < r->size(); ++i) {
      out.push_back({r->i64(i, 0), std::string(r->text(i, 1)), std::string(r->text(i, 2)), std::string(r->text(i, 3))});
    }
    return out;
  }

  // ---- Journal
  Result<std::unique_ptr<ImportSession>> begin_import(std::string_view digest) override {
    auto session = std::make_unique<PgImport>(*m_c, m_campaign, std::string(digest));
    auto started = session->start();
    if (!started) return std::unexpected(started.error());
    if (!*started) return std::unique_ptr<ImportSession>();  // another node imported this file meanwhile
    return std::unique_ptr<ImportSession>(std::move(session));
  }

  Result<void> assign_lanes(const std::function<std::string(std::string_view)>& lane_of) override {
    Params p;
    p.add(m_campaign);
    auto domains = m_c->query("SELECT DISTINCT domain FROM recipients WHERE campaign = $1", p, "assigning lanes");
    if (!domains) return std::unexpected(domains.error());
    std::vector<std::string> names, lanes;
    for (int i = 0; i < domains->size(); ++i) {
      names.emplace_back(domains->text(i, 0));
      lanes.push_back(lane_of(names.back()));
    }
    Params u;
    u.add(m_campaign).add_array(names).add_array(lanes);
    auto r = m_c->query("UPDATE recipients r SET lane = u.l FROM unnest($2::text[], $3::text[]) AS u(d, l) "
                        "WHERE r.campaign = $1 AND r.domain = u.d AND r.lane <> u.l",
                        u, "assigning lanes");
    if (!r) return std::unexpected(r.error());
    return {};
  }

  Result<std::int64_t> recover_in_flight(std::vector<std::int64_t>* /*not_delivered*/) override {
    // No outcome log: every in-flight row of a node whose lease expired may
    // have been delivered. Rows of live nodes are theirs.
    return recover_expired(true);
  }

  Result<std::int64_t> requeue_failed(bool all) override {
    Params p;
    p.add(m_campaign).add(now_seconds());
    if (!all) p.add(k_render_failure);
    auto r = m_c->query(all ? "UPDATE recipients SET state = 0, next_attempt_at = 0, first_attempt_at = NULL, "
                              "attempts = 0, updated_at = $2 WHERE campaign = $1 AND state = 6"
                            : "UPDATE recipients SET state = 0, next_attempt_at = 0, updated_at = $2 "
                              "WHERE campaign = $1 AND state = 6 AND starts_with(last_reply, $3)",
                        p, "making failed recipients due again");
    if (!r) return std::unexpected(r.error());
    return r->affected();
  }

  Result<std::vector<LaneBacklog>> due_by_lane(std::int64_t now, bool canary_only) override {
    Params p;
    p.add(m_campaign).add(now).add(canary_only ? "true" : "false");
    auto r = m_c->query("SELECT lane, COUNT(*) FROM recipients WHERE campaign = $1 AND state IN (0, 3) "
                        "AND next_attempt_at <= $2 AND (canary OR NOT $3::boolean) GROUP BY lane ORDER BY lane",
                        p, "reading the lanes");
    if (!r) return std::unexpected(r.error());
    std::vector<LaneBacklog> out;
    for (int i = 0; i < r->size(); ++i) out.push_back({std::string(r->text(i, 0)), r->i64(i, 1)});
    return out;
  }

  Result<std::vector<StoredRecipient>> next_for_lane(std::string_view lane, std::int64_t now, std::size_t limit,
                                                     std::int64_t after_id, bool canary_only) override {
    // A claim holds while this node is listed in senders.
    if (auto r = join(); !r) return std::unexpected(r.error());
    if (auto r = maintain(); !r) return std::unexpected(r.error());
    auto rows = rerun_if_lost([&] { return claim_once(lane, now, limit, after_id, canary_only); });
    if (!rows) return rows;
    std::sort(rows->begin(), rows->end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return rows;
  }

  // A row leased to a node no longer listed in senders (it ended, or
  // another node recovered it) is free; one of a listed node is not. Two
  // statements in one transaction: the first locks the candidates, the
  // second claims those still free, its snapshot taken after the locks.
  // In one statement, a row another node claimed just after joining is
  // re-read under its new lease, but the senders check keeps the
  // statement's older snapshot, in which that node is not listed yet: the
  // row would be taken from it.
  // A claim that committed while the first statement ran released its row
  // locks without changing the rows, so the first statement may lock rows
  // whose lease it cannot see yet; the second leaves them out. The two are
  // repeated past them until `limit` rows are claimed or no candidate is
  // left: fewer than `limit` means the lane has no more (the engine reads
  // it so), not that another node claimed at the same instant.
  // A row's lease is always read by a scalar subquery on its id (here and
  // below): one probe of the primary key. Written as a join, the planner
  // scans `leases` whole, a table of few live rows and, between two
  // vacuums, as many dead ones as rows sent meanwhile.
  Result<std::vector<StoredRecipient>> claim_once(std::string_view lane, std::int64_t now, std::size_t limit,
                                                  std::int64_t after_id, bool canary_only) {
    Txn txn(*m_c);
    if (!txn.began()) return std::unexpected(txn.began().error());
    std::vector<StoredRecipient> out;
    while (out.size() < limit) {
      const auto want = limit - out.size();
      Params p;
      p.add(m_campaign).add(lane).add(after_id).add(now).add(static_cast<std::int64_t>(want))
          .add(canary_only ? "true" : "false").add(m_node);
      auto locked = m_c->query(
          "SELECT id FROM recipients t WHERE campaign = $1 AND lane = $2 AND state IN (0, 3) AND id > $3 "
          "AND next_attempt_at <= $4 AND (canary OR NOT $6::boolean) "
          "AND (SELECT l.node <> $7 AND EXISTS (SELECT 1 FROM senders s WHERE s.campaign = $1 AND s.node = l.node) "
          "FROM leases l WHERE l.id = t.id) IS NOT TRUE "
          "ORDER BY id LIMIT $5 FOR UPDATE OF t SKIP LOCKED",
          p, "claiming recipients");
      if (!locked) return std::unexpected(locked.error());
      if (locked->empty()) break;
      std::vector<std::int64_t> ids;
      ids.reserve(static_cast<std::size_t>(locked->size()));
      for (int i = 0; i < locked->size(); ++i) ids.push_back(locked->i64(i, 0));
      Params q;
      q.add(m_campaign).add_array(ids).add(m_node);
      // A lease of a node no longer listed is taken over; the rows' data is
      // read as it stands (locked above: nobody changes it meanwhile).
      auto r = m_c->query(
          "WITH c AS (INSERT INTO leases (id, campaign, node) SELECT u.id, $1, $3 FROM unnest($2::bigint[]) AS u(id) "
          "ON CONFLICT (id) DO UPDATE SET node = excluded.node WHERE leases.node = excluded.node OR NOT EXISTS "
          "(SELECT 1 FROM senders s WHERE s.campaign = $1 AND s.node = leases.node) RETURNING id) "
          "SELECT r.id, r.line, r.email, r.locale, r.fields, r.attempts, COALESCE(r.first_attempt_at, 0), r.lane "
          "FROM recipients r JOIN c ON r.id = c.id WHERE r.campaign || '' = $1",
          q, "claiming recipients");
      if (!r) return std::unexpected(r.error());
      auto rows = read_rows(*r);
      if (!rows) return rows;
      out.insert(out.end(), std::make_move_iterator(rows->begin()), std::make_move_iterator(rows->end()));
      if (ids.size() < want) break;  // no candidate left past these
      after_id = *std::max_element(ids.begin(), ids.end());
    }
    if (auto c = txn.commit(); !c) return std::unexpected(c.error());
    return out;
  }

  Result<void> for_each_recipient(const std::function<void(std::int64_t, std::string_view)>& fn,
                                  bool unsent_only) override {
    Params p;
    p.add(m_campaign);
    return m_c->for_each_row(
        unsent_only ? "SELECT id, email FROM recipients WHERE campaign = $1 AND state IN (0, 3) ORDER BY id"
                    : "SELECT id, email FROM recipients WHERE campaign = $1 AND state <> 7 ORDER BY id",
        p, "reading the audience", [&](const Rows& row) { fn(row.i64(0, 0), row.text(0, 1)); });
  }

  Result<void> set_canary(std::span<const std::int64_t> ids) override {
    Txn txn(*m_c);
    if (!txn.began()) return std::unexpected(txn.began().error());
    Params p;
    p.add(m_campaign).add_array(ids);
    auto r = m_c->query("UPDATE recipients SET canary = (id = ANY($2::bigint[])) WHERE campaign = $1 "
                        "AND (canary OR id = ANY($2::bigint[]))",
                        p, "choosing the canary");
    if (!r) return std::unexpected(r.error());
    return txn.commit();
  }

  Result<CanaryStats> canary_stats() override {
    Params p;
    p.add(m_campaign);
    auto r = m_c->query("SELECT COUNT(*), COUNT(*) FILTER (WHERE state = 2), COUNT(*) FILTER (WHERE state = 4), "
                        "COUNT(*) FILTER (WHERE state = 6), COUNT(*) FILTER (WHERE state = 3), "
                        "COUNT(*) FILTER (WHERE state IN (0, 1, 3)), COUNT(*) FILTER (WHERE state = 3 OR attempts > 1) "
                        "FROM recipients WHERE campaign = $1 AND canary",
                        p, "reading the canary");
    if (!r) return std::unexpected(r.error());
    return CanaryStats{r->i64(0, 0), r->i64(0, 1), r->i64(0, 2), r->i64(0, 3), r->i64(0, 4), r->i64(0, 5), r->i64(0, 6)};
  }

  Result<std::vector<std::int64_t>> canary_among(std::span<const std::int64_t> ids, bool not_bounced) override {
    Params p;
    p.add(m_campaign).add_array(ids).add(not_bounced ? "true" : "false");
    auto r = m_c->query("SELECT id FROM recipients WHERE campaign = $1 AND id = ANY($2::bigint[]) AND canary "
                        "AND (NOT $3::boolean OR state <> 4) ORDER BY id",
                        p, "reading the canary");
    if (!r) return std::unexpected(r.error());
    std::vector<std::int64_t> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(r->i64(i, 0));
    return out;
  }

  Result<std::optional<std::int64_t>> next_retry_at(bool canary_only) override {
    // Deferred recipients and pending ones held back; and while other nodes
    // hold work (batches in flight, or rows claimed while they are listed),
    // a second from now: they finish, or their leases end and this node
    // takes their work over; it must not end before the campaign.
    // Rows due now that nobody holds (another node's work recovered after
    // this node read past them) are due now: the caller reads its lanes
    // again from the start.
    Params p;
    p.add(m_campaign).add(canary_only ? "true" : "false").add(m_node).add(now_seconds() + 1).add(now_seconds());
    auto r = m_c->query(
        "SELECT LEAST((SELECT MIN(next_attempt_at) FROM recipients WHERE campaign = $1 AND state IN (0, 3) "
        "AND next_attempt_at > 0 AND (canary OR NOT $2::boolean)), "
        "(SELECT $5::bigint WHERE EXISTS (SELECT 1 FROM recipients t WHERE campaign = $1 AND state IN (0, 3) "
        "AND next_attempt_at <= $5 AND (canary OR NOT $2::boolean) AND (SELECT EXISTS (SELECT 1 FROM senders s "
        "WHERE s.campaign = $1 AND s.node = l.node) FROM leases l WHERE l.id = t.id) IS NOT TRUE)), "
        "(SELECT $4::bigint WHERE EXISTS (SELECT 1 FROM flights WHERE campaign = $1 AND node <> $3) "
        "OR EXISTS (SELECT 1 FROM leases l JOIN senders s ON s.campaign = $1 AND s.node = l.node "
        "JOIN recipients t ON t.id = l.id WHERE l.campaign = $1 AND l.node <> $3 AND t.state IN (0, 3) "
        "AND (t.canary OR NOT $2::boolean)) "
        "OR EXISTS (SELECT 1 FROM recipients WHERE campaign = $1 AND state = 1)))",
        p, "reading the retry schedule");
    if (!r) return std::unexpected(r.error());
    if (r->is_null(0, 0)) return std::optional<std::int64_t>();
    return std::optional<std::int64_t>(r->i64(0, 0));
  }

  Result<std::vector<StoredRecipient>> load(std::span<const std::int64_t> ids) override {
    Params p;
    p.add(m_campaign).add_array(ids);
    auto r = m_c->query("SELECT id, line, email, locale, fields, attempts, COALESCE(first_attempt_at, 0), lane "
                        "FROM recipients WHERE campaign || '' = $1 AND id = ANY($2::bigint[])",
                        p, "reading recipients");
    if (!r) return std::unexpected(r.error());
    auto rows = read_rows(*r);
    if (!rows) return rows;
    std::unordered_map<std::int64_t, std::size_t> at;
    for (std::size_t i = 0; i < rows->size(); ++i) at[(*rows)[i].id] = i;
    std::vector<StoredRecipient> out;
    for (const auto id : ids) {
      if (const auto it = at.find(id); it != at.end()) out.push_back((*rows)[it->second]);
    }
    return out;
  }

  Result<std::int64_t> record_and_mark(std::span<const Outcome> outcomes, std::span<const std::int64_t> landed,
                                       std::span<const std::int64_t> ids, bool sync) override {
    // Rerun whole when the server went away (a commit lost on the way may
    // have landed: outcomes carry their flight and apply once; the batch's
    // flight is found again by its members).
    // Every commit is synchronous (`sync` is not needed): an outcome lost
    // in a crash of the server would let this node claim and send its
    // recipient again, uncounted.
    (void)sync;
    bool rerun = false;
    return rerun_if_lost([&] {
      auto r = record_and_mark_once(outcomes, landed, ids, rerun);
      rerun = true;
      return r;
    });
  }

  Result<std::int64_t> record_and_mark_once(std::span<const Outcome> outcomes, std::span<const std::int64_t> landed,
                                            std::span<const std::int64_t> ids, bool rerun) {
    if (outcomes.empty() && ids.empty() && landed.empty()) return 0;
    if (!ids.empty()) {
      if (auto j = join(); !j) return std::unexpected(j.error());
    }
    Txn txn(*m_c);
    if (!txn.began()) return std::unexpected(txn.began().error());
    if (m_joined) {
      // This node's row in senders first, as recovery takes it first: a
      // node being recovered waits here and then finds itself gone, and
      // recovery never meets a flight or row this transaction holds.
      Params a;
      a.add(m_campaign).add(m_node).add(k_lease_seconds);
      auto alive = m_c->query("UPDATE senders SET lease_expires_at = clock_timestamp() + make_interval(secs => $3) "
                              "WHERE campaign = $1 AND node = $2",
                              a, "renewing this node's lease");
      if (!alive) return std::unexpected(alive.error());
      if (alive->affected() == 0) return lost_lease();
      m_last_renew = SteadyClock::now();  // renewed: renew_if_due() need not
    }
    const auto now = now_seconds();
    if (!outcomes.empty()) {
      if (auto r = apply(outcomes, now); !r) return std::unexpected(r.error());
    }
    if (!landed.empty()) {
      Params p;
      p.add(m_campaign).add_array(landed);
      if (auto r = m_c->query("DELETE FROM flights WHERE campaign = $1 AND id = ANY($2::bigint[])", p,
                              "closing batches in flight");
          !r) {
        return std::unexpected(r.error());
      }
    }
    std::int64_t flight = 0;
    if (!ids.empty()) {
      Params p;
      p.add(m_campaign).add(m_node).add(now).add_array(ids);
      if (rerun) {
        // The first try's commit may have landed before the server went
        // away: the same batch is then one flight, not two.
        Params q;
        q.add(m_campaign).add(m_node).add_array(ids);
        auto same = m_c->query("SELECT id FROM flights WHERE campaign = $1 AND node = $2 AND recipients = $3::bigint[]",
                               q, "recording messages in flight");
        if (!same) return std::unexpected(same.error());
        if (!same->empty()) {
          flight = same->i64(0, 0);
          if (auto c = txn.commit(); !c) return std::unexpected(c.error());
          return flight;
        }
      }
      // One row for the batch, written only while this node (listed: its
      // row is held above) holds every member.
      auto r = m_c->query("WITH mine AS (SELECT COUNT(*) AS n FROM recipients r WHERE r.id = ANY($4::bigint[]) "
                          "AND r.campaign || '' = $1 AND r.state IN (0, 3) "
                          "AND (SELECT l.node FROM leases l WHERE l.id = r.id) = $2), "
                          "f AS (INSERT INTO flights (id, campaign, node, at, recipients) "
                          "SELECT nextval('flight_seq'), $1, $2, $3, $4::bigint[] FROM mine "
                          "WHERE mine.n = cardinality($4::bigint[]) RETURNING id) "
                          "SELECT 1, (SELECT n FROM mine), (SELECT id FROM f)",
                          p, "recording messages in flight");
      if (!r) return std::unexpected(r.error());
      if (r->is_null(0, 2)) {
        return fail(fmt::format("state store {}: this node lost its lease on {} of {} recipients (another node "
                                "took them over); nothing of them was sent — run send again",
                                m_c->described(), static_cast<std::int64_t>(ids.size()) - r->i64(0, 1), ids.size()),
                    ExitCode::k_runtime);
      }
      flight = r->i64(0, 2);
    }
    if (auto c = txn.commit(); !c) return std::unexpected(c.error());
    return flight;
  }

  Result<OutcomeLog*> outcome_log() override {
    if (!m_log_open) {
      if (auto r = m_log.open(); !r) return std::unexpected(r.error());
      m_log_open = true;
    }
    return &m_log;
  }

  Result<StateCounts> counts() override {
    Params p;
    p.add(m_campaign);
    auto r = m_c->query("SELECT lane, state, COUNT(*), SUM(duplicate_risk), COUNT(*) FILTER (WHERE duplicate_risk > 0) "
                        "FROM recipients WHERE campaign = $1 GROUP BY lane, state ORDER BY lane, state",
                        p, "counting recipients");
    if (!r) return std::unexpected(r.error());
    StateCounts c;
    for (int i = 0; i < r->size(); ++i) {
      const auto st = r->i64(i, 1);
      if (st >= 0 && st < k_state_count) c.by_state[static_cast<std::size_t>(st)] += r->i64(i, 2);
      c.total += r->i64(i, 2);
      c.possible_duplicates += r->i64(i, 3);
      c.possible_duplicate_recipients += r->i64(i, 4);
      c.by_lane.emplace_back(std::string(r->text(i, 0)), static_cast<RecipientState>(st), r->i64(i, 2));
    }
    auto flying = in_flight();
    if (!flying) return std::unexpected(flying.error());
    for (const auto& [lane, st, n] : *flying) {
      c.by_state[static_cast<std::size_t>(st)] -= n;
      c.by_state[static_cast<std::size_t>(RecipientState::k_in_flight)] += n;
    }
    move_in_flight(c.by_lane, *flying);
    return c;
  }

  Result<std::vector<std::tuple<std::string, RecipientState, std::int64_t>>> counts_by_lane() override {
    Params p;
    p.add(m_campaign);
    auto r = m_c->query("SELECT lane, state, COUNT(*) FROM recipients WHERE campaign = $1 GROUP BY lane, state "
                        "ORDER BY lane, state",
                        p, "counting recipients by lane");
    if (!r) return std::unexpected(r.error());
    std::vector<std::tuple<std::string, RecipientState, std::int64_t>> out;
    for (int i = 0; i < r->size(); ++i) {
      out.emplace_back(std::string(r->text(i, 0)), static_cast<RecipientState>(r->i64(i, 1)), r->i64(i, 2));
    }
    auto flying = in_flight();
    if (!flying) return std::unexpected(flying.error());
    move_in_flight(out, *flying);
    return out;
  }

  Result<std::vector<RecentError>> recent_errors(std::size_t limit) override {
    Params p;
    p.add(m_campaign).add(static_cast<std::int64_t>(limit));
    auto r = m_c->query("SELECT line, state, COALESCE(last_reply, ''), COALESCE(updated_at, 0) FROM recipients "
                        "WHERE campaign = $1 AND (state IN (3, 4, 6) OR (state = 0 AND next_attempt_at > 0)) "
                        "ORDER BY updated_at DESC NULLS LAST, id DESC LIMIT $2",
                        p, "reading recent errors");
    if (!r) return std::unexpected(r.error());
    std::vector<RecentError> out;
    for (int i = 0; i < r->size(); ++i) {
      out.push_back({r->i64(i, 0), state_name(static_cast<RecipientState>(r->i64(i, 1))), std::string(r->text(i, 2)),
                     r->i64(i, 3)});
    }
    return out;
  }

  Result<std::optional<RecipientRecord>> find_recipient(std::string_view key) override {
    Params p;
    p.add(m_campaign).add(key);
    auto r = m_c->query("SELECT line, email, lane, state, attempts, COALESCE(last_reply, ''), COALESCE(updated_at, 0), "
                        "duplicate_risk FROM recipients WHERE campaign = $1 AND key = $2",
                        p, "looking up a recipient");
    if (!r) return std::unexpected(r.error());
    if (r->empty()) return std::optional<RecipientRecord>();
    return std::optional<RecipientRecord>(RecipientRecord{r->i64(0, 0), std::string(r->text(0, 1)),
                                                          std::string(r->text(0, 2)),
                                                          static_cast<RecipientState>(r->i64(0, 3)),
                                                          static_cast<int>(r->i64(0, 4)), std::string(r->text(0, 5)),
                                                          r->i64(0, 6), r->i64(0, 7)});
  }

  Result<std::vector<std::pair<std::int64_t, std::string>>> rejected_rows(std::size_t limit) override {
    Params p;
    p.add(m_campaign).add(static_cast<std::int64_t>(limit));
    auto r = m_c->query("SELECT line, reason FROM rejected_rows WHERE campaign = $1 ORDER BY line LIMIT $2", p,
                        "reading rejected rows");
    if (!r) return std::unexpected(r.error());
    std::vector<std::pair<std::int64_t, std::string>> out;
    for (int i = 0; i < r->size(); ++i) out.emplace_back(r->i64(i, 0), std::string(r->text(i, 1)));
    return out;
  }

  Result<void> for_each_address(const std::function<void(std::string_view)>& fn) override {
    Params p;
    p.add(m_campaign);
    return m_c->for_each_row("SELECT email FROM recipients WHERE campaign = $1", p, "reading the audience",
                             [&](const Rows& row) { fn(row.text(0, 0)); });
  }

  // GCRA over one row per lane: `want` sends spaced 1/rate apart from the
  // row's time (or now), granted while they fall within k_rate_tolerance of
  // now; the row moves past those granted. Every node shares the row, so
  // the lane's rate holds for the cluster (each node's own shaper spaces
  // the sends it was granted). A node whose shaper slowed the lane
  // (throttling replies) writes its rate in the row; until k_slow_hold
  // passes without such a report, every node's sends are spaced by it.
  Result<std::int64_t> reserve_sends(std::string_view lane, double rate, std::int64_t want,
                                     double slowed_to) override {
    if (rate <= 0 || want <= 0) return want;
    if (!m_rate_rows.contains(std::string(lane))) {
      Params p;
      p.add(lane);
      if (auto r = m_c->query("INSERT INTO lane_rates (lane, tat) VALUES ($1, 0) ON CONFLICT DO NOTHING", p,
                              "pacing the lane");
          !r) {
        return std::unexpected(r.error());
      }
      m_rate_rows.emplace(lane);
    }
    Params p;
    p.add(lane).add(fmt::format("{}", rate)).add(want).add(fmt::format("{}", k_rate_tolerance))
        .add(fmt::format("{}", slowed_to > 0 ? std::min(slowed_to, rate) : 0.0))
        .add(fmt::format("{}", k_slow_hold_seconds));
    auto r = m_c->query(
        "WITH s AS (SELECT lane, tat, slow_rate, slow_until, extract(epoch FROM clock_timestamp())::float8 AS now "
        "FROM lane_rates WHERE lane = $1 FOR UPDATE), "
        "e AS (SELECT *, CASE WHEN $5::float8 > 0 THEN $5::float8 "
        "WHEN slow_until > now THEN LEAST($2::float8, slow_rate) ELSE $2::float8 END AS rate FROM s), "
        "g AS (SELECT lane, now, rate, GREATEST(tat, now) AS t, LEAST($3::bigint, GREATEST(0, floor((now + $4::float8 - "
        "GREATEST(tat, now)) * rate)))::bigint AS n FROM e) "
        "UPDATE lane_rates r SET tat = g.t + g.n / g.rate, "
        "slow_rate = CASE WHEN $5::float8 > 0 THEN $5::float8 ELSE r.slow_rate END, "
        "slow_until = CASE WHEN $5::float8 > 0 THEN g.now + $6::float8 ELSE r.slow_until END "
        "FROM g WHERE r.lane = g.lane RETURNING g.n",
        p, "pacing the lane");
    if (!r) return std::unexpected(r.error());
    return r->empty() ? 0 : r->i64(0, 0);
  }
  [[nodiscard]] bool paces_cluster() const override { return true; }

  // Connection slots are session advisory locks (hashtext of
  // "blindcast-connections:<lane>", slot number): a node holds a slot per
  // message of the lane it may have on connections, and the server frees
  // them when its session ends (the node killed or cut off). A node with
  // work of the lane also holds a shared lock ("blindcast-wanting:<lane>",
  // 0); counting those in pg_locks gives the nodes that want the lane, and
  // each takes free slots up to its share of the cap (rounded up). One
  // above its share (a node that came first and took them all) keeps the
  // slots its messages under way use and gives back the others; the engine
  // starts no more than the share meanwhile, so the slots come free as its
  // messages end. First come with no share would let one node hold the
  // lane's every slot for as long as it has work.
  Result<int> share_connections(std::string_view lane, int cap, bool wanted, int in_use) override {
    if (cap <= 0) return cap;
    if (m_c->lost_count() != m_slots_lost) {  // the session that held the locks is gone, and they with it
      m_slots_lost = m_c->lost_count();
      m_slots.clear();
    }
    const auto lost_before = m_c->lost_count();
    Slots& mine = m_slots[std::string(lane)];
    const std::string slots_key = fmt::format("blindcast-connections:{}", lane);
    const std::string wanting_key = fmt::format("blindcast-wanting:{}", lane);
    if (wanted != mine.wanting) {
      Params p;
      p.add(wanting_key);
      if (auto r = m_c->query(wanted ? "SELECT pg_advisory_lock_shared(hashtext($1), 0)"
                                     : "SELECT pg_advisory_unlock_shared(hashtext($1), 0)",
                              p, "sharing the lane's connections");
          !r) {
        return std::unexpected(r.error());
      }
      mine.wanting = wanted;
    }
    std::size_t share = 0;
    if (wanted) {
      Params p;
      p.add(wanting_key);
      auto n = m_c->query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                          "mode = 'ShareLock' AND database = (SELECT oid FROM pg_database WHERE datname = "
                          "current_database()) AND classid = hashtext($1)::oid AND objid = 0 AND objsubid = 2",
                          p, "sharing the lane's connections");
      if (!n) return std::unexpected(n.error());
      const auto nodes = std::max<std::int64_t>(1, n->empty() ? 1 : n->i64(0, 0));
      share = static_cast<std::size_t>((cap + nodes - 1) / nodes);
    }
    // Slots of messages under way stay held: given back, another node could
    // start more than the cap allows until those end.
    const auto keep = std::max(share, std::min(mine.held.size(), static_cast<std::size_t>(std::max(in_use, 0))));
    if (mine.held.size() > keep) {
      const std::vector<std::int64_t> extra(mine.held.begin() + static_cast<long>(keep), mine.held.end());
      Params p;
      p.add(slots_key).add_array(extra);
      if (auto r = m_c->query("SELECT pg_advisory_unlock(hashtext($1), s::int) FROM unnest($2::bigint[]) AS u(s)", p,
                              "sharing the lane's connections");
          !r) {
        return std::unexpected(r.error());
      }
      mine.held.resize(keep);
    } else if (mine.held.size() < share) {
      Params p;
      p.add(slots_key).add(static_cast<std::int64_t>(cap)).add_array(mine.held)
          .add(static_cast<std::int64_t>(share - mine.held.size()));
      // Slot by slot up to the limit: a slot is locked only when it is taken.
      // (CASE, not AND: the planner may evaluate AND's sides in any order,
      // and a slot held already would be locked a second time.)
      auto r = m_c->query("SELECT s FROM generate_series(0, $2::int - 1) AS g(s) WHERE CASE WHEN s = ANY($3::bigint[]) "
                          "THEN false ELSE pg_try_advisory_lock(hashtext($1), s) END LIMIT $4",
                          p, "sharing the lane's connections");
      if (!r) return std::unexpected(r.error());
      for (int i = 0; i < r->size(); ++i) mine.held.push_back(r->i64(i, 0));
    }
    if (m_c->lost_count() != lost_before) {
      // A statement above ran again on a new session: what is recorded
      // mixes the two. Start afresh with nothing held (the next call asks
      // again); meanwhile this lane starts no message here.
      m_slots.clear();
      m_slots_lost = m_c->lost_count();
      if (auto r = m_c->query("SELECT pg_advisory_unlock_all()", "sharing the lane's connections"); !r) {
        return std::unexpected(r.error());
      }
      return 0;
    }
    return static_cast<int>(std::min(mine.held.size(), share));
  }

  Result<void> keep_alive() override {
    {
      std::lock_guard lock(joined_mutex());
      if (!joined().contains(join_key())) return {};
    }
    m_joined = true;
    return renew_if_due(false);
  }

  // ---- Suppressions
  Result<std::int64_t> add_suppressions(std::span<const std::string> addresses, std::string_view reason) override {
    return m_org->suppress_many(addresses, reason, "all", "");
  }

  Result<bool> remove_suppression(std::string_view address) override {
    Txn txn(*m_c);
    if (!txn.began()) return std::unexpected(txn.began().error());
    auto removed = m_org->unsuppress(address);
    if (!removed) return std::unexpected(removed.error());
    Params p;
    p.add(m_campaign).add(address);
    if (auto r = m_c->query("UPDATE recipients SET state = 0, next_attempt_at = 0 WHERE campaign = $1 AND state = 5 "
                            "AND key = $2",
                            p, "changing the suppression list");
        !r) {
      return std::unexpected(r.error());
    }
    if (auto c = txn.commit(); !c) return std::unexpected(c.error());
    return *removed;
  }

  Result<std::vector<std::tuple<std::string, std::string, std::int64_t>>> suppressions(std::size_t limit) override {
    auto list = m_org->suppression_list(limit);
    if (!list) return std::unexpected(list.error());
    std::vector<std::tuple<std::string, std::string, std::int64_t>> out;
    for (auto& e : *list) out.emplace_back(std::move(e.address), std::move(e.reason), e.at);
    return out;
  }

  Result<std::int64_t> apply_suppressions() override {
    Params p;
    p.add(m_campaign);
    auto r = m_c->query("UPDATE recipients SET state = 5, last_reply = 'on the suppression list' "
                        "WHERE campaign = $1 AND state IN (0, 3) AND key IN (SELECT address COLLATE \"C\" FROM org_suppressions)",
                        p, "applying the suppression list");
    if (!r) return std::unexpected(r.error());
    return r->affected();
  }

  OrgList& org_list() override { return *m_org; }

  // ---- Ownership: any number of nodes send at once; each is listed.
  Result<std::variant<std::unique_ptr<OwnerLease>, Owner>> acquire_owner() override {
    // The node is listed by its first claim (join()), not now: an import
    // may come first and take minutes, with nobody renewing the lease.
    return std::variant<std::unique_ptr<OwnerLease>, Owner>(std::make_unique<PgLease>(m_c, m_campaign, m_node));
  }

  Result<std::optional<Owner>> current_owner() override {
    Params p;
    p.add(m_campaign);
    auto r = m_c->query("SELECT host, pid, since FROM senders WHERE campaign = $1 AND lease_expires_at > "
                        "clock_timestamp() ORDER BY since LIMIT 1",
                        p, "reading the campaign's senders");
    if (!r) return std::unexpected(r.error());
    if (r->empty()) return std::optional<Owner>();
    return std::optional<Owner>(Owner{std::string(r->text(0, 0)), r->i64(0, 1), r->i64(0, 2)});
  }

 private:
  Result<std::vector<StoredRecipient>> read_rows(const Rows& r) {
    std::vector<StoredRecipient> out;
    out.reserve(static_cast<std::size_t>(r.size()));
    for (int i = 0; i < r.size(); ++i) {
      StoredRecipient s;
      s.id = r.i64(i, 0);
      s.line = r.i64(i, 1);
      s.email = r.text(i, 2);
      s.locale = r.text(i, 3);
      auto fields = unpack_fields(r.bytes(i, 4));
      if (!fields) return fail("state store: a stored row is corrupt", ExitCode::k_runtime);
      s.fields = std::move(*fields);
      s.attempts = static_cast<int>(r.i64(i, 5));
      s.first_attempt_at = r.i64(i, 6);
      s.lane = r.text(i, 7);
      out.push_back(std::move(s));
    }
    return out;
  }

  using LaneCounts = std::vector<std::tuple<std::string, RecipientState, std::int64_t>>;

  // Members of open flights without an outcome yet, by (lane, state as
  // stored): their rows still say pending (or deferred), but they may have
  // arrived.
  Result<LaneCounts> in_flight() {
    Params p;
    p.add(m_campaign);
    auto r = m_c->query("SELECT r.lane, r.state, COUNT(*) FROM flights f CROSS JOIN LATERAL unnest(f.recipients) "
                        "AS u(id) JOIN recipients r ON r.id = u.id WHERE f.campaign = $1 AND r.campaign || '' = $1 "
                        "AND r.state IN (0, 3) AND r.flight < f.id GROUP BY r.lane, r.state",
                        p, "counting messages in flight");
    if (!r) return std::unexpected(r.error());
    LaneCounts out;
    for (int i = 0; i < r->size(); ++i) {
      out.emplace_back(std::string(r->text(i, 0)), static_cast<RecipientState>(r->i64(i, 1)), r->i64(i, 2));
    }
    return out;
  }

  // Moves the counts of `flying` from their stored state to in flight.
  static void move_in_flight(LaneCounts& by_lane, const LaneCounts& flying) {
    const auto add = [&](const std::string& lane, RecipientState st, std::int64_t n) {
      for (auto& [l, s, count] : by_lane) {
        if (l == lane && s == st) {
          count += n;
          return;
        }
      }
      by_lane.emplace_back(lane, st, n);
    };
    for (const auto& [lane, st, n] : flying) {
      add(lane, st, -n);
      add(lane, RecipientState::k_in_flight, n);
    }
    std::erase_if(by_lane, [](const auto& e) { return std::get<2>(e) == 0; });
    std::sort(by_lane.begin(), by_lane.end());
  }

  // Records `outcomes` in one statement, on rows this node holds; an
  // outcome applies only to a row whose last recorded flight is older.
  Result<void> apply(std::span<const Outcome> outcomes, std::int64_t now) {
    std::vector<std::int64_t> ids, states, nexts, maybes, attempted, flights;
    std::vector<std::string> replies;
    std::vector<std::int64_t> suppress_ids;
    std::vector<std::string> suppress_reasons;
    for (const auto& o : outcomes) {
      ids.push_back(o.id);
      states.push_back(static_cast<std::int64_t>(o.state));
      replies.push_back(o.reply);
      nexts.push_back(o.next_attempt_at);
      maybes.push_back(o.maybe_delivered ? 1 : 0);
      attempted.push_back(o.attempted ? 1 : 0);
      flights.push_back(o.flight);
      if (o.suppress) {
        suppress_ids.push_back(o.id);
        suppress_reasons.push_back("bounced: " + o.reply);
      }
    }
    Params p;
    p.add(m_campaign).add(now).add(m_node).add_array(ids).add_array(states).add_array(replies).add_array(nexts)
        .add_array(maybes).add_array(attempted).add_array(flights);
    // The rows updated end their claims (the count is of those).
    auto r = m_c->query(
        "WITH done AS (UPDATE recipients r SET state = u.st, last_reply = u.reply, next_attempt_at = u.nx, "
        "updated_at = $2, "
        "sent_at = CASE WHEN u.st = 2 THEN $2 ELSE r.sent_at END, duplicate_risk = r.duplicate_risk + u.maybe, "
        "attempts = r.attempts + u.att, "
        "first_attempt_at = CASE WHEN u.att = 1 THEN COALESCE(r.first_attempt_at, $2) ELSE r.first_attempt_at END, "
        "flight = CASE WHEN u.fl <> 0 THEN u.fl ELSE r.flight END "
        "FROM unnest($4::bigint[], $5::int[], $6::text[], $7::bigint[], $8::int[], $9::int[], $10::bigint[]) "
        "AS u(id, st, reply, nx, maybe, att, fl) "
        "WHERE r.id = u.id AND r.campaign || '' = $1 AND (u.fl = 0 OR r.flight < u.fl) "
        "AND (SELECT l.node FROM leases l WHERE l.id = r.id) = $3 RETURNING r.id) "
        "DELETE FROM leases l USING done WHERE l.id = done.id AND l.node = $3",
        p, "recording delivery results");
    if (!r) return std::unexpected(r.error());
    if (r->affected() < static_cast<std::int64_t>(outcomes.size())) {
      // Not applied: recorded before (the same flight, or a later one), or
      // the row is no longer this node's.
      Params q;
      q.add(m_campaign).add(m_node).add_array(ids).add_array(flights);
      auto lost = m_c->query("SELECT COUNT(*) FROM unnest($3::bigint[], $4::bigint[]) AS u(id, fl) JOIN recipients r "
                             "ON r.id = u.id AND r.campaign || '' = $1 WHERE (SELECT l.node FROM leases l "
                             "WHERE l.id = r.id) IS DISTINCT FROM $2 AND (u.fl = 0 OR r.flight < u.fl)",
                             q, "recording delivery results");
      if (!lost) return std::unexpected(lost.error());
      if (lost->i64(0, 0) > 0) {
      // Another node took these rows over (this one stalled past its
      // lease): it counted them as possible duplicates and sends them.
      util::log_warn(fmt::format("{} delivery results were not recorded: this node no longer held their lease "
                                 "(another node took them over and counts them as possible duplicates)",
                                 lost->i64(0, 0)));
      }
    }
    if (!suppress_ids.empty()) {
      Params s;
      s.add(m_campaign).add(now).add_array(suppress_ids).add_array(suppress_reasons);
      auto w = m_c->query("INSERT INTO org_suppressions (address, category, reason, scope, at) "
                          "SELECT r.key, 'all', u.reason, $1::text, $2::bigint FROM unnest($3::bigint[], $4::text[]) AS u(id, reason) "
                          "JOIN recipients r ON r.id = u.id AND r.campaign || '' = $1 ON CONFLICT DO NOTHING",
                          s, "adding to the suppression list");
      if (!w) return std::unexpected(w.error());
    }
    return {};
  }

  // Renews this node's leases every k_lease_renew.
  // `strict`: a node found gone has lost its lease (an error); the halt
  // watcher's renewal leaves that to the threads doing the work.
  Result<void> renew_if_due(bool strict = true) {
    const auto now = SteadyClock::now();
    if (now - m_last_renew < k_lease_renew) return {};
    m_last_renew = now;
    if (!m_joined) return {};
    // One row: every claim of this node holds while it does. A row past its
    // time that nobody recovered yet (the server restarted, or this node
    // stalled) is still this node's: recovery removes it, under its lock,
    // before anything of the node is freed.
    Params p;
    p.add(m_campaign).add(m_node).add(k_lease_seconds);
    auto r = m_c->query("UPDATE senders SET lease_expires_at = clock_timestamp() + make_interval(secs => $3) "
                        "WHERE campaign = $1 AND node = $2",
                        p, "renewing this node's lease");
    if (!r) return std::unexpected(r.error());
    if (r->affected() == 0 && strict) {
      auto lost = lost_lease();
      return std::unexpected(lost.error());
    }
    return {};
  }

  // This node stalled past its lease and another node took its work over.
  Result<std::int64_t> lost_lease() {
    return fail(fmt::format("state store {}: this node lost its lease (it did not renew it for {} s, and another "
                            "node took its recipients over and counts its messages in flight as possible "
                            "duplicates); nothing more is sent from here — run send again to join",
                            m_c->described(), k_lease_seconds),
                ExitCode::k_runtime);
  }

  // While sending: renews, and about once a second takes over what nodes
  // that stopped renewing left in flight.
  Result<void> maintain() {
    if (auto r = renew_if_due(); !r) return r;
    const auto now = SteadyClock::now();
    if (now - m_last_recover < std::chrono::seconds(1)) return {};
    m_last_recover = now;
    // Back from an outage (a restart, a failover to a standby whose
    // server is not new): the others renew in their own time; nobody is
    // taken for dead in this node's first k_lease after it reconnected.
    if (m_c->lost_count() != m_seen_lost) {
      m_seen_lost = m_c->lost_count();
      m_reconnected = now;
    }
    if (m_seen_lost > 0 && now - m_reconnected < k_lease) return {};
    auto n = recover_expired(false);
    if (!n) return std::unexpected(n.error());
    return {};
  }

  // Nodes whose lease ran out (killed, cut off, or stopped on an error with
  // batches open): the members of their open flights without an outcome
  // are due again and counted as possible duplicates (their node may have
  // delivered them), their flights are closed, and they leave the senders,
  // which frees every row they had claimed. One transaction, holding the
  // dead node's row in senders: no other node claims its rows before they
  // are counted. Returns how many were counted.
  Result<std::int64_t> recover_expired(bool at_start) {
    return rerun_if_lost([&] { return recover_expired_once(at_start); });
  }

  // Runs `body` (a transaction) again while it failed because the
  // connection was lost and the server is back within the patience.
  template <class F>
  auto rerun_if_lost(F&& body) -> decltype(body()) {
    while (true) {
      const auto before = m_c->lost_count();
      auto r = body();
      if (r || m_c->lost_count() == before || pg::outage_patience().count() == 0) return r;
      if (auto w = m_c->wait_until_open(); !w) return r;
    }
  }

  Result<std::int64_t> recover_expired_once(bool at_start) {
    Txn txn(*m_c);
    if (!txn.began()) return std::unexpected(txn.began().error());
    const auto now = now_seconds();
    Params p;
    p.add(m_campaign);
    // SKIP LOCKED: a node another node is recovering at this instant is its to count.
    // Nobody is taken for dead in the first k_lease after the server
    // started: every node waited out the restart and renews now.
    p.add(k_lease_seconds);
    auto dead = m_c->query("SELECT node FROM senders WHERE campaign = $1 AND lease_expires_at < clock_timestamp() "
                           "AND pg_postmaster_start_time() < clock_timestamp() - make_interval(secs => $2) "
                           "FOR UPDATE SKIP LOCKED",
                           p, "recovering in-flight recipients");
    if (!dead) return std::unexpected(dead.error());
    std::vector<std::string> nodes;
    for (int i = 0; i < dead->size(); ++i) nodes.emplace_back(dead->text(i, 0));
    // Flights of nodes no longer listed at all (a database an earlier
    // version wrote, or a row removed by hand) are counted too.
    Params q;
    q.add(m_campaign).add_array(nodes).add(now);
    auto counted = m_c->query(
        "WITH f AS (SELECT id, node, recipients FROM flights WHERE campaign = $1 AND (node = ANY($2::text[]) OR "
        "NOT EXISTS (SELECT 1 FROM senders s WHERE s.campaign = $1 AND s.node = flights.node)) FOR UPDATE SKIP LOCKED), "
        "m AS (SELECT f.id AS fl, f.node, u.id FROM f CROSS JOIN LATERAL unnest(f.recipients) AS u(id)), "
        "gone AS (DELETE FROM flights d USING f WHERE d.id = f.id) "
        "UPDATE recipients r SET state = 0, duplicate_risk = r.duplicate_risk + 1, attempts = r.attempts + 1, "
        "first_attempt_at = COALESCE(r.first_attempt_at, $3), updated_at = $3 "
        "FROM m WHERE r.id = m.id AND r.campaign || '' = $1 AND r.state IN (0, 3) AND r.flight < m.fl "
        "AND COALESCE((SELECT l.node FROM leases l WHERE l.id = r.id), m.node) = m.node RETURNING m.node",
        q, "recovering in-flight recipients");
    if (!counted) return std::unexpected(counted.error());
    std::int64_t n = counted->size();
    std::set<std::string> from;
    for (int i = 0; i < counted->size(); ++i) from.emplace(counted->text(i, 0));
    // Rows an earlier version put in flight (state 1) whose lease ran out.
    Params l;
    l.add(m_campaign).add(now);
    auto legacy = m_c->query("WITH old AS (SELECT id, leased_by_before_8 AS node FROM recipients WHERE campaign = $1 "
                             "AND state = 1 AND (lease_expires_at IS NULL OR lease_expires_at < clock_timestamp()) "
                             "FOR UPDATE SKIP LOCKED) "
                             "UPDATE recipients r SET state = 0, duplicate_risk = r.duplicate_risk + 1, "
                             "attempts = r.attempts + 1, first_attempt_at = COALESCE(r.first_attempt_at, $2), "
                             "updated_at = $2, leased_by_before_8 = NULL, lease_expires_at = NULL FROM old "
                             "WHERE r.id = old.id RETURNING old.node",
                             l, "recovering in-flight recipients");
    if (!legacy) return std::unexpected(legacy.error());
    n += legacy->size();
    for (int i = 0; i < legacy->size(); ++i) {
      if (!legacy->is_null(i, 0)) from.emplace(legacy->text(i, 0));
    }
    if (!nodes.empty()) {
      Params d;
      d.add(m_campaign).add_array(nodes);
      if (auto r = m_c->query("DELETE FROM senders WHERE campaign = $1 AND node = ANY($2::text[])", d,
                              "recovering in-flight recipients");
          !r) {
        return std::unexpected(r.error());
      }
    }
    if (!nodes.empty()) {
      // Their claims, free now, are deleted (each node deletes its own as
      // it leaves). By name only: a condition on senders would be checked
      // again on a lease another node took over while this waited for it,
      // with this statement's view of senders, and delete that node's claim.
      Params d;
      d.add(m_campaign).add_array(nodes);
      if (auto r = m_c->query("DELETE FROM leases WHERE campaign = $1 AND node = ANY($2::text[])", d,
                              "recovering in-flight recipients");
          !r) {
        return std::unexpected(r.error());
      }
    }
    if (n > 0) {
      const auto what = fmt::format("{} recipients in flight on {} whose lease expired are due again and counted as "
                                    "possible duplicates",
                                    n, from.empty() ? std::string("an earlier run") : fmt::format("{}", fmt::join(from, ", ")));
      Params a;
      a.add(m_campaign).add(now).add("recover").add(m_node).add(what);
      if (auto e = m_c->query("INSERT INTO audit (campaign, at, kind, actor, detail) VALUES ($1, $2, $3, $4, $5)", a,
                              "writing the audit log");
          !e) {
        return std::unexpected(e.error());
      }
      if (!at_start) util::log_warn(what);
    }
    if (auto c = txn.commit(); !c) return std::unexpected(c.error());
    return n;
  }

  // Lists this node among the campaign's senders (once per store: a node
  // whose row was removed since, by another node recovering its work, has
  // lost its lease and must not list itself again).
  Result<void> join() {
    if (m_joined) return {};
    // Once per process and campaign: the other stores of this node (the
    // engine's reader and writer, the halt watcher) share the row; one
    // that was removed since (recovered by another node) stays removed.
    {
      std::lock_guard lock(joined_mutex());
      if (joined().contains(join_key())) {
        m_joined = true;
        return {};
      }
    }
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    Params p;
    p.add(m_campaign).add(m_node).add(host[0] != 0 ? host : "localhost").add(std::int64_t{::getpid()})
        .add(now_seconds()).add(k_lease_seconds);
    auto r = m_c->query("INSERT INTO senders (campaign, node, host, pid, since, lease_expires_at) "
                        "VALUES ($1, $2, $3, $4, $5, clock_timestamp() + make_interval(secs => $6)) "
                        "ON CONFLICT (campaign, node) DO UPDATE SET lease_expires_at = excluded.lease_expires_at",
                        p, "joining the campaign's senders");
    if (!r) return std::unexpected(r.error());
    {
      std::lock_guard lock(joined_mutex());
      joined().insert(join_key());
    }
    m_joined = true;
    m_last_renew = SteadyClock::now();
    return {};
  }

  std::string join_key() const { return m_c->described() + "\n" + m_campaign + "\n" + m_node; }
  static std::mutex& joined_mutex() {
    static std::mutex m;
    return m;
  }
  static std::set<std::string>& joined() {
    static std::set<std::string> s;
    return s;
  }

  std::shared_ptr<Connection> m_c;
  std::string m_campaign;
  std::string m_node;  // this process (m_node), or what a test names
  std::unique_ptr<OrgList> m_org;
  std::set<std::string, std::less<>> m_rate_rows;  // lanes whose lane_rates row exists
  OutcomeLog m_log;  // keeps nothing: the database has every outcome with the next commit
  bool m_log_open = false;
  bool m_joined = false;  // listed in senders by this store (join())
  std::uint64_t m_seen_lost = 0;  // the connection's lost_count() last seen by maintain()
  struct Slots {
    bool wanting = false;             // holds the lane's shared "wanting" lock
    std::vector<std::int64_t> held;   // connection slots held
  };
  std::map<std::string, Slots> m_slots;  // by lane (share_connections)
  std::uint64_t m_slots_lost = 0;        // lost_count() when m_slots was last true
  SteadyClock::time_point m_reconnected{};
  SteadyClock::time_point m_last_renew = SteadyClock::now();
  SteadyClock::time_point m_last_recover{};
};

}  // namespace

bool is_postgres(std::string_view state) { return pg::is_uri(state); }

void wait_out_outages() { pg::set_outage_patience(k_outage_patience); }
void fail_fast_on_outages() { pg::set_thread_outage_patience(std::chrono::seconds(0)); }

std::string postgres_locator(std::string_view uri, std::string_view campaign) {
  return pg::make_locator(uri, campaign);
}

std::string describe_state(std::string_view state) {
  if (!pg::is_uri(state)) return std::string(state);
  const auto loc = pg::parse_locator(state);
  return loc.campaign.empty() ? pg::describe(loc.uri) : fmt::format("{} (campaign {})", pg::describe(loc.uri), loc.campaign);
}

Result<std::unique_ptr<OrgList>> open_postgres_org_list(const std::string& uri) {
  auto c = pg::connect_migrated(pg::parse_locator(uri).uri);
  if (!c) return std::unexpected(c.error());
  return pg::make_owning_org_list(std::move(*c));
}

Result<std::unique_ptr<StateStore>> open_postgres_store(const std::string& locator, const std::string& node) {
  const auto loc = pg::parse_locator(locator);
  if (loc.campaign.empty()) {
    return fail(fmt::format("{}: no campaign id; the campaign's campaign.toml must set id = \"...\"",
                            pg::describe(loc.uri)));
  }
  auto c = pg::connect_migrated(loc.uri);
  if (!c) return std::unexpected(c.error());
  return std::unique_ptr<StateStore>(std::make_unique<PgStore>(std::shared_ptr<Connection>(std::move(*c)), loc.campaign,
                                                                   node.empty() ? pg::node_id() : node));
}

Result<std::unique_ptr<StateStore>> open_state_store(const std::string& state, const std::string& org_path) {
  if (pg::is_uri(state)) return open_postgres_store(state);
  return open_sqlite_store(state, org_path);
}

}  // namespace blindcast::store
