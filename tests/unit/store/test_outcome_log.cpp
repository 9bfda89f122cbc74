// The outcome log: records survive a killed process and are applied once;
// after a crash its end-of-DATA records say exactly which members of an open
// flight may have arrived — unless the log cannot be trusted (another boot,
// deleted or replaced files), when every member counts, as without it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "store/outcome_log.hpp"
#include "store/state_store.hpp"
#include "test_support.hpp"

namespace blindcast::store {
namespace {

using Kind = LogRecord::Kind;

LogRecord outcome(std::int64_t id, RecipientState state, std::int64_t flight, std::string reply = "250 2.0.0 ok",
                  bool maybe_delivered = false) {
  return {Kind::k_outcome, 1764400000, Outcome{id, state, std::move(reply), 0, maybe_delivered, true, flight, false}};
}

LogRecord data_end(std::int64_t id, std::int64_t flight) { return data_end_record(id, flight, 1764400000); }

std::string store_path(const testing::TempDir& dir) { return (dir.path() / "state.db").string(); }

std::unique_ptr<StateStore> open_with(const testing::TempDir& dir, int n) {
  auto s = open_sqlite_store(store_path(dir));
  EXPECT_TRUE(s.has_value());
  auto imp = (*s)->begin_import();
  for (int i = 0; i < n; ++i) {
    const std::string email = "member" + std::to_string(i) + "@example.com";
    EXPECT_TRUE((*imp)->add({i + 2, email, email, "example.com", "default", "en", {email}}));
  }
  EXPECT_TRUE((*imp)->commit().has_value());
  return std::move(*s);
}

TEST(OutcomeLog, RecordsRoundTripAndATornTailIsDropped) {
  std::string bytes;
  encode_log_record(outcome(7, RecipientState::k_deferred, 12, std::string("451 4.7.1 try later\0x", 21), true), bytes);
  encode_log_record(data_end(8, 12), bytes);
  const std::size_t whole = bytes.size();
  encode_log_record(outcome(9, RecipientState::k_sent, 12), bytes);
  std::size_t consumed = 0;
  auto all = decode_log_records(bytes, consumed);
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(consumed, bytes.size());
  EXPECT_EQ(all[0].outcome.id, 7);
  EXPECT_EQ(all[0].outcome.state, RecipientState::k_deferred);
  EXPECT_EQ(all[0].outcome.reply, std::string("451 4.7.1 try later\0x", 21));
  EXPECT_TRUE(all[0].outcome.maybe_delivered);
  EXPECT_TRUE(all[0].outcome.attempted);
  EXPECT_EQ(all[0].outcome.flight, 12);
  EXPECT_EQ(all[1].kind, Kind::k_data_end);
  EXPECT_EQ(all[1].outcome.id, 8);
  EXPECT_EQ(all[1].outcome.flight, 12);
  // Cut anywhere inside the last record: the first two stand.
  for (std::size_t cut = whole; cut < bytes.size(); ++cut) {
    auto some = decode_log_records(std::string_view(bytes).substr(0, cut), consumed);
    EXPECT_EQ(some.size(), 2U) << cut;
    EXPECT_EQ(consumed, whole);
  }
  // A flipped byte in the last record's payload: its checksum fails.
  std::string garbled = bytes;
  garbled[garbled.size() - 3] ^= 0x20;
  EXPECT_EQ(decode_log_records(garbled, consumed).size(), 2U);
}

// A server picks the length of its reply: a record is never so long that the
// reader would refuse it (and every record behind it).
TEST(OutcomeLog, AHugeReplyIsCutAndHidesNothingBehindIt) {
  std::string bytes;
  encode_log_record(outcome(1, RecipientState::k_sent, 5, "250 " + std::string(3 << 20, 'x')), bytes);
  encode_log_record(data_end(2, 5), bytes);
  std::size_t consumed = 0;
  auto all = decode_log_records(bytes, consumed);
  ASSERT_EQ(all.size(), 2U);
  EXPECT_LT(all[0].outcome.reply.size(), std::size_t{1} << 20);
  EXPECT_EQ(all[1].outcome.id, 2);
}

TEST(OutcomeLog, TurnsAreEmptiedBehindTheCommitAndKeepTheirIdentity) {
  testing::TempDir dir;
  const auto path = store_path(dir);
  OutcomeLog log(path);
  ASSERT_TRUE(log.open());
  ASSERT_FALSE(log.id().empty());
  ASSERT_TRUE(log.append(std::vector<LogRecord>{outcome(1, RecipientState::k_sent, 3)}));
  const int sealed = log.seal();
  ASSERT_TRUE(log.append(std::vector<LogRecord>{outcome(2, RecipientState::k_sent, 3)}));
  auto both = OutcomeLog::read(path);
  ASSERT_TRUE(both.has_value());
  EXPECT_EQ(both->records.size(), 2U);
  EXPECT_EQ(both->id, log.id());
  ASSERT_TRUE(log.release(sealed));
  auto after = OutcomeLog::read(path);
  ASSERT_EQ(after->records.size(), 1U);
  EXPECT_EQ(after->records[0].outcome.id, 2);
  EXPECT_EQ(after->id, log.id()) << "emptying a turn keeps its header";
  for (const char* suffix : {"-outcomes-a", "-outcomes-b"}) {
    EXPECT_EQ(std::filesystem::status(path + suffix).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  ASSERT_TRUE(OutcomeLog::remove(path));
  auto gone = OutcomeLog::read(path);
  EXPECT_TRUE(gone->records.empty());
  EXPECT_TRUE(gone->id.empty());
}

// A send killed with flight {1, 2, 3, 4} open: 1's reply is in the log only,
// the ends of DATA of 2 and 3 were written, 4's never was.
void killed_send(const testing::TempDir& dir, bool records_data_ends) {
  auto s = open_with(dir, 5);
  auto log = s->outcome_log();
  ASSERT_TRUE(log.has_value());
  (*log)->set_records_data_ends(records_data_ends);
  auto flight = s->record_and_mark({}, {}, std::vector<std::int64_t>{1, 2, 3, 4});
  ASSERT_TRUE(flight.has_value());
  std::vector<LogRecord> records{data_end(1, *flight), data_end(2, *flight), data_end(3, *flight)};
  if (!records_data_ends) records.clear();
  records.push_back(outcome(1, RecipientState::k_sent, *flight));
  ASSERT_TRUE((*log)->append(records));
}

TEST(OutcomeLog, AfterAKillStatusAndRecoveryCountExactlyTheEndsOfDataWithoutAReply) {
  testing::TempDir dir;
  killed_send(dir, true);
  auto s = open_sqlite_store(store_path(dir));
  ASSERT_TRUE(s.has_value());
  auto c = (*s)->counts();
  EXPECT_EQ(c->of(RecipientState::k_sent), 1) << "the reply in the log counts";
  EXPECT_EQ(c->of(RecipientState::k_in_flight), 2) << "2 and 3 may have arrived";
  EXPECT_EQ(c->of(RecipientState::k_pending), 2) << "4 never reached the end of DATA; 5 was never handed over";
  std::vector<std::int64_t> not_delivered;
  auto n = (*s)->recover_in_flight(&not_delivered);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 2);
  EXPECT_EQ(not_delivered, std::vector<std::int64_t>{4});
  c = (*s)->counts();
  EXPECT_EQ(c->of(RecipientState::k_sent), 1);
  EXPECT_EQ(c->of(RecipientState::k_in_flight), 0);
  EXPECT_EQ(c->possible_duplicates, 2);
  EXPECT_TRUE(OutcomeLog::read(store_path(dir))->records.empty()) << "applied, then removed";
  // 4 is due again as if never tried; 2 and 3 with their attempt counted.
  auto due = (*s)->next_for_lane("default", 0, 10, 0, false);
  ASSERT_TRUE(due.has_value());
  for (const auto& r : *due) {
    EXPECT_EQ(r.attempts, r.id == 2 || r.id == 3 ? 1 : 0) << r.id;
  }
}

TEST(OutcomeLog, WithoutEndOfDataRecordsEveryMemberWithoutAReplyCounts) {
  testing::TempDir dir;
  killed_send(dir, false);
  auto s = open_sqlite_store(store_path(dir));
  EXPECT_EQ((*s)->counts()->of(RecipientState::k_in_flight), 3);
  std::vector<std::int64_t> not_delivered;
  EXPECT_EQ(*(*s)->recover_in_flight(&not_delivered), 3);
  EXPECT_TRUE(not_delivered.empty());
  EXPECT_EQ((*s)->counts()->of(RecipientState::k_sent), 1);
}

TEST(OutcomeLog, ADeletedOrReplacedLogIsNotTrusted) {
  for (const bool replace : {false, true}) {
    testing::TempDir dir;
    killed_send(dir, true);
    ASSERT_TRUE(OutcomeLog::remove(store_path(dir)));
    if (replace) {  // a log of another store copied in, or made anew
      OutcomeLog other(store_path(dir));
      ASSERT_TRUE(other.open());
    }
    auto s = open_sqlite_store(store_path(dir));
    // 1's reply went with the log: every member may have arrived.
    EXPECT_EQ((*s)->counts()->of(RecipientState::k_in_flight), 4) << replace;
    std::vector<std::int64_t> not_delivered;
    EXPECT_EQ(*(*s)->recover_in_flight(&not_delivered), 4) << replace;
    EXPECT_TRUE(not_delivered.empty());
  }
}

// Killed after the commit that recorded the outcomes and before the log was
// emptied: applying the log again changes nothing.
TEST(OutcomeLog, ALogAppliedAgainChangesNothing) {
  testing::TempDir dir;
  {
    auto s = open_with(dir, 3);
    auto log = s->outcome_log();
    (*log)->set_records_data_ends(true);
    auto flight = s->record_and_mark({}, {}, std::vector<std::int64_t>{1, 2});
    const std::vector<LogRecord> records{outcome(1, RecipientState::k_deferred, *flight, "421 lost", true),
                                         outcome(2, RecipientState::k_sent, *flight)};
    ASSERT_TRUE((*log)->append(records));
    const std::vector<Outcome> outcomes{records[0].outcome, records[1].outcome};
    ASSERT_TRUE(s->record_and_mark(outcomes, std::vector<std::int64_t>{*flight}, {}));
  }
  auto s = open_sqlite_store(store_path(dir));
  EXPECT_EQ((*s)->counts()->possible_duplicates, 1);
  std::vector<std::int64_t> not_delivered;
  EXPECT_EQ(*(*s)->recover_in_flight(&not_delivered), 0);
  EXPECT_TRUE(not_delivered.empty()) << "the run that committed them told the ledger already";
  auto c = (*s)->counts();
  EXPECT_EQ(c->possible_duplicates, 1) << "the lost reply counted once";
  EXPECT_EQ(c->of(RecipientState::k_deferred), 1);
  EXPECT_EQ(c->of(RecipientState::k_sent), 1);
  auto rows = (*s)->load(std::vector<std::int64_t>{1});
  EXPECT_EQ((*rows)[0].attempts, 1) << "one attempt, not two";
}

// Killed after a deferral and a bounce were logged and before the commit that
// would have released them on the guard's ledger: recovery names them.
TEST(OutcomeLog, RecoveryNamesWhatTheLogSaysWasNotDelivered) {
  testing::TempDir dir;
  {
    auto s = open_with(dir, 4);
    auto log = s->outcome_log();
    (*log)->set_records_data_ends(true);
    auto flight = s->record_and_mark({}, {}, std::vector<std::int64_t>{1, 2, 3});
    ASSERT_TRUE((*log)->append(std::vector<LogRecord>{
        data_end(1, *flight), data_end(2, *flight), data_end(3, *flight),
        outcome(1, RecipientState::k_deferred, *flight, "451 4.7.1 greylisted"),
        outcome(2, RecipientState::k_bounced, *flight, "550 5.1.1 no such user"),
        outcome(3, RecipientState::k_deferred, *flight, "lost after the end of DATA", true)}));
  }
  auto s = open_sqlite_store(store_path(dir));
  std::vector<std::int64_t> not_delivered;
  EXPECT_EQ(*(*s)->recover_in_flight(&not_delivered), 0);
  EXPECT_EQ(not_delivered, (std::vector<std::int64_t>{1, 2})) << "3 may have arrived";
  auto c = (*s)->counts();
  EXPECT_EQ(c->of(RecipientState::k_deferred), 2);
  EXPECT_EQ(c->of(RecipientState::k_bounced), 1);
  EXPECT_EQ(c->possible_duplicates, 1);
}

}  // namespace
}  // namespace blindcast::store
