// The PostgreSQL store against a real server: the URI in
// BLINDCAST_TEST_PG_URI (ctest starts a private cluster and sets it, see
// tests/CMakeLists.txt). Tests that need no server always run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "store/pg_conn.hpp"
#include "store/pg_store.hpp"
#include "store/state_store.hpp"
#include "test_support.hpp"

namespace blindcast::store {
namespace {

// The server's URI, or the test is skipped (saying how to run it).
#define REQUIRE_SERVER()                                                                                          \
  const char* server_env = std::getenv("BLINDCAST_TEST_PG_URI");                                                  \
  if (server_env == nullptr || *server_env == '\0') {                                                             \
    GTEST_SKIP() << "no PostgreSQL server: set BLINDCAST_TEST_PG_URI (ctest runs these through "                   \
                    "tests/integration/pg_cluster.py, which starts one)";                                         \
  }                                                                                                               \
  const std::string uri = server_env

// A campaign id no other test uses (the database is shared by the run).
std::string fresh_campaign(const std::string& what) {
  std::random_device r;
  return fmt::format("{}-{:08x}", what, r());
}

ImportRow row(std::int64_t line, const std::string& email, const std::string& lane = "default") {
  const auto at = email.find('@');
  return {line, email, email, email.substr(at + 1), lane, "en", {"Person " + std::to_string(line)}};
}

// Ends `node`'s lease on `campaign` as if it had died (moved into the
// past), and waits out the server's first k_lease, in which nobody is
// taken for dead (after a restart every node renews first): a test's
// server may be that young.
void expire_lease(const std::string& uri, const std::string& campaign, const std::string& node) {
  auto c = pg::Connection::open(uri);
  ASSERT_TRUE(c.has_value());
  pg::Params p;
  p.add(campaign).add(node);
  ASSERT_TRUE((*c)->query("UPDATE senders SET lease_expires_at = now() - interval '1 second' "
                          "WHERE campaign = $1 AND node = $2", p, "expiring").has_value());
  pg::Params grace;
  grace.add(k_lease.count());
  ASSERT_TRUE((*c)->query("SELECT pg_sleep(GREATEST(0, extract(epoch FROM pg_postmaster_start_time() + "
                          "make_interval(secs => $1) - clock_timestamp()) + 0.1))", grace, "waiting").has_value());
}

// One number read with `sql` whose $1 is the campaign.
std::int64_t read_number(const std::string& uri, const std::string& campaign, const char* sql) {
  auto c = pg::Connection::open(uri);
  EXPECT_TRUE(c.has_value());
  if (!c) return -1;
  pg::Params p;
  p.add(campaign);
  auto r = (*c)->query(sql, p, "reading");
  EXPECT_TRUE(r.has_value());
  return r ? r->i64(0, 0) : -1;
}

void import(StateStore& s, const std::vector<std::string>& emails, const std::string& lane = "default") {
  auto imp = s.begin_import();
  ASSERT_TRUE(imp.has_value()) << imp.error().message;
  std::int64_t line = 2;
  for (const auto& e : emails) ASSERT_TRUE((*imp)->add(row(line++, e, lane)).has_value());
  auto done = (*imp)->commit();
  ASSERT_TRUE(done.has_value()) << done.error().message;
}


TEST(PgStore, ALocatorIsPrintedWithoutItsParameters) {
  EXPECT_EQ(describe_state(postgres_locator("postgresql://u@h/d?passfile=/etc/pgpass", "spring-sale")),
            "postgresql://u@h/d (campaign spring-sale)");
  EXPECT_EQ(describe_state("/var/lib/blindcast/state.db"), "/var/lib/blindcast/state.db");
  EXPECT_TRUE(is_postgres("postgres://u@h/d"));
}

TEST(PgStore, MigrationsAreRecordedAndAppliedOnce) {
  REQUIRE_SERVER();
  for (int i = 0; i < 2; ++i) {
    auto s = open_postgres_store(postgres_locator(uri, fresh_campaign("migrate")));
    ASSERT_TRUE(s.has_value()) << s.error().message;
  }
  auto c = pg::Connection::open(uri);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  auto v = (*c)->query("SELECT COUNT(*), MIN(version) FROM schema_migrations", "reading");
  ASSERT_TRUE(v.has_value());
  EXPECT_GE(v->i64(0, 0), 1);
  EXPECT_EQ(v->i64(0, 1), 1);
  // Claims are rows of `leases`; the column earlier versions claimed by is
  // gone under its name, so such a node still running stops instead of
  // claiming by it.
  auto column = (*c)->query("SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'recipients' "
                            "AND column_name = 'leased_by'", "reading");
  ASSERT_TRUE(column.has_value());
  EXPECT_EQ(column->i64(0, 0), 0);
}

TEST(PgStore, CampaignsShareTheDatabaseButNotTheirRecipients) {
  REQUIRE_SERVER();
  auto a = open_postgres_store(postgres_locator(uri, fresh_campaign("a")));
  auto b = open_postgres_store(postgres_locator(uri, fresh_campaign("b")));
  ASSERT_TRUE(a.has_value() && b.has_value());
  import(**a, {"ana.souza@example.com.br", "li.wei@example.com.cn", "m.mueller@example.de"});
  import(**b, {"ana.souza@example.com.br"});
  EXPECT_EQ((*a)->counts().value().total, 3);
  EXPECT_EQ((*b)->counts().value().total, 1);
  ASSERT_TRUE((*a)->set_meta("campaign_id", "a").has_value());
  EXPECT_FALSE((*b)->get_meta("campaign_id").value().has_value());
  // The organisation's list is the database's: what A suppresses, B does not send.
  const auto who = fmt::format("ana.souza+{}@example.com.br", fresh_campaign("x"));
  import(**b, {"ana.souza@example.com.br", who});
  ASSERT_EQ((*a)->add_suppressions(std::vector<std::string>{who}, "complaint").value(), 1);
  EXPECT_EQ((*b)->apply_suppressions().value(), 1);
  EXPECT_EQ((*b)->counts().value().of(RecipientState::k_suppressed), 1);
  ASSERT_TRUE((*b)->remove_suppression(who).value());
  EXPECT_EQ((*b)->counts().value().of(RecipientState::k_pending), 2);
}

TEST(PgStore, ANodeNeverClaimsWhatAnotherHoldsAndOutcomesNeedTheLease) {
  REQUIRE_SERVER();
  const auto id = fresh_campaign("claim");
  auto a = open_postgres_store(postgres_locator(uri, id), "node-a");
  auto b = open_postgres_store(postgres_locator(uri, id), "node-b");
  ASSERT_TRUE(a.has_value() && b.has_value());
  std::vector<std::string> emails;
  for (int i = 0; i < 10; ++i) emails.push_back(fmt::format("user{}@example.org", i));
  import(**a, emails);
  // (a row's version: xmin changes when the row is written)
  const char* versions = "SELECT SUM(xmin::text::bigint) FROM recipients WHERE campaign = $1";
  const auto imported = read_number(uri, id, versions);
  const auto now = std::time(nullptr);
  auto got_a = (*a)->next_for_lane("default", now, 4, 0, false);
  auto got_b = (*b)->next_for_lane("default", now, 100, 0, false);
  ASSERT_TRUE(got_a.has_value() && got_b.has_value());
  EXPECT_EQ(got_a->size(), 4u);
  EXPECT_EQ(got_b->size(), 6u);
  // A claim is a row in leases; the recipients' rows are not written.
  EXPECT_EQ(read_number(uri, id, "SELECT COUNT(*) FROM leases WHERE campaign = $1 AND node = 'node-a'"), 4);
  EXPECT_EQ(read_number(uri, id, "SELECT COUNT(*) FROM leases WHERE campaign = $1 AND node = 'node-b'"), 6);
  EXPECT_EQ(read_number(uri, id, versions), imported);
  for (const auto& r : *got_a) {
    for (const auto& o : *got_b) EXPECT_NE(r.id, o.id);
  }
  // B cannot put A's rows in flight, nor record their outcomes.
  const std::vector<std::int64_t> theirs{(*got_a)[0].id};
  auto stolen = (*b)->record_and_mark({}, {}, theirs, true);
  ASSERT_FALSE(stolen.has_value());
  EXPECT_NE(stolen.error().message.find("lost its lease"), std::string::npos);
  const std::vector<Outcome> wrong{{(*got_a)[0].id, RecipientState::k_sent, "250 ok", 0, false, true, 0, false}};
  ASSERT_TRUE((*b)->record_and_mark(wrong, {}, {}, true).has_value());
  EXPECT_EQ((*a)->counts().value().of(RecipientState::k_sent), 0);
  // A's own: in flight, then sent.
  std::vector<std::int64_t> ids;
  for (const auto& r : *got_a) ids.push_back(r.id);
  auto flight = (*a)->record_and_mark({}, {}, ids, true);
  ASSERT_TRUE(flight.has_value()) << flight.error().message;
  EXPECT_GT(*flight, 0);
  EXPECT_EQ((*a)->counts().value().of(RecipientState::k_in_flight), 4);
  std::vector<Outcome> sent;
  for (const auto i : ids) sent.push_back({i, RecipientState::k_sent, "250 ok", 0, false, true, *flight, false});
  ASSERT_TRUE((*a)->record_and_mark(sent, {}, {}, false).has_value());
  EXPECT_EQ((*b)->counts().value().of(RecipientState::k_sent), 4);
  // Their outcomes ended A's claims; B's stand.
  EXPECT_EQ(read_number(uri, id, "SELECT COUNT(*) FROM leases WHERE campaign = $1 AND node = 'node-a'"), 0);
  EXPECT_EQ(read_number(uri, id, "SELECT COUNT(*) FROM leases WHERE campaign = $1 AND node = 'node-b'"), 6);
  // Recorded twice (the same flight): nothing changes.
  ASSERT_TRUE((*a)->record_and_mark(sent, {}, {}, true).has_value());
  EXPECT_EQ((*b)->counts().value().total, 10);
}

TEST(PgStore, ADeadNodesInFlightRowsReturnAsPossibleDuplicatesAfterItsLease) {
  REQUIRE_SERVER();
  const auto id = fresh_campaign("lease");
  auto dead = open_postgres_store(postgres_locator(uri, id), "node-dead");
  auto alive = open_postgres_store(postgres_locator(uri, id), "node-alive");
  ASSERT_TRUE(dead.has_value() && alive.has_value());
  import(**dead, {"a@example.net", "b@example.net", "c@example.net", "d@example.net"});
  auto rows = (*dead)->next_for_lane("default", std::time(nullptr), 3, 0, false);
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 3u);
  const std::vector<std::int64_t> in_flight{(*rows)[0].id, (*rows)[1].id};
  ASSERT_TRUE((*dead)->record_and_mark({}, {}, in_flight, true).has_value());
  // While its lease runs, the live node leaves them alone and waits.
  EXPECT_EQ((*alive)->recover_in_flight().value(), 0);
  auto other = (*alive)->next_for_lane("default", std::time(nullptr), 10, 0, false);
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->size(), 1u);
  EXPECT_TRUE((*alive)->next_retry_at(false).value().has_value());
  // The node dies: its lease runs out.
  expire_lease(uri, id, "node-dead");
  EXPECT_EQ((*alive)->recover_in_flight().value(), 2);
  const auto counts = (*alive)->counts().value();
  EXPECT_EQ(counts.possible_duplicates, 2);
  EXPECT_EQ(counts.of(RecipientState::k_in_flight), 0);
  // Its claims are deleted with it (a dead node's claims hold nothing).
  EXPECT_EQ(read_number(uri, id, "SELECT COUNT(*) FROM leases WHERE campaign = $1 AND node = 'node-dead'"), 0);
  // Its claimed-but-unsent row and the recovered ones are claimable now.
  auto taken = (*alive)->next_for_lane("default", std::time(nullptr), 10, 0, false);
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->size(), 4u);  // 3 of the dead node's, and its own still in hand
  // The dead node, back from a long pause, cannot record over them.
  auto late = (*dead)->record_and_mark({}, {}, std::vector<std::int64_t>{(*rows)[2].id}, true);
  EXPECT_FALSE(late.has_value());
}

TEST(PgStore, WorkRecoveredBehindANodesCursorKeepsItFromEnding) {
  REQUIRE_SERVER();
  const auto id = fresh_campaign("behind");
  auto dead = open_postgres_store(postgres_locator(uri, id), "node-gone");
  auto alive = open_postgres_store(postgres_locator(uri, id), "node-here");
  ASSERT_TRUE(dead.has_value() && alive.has_value());
  import(**dead, {"ana.souza@example.com.br", "li.wei@xn--fiqs8s.example", "siobhan.o'brien@example.ie"});
  auto rows = (*dead)->next_for_lane("default", std::time(nullptr), 2, 0, false);
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 2u);
  ASSERT_TRUE((*dead)->record_and_mark({}, {}, std::vector<std::int64_t>{(*rows)[0].id}, true).has_value());
  // The live node sends the last row; its cursor is past the dead node's.
  auto last = (*alive)->next_for_lane("default", std::time(nullptr), 10, 0, false);
  ASSERT_TRUE(last.has_value());
  ASSERT_EQ(last->size(), 1u);
  const std::vector<Outcome> sent{{last->front().id, RecipientState::k_sent, "250 ok", 0, false, true, 0, false}};
  ASSERT_TRUE((*alive)->record_and_mark(sent, {}, {}, true).has_value());
  // The dead node's lease runs out.
  expire_lease(uri, id, "node-gone");
  // The live node recovers them (as it does about once a second), and
  // reading on from its cursor finds nothing...
  EXPECT_EQ((*alive)->recover_in_flight().value(), 1);
  auto after = (*alive)->next_for_lane("default", std::time(nullptr), 10, last->front().id, false);
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(after->empty());
  EXPECT_EQ((*alive)->counts().value().possible_duplicates, 1);
  // ...but it must not end: two rows are due now, nobody's.
  auto retry = (*alive)->next_retry_at(false);
  ASSERT_TRUE(retry.has_value());
  ASSERT_TRUE(retry->has_value());
  EXPECT_LE(**retry, std::time(nullptr));
  auto again = (*alive)->next_for_lane("default", std::time(nullptr), 10, 0, false);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->size(), 2u);
}

TEST(PgStore, ThrottlingSeenByOneNodeSlowsTheLaneForEveryNode) {
  REQUIRE_SERVER();
  const auto id = fresh_campaign("slow");
  auto a = open_postgres_store(postgres_locator(uri, id), "node-a");
  auto b = open_postgres_store(postgres_locator(uri, id), "node-b");
  ASSERT_TRUE(a.has_value() && b.has_value());
  const std::string lane = "gmail-" + id;  // a lane's pacing row is the database's
  // Node A's shaper slowed the lane from 100/s to 4/s (throttling replies).
  auto first = (*a)->reserve_sends(lane, 100, 1000, 4.0);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_LE(*first, 1);  // a quarter second at 4/s
  std::this_thread::sleep_for(std::chrono::seconds(1));
  // Node B saw nothing, yet is granted a quarter second at 4/s (the GCRA
  // keeps no burst), not at 100/s.
  auto b_slowed = (*b)->reserve_sends(lane, 100, 1000);
  ASSERT_TRUE(b_slowed.has_value());
  EXPECT_EQ(*b_slowed, 1);
  // Nobody reported throttling for k_slow_hold (moved into the past here):
  // the lane runs at its rate again.
  auto c = pg::Connection::open(uri);
  ASSERT_TRUE(c.has_value());
  pg::Params p;
  p.add(lane);
  ASSERT_TRUE((*c)->query("UPDATE lane_rates SET slow_until = 0 WHERE lane = $1", p, "ending").has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto b_free = (*b)->reserve_sends(lane, 100, 1000);
  ASSERT_TRUE(b_free.has_value());
  EXPECT_EQ(*b_free, 25);  // a quarter second at 100/s
}

TEST(PgStore, ALanesConnectionSlotsAreSharedByTheNodesThatWantIt) {
  REQUIRE_SERVER();
  const auto id = fresh_campaign("slots");
  auto a = open_postgres_store(postgres_locator(uri, id), "node-a");
  auto b = open_postgres_store(postgres_locator(uri, id), "node-b");
  auto c = open_postgres_store(postgres_locator(uri, id), "node-c");
  ASSERT_TRUE(a.has_value() && b.has_value() && c.has_value());
  const std::string lane = "yahoo-" + id;  // slots are the database's, by lane
  // A comes first and alone: the whole cap of 4.
  auto alone = (*a)->share_connections(lane, 4, true, 0);
  ASSERT_TRUE(alone.has_value()) << alone.error().message;
  EXPECT_EQ(*alone, 4);
  // B wants the lane too: its share is half, but A holds every slot.
  auto b_first = (*b)->share_connections(lane, 4, true, 0);
  ASSERT_TRUE(b_first.has_value());
  EXPECT_EQ(*b_first, 0);
  // A, with 3 messages under way, may start no more (its share is 2) and
  // keeps the 3 slots those use: B still finds no free slot, so the cap holds.
  auto a_busy = (*a)->share_connections(lane, 4, true, 3);
  ASSERT_TRUE(a_busy.has_value());
  EXPECT_EQ(*a_busy, 2);
  auto b_second = (*b)->share_connections(lane, 4, true, 0);
  ASSERT_TRUE(b_second.has_value());
  EXPECT_EQ(*b_second, 1);
  // A's messages ended: it gives back down to its share, B takes its own.
  ASSERT_EQ((*a)->share_connections(lane, 4, true, 0).value_or(-1), 2);
  ASSERT_EQ((*b)->share_connections(lane, 4, true, 0).value_or(-1), 2);
  // C comes: each share is now 2 (4 over 3, rounded up), all slots are
  // held, so C waits until one comes free.
  ASSERT_EQ((*c)->share_connections(lane, 4, true, 0).value_or(-1), 0);
  // B has no more work of the lane: its slots go back and C takes them.
  ASSERT_EQ((*b)->share_connections(lane, 4, false, 0).value_or(-1), 0);
  ASSERT_EQ((*c)->share_connections(lane, 4, true, 0).value_or(-1), 2);
  // A dies: the server ends its session and its slots free themselves
  // (as soon as the server has noticed).
  a->reset();
  int c_alone = 0;
  for (int i = 0; i < 50 && c_alone != 4; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    c_alone = (*c)->share_connections(lane, 4, true, 0).value_or(-1);
  }
  EXPECT_EQ(c_alone, 4);
}

TEST(PgStore, ANodeAskingAgainForSlotsNeverTakesOneTwice) {
  REQUIRE_SERVER();
  const auto id = fresh_campaign("slots-again");
  auto a = open_postgres_store(postgres_locator(uri, id), "node-a");
  auto b = open_postgres_store(postgres_locator(uri, id), "node-b");
  ASSERT_TRUE(a.has_value() && b.has_value());
  const std::string lane = "outlook-" + id;
  ASSERT_EQ((*a)->share_connections(lane, 8, true, 0).value_or(-1), 8);
  ASSERT_EQ((*b)->share_connections(lane, 8, true, 0).value_or(-1), 0);
  // A's messages on 5 of them: it gives 3 back, B takes them.
  ASSERT_EQ((*a)->share_connections(lane, 8, true, 5).value_or(-1), 4);
  ASSERT_EQ((*b)->share_connections(lane, 8, true, 0).value_or(-1), 3);
  // B asks again while none is free, holding 3 (a slot locked twice would
  // stay locked after B gives it back once).
  for (int i = 0; i < 3; ++i) ASSERT_EQ((*b)->share_connections(lane, 8, true, 0).value_or(-1), 3);
  // B is done with the lane: every slot it held is free again for A.
  ASSERT_EQ((*b)->share_connections(lane, 8, false, 0).value_or(-1), 0);
  EXPECT_EQ((*a)->share_connections(lane, 8, true, 0).value_or(-1), 8);
}

TEST(PgStore, TheDatabaseDropsDuplicateAddressesKeepingTheFirstRow) {
  REQUIRE_SERVER();
  auto s = open_postgres_store(postgres_locator(uri, fresh_campaign("dups")));
  ASSERT_TRUE(s.has_value());
  // The same key on lines 3 and 5 (the loader passes duplicates on: the
  // store drops them, so no table of keys is held in memory).
  for (int round = 0; round < 2; ++round) {  // a first import, then a later one
    auto imp = (*s)->begin_import();
    ASSERT_TRUE(imp.has_value());
    EXPECT_TRUE((*imp)->drops_duplicates());
    ASSERT_TRUE((*imp)->add(row(2, "li.wei@example.com.cn")).has_value());
    ImportRow first = row(3, "ana.souza@example.com.br");
    ImportRow again = row(5, "ana.souza@example.com.br");
    again.email = "Ana.Souza@example.com.br";
    ASSERT_TRUE((*imp)->add(first).has_value());
    ASSERT_TRUE((*imp)->add(row(4, "zoe@example.de")).has_value());
    ASSERT_TRUE((*imp)->add(again).has_value());
    ASSERT_TRUE((*imp)->commit().has_value());
    EXPECT_EQ((*imp)->duplicates(), 1);
  }
  EXPECT_EQ((*s)->counts().value().total, 3);
  auto ana = (*s)->find_recipient("ana.souza@example.com.br");
  ASSERT_TRUE(ana.has_value() && ana->has_value());
  EXPECT_EQ((*ana)->line, 3);
  EXPECT_EQ((*ana)->email, "ana.souza@example.com.br");
}

TEST(PgStore, ALargeFirstImportInAnyOrderKeepsEachAddressOnceAndTheFileOrderByChunk) {
  REQUIRE_SERVER();
  auto s = open_postgres_store(postgres_locator(uri, fresh_campaign("large")));
  ASSERT_TRUE(s.has_value());
  // 150,000 addresses as an export has them: name patterns on country
  // domains, in no order, some twice (the second time in other case, up to
  // 140,000 rows later: another chunk of the import).
  const std::vector<std::string> first{"ana", "li", "zoë", "jean-luc", "o'brien", "mohammed", "søren", "priya"};
  const std::vector<std::string> last{"souza", "wei", "müller", "dubois", "kowalski", "nguyen", "tanaka", "smith"};
  const std::vector<std::string> domains{"example.com.br", "example.co.uk", "example.de", "example.com.cn",
                                         "example.co.jp", "example.fr"};
  std::mt19937_64 rng(20261129);
  std::vector<std::string> addresses;
  for (int i = 0; i < 150000; ++i) {
    addresses.push_back(fmt::format("{}.{}{}@{}", first[rng() % first.size()], last[rng() % last.size()], i,
                                    domains[rng() % domains.size()]));
  }
  std::shuffle(addresses.begin(), addresses.end(), rng);
  auto imp = (*s)->begin_import();
  ASSERT_TRUE(imp.has_value()) << imp.error().message;
  std::int64_t line = 2;
  for (const auto& a : addresses) ASSERT_TRUE((*imp)->add(row(line++, a)).has_value());
  std::int64_t duplicates = 0;
  for (std::size_t i = 0; i < addresses.size(); i += 997) {  // again, in upper case: the same key
    ImportRow again = row(line++, addresses[i]);
    again.email = addresses[i];
    std::transform(again.email.begin(), again.email.end(), again.email.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    ASSERT_TRUE((*imp)->add(again).has_value());
    ++duplicates;
  }
  ASSERT_TRUE((*imp)->commit().has_value());
  EXPECT_EQ((*imp)->duplicates(), duplicates);
  EXPECT_EQ((*s)->counts().value().total, static_cast<std::int64_t>(addresses.size()));
  // Each address once, from its first row.
  for (std::size_t i = 0; i < addresses.size(); i += 997) {
    auto r = (*s)->find_recipient(addresses[i]);
    ASSERT_TRUE(r.has_value() && r->has_value()) << addresses[i];
    EXPECT_EQ((*r)->line, static_cast<std::int64_t>(i) + 2);
    EXPECT_EQ((*r)->email, addresses[i]);
  }
  // The sending order follows the file from chunk to chunk: every row of
  // the file's first 100,000 goes before every row after line 140,000.
  std::int64_t max_early = 0;
  std::int64_t min_late = std::numeric_limits<std::int64_t>::max();
  std::int64_t after = 0;
  while (true) {
    auto rows = (*s)->next_for_lane("default", std::time(nullptr), 5000, after, false);
    ASSERT_TRUE(rows.has_value());
    if (rows->empty()) break;
    for (const auto& r : *rows) {
      if (r.line < 100002) max_early = std::max(max_early, r.id);
      if (r.line > 140002) min_late = std::min(min_late, r.id);
    }
    after = rows->back().id;
  }
  EXPECT_LT(max_early, min_late);
}

TEST(PgStore, NodesStartingTogetherImportTheSameFileOnce) {
  REQUIRE_SERVER();
  const auto id = fresh_campaign("together");
  auto a = open_postgres_store(postgres_locator(uri, id), "node-a");
  auto b = open_postgres_store(postgres_locator(uri, id), "node-b");
  ASSERT_TRUE(a.has_value() && b.has_value());
  const std::string digest = "5f1c0d2e9a";  // the audience file's
  auto first = (*a)->begin_import(digest);
  ASSERT_TRUE(first.has_value() && *first != nullptr);
  for (const auto& e : {"ana.souza@example.com.br", "søren.kierkegaard@example.dk", "o'brien@example.ie"}) {
    ASSERT_TRUE((*first)->add(row(2, e)).has_value());
  }
  // B starts while A imports: it waits for A's turn to end, then finds the
  // same file imported and has nothing to do.
  Result<std::unique_ptr<ImportSession>> second = nullptr;
  std::thread waiter([&] { second = (*b)->begin_import(digest); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE((*first)->commit().has_value());
  waiter.join();
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(*second, nullptr);
  EXPECT_EQ((*b)->get_meta("audience_digest").value(), digest);
  // Another file is imported as usual.
  auto changed = (*b)->begin_import("0b7e44aa31");
  ASSERT_TRUE(changed.has_value() && *changed != nullptr);
}

TEST(PgStore, AnImportCarriesAnyBytesAndKeepsWhatChangedOnly) {
  REQUIRE_SERVER();
  auto s = open_postgres_store(postgres_locator(uri, fresh_campaign("import")));
  ASSERT_TRUE(s.has_value());
  const std::vector<std::string> hostile{"tab\there", "new\nline\r\n", "back\\slash \\x41", "Zoë Müller 李伟", "\x01\x7f",
                                         ""};
  const auto with_fields = [](ImportRow r, std::vector<std::string> f) {
    r.fields = std::move(f);
    return r;
  };
  {
    auto imp = (*s)->begin_import();
    ASSERT_TRUE(imp.has_value()) << imp.error().message;
    ASSERT_TRUE((*imp)->add(with_fields(row(2, "zoe@example.de"), hostile)).has_value());
    ASSERT_TRUE((*imp)->add(row(3, "li.wei@example.com.cn")).has_value());
    ASSERT_TRUE((*imp)->add(row(4, "ana@example.com.br")).has_value());
    ASSERT_TRUE((*imp)->reject(5, "bad address: 'x@'\tline 5").has_value());
    ASSERT_EQ((*imp)->commit().value(), 0);
  }
  EXPECT_EQ((*s)->rejected_rows(10).value().front(), (std::pair<std::int64_t, std::string>{5, "bad address: 'x@'\tline 5"}));
  auto rows = (*s)->next_for_lane("default", std::time(nullptr), 10, 0, false);
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].fields, hostile);
  // Sent, then imported again with one row changed and one gone.
  const std::vector<Outcome> sent{{(*rows)[0].id, RecipientState::k_sent, "250 ok", 0, false, true, 0, false}};
  ASSERT_TRUE((*s)->record_and_mark(sent, {}, {}, true).has_value());
  {
    auto imp = (*s)->begin_import();
    ASSERT_TRUE(imp.has_value());
    ASSERT_TRUE((*imp)->add(with_fields(row(2, "zoe@example.de"), {"changed"})).has_value());
    ASSERT_TRUE((*imp)->add(row(3, "li.wei@example.com.cn")).has_value());
    EXPECT_EQ((*imp)->commit().value(), 1);  // ana is gone: removed, never sent
  }
  auto c = (*s)->counts().value();
  EXPECT_EQ(c.of(RecipientState::k_sent), 1);  // a re-import keeps what was delivered
  EXPECT_EQ(c.of(RecipientState::k_removed), 1);
  EXPECT_EQ((*s)->load(std::vector<std::int64_t>{(*rows)[0].id}).value().front().fields,
            std::vector<std::string>{"changed"});
  // Back in the file: due again.
  {
    auto imp = (*s)->begin_import();
    ASSERT_TRUE(imp.has_value());
    for (const auto& e : {"zoe@example.de", "li.wei@example.com.cn", "ana@example.com.br"}) {
      ASSERT_TRUE((*imp)->add(row(2, e)).has_value());
    }
    ASSERT_TRUE((*imp)->commit().has_value());
  }
  EXPECT_EQ((*s)->counts().value().of(RecipientState::k_removed), 0);
  // An import abandoned halfway changes nothing.
  {
    auto imp = (*s)->begin_import();
    ASSERT_TRUE(imp.has_value());
    ASSERT_TRUE((*imp)->add(row(9, "new@example.org")).has_value());
  }
  EXPECT_EQ((*s)->counts().value().total, 3);
}

TEST(PgStore, TheAuditLogAndApprovalsAreAppendOnly) {
  REQUIRE_SERVER();
  const auto id = fresh_campaign("audit");
  auto s = open_postgres_store(postgres_locator(uri, id));
  ASSERT_TRUE(s.has_value());
  ASSERT_TRUE((*s)->append_event("halt", "ops", "bad template").has_value());
  ASSERT_TRUE((*s)->add_approval("alice", "abc123").has_value());
  EXPECT_EQ((*s)->events(10).value().size(), 1u);
  EXPECT_EQ((*s)->approvals().value().front().by, "alice");
  auto c = pg::Connection::open(uri);
  ASSERT_TRUE(c.has_value());
  EXPECT_FALSE((*c)->exec("UPDATE audit SET detail = 'x'", "changing the audit log").has_value());
  EXPECT_FALSE((*c)->exec("DELETE FROM approvals", "deleting approvals").has_value());
  EXPECT_FALSE((*c)->exec("TRUNCATE audit", "truncating the audit log").has_value());
}

// Without outage patience (serve), a connection whose server end went away
// while it sat idle (a database restart since its last statement) runs its
// next statement after one reconnect, instead of failing the request that
// happens to come first; inside a transaction the loss is the caller's.
TEST(PgConnection, AConnectionClosedWhileIdleRunsItsNextStatementAfterOneReconnect) {
  REQUIRE_SERVER();
  pg::set_thread_outage_patience(std::chrono::seconds(0));
  auto a = pg::Connection::open(uri);
  ASSERT_TRUE(a.has_value()) << a.error().message;
  auto admin = pg::Connection::open(uri);
  ASSERT_TRUE(admin.has_value());
  const auto terminate = [&] {
    auto pid = (*a)->query("SELECT pg_backend_pid()", "reading the backend");
    ASSERT_TRUE(pid.has_value());
    pg::Params p;
    p.add(pid->i64(0, 0));
    ASSERT_TRUE((*admin)->query("SELECT pg_terminate_backend($1::int)", p, "terminating").has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  };
  terminate();
  auto r = (*a)->query("SELECT 41 + 1", "after the loss");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->i64(0, 0), 42);
  EXPECT_GE((*a)->lost_count(), 1U);
  terminate();
  EXPECT_TRUE((*a)->exec("SET application_name = 'after-a-loss'", "after the loss").has_value());
  // A transaction that loses its connection fails: its earlier statements are gone.
  {
    pg::Txn txn(**a);
    ASSERT_TRUE(txn.began().has_value());
    terminate();
    EXPECT_FALSE((*a)->query("SELECT 1", "inside the transaction").has_value());
  }
  pg::set_thread_outage_patience(std::chrono::seconds(-1));
}

}  // namespace
}  // namespace blindcast::store
