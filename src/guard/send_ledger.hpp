// The guard's own record of what it let pass, and the limits it keeps with
// it: a second line of defence that shares nothing with the journal it
// watches (the exchange's advice: independent risk limits beside the
// sender). If the journal is wrong, lost, or two senders each have their own
// (`--state` pointing elsewhere), the ledger still sees every message.
//
// The ledger is one append-only file per campaign (CAMPAIGN/.blindcast/
// guard-ledger, mode 0600), shared by every process that sends the
// campaign: 16-byte records (recipient key, what happened, time) appended
// under an exclusive flock(2), each process reading what the others
// appended before it decides. A record is written before the message it
// admits is handed over; a message that certainly did not reach the
// recipient (deferred, bounced, never started) is released afterwards.
// Records are not synced to disk: they survive a crash of the process (the
// kernel holds them), not of the machine, whose recovery the journal owns.
//
// Limits, checked as a group of messages is admitted (before any of it is
// sent); a trip halts every sender of the campaign until `release`:
//  - "third message": a recipient that may already have two messages of
//    this campaign would get a third;
//  - "second messages": more recipients than `resends` (the sender's
//    possible duplicates per crash) would get a second message in this run:
//    a resend after a crash fits, two senders racing or a loop do not;
//  - "rate": more than `max_rate` messages a second over any 10 s, plus one
//    window (messages are admitted a group at a time).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "guard/privacy_guard.hpp"

namespace blindcast::guard {

struct LedgerLimits {
  std::size_t window = 1000;  // the sender's in-flight window: what it admits at once at most
  double max_rate = 0;        // messages per second; 0: no rate limit
  // Recipients a run may send twice: what a crash can leave possibly
  // delivered (0: `window`).
  std::size_t resends = 0;
  // Recipients the campaign has (the table is made for them at once; more fit too).
  std::size_t expected = 0;
};

class SendLedger {
 public:
  // Opens (creating, mode 0600) the ledger at `path`; nullopt with `error` set when it cannot.
  static std::unique_ptr<SendLedger> open(const std::filesystem::path& path, LedgerLimits limits, std::string& error);
  ~SendLedger();
  SendLedger(const SendLedger&) = delete;
  SendLedger& operator=(const SendLedger&) = delete;

  // The ledger key of `recipient` (any case, U-label or A-label domain).
  static std::uint64_t key(std::string_view recipient);

  // Admits `keys` as about to be sent, all or none: nullopt when they may
  // go; otherwise the limit that trips (the ledger is then halted for every
  // sender). `now` is unix seconds. An empty string in `error` when fine; a
  // write failure is reported there (then nothing may be sent).
  // `which` (when given) is set to the index of the key that tripped.
  std::optional<Violation> admit(std::span<const std::uint64_t> keys, std::int64_t now, std::string& error,
                                 std::size_t* which = nullptr);
  // Records that `keys` certainly did not reach their recipients.
  void release(std::span<const std::uint64_t> keys, std::int64_t now, std::string& error);
  // Lifts a halt of the ledger (`blindcast release`).
  void clear_halt(std::int64_t now, std::string& error);

  // The reason the ledger is halted, or empty.
  [[nodiscard]] std::string halted();
  // Recipients admitted twice in this run (for tests and status).
  [[nodiscard]] std::size_t second_messages() const { return m_seconds; }

  struct Record;  // one 16-byte entry of the file

 private:
  SendLedger() = default;
  bool catch_up(std::string& error);  // reads what others appended (under the lock)
  void apply(const Record& r);
  bool append(std::span<const Record> records, std::string& error);
  std::uint8_t& count_of(std::uint64_t key);
  void make_room(std::size_t keys);  // grows the table to hold `keys` keys

  int m_fd = -1;
  LedgerLimits m_limits;
  std::uint64_t m_offset = 0;                 // bytes read and applied
  std::vector<std::uint64_t> m_keys;          // open addressing (hash_slots.hpp); 0 = empty
  std::vector<std::uint8_t> m_counts;         // possibly-delivered messages per key
  std::size_t m_used = 0;
  std::size_t m_seconds = 0;                  // second messages admitted in this run
  std::int64_t m_second_of[10] = {};          // admissions per second of the last 10 s (rate):
  std::uint64_t m_admitted_in[10] = {};       //   slot t % 10 holds second m_second_of[...]
  std::uint8_t m_halt_code = 0;               // the limit of the last halt record not cleared
};

}  // namespace blindcast::guard
