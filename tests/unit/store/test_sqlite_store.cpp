#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "store/field_codec.hpp"
#include "store/state_store.hpp"
#include "test_support.hpp"

namespace blindcast::store {
namespace {

ImportRow row(std::int64_t line, const std::string& email) {
  return {line, email, email, email.substr(email.find('@') + 1), "en", {email, "Name " + std::to_string(line)}};
}

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
  auto batch = s->next_batch(0, 4, 0);
  ASSERT_EQ(batch->size(), 4U);
  EXPECT_EQ((*batch)[0].email, "u0@example.com");
  EXPECT_EQ((*batch)[0].fields[1], "Name 2");
  std::vector<std::int64_t> ids;
  for (const auto& r : *batch) ids.push_back(r.id);
  auto flight = s->mark_in_flight(ids);
  ASSERT_TRUE(flight.has_value());
  EXPECT_GT(*flight, 0);
  c = s->counts();
  EXPECT_EQ(c->of(RecipientState::k_in_flight), 4);
  EXPECT_EQ(c->of(RecipientState::k_pending), 6);
  EXPECT_EQ(c->total, 10);
  std::vector<Outcome> outs = {{ids[0], RecipientState::k_sent, "250 ok", 0, false, true},
                               {ids[1], RecipientState::k_bounced, "550 no such user", 0, false, true},
                               {ids[2], RecipientState::k_deferred, "451 later", 4'000'000'000, false, true},
                               {ids[3], RecipientState::k_sent, "250 ok", 0, false, true}};
  ASSERT_TRUE(s->record_outcomes(outs, std::vector<std::int64_t>{*flight}));
  c = s->counts();
  EXPECT_EQ(c->of(RecipientState::k_in_flight), 0);
  EXPECT_EQ(c->of(RecipientState::k_sent), 2);
  EXPECT_EQ(c->of(RecipientState::k_bounced), 1);
  EXPECT_EQ(c->of(RecipientState::k_deferred), 1);
  // The deferred one is not due yet; the next batch continues after the last id.
  auto next = s->next_batch(1000, 100, 0);
  EXPECT_EQ(next->size(), 6U);
  auto errors = s->recent_errors(10);
  EXPECT_EQ(errors->size(), 2U);
  auto rejected = s->rejected_rows(10);
  ASSERT_EQ(rejected->size(), 1U);
  EXPECT_EQ((*rejected)[0].first, 99);
}

TEST(SqliteStore, RecoverInFlightCountsPossibleDuplicates) {
  testing::TempDir dir;
  {
    auto s = open_with(dir, 5);
    auto batch = s->next_batch(0, 3, 0);
    std::vector<std::int64_t> ids;
    for (const auto& r : *batch) ids.push_back(r.id);
    ASSERT_TRUE(s->mark_in_flight(ids));
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
  auto again = (*s)->next_batch(0, 10, 0);
  ASSERT_EQ(again->size(), 5U);
  EXPECT_EQ((*again)[0].attempts, 1);
  EXPECT_GT((*again)[0].first_attempt_at, 0);
  EXPECT_EQ((*again)[4].attempts, 0);
  // Recovered once: a second run finds nothing more.
  EXPECT_EQ(*(*s)->recover_in_flight(), 0);
  EXPECT_EQ((*s)->counts()->possible_duplicates, 3);
}

// Only the flights left open count: those that landed with their outcomes, or
// without (never handed over), are not possible duplicates.
TEST(SqliteStore, LandedFlightsAreNotRecovered) {
  testing::TempDir dir;
  {
    auto s = open_with(dir, 6);
    auto first = s->mark_in_flight(std::vector<std::int64_t>{1, 2});
    auto never_sent = s->mark_in_flight(std::vector<std::int64_t>{3, 4});
    // Batch 1's outcomes land it and put batch 3 in flight, in one transaction.
    auto third = s->record_and_mark(std::vector<Outcome>{{1, RecipientState::k_sent, "250", 0, false, true},
                                                         {2, RecipientState::k_pending, "lane busy", 0, false, false}},
                                    std::vector<std::int64_t>{*first}, std::vector<std::int64_t>{5});
    ASSERT_TRUE(third.has_value());
    EXPECT_NE(*third, *first);
    ASSERT_TRUE(s->record_outcomes({}, std::vector<std::int64_t>{*never_sent}));
    auto c = s->counts();
    EXPECT_EQ(c->of(RecipientState::k_in_flight), 1);
    EXPECT_EQ(c->of(RecipientState::k_sent), 1);
    EXPECT_EQ(c->of(RecipientState::k_pending), 4);
  }  // crash with recipient 5 in flight
  auto s = open_sqlite_store((dir.path() / "state.db").string());
  EXPECT_EQ(*(*s)->recover_in_flight(), 1);
  auto c = (*s)->counts();
  EXPECT_EQ(c->possible_duplicates, 1);
  EXPECT_EQ(c->of(RecipientState::k_pending), 5);
  // Not attempted (2) and never handed over (3, 4): attempts unchanged.
  auto due = (*s)->next_batch(0, 10, 0);
  ASSERT_EQ(due->size(), 5U);
  for (const auto& r : *due) EXPECT_EQ(r.attempts, r.id == 5 ? 1 : 0) << r.id;
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
  auto batch = s->next_batch(0, 1, 0);
  ASSERT_TRUE(s->record_outcomes(std::vector<Outcome>{{(*batch)[0].id, RecipientState::k_sent, "250", 0}}));
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
  auto w = s->mark_in_flight(std::vector<std::int64_t>{1});
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().exit_code, ExitCode::k_runtime);
  EXPECT_NE(w.error().message.find("sending stopped"), std::string::npos) << w.error().message;
  EXPECT_EQ(s->counts()->of(RecipientState::k_in_flight), 0);
}

}  // namespace
}  // namespace blindcast::store
