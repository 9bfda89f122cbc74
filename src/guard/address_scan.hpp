// Finds the addresses in a text the way a reader takes them in: whole ones.
//
// At each '@' the scanner takes the run of local-part characters to its left
// (atext and '.', RFC 5322 §3.2.3) and of domain characters to its right
// (letters, digits, '-', '.', and non-ASCII for U-labels), and reads from
// them every address a person could read there:
//  - the local part starts at the run's start, after a character that
//    separates words in URLs and prose (`?u=bob@...`, `mailto:...` —
//    ! # $ % & ' * / = ? ^ ` { | } ~, but not a '%' that starts a
//    percent-escape: the decoded text is read on its own), after a dot that
//    cannot be inside a local part (`...bob@`, ` .bob@`), or at a markup
//    break (k_break, guard/reader_view.hpp); never after '.', '+', '-', '_'
//    or a letter otherwise, so `john.smith@` is not `smith@` and `bob+news@`
//    is not `news@` (a sub-address is its own mailbox);
//  - the domain run holds letters, digits, marks, '-', '.' and the
//    ideographic full stop (a dot in IDNA); other characters end it
//    («ivan@пример.рф», 请联系wang@例子.中国。). The domain ends where the run ends
//    (trailing dots and '-' are punctuation), at a markup break, or where
//    ASCII meets non-ASCII text after a dot (`bob@x.com様`); never at an
//    inner dot, so `yahoo.com.br` is not `yahoo.com`;
//  - a markup break inside the runs is also read as nothing at all (the
//    text on both sides joined), and is never part of a reading;
//  - a quoted local part that RFC 5321 makes the same mailbox as a dot-atom
//    (`"bob"@x.org`, `"b\ob"@x.org`) is read unquoted; another quoted local
//    part is read with its quotes.
// Each reading carries its guard hash (ASCII case folded, U-label domains as
// A-labels); reading_shaped() tells whether it is shaped like a deliverable
// address (dot-atom or quoted local part, a domain of two or more labels
// whose last is letters or an A-label): only shaped readings count as "an
// address" for strict mode (asked only of readings nothing else explains).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace blindcast::guard {

struct Reading {
  std::string_view address;  // as read (points into the text, or into scratch for a quoted local part)
  std::uint64_t hash = 0;    // address_hash(address)
  bool quoted = false;       // the local part is quoted and not a dot-atom (`"john smith"@x.org`)
  std::uint8_t end = 0;      // which end of the domain; the readings of one end come longest first
};

inline constexpr std::size_t k_max_readings = 96;

// Room the scanner writes readings into that are not a piece of the text
// (unquoted local parts, readings with a markup break taken out).
struct ScanScratch {
  std::string owned[k_max_readings];
  bool overflow = false;  // an '@' had more readings than fit: the caller must fail closed
};

// Fills `out` with the readings of the '@' at text[at]; returns how many.
std::size_t readings_at(std::string_view text, std::size_t at, std::span<Reading, k_max_readings> out,
                        ScanScratch& scratch);

// Calls `at_sign(std::span<const Reading>, bool overflow)` for every '@' in
// `text` that has a reading (`overflow`: more readings than could be made;
// the caller fails closed); stops and returns false as soon as it returns false.
template <class AtSign>
bool scan_addresses(std::string_view text, AtSign&& at_sign) {
  Reading readings[k_max_readings];
  thread_local ScanScratch scratch;
  std::size_t from = 0;
  while (true) {
    const std::size_t at = text.find('@', from);
    if (at == std::string_view::npos) return true;
    from = at + 1;
    scratch.overflow = false;
    const std::size_t n = readings_at(text, at, readings, scratch);
    if ((n > 0 || scratch.overflow) && !at_sign(std::span<const Reading>(readings, n), scratch.overflow)) return false;
  }
}

// True when `address` is shaped like a deliverable address (see above).
bool address_shaped(std::string_view address);
// True when the reading `r` is shaped like a deliverable address.
bool reading_shaped(const Reading& r);

}  // namespace blindcast::guard
