#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <map>

#include "store/field_codec.hpp"
#include "store/state_store.hpp"
#include "test_support.hpp"

#include <unistd.h>

namespace blindcast::store {
namespace {

ImportRow row(std::int64_t line, const std::string& email, const std::string& lane = "default") {
  return {line, email, email, email.substr(email.find('@') + 1), lane, "en", {email, "Name " + std::to_string(line)}};
}

// Every recipient due at `now` in the default lane, by id.
std::vector<StoredRecipient> due(StateStore& s, std::int64_t now = 0, std::size_t limit = 100) {
  auto rows = s.next_for_lane("default", now, limit, 0, false);
  EXPECT_TRUE(rows.has_value());
  return rows ? *rows : std::vector<StoredRecipient>{};
}

Outcome outcome(std::int64_t id, RecipientState state, std::string reply, std::int64_t flight,
                std::int64_t next = 0, bool attempted = true) {
  return {id, state, std::move(reply), next, false, attempted, flight, state == RecipientState::k_bounced};
}

// Puts `ids` in flight alone (no outcomes, no landings).
Result<std::int64_t> mark(StateStore& s, std::vector<std::int64_t> ids) { return s.record_and_mark({}, {}, ids); }

std::unique_ptr<StateStore> open_with(const testing::TempDir& dir, int n) {
  auto s = open_sqlite_store((dir.path() / "state.db").string());
  EXPECT_TRUE(s.has_value());
  auto imp = (*s)->begin_import();
  for (int i = 0; i < n; ++i) EXPECT_TRUE((*imp)->add(row(i + 2, "u" + std::to_string(i) + "@example.com")));
  EXPECT_TRUE((*imp)->reject(99, "invalid email: missing '@'"));
  EXPECT_TRUE((*imp)->commit().has_value());
  return std::move(*s);
}

TEST(FieldCodec, RoundTripsAnyBytes) {
  const std::vector<std::string> fields = {"", "a", std::string(300, 'x'), std::string("nul\0inside", 10), "日本"};
  EXPECT_EQ(unpack_fields(pack_fields(fields)), fields);
  EXPECT_FALSE(unpack_fields("\x05" "ab").has_value());
}

TEST(SqliteStore, ImportBatchInFlightAndOutcomes) {
  testing::TempDir dir;
  auto s = open_with(dir, 10);
  auto c = s->counts();
  EXPECT_EQ(c->total, 10);
  EXPECT_EQ(c->of(RecipientState::k_pending), 10);
  auto batch = s->next_for_lane("default", 0, 4, 0, false);
  ASSERT_EQ(batch->size(), 4U);
  EXPECT_EQ((*batch)[0].email, "u0@example.com");
  EXPECT_EQ((*batch)[0].fields[1], "Name 2");
  EXPECT_EQ((*batch)[0].lane, "default");
  std::vector<std::int64_t> ids;
  for (const auto& r : *batch) ids.push_back(r.id);
  auto flight = mark(*s, ids);
  ASSERT_TRUE(flight.has_value());
  EXPECT_GT(*flight, 0);
  c = s->counts();
  EXPECT_EQ(c->of(RecipientState::k_in_flight), 4);
  EXPECT_EQ(c->of(RecipientState::k_pending), 6);
  EXPECT_EQ(c->total, 10);
  std::vector<Outcome> outs = {outcome(ids[0], RecipientState::k_sent, "250 ok", *flight),
                               outcome(ids[1], RecipientState::k_bounced, "550 no such user", *flight),
                               outcome(ids[2], RecipientState::k_deferred, "451 later", *flight, 4'000'000'000),
                               outcome(ids[3], RecipientState::k_sent, "250 ok", *flight)};
  ASSERT_TRUE(s->record_and_mark(outs, std::vector<std::int64_t>{*flight}, {}));
  c = s->counts();
  EXPECT_EQ(c->of(RecipientState::k_in_flight), 0);
  EXPECT_EQ(c->of(RecipientState::k_sent), 2);
  EXPECT_EQ(c->of(RecipientState::k_bounced), 1);
  EXPECT_EQ(c->of(RecipientState::k_deferred), 1);
  EXPECT_EQ(s->suppressions(10)->size(), 1U) << "a bad mailbox joins the suppression list";
  // The deferred one is not due yet.
  EXPECT_EQ(due(*s, 1000).size(), 6U);
  EXPECT_EQ(*s->next_retry_at(), 4'000'000'000);
  auto errors = s->recent_errors(10);
  EXPECT_EQ(errors->size(), 2U);
  auto rejected = s->rejected_rows(10);
  ASSERT_EQ(rejected->size(), 1U);
  EXPECT_EQ((*rejected)[0].first, 99);
}

TEST(SqliteStore, LanesAreReadApartAndCanBeReassigned) {
  testing::TempDir dir;
  auto s = open_sqlite_store((dir.path() / "state.db").string());
  auto imp = (*s)->begin_import();
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE((*imp)->add(row(i + 2, "u" + std::to_string(i) + (i % 2 == 0 ? "@gmail.com" : "@example.org"),
                                i % 2 == 0 ? "google" : "default")));
  }
  ASSERT_TRUE((*imp)->commit());
  auto backlog = (*s)->due_by_lane(0, false);
  ASSERT_EQ(backlog->size(), 2U);
  EXPECT_EQ((*backlog)[0].lane, "default");
  EXPECT_EQ((*backlog)[0].due, 3);
  EXPECT_EQ((*s)->next_for_lane("google", 0, 10, 0, false)->size(), 3U);
  auto first = (*s)->next_for_lane("google", 0, 1, 0, false);
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->size(), 1U);
  auto after = (*s)->next_for_lane("google", 0, 10, (*first)[0].id, false);
  EXPECT_EQ(after->size(), 2U) << "reading resumes after the last id";
  ASSERT_TRUE((*s)->assign_lanes([](std::string_view d) { return d == "gmail.com" ? "big" : "rest"; }));
  EXPECT_EQ((*s)->next_for_lane("big", 0, 10, 0, false)->size(), 3U);
  EXPECT_EQ((*s)->next_for_lane("google", 0, 10, 0, false)->size(), 0U);
}

TEST(SqliteStore, RecoverInFlightCountsPossibleDuplicates) {
  testing::TempDir dir;
  {
    auto s = open_with(dir, 5);
    std::vector<std::int64_t> ids;
    for (const auto& r : due(*s, 0, 3)) ids.push_back(r.id);
    ASSERT_TRUE(mark(*s, ids));
  }  // "crash": the process goes away with three in flight
  auto s = open_sqlite_store((dir.path() / "state.db").string());
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ((*s)->counts()->of(RecipientState::k_in_flight), 3);
  auto n = (*s)->recover_in_flight();
  EXPECT_EQ(*n, 3);
  auto c = (*s)->counts();
  EXPECT_EQ(c->of(RecipientState::k_pending), 5);
  EXPECT_EQ(c->of(RecipientState::k_in_flight), 0);
  EXPECT_EQ(c->possible_duplicates, 3);
  EXPECT_EQ(c->possible_duplicate_recipients, 3);
  // The interrupted attempt counts; the recipients are due again.
  auto again = due(**s);
  ASSERT_EQ(again.size(), 5U);
  EXPECT_EQ(again[0].attempts, 1);
  EXPECT_GT(again[0].first_attempt_at, 0);
  EXPECT_EQ(again[4].attempts, 0);
  // Recovered once: a second run finds nothing more.
  EXPECT_EQ(*(*s)->recover_in_flight(), 0);
  EXPECT_EQ((*s)->counts()->possible_duplicates, 3);
}

// A flight lands when every member has its outcome; a crash before that
// counts only the members without one: those are the possible duplicates.
TEST(SqliteStore, OnlyMembersWithoutAnOutcomeAreRecovered) {
  testing::TempDir dir;
  {
    auto s = open_with(dir, 6);
    auto first = mark(*s, {1, 2, 3});
    // 1 and 2 come back (2 never started); 3 is still on the wire. The same
    // commit puts 4 and 5 in flight.
    auto second = s->record_and_mark(std::vector<Outcome>{outcome(1, RecipientState::k_sent, "250", *first),
                                                          outcome(2, RecipientState::k_pending, "not attempted", *first, 0, false)},
                                     {}, std::vector<std::int64_t>{4, 5});
    ASSERT_TRUE(second.has_value());
    EXPECT_NE(*second, *first);
    // 4 comes back; 3 and 5 are on the wire at the crash.
    ASSERT_TRUE(s->record_and_mark(std::vector<Outcome>{outcome(4, RecipientState::k_sent, "250", *second)}, {}, {}));
    auto c = s->counts();
    EXPECT_EQ(c->of(RecipientState::k_in_flight), 2);
    EXPECT_EQ(c->of(RecipientState::k_sent), 2);
    EXPECT_EQ(c->of(RecipientState::k_pending), 2);
  }
  auto s = open_sqlite_store((dir.path() / "state.db").string());
  EXPECT_EQ(*(*s)->recover_in_flight(), 2);
  auto c = (*s)->counts();
  EXPECT_EQ(c->possible_duplicates, 2);
  EXPECT_EQ(c->of(RecipientState::k_sent), 2) << "recorded outcomes stand";
  EXPECT_EQ(c->of(RecipientState::k_pending), 4);
  // Not attempted (2) and never handed over (6): attempts unchanged.
  for (const auto& r : due(**s)) EXPECT_EQ(r.attempts, r.id == 3 || r.id == 5 ? 1 : 0) << r.id;
}

// Only the flights left open count: those that landed are not possible duplicates.
TEST(SqliteStore, LandedFlightsAreNotRecovered) {
  testing::TempDir dir;
  {
    auto s = open_with(dir, 6);
    auto first = mark(*s, {1, 2});
    ASSERT_TRUE(s->record_and_mark(std::vector<Outcome>{outcome(1, RecipientState::k_sent, "250", *first),
                                                        outcome(2, RecipientState::k_sent, "250", *first)},
                                   std::vector<std::int64_t>{*first}, {}));
    ASSERT_TRUE(mark(*s, {5}));
  }  // crash with recipient 5 in flight
  auto s = open_sqlite_store((dir.path() / "state.db").string());
  EXPECT_EQ(*(*s)->recover_in_flight(), 1);
  EXPECT_EQ((*s)->counts()->possible_duplicates, 1);
}

// A flight number is never given twice, not even after every flight landed
// or a crash was recovered (both empty the table of open flights): a row
// names the flight of its last recorded attempt, so a new flight under an
// old number would pass an attempt still on the wire for a recorded one.
TEST(SqliteStore, FlightNumbersAreNeverReused) {
  testing::TempDir dir;
  std::int64_t first = 0;
  {
    auto s = open_with(dir, 4);
    auto f = mark(*s, {1});
    ASSERT_TRUE(f.has_value());
    first = *f;
    // Deferred: the row names the flight; the flight lands.
    ASSERT_TRUE(s->record_and_mark(std::vector<Outcome>{outcome(1, RecipientState::k_deferred, "451 later", first)},
                                   std::vector<std::int64_t>{first}, {}));
  }
  std::int64_t second = 0;
  {
    auto s = open_sqlite_store((dir.path() / "state.db").string());
    ASSERT_TRUE(s.has_value());
    auto f = mark(**s, {1});  // the retry
    ASSERT_TRUE(f.has_value());
    second = *f;
    EXPECT_GT(second, first);
    EXPECT_EQ((*s)->counts()->of(RecipientState::k_in_flight), 1);
  }  // crash while the retry is on the wire
  auto s = open_sqlite_store((dir.path() / "state.db").string());
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(*(*s)->recover_in_flight(), 1) << "the retry may have been delivered";
  EXPECT_EQ((*s)->counts()->possible_duplicates, 1);
  // Recovery emptied the open flights; the next number is still a new one.
  auto f = mark(**s, {2});
  ASSERT_TRUE(f.has_value());
  EXPECT_GT(*f, second);
}

// Failed rows come back: those that could not be built by themselves, every
// failed one on request; a bounce never.
TEST(SqliteStore, RequeueFailedNeverTouchesBounces) {
  testing::TempDir dir;
  auto s = open_with(dir, 4);
  auto f = mark(*s, {2, 3, 4});
  ASSERT_TRUE(f.has_value());
  ASSERT_TRUE(s->record_and_mark(
      std::vector<Outcome>{outcome(1, RecipientState::k_failed, std::string(k_render_failure) + "bad date", 0, 0, false),
                           outcome(2, RecipientState::k_failed, "gave up after max_retry_age: 451", *f),
                           outcome(3, RecipientState::k_bounced, "550 5.1.1 no such user", *f),
                           outcome(4, RecipientState::k_sent, "250 ok", *f)},
      std::vector<std::int64_t>{*f}, {}));
  EXPECT_EQ(*s->requeue_failed(false), 1);
  EXPECT_EQ(s->counts()->of(RecipientState::k_pending), 1);
  EXPECT_EQ(*s->requeue_failed(true), 1);
  for (const auto& r : due(*s)) EXPECT_EQ(r.attempts, 0) << r.id << ": the retry schedule starts again";
  auto c = s->counts();
  EXPECT_EQ(c->of(RecipientState::k_pending), 2);
  EXPECT_EQ(c->of(RecipientState::k_bounced), 1);
  EXPECT_EQ(c->of(RecipientState::k_sent), 1);
  EXPECT_EQ(*s->requeue_failed(true), 0);
}

// A store written before flights existed keeps in-flight rows in state 1.
TEST(SqliteStore, RecoversRowsLeftInTheOldInFlightState) {
  testing::TempDir dir;
  { auto s = open_with(dir, 3); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir.path() / "state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE recipients SET state = 1 WHERE id <= 2", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto s = open_sqlite_store((dir.path() / "state.db").string());
  EXPECT_EQ((*s)->counts()->of(RecipientState::k_in_flight), 2);
  EXPECT_EQ(*(*s)->recover_in_flight(), 2);
  auto c = (*s)->counts();
  EXPECT_EQ(c->of(RecipientState::k_pending), 3);
  EXPECT_EQ(c->possible_duplicates, 2);
}

TEST(SqliteStore, ReimportKeepsStateAndMarksRemovedRows) {
  testing::TempDir dir;
  auto s = open_with(dir, 3);
  const auto first = due(*s, 0, 1);
  ASSERT_EQ(first.size(), 1U);
  ASSERT_TRUE(s->record_and_mark(std::vector<Outcome>{outcome(first[0].id, RecipientState::k_sent, "250", 0)}, {}, {}));
  auto imp = s->begin_import();
  ASSERT_TRUE((*imp)->add(row(2, "u0@example.com")));
  ASSERT_TRUE((*imp)->add(row(3, "new@example.com")));
  auto removed = (*imp)->commit();
  EXPECT_EQ(*removed, 2);  // u1 and u2 are gone from the file
  auto c = s->counts();
  EXPECT_EQ(c->of(RecipientState::k_sent), 1);
  EXPECT_EQ(c->of(RecipientState::k_removed), 2);
  EXPECT_EQ(c->of(RecipientState::k_pending), 1);
}

// The counts kept by triggers (lane_counts) equal a count of the rows after
// every kind of write: import, in flight, outcomes, lane reassignment,
// re-import with removals, recovery, requeue.
TEST(SqliteStore, KeptCountsEqualTheRowsAfterEveryWrite) {
  testing::TempDir dir;
  const auto db_path = (dir.path() / "state.db").string();
  auto s = open_with(dir, 40);
  const auto expect_consistent = [&](const char* after) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
    std::map<std::pair<std::string, int>, std::int64_t> rows;
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT lane, state, COUNT(*) FROM recipients GROUP BY lane, state", -1, &st, nullptr);
    while (sqlite3_step(st) == SQLITE_ROW) {
      rows[{reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), sqlite3_column_int(st, 1)}] =
          sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    sqlite3_int64 risk = 0;
    sqlite3_prepare_v2(db, "SELECT COALESCE(SUM(duplicate_risk), 0) FROM recipients", -1, &st, nullptr);
    if (sqlite3_step(st) == SQLITE_ROW) risk = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    std::map<std::pair<std::string, int>, std::int64_t> kept;
    const auto by_lane = s->counts_by_lane();
    ASSERT_TRUE(by_lane);
    for (const auto& [lane, state, n] : *by_lane) kept[{lane, static_cast<int>(state)}] = n;
    EXPECT_EQ(kept, rows) << "after " << after;
    EXPECT_EQ(s->counts()->possible_duplicates, risk) << "after " << after;
  };
  expect_consistent("import");
  std::vector<std::int64_t> ids;
  for (const auto& r : due(*s, 0, 12)) ids.push_back(r.id);
  auto flight = mark(*s, ids);
  ASSERT_TRUE(flight);
  expect_consistent("in flight");
  std::vector<Outcome> outcomes;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto state = i % 3 == 0 ? RecipientState::k_sent : i % 3 == 1 ? RecipientState::k_deferred
                                                                         : RecipientState::k_bounced;
    outcomes.push_back(outcome(ids[i], state, "reply", *flight, state == RecipientState::k_deferred ? 60 : 0));
  }
  ASSERT_TRUE(s->record_and_mark(outcomes, std::vector<std::int64_t>{*flight}, {}));
  expect_consistent("outcomes");
  ASSERT_TRUE(s->assign_lanes([](std::string_view d) { return d == "example.com" ? "big" : "rest"; }));
  expect_consistent("lanes reassigned");
  std::vector<std::int64_t> more;
  const auto big = s->next_for_lane("big", 0, 5, 0, false);
  ASSERT_TRUE(big);
  for (const auto& r : *big) more.push_back(r.id);
  ASSERT_TRUE(mark(*s, more));
  s.reset();  // a crash with five in flight
  auto reopened = open_sqlite_store(db_path);
  ASSERT_TRUE(reopened);
  s = std::move(*reopened);
  ASSERT_EQ(*s->recover_in_flight(), 5);
  expect_consistent("recovery");
  ASSERT_TRUE(s->requeue_failed(true));
  expect_consistent("requeue");
  auto imp = s->begin_import();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE((*imp)->add(row(i + 2, "u" + std::to_string(i) + "@example.com", "big")));
  ASSERT_TRUE((*imp)->add(row(90, "new@example.net", "rest")));
  ASSERT_TRUE((*imp)->commit());
  expect_consistent("re-import with removals");
}

// A store written before the kept counts gets them, counted from its rows.
TEST(SqliteStore, AnOlderStoreGetsItsCountsFromItsRows) {
  testing::TempDir dir;
  const auto db_path = (dir.path() / "state.db").string();
  { auto s = open_with(dir, 7); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP TRIGGER lane_counts_delete; "
                         "DROP TRIGGER lane_counts_update; DROP TABLE lane_counts; "
                         "UPDATE recipients SET state = 2 WHERE id <= 3",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto s = open_sqlite_store(db_path);
  ASSERT_TRUE(s);
  auto c = (*s)->counts();
  EXPECT_EQ(c->of(RecipientState::k_sent), 3);
  EXPECT_EQ(c->of(RecipientState::k_pending), 4);
  EXPECT_EQ(c->total, 7);
}

TEST(SqliteStore, AuditLogIsAppendOnly) {
  testing::TempDir dir;
  auto s = open_with(dir, 1);
  ASSERT_TRUE(s->append_event("halt", "ops", "disk check"));
  ASSERT_TRUE(s->append_event("release", "ops", "ok"));
  auto events = s->events(10);
  ASSERT_EQ(events->size(), 2U);
  EXPECT_EQ((*events)[0].kind, "halt");
  // Tampering through SQL is refused by triggers.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir.path() / "state.db").c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "DELETE FROM audit", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "UPDATE audit SET detail = 'x'", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(s->events(10)->size(), 2U);
}

TEST(SqliteStore, UnwritableStoreFailsWithAClearError) {
  // Another process holds the write lock past the busy timeout: the write
  // must fail with an error that says sending stopped, not hang or pass.
  testing::TempDir dir;
  auto s = open_with(dir, 2);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir.path() / "state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto w = mark(*s, {1});
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().exit_code, ExitCode::k_runtime);
  EXPECT_NE(w.error().message.find("sending stopped"), std::string::npos) << w.error().message;
  EXPECT_EQ(s->counts()->of(RecipientState::k_in_flight), 0);
}

TEST(SqliteStore, OneOwnerAtATimeAndTheLeaseGoesWithItsHolder) {
  testing::TempDir dir;
  auto a = open_with(dir, 1);
  auto b = open_sqlite_store((dir.path() / "state.db").string());
  auto first = a->acquire_owner();
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<OwnerLease>>(*first));
  auto second = (*b)->acquire_owner();
  ASSERT_TRUE(second.has_value());
  ASSERT_TRUE(std::holds_alternative<Owner>(*second)) << "a second owner is refused";
  const auto& owner = std::get<Owner>(*second);
  EXPECT_EQ(owner.pid, ::getpid());
  EXPECT_GT(owner.since, 0);
  first->emplace<Owner>();  // the lease goes (as it does when its process dies)
  auto third = (*b)->acquire_owner();
  ASSERT_TRUE(third.has_value());
  EXPECT_TRUE(std::holds_alternative<std::unique_ptr<OwnerLease>>(*third));
}

}  // namespace
}  // namespace blindcast::store
