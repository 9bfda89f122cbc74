// The outcome log: two append-only files beside the SQLite store that hold
// delivery outcomes between the store's transactions.
//
// Why: an end of DATA may only be written while few enough earlier ones wait
// for their outcome to be recorded (that bounds what a crash can deliver
// twice), so outcomes must be recorded within a fraction of a millisecond of
// the reply, tens of thousands of times a minute. A SQLite transaction for
// each costs a lock, several WAL pages and a hand-off to another thread; one
// write(2) from the delivery thread costs a system call. The store applies
// the outcomes with its next transaction (every few milliseconds) and the
// log is emptied behind it.
//
// Policy:
// - a record is written before its outcome is confirmed to the transport:
//   it survives the process being killed (the kernel holds the write), not a
//   power loss (what a power loss takes leaves its recipient in an open
//   flight, counted as a possible duplicate, as before the log existed);
// - every record carries its length and a checksum; reading stops at the
//   first record that is incomplete or does not match (a torn tail);
// - applying a record is idempotent and independent of order: an outcome
//   names the flight its attempt went out in, and the store applies it only
//   to a row whose last recorded flight is lower (flight numbers are never
//   reused), so a record applied twice, or after a later attempt's, changes
//   nothing;
// - two files take turns: appends go to the active one; seal() makes the
//   other one active, and once the store has committed every outcome in the
//   sealed file, release() empties it. Nothing is ever cut from a file that
//   is being appended to.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/state_store.hpp"
#include "util/error.hpp"

namespace blindcast::store {

// One record: an outcome decided at `at` (unix seconds), or, before it is
// known, that the end of DATA of recipient `outcome.id` in flight
// `outcome.flight` is about to be written (the other fields unused): after a
// crash, the members of an open flight with such a record and no outcome are
// exactly the ones that may have arrived.
struct LogRecord {
  enum class Kind : std::uint8_t { k_outcome = 1, k_data_end = 2 };
  Kind kind = Kind::k_outcome;
  std::int64_t at = 0;
  Outcome outcome;
};

// The record that recipient `id`'s end of DATA in flight `flight` is about
// to be written.
inline LogRecord data_end_record(std::int64_t id, std::int64_t flight, std::int64_t at) {
  LogRecord r;
  r.kind = LogRecord::Kind::k_data_end;
  r.at = at;
  r.outcome.id = id;
  r.outcome.state = RecipientState::k_pending;
  r.outcome.flight = flight;
  return r;
}

// Appends `entry` as one record (length, checksum, payload) to `out`.
void encode_log_record(const LogRecord& entry, std::string& out);

// The whole records of `bytes`, oldest first; `consumed` is how many bytes
// they take (the rest is a torn or corrupt tail).
std::vector<LogRecord> decode_log_records(std::string_view bytes, std::size_t& consumed);

// What the log files of a store hold.
struct LogContents {
  std::string id;                  // the log's identity; empty unless both files carry the same one
  std::vector<LogRecord> records;  // every whole record, both turns
};

class OutcomeLog {
 public:
  // The log of the store at `store_path`: files `store_path` + "-outcomes-a"
  // and "-b" (mode 0600). An empty `store_path` keeps nothing (a store in
  // memory).
  explicit OutcomeLog(std::string store_path);
  OutcomeLog(const OutcomeLog&) = delete;
  OutcomeLog& operator=(const OutcomeLog&) = delete;
  ~OutcomeLog();

  // Reads the log files of `store_path` (none there: nothing).
  static Result<LogContents> read(const std::string& store_path);
  // Removes both files (after the store applied what read() returned).
  static Result<void> remove(const std::string& store_path);

  // Starts both files afresh under a new identity (what they held must have
  // been applied): each begins with a header naming it, which release()
  // keeps. A flight whose record names this identity (and this boot) can
  // trust the log after a crash only while the files still carry it: a log
  // deleted or left behind by a moved store is never mistaken for one that
  // says "nothing reached the end of DATA".
  Result<void> open();
  // The identity open() gave the files.
  [[nodiscard]] const std::string& id() const { return m_id; }

  // Appends `entries` to the active file with one write. Not thread-safe:
  // the caller serialises append() and seal(); release() may run beside
  // them on the sealed turn (never the active one).
  Result<void> append(std::span<const LogRecord> entries);
  // Makes the other file active; returns the sealed one's turn.
  int seal();
  // Empties the file of turn `turn` (back to its header): the store has
  // committed every outcome in it. A failure is harmless (the records are
  // applied again, to no effect, after a crash).
  Result<void> release(int turn);
  // Set (before sending starts) when no end of DATA is written before its
  // data-end record is appended (Transport::on_data_end): the store marks
  // the flights it records so, and after a crash on the same boot counts
  // only their members with such a record as possibly delivered.
  void set_records_data_ends(bool on) { m_data_ends = on; }
  [[nodiscard]] bool records_data_ends() const { return m_data_ends && !m_id.empty(); }

 private:
  std::string m_base;  // empty: nothing is written
  std::string m_id;
  int m_fd[2] = {-1, -1};
  std::uint64_t m_size[2] = {0, 0};
  std::uint64_t m_header = 0;  // bytes of the header
  int m_active = 0;
  bool m_data_ends = false;
  bool m_broken = false;  // an append failed: every later one fails too
  std::string m_buffer;  // reused for every append
};

// This boot of the machine (the kernel's boot id); empty when unknown.
const std::string& boot_id();

}  // namespace blindcast::store
